/*
 * test_race_cft_stop.c - reactor_call_from_thread racing the end of a run (API.md §7:
 * "reactor_call_from_thread after a run that ended with stop -> REACTOR_E_CLOSED (caller keeps
 * ud); one that returned OK runs exactly once, before that run returns").
 *
 * Each round: the main thread runs a fresh reactor while 3 crew threads call
 * reactor_call_from_thread in a loop (heap user data) until one returns CLOSED, each keeping at
 * most 1, 8, 64 or 512 (by round) accepted calls that have not run yet: so producers are busy
 * whenever the run ends, and once reactor_run returned their next call must be CLOSED. The call
 * that makes the number of callbacks reach a per-round random threshold (0: the startup
 * call_when_running callback) calls reactor_stop, so the run ends while producers are still
 * queueing. Checks per round (the counts are exact, nothing depends on timing):
 *   - reactor_run returns OK; every call_from_thread returns OK or CLOSED, and once a producer
 *     saw CLOSED the next call from it is CLOSED too;
 *   - callbacks that ran before reactor_run returned == calls that returned OK (each exactly
 *     once: a second run of one registration is reported), and none ran later;
 *   - after reactor_free, releases == calls that returned OK; CLOSED calls were neither run nor
 *     released (the producer frees their data itself: a release would be a double free).
 * 2000 rounds (50 under valgrind).
 */
#include "race_util.h"

static const char *PROG = "test_race_cft_stop";

#define PRODUCERS 3

static reactor_t *g_r;
static race_counts_t counts;
static atomic_long threshold;
static atomic_int stop_rc, stop_calls, report_budget, run_returned;
static race_gate_t gate;
/* Each producer keeps at most `window` accepted calls that have not run yet (varied per round), so
 * producers are busy whenever the run ends but the queue stays bounded. */
static long window;
static atomic_long ran_by[PRODUCERS];
static long producer_ok[PRODUCERS];

static void maybe_stop(reactor_t *r, long ran_now) {
  if (ran_now == atomic_load(&threshold)) {
    atomic_fetch_add(&stop_calls, 1);
    atomic_store(&stop_rc, reactor_stop(r));
  }
}

static void producer_cb(reactor_t *r, void *ud) {
  atomic_fetch_add(&ran_by[((race_ud_t *)ud)->tag], 1);
  race_ud_ran(ud); /* counts.ran + 1 */
  maybe_stop(r, atomic_load(&counts.ran));
}

static void startup_cb(reactor_t *r, void *ud) {
  (void)ud;
  maybe_stop(r, 0);
}

static void producer(race_crew_t *c, int index) {
  long ok = 0;
  race_gate(&gate, PRODUCERS + 1);
  for (;;) {
    /* backpressure; once the run returned the next call must say CLOSED */
    while (ok - atomic_load(&ran_by[index]) >= window && !atomic_load(&run_returned))
      sched_yield();
    race_ud_t *u = race_ud_new(&counts, index);
    int rc = reactor_call_from_thread(g_r, producer_cb, u, race_ud_release);
    race_ud_settle(&counts, u, rc);
    if (rc == REACTOR_OK) {
      ok++;
      continue;
    }
    if (rc == REACTOR_E_NOMEM) {
      sched_yield();
      continue;
    }
    RACE_ALLOWED(rc, "reactor_call_from_thread", c->round, REACTOR_E_CLOSED);
    break;
  }
  /* the gate stays closed */
  race_ud_t *u = race_ud_new(&counts, index);
  int rc = reactor_call_from_thread(g_r, producer_cb, u, race_ud_release);
  race_ud_settle(&counts, u, rc);
  RACE_ALLOWED(rc, "reactor_call_from_thread after CLOSED", c->round, REACTOR_E_CLOSED);
  producer_ok[index] = ok;
}

int main(void) {
  tu_watchdog(60);
  long rounds = tu_scale(2000, 50);

  tu_banner_probe(PROG);

  race_crew_t crew;
  race_crew_init(&crew, PRODUCERS, producer, NULL);
  long total_ok = 0, total_closed = 0, bad_rounds = 0;
  double t0 = tu_now();
  SECTION("3 producers call reactor_call_from_thread while a run ends with stop");
  for (long round = 0; round < rounds; round++) {
    uint64_t seed = race_seed(round, 99);
    reactor_t *r = tu_new_reactor();
    race_counts_reset(&counts);
    atomic_store(&threshold, (long)(race_rand(&seed) % 200));
    atomic_store(&stop_calls, 0);
    atomic_store(&stop_rc, 12345);
    race_gate_reset(&gate);
    static const long windows[] = {1, 8, 64, 512};
    window = windows[round % 4];
    for (int i = 0; i < PRODUCERS; i++) atomic_store(&ran_by[i], 0);
    REQUIRE_OK(reactor_call_when_running(r, startup_cb, NULL, NULL));
    g_r = r;
    int failed_before = atomic_load(&tu_failures);

    race_crew_begin(&crew, round);
    race_gate(&gate, PRODUCERS + 1);
    int rc = reactor_run(r);
    long ran_at_return = atomic_load(&counts.ran);
    atomic_store(&run_returned, 1);
    race_crew_end(&crew);
    atomic_store(&run_returned, 0);

    long ok = 0;
    for (int i = 0; i < PRODUCERS; i++) ok += producer_ok[i];
    if (rc != REACTOR_OK || atomic_load(&stop_calls) != 1 || atomic_load(&stop_rc) != REACTOR_OK) {
      atomic_fetch_add(&tu_failures, 1);
      if (race_report(&report_budget))
        fprintf(stderr, "   round %ld: reactor_run -> %d (%s), stop called %d times -> %d\n", round,
                rc, tu_status(rc), atomic_load(&stop_calls), atomic_load(&stop_rc));
    }
    if (ran_at_return != ok || atomic_load(&counts.ran) != ran_at_return) {
      atomic_fetch_add(&tu_failures, 1);
      if (race_report(&report_budget))
        fprintf(stderr,
                "   round %ld: %ld calls returned OK, %ld ran before reactor_run returned, %ld ran "
                "in all\n",
                round, ok, ran_at_return, atomic_load(&counts.ran));
    }
    CHECK_OK(reactor_free(r));
    long rel = atomic_load(&counts.released);
    if (rel != ok || atomic_load(&counts.accepted) != ok) {
      atomic_fetch_add(&tu_failures, 1);
      if (race_report(&report_budget))
        fprintf(stderr, "   round %ld: %ld calls returned OK, %ld releases ran\n", round, ok, rel);
    }
    total_ok += ok;
    total_closed += atomic_load(&counts.refused);
    if (atomic_load(&tu_failures) != failed_before) bad_rounds++;
  }
  race_crew_destroy(&crew);
  printf("   %ld rounds in %.2f s: %ld calls accepted, %ld refused with CLOSED; bad rounds %ld\n",
         rounds, tu_now() - t0, total_ok, total_closed, bad_rounds);
  return tu_finish(PROG);
}
