/*
 * test_race_remote_free.c - reactor_remote_call racing reactor_free and the end of a run, where
 * the contract already promises safety (API.md §4: "A remote handle stays valid after the reactor
 * is freed: reactor_remote_call then returns REACTOR_E_CLOSED (ownership of ud stays with the
 * caller) ... hosts that cannot order the two use a remote handle"; §7: remote calls accepted
 * before reactor_remote_free still run).
 *
 * Section 1, per round: the main thread creates a reactor and a remote handle; 3 crew threads
 * leave a spin gate together and call reactor_remote_call in a loop until it returns CLOSED; the
 * reactor is freed after a random delay - on odd rounds by the main thread (its owner) after 0-3
 * reactor_iterate(r, 0) passes, on even rounds by a crew thread (reactor_free may say BUSY while a
 * call is in progress; it is retried). Then the handle is freed with reactor_remote_free.
 * Section 2, per round: the main thread runs the reactor while 3 crew threads call
 * reactor_remote_call until CLOSED (each keeping at most 1, 8, 64 or 512 accepted calls that have
 * not run yet, by round); a callback calls reactor_stop after a random number of calls.
 * Checks per round: reactor_remote_call returns OK or CLOSED, and CLOSED again once it said
 * CLOSED; every call that returned OK ran at most once and was released exactly once (ran, or
 * released inside reactor_free; heap user data: a double release is a double free, a missing one
 * a leak); CLOSED calls never ran and were never released.
 * Section 2 also checks that every remote call accepted while the reactor ran ran before
 * reactor_run returned: API.md promises that for reactor_call_from_thread, and libreactor keeps
 * the same promise for remote calls (DECISIONS "Threads").
 * 3000 rounds in section 1, 1000 in section 2 (75 and 25 under valgrind).
 */
#include "race_util.h"

static const char *PROG = "test_race_remote_free";

#define CALLERS 3
#define CREW (CALLERS + 1)
#define FREER_INDEX CALLERS

static reactor_t *g_r;
static reactor_remote_t *g_h;
static race_counts_t counts;
static int crew_freer, running_section;
static atomic_int parties, report_budget, stop_calls, stop_rc;
static race_gate_t gate;
static atomic_long threshold;
/* Section 2: each caller keeps at most `window` accepted calls that have not run yet. */
static long window;
static atomic_long ran_by[CALLERS];
static atomic_int run_returned;

static void remote_cb(reactor_t *r, void *ud) {
  atomic_fetch_add(&ran_by[((race_ud_t *)ud)->tag], 1);
  race_ud_ran(ud);
  if (running_section && atomic_load(&counts.ran) == atomic_load(&threshold)) {
    atomic_fetch_add(&stop_calls, 1);
    atomic_store(&stop_rc, reactor_stop(r));
  }
}

static void free_it(long round) {
  for (long busy = 1;; busy++) {
    int rc = reactor_free(g_r);
    if (rc == REACTOR_OK) return;
    if (!RACE_ALLOWED(rc, "reactor_free", round, REACTOR_OK, REACTOR_E_BUSY)) return;
    if ((busy & 63) == 0) sched_yield();
  }
}

static void crew_body(race_crew_t *c, int index) {
  if (index == FREER_INDEX && (running_section || !crew_freer)) return;
  uint64_t seed = race_seed(c->round, index);
  race_gate(&gate, atomic_load(&parties));
  if (index == FREER_INDEX) {
    race_spin((unsigned)(race_rand(&seed) % 5000));
    free_it(c->round);
    return;
  }
  for (long ok = 0;;) {
    while (running_section && ok - atomic_load(&ran_by[index]) >= window &&
           !atomic_load(&run_returned))
      sched_yield();
    race_ud_t *u = race_ud_new(&counts, index);
    int rc = reactor_remote_call(g_h, remote_cb, u, race_ud_release);
    race_ud_settle(&counts, u, rc);
    ok += rc == REACTOR_OK;
    if (!running_section && ok >= 256) sched_yield(); /* enough queued: let the freer in */
    if (!RACE_ALLOWED(rc, "reactor_remote_call", c->round, REACTOR_OK, REACTOR_E_CLOSED)) break;
    if (rc == REACTOR_E_CLOSED) {
      u = race_ud_new(&counts, index);
      rc = reactor_remote_call(g_h, remote_cb, u, race_ud_release);
      race_ud_settle(&counts, u, rc);
      RACE_ALLOWED(rc, "reactor_remote_call after CLOSED", c->round, REACTOR_E_CLOSED);
      break;
    }
  }
}

static void check_round(long round, int failed_before, long *bad) {
  long acc = atomic_load(&counts.accepted), rel = atomic_load(&counts.released);
  if (acc != rel || atomic_load(&counts.ran) > acc) {
    atomic_fetch_add(&tu_failures, 1);
    if (race_report(&report_budget))
      fprintf(stderr, "   round %ld: %ld accepted, %ld ran, %ld releases ran\n", round, acc,
              atomic_load(&counts.ran), rel);
  }
  if (atomic_load(&tu_failures) != failed_before) ++*bad;
}

int main(void) {
  tu_watchdog(60);
  long rounds = tu_scale(1000, 25);
  tu_banner_probe(PROG);
  race_crew_t crew;
  race_crew_init(&crew, CREW, crew_body, NULL);
  long round = 0;

  SECTION("1. reactor_remote_call x3 vs reactor_free");
  long accepted = 0, ran = 0, refused = 0, bad = 0;
  double t0 = tu_now();
  for (long i = 0; i < 3 * rounds; i++, round++) {
    uint64_t seed = race_seed(round, 1000);
    reactor_t *r = tu_new_reactor();
    reactor_remote_t *h = NULL;
    REQUIRE_OK(reactor_remote_new(r, &h));
    race_counts_reset(&counts);
    g_r = r;
    g_h = h;
    crew_freer = (round & 1) == 0;
    atomic_store(&parties, CALLERS + 1 + crew_freer);
    race_gate_reset(&gate);
    int failed_before = atomic_load(&tu_failures);

    race_crew_begin(&crew, round);
    race_gate(&gate, atomic_load(&parties));
    if (!crew_freer) {
      int passes = (int)(race_rand(&seed) % 4);
      race_spin((unsigned)(race_rand(&seed) % 5000));
      for (int k = 0; k < passes; k++) CHECK_OK(reactor_iterate(r, 0.0));
      free_it(round);
    }
    race_crew_end(&crew);
    reactor_remote_free(h);
    check_round(round, failed_before, &bad);
    accepted += atomic_load(&counts.accepted);
    ran += atomic_load(&counts.ran);
    refused += atomic_load(&counts.refused);
  }
  printf("   %ld rounds in %.2f s: %ld calls accepted (%ld ran), %ld refused; bad rounds %ld\n",
         3 * rounds, tu_now() - t0, accepted, ran, refused, bad);

  SECTION("2. reactor_remote_call x3 vs the end of a run (stop)");
  running_section = 1;
  accepted = ran = refused = bad = 0;
  long not_run = 0;
  t0 = tu_now();
  for (long i = 0; i < rounds; i++, round++) {
    uint64_t seed = race_seed(round, 2000);
    reactor_t *r = tu_new_reactor();
    reactor_remote_t *h = NULL;
    REQUIRE_OK(reactor_remote_new(r, &h));
    race_counts_reset(&counts);
    atomic_store(&threshold, 1 + (long)(race_rand(&seed) % 200));
    atomic_store(&stop_calls, 0);
    atomic_store(&stop_rc, 12345);
    static const long windows[] = {1, 8, 64, 512};
    window = windows[round % 4];
    for (int k = 0; k < CALLERS; k++) atomic_store(&ran_by[k], 0);
    g_r = r;
    g_h = h;
    atomic_store(&parties, CALLERS + 1);
    race_gate_reset(&gate);
    int failed_before = atomic_load(&tu_failures);

    race_crew_begin(&crew, round);
    race_gate(&gate, CALLERS + 1);
    CHECK_OK(reactor_run(r));
    long ran_at_return = atomic_load(&counts.ran);
    atomic_store(&run_returned, 1);
    race_crew_end(&crew);
    atomic_store(&run_returned, 0);
    if (atomic_load(&stop_calls) != 1 || atomic_load(&stop_rc) != REACTOR_OK) {
      atomic_fetch_add(&tu_failures, 1);
      if (race_report(&report_budget))
        fprintf(stderr, "   round %ld: reactor_stop called %d times -> %d\n", round,
                atomic_load(&stop_calls), atomic_load(&stop_rc));
    }
    CHECK_OK(reactor_free(r));
    reactor_remote_free(h);
    if (atomic_load(&counts.ran) != ran_at_return) {
      atomic_fetch_add(&tu_failures, 1);
      if (race_report(&report_budget))
        fprintf(stderr, "   round %ld: a remote call ran after reactor_run returned\n", round);
    }
    long round_not_run = atomic_load(&counts.accepted) - ran_at_return;
    if (round_not_run != 0) {
      atomic_fetch_add(&tu_failures, 1);
      if (race_report(&report_budget))
        fprintf(stderr, "   round %ld: %ld accepted remote calls did not run before reactor_run "
                "returned\n", round, round_not_run);
    }
    check_round(round, failed_before, &bad);
    not_run += round_not_run;
    accepted += atomic_load(&counts.accepted);
    ran += atomic_load(&counts.ran);
    refused += atomic_load(&counts.refused);
  }
  printf("   %ld rounds in %.2f s: %ld calls accepted (%ld ran), %ld refused; %ld accepted calls "
         "did not run before reactor_run returned; bad rounds %ld\n",
         rounds, tu_now() - t0, accepted, ran, refused, not_run, bad);

  race_crew_destroy(&crew);
  return tu_finish(PROG);
}
