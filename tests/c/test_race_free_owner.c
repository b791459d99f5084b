/*
 * test_race_free_owner.c - reactor_free from another thread racing the owner's calls (API.md §7:
 * "reactor_free from any thread succeeds only when no call on the reactor is in progress (else
 * BUSY); afterwards every function on the handle returns INVALID").
 *
 * Each round: the main thread creates a reactor (so it owns it) and keeps making owner calls -
 * reactor_iterate(r, 0), call_later with a handle then cancel, add_reader then remove_reader on a
 * pipe, call_when_running, reactor_stats - while a crew thread calls reactor_free(r) until it
 * returns OK. Checks per round:
 *   - reactor_free returns BUSY (a call is in progress) until it returns OK, nothing else;
 *   - the owner's calls return OK until the free, INVALID afterwards and from then on always
 *     INVALID (cancel of a call still pending when the reactor was freed: CLOSED);
 *   - every registration that returned OK was released exactly once (by remove/cancel or inside
 *     reactor_free; heap user data, so a second release is a double free and a missing one a
 *     leak), refused ones never; no callback ran (nothing was due, nothing ran the reactor).
 * 3000 rounds (50 under valgrind).
 */
#include "race_util.h"

static const char *PROG = "test_race_free_owner";

/* The owner stops calling after this many calls in a round (then the freer surely gets in). */
static long max_owner_calls;

static reactor_t *g_r;
static atomic_int report_budget;
static race_gate_t gate;
static race_counts_t counts;
static atomic_long busy_total;

static void must_not_cb(reactor_t *r, void *ud) {
  (void)r;
  (void)ud;
  atomic_fetch_add(&tu_failures, 1);
  fprintf(stderr, "   a callback ran, but nothing was due\n");
}

static void must_not_fd(reactor_t *r, int fd, uint32_t events, void *ud) {
  (void)r;
  (void)fd;
  (void)events;
  (void)ud;
  atomic_fetch_add(&tu_failures, 1);
  fprintf(stderr, "   an fd callback ran, but the pipe was never readable\n");
}

static void freer(race_crew_t *c, int index) {
  uint64_t seed = race_seed(c->round, index);
  race_gate(&gate, 2);
  race_spin((unsigned)(race_rand(&seed) % 4000));
  for (;;) {
    int rc = reactor_free(g_r);
    if (rc == REACTOR_OK) break;
    if (!RACE_ALLOWED(rc, "reactor_free (other thread)", c->round, REACTOR_OK, REACTOR_E_BUSY))
      break;
    long busy = atomic_fetch_add(&busy_total, 1);
    /* On one CPU (valgrind, a loaded machine) the owner may be preempted inside its call: spinning
     * for the rest of our time slice only delays the owner leaving it. */
    if (tu_valgrind() || (busy & 63) == 63) sched_yield();
  }
}

/* One owner call of kind k % 5. `freed` is 0 before the owner saw INVALID, 1 after.
 * Returns 1 if this call saw the reactor freed (INVALID), else 0. */
static int owner_call(reactor_t *r, int k, int rfd, int freed, long round) {
  int rc, freed_meanwhile = 0;
  const char *what;
  switch (k % 5) {
  case 0:
    what = "reactor_iterate";
    rc = reactor_iterate(r, 0.0);
    break;
  case 1: {
    what = "reactor_call_later";
    reactor_delayed_call_t *h = NULL;
    race_ud_t *u = race_ud_new(&counts, k);
    rc = reactor_call_later(r, 100.0, must_not_cb, u, race_ud_release, &h);
    race_ud_settle(&counts, u, rc);
    if (rc == REACTOR_OK) {
      int rc2 = reactor_delayed_call_cancel(h);
      /* OK if still alive, CLOSED if the reactor was freed in between (the handle outlives it) */
      RACE_ALLOWED(rc2, "reactor_delayed_call_cancel", round, REACTOR_OK, REACTOR_E_CLOSED);
      reactor_delayed_call_release(h);
      freed_meanwhile = rc2 == REACTOR_E_CLOSED;
    }
    break;
  }
  case 2: {
    what = "reactor_add_reader";
    race_ud_t *u = race_ud_new(&counts, k);
    rc = reactor_add_reader(r, rfd, must_not_fd, u, race_ud_release);
    race_ud_settle(&counts, u, rc);
    if (rc == REACTOR_OK) {
      int rc2 = reactor_remove_reader(r, rfd);
      RACE_ALLOWED(rc2, "reactor_remove_reader", round, REACTOR_OK, REACTOR_E_INVALID);
      freed_meanwhile = rc2 == REACTOR_E_INVALID;
    }
    break;
  }
  case 3: {
    what = "reactor_call_when_running";
    race_ud_t *u = race_ud_new(&counts, k);
    rc = reactor_call_when_running(r, must_not_cb, u, race_ud_release);
    race_ud_settle(&counts, u, rc);
    break;
  }
  default: {
    what = "reactor_stats";
    reactor_stats_t st;
    memset(&st, 0, sizeof st);
    st.struct_size = (uint32_t)sizeof st;
    rc = reactor_stats(r, &st);
    break;
  }
  }
  if (freed) {
    if (rc != REACTOR_E_INVALID) {
      atomic_fetch_add(&tu_failures, 1);
      if (race_report(&report_budget))
        fprintf(stderr, "   round %ld: %s -> %d (%s) after the reactor was freed (want INVALID)\n",
                round, what, rc, tu_status(rc));
    }
    return 1;
  }
  RACE_ALLOWED(rc, what, round, REACTOR_OK, REACTOR_E_INVALID);
  return rc == REACTOR_E_INVALID || freed_meanwhile;
}

int main(void) {
  tu_watchdog(60);
  long rounds = tu_scale(3000, 50);
  max_owner_calls = tu_scale(200000, 2000);
  int p[2];
  tu_pipe(p);
  tu_banner_probe(PROG);

  race_crew_t crew;
  race_crew_init(&crew, 1, freer, NULL);
  long owner_calls = 0, accepted = 0;
  double t0 = tu_now();
  SECTION("owner calls vs reactor_free from another thread");
  for (long round = 0; round < rounds; round++) {
    reactor_t *r = tu_new_reactor();
    race_counts_reset(&counts);
    g_r = r;
    race_gate_reset(&gate);
    race_crew_begin(&crew, round);
    race_gate(&gate, 2);
    int freed = 0, k = (int)(round % 5);
    for (long n = 0; n < max_owner_calls; n++, k++) {
      owner_calls++;
      /* Give the freer a chance to run between two calls even when both threads share one CPU. */
      if ((n & 63) == 63) sched_yield();
      if (owner_call(r, k, p[0], freed, round)) {
        if (freed++ == 5) break; /* a few more calls: they must all be INVALID */
      }
    }
    race_crew_end(&crew);
    if (!freed) {
      /* the freer never got a gap in max_owner_calls calls: it has freed it by now */
      owner_call(r, 0, p[0], 1, round);
    }
    accepted += atomic_load(&counts.accepted);
    long acc = atomic_load(&counts.accepted), rel = atomic_load(&counts.released);
    if (acc != rel) {
      atomic_fetch_add(&tu_failures, 1);
      if (race_report(&report_budget))
        fprintf(stderr, "   round %ld: %ld registrations accepted, %ld releases ran\n", round, acc,
                rel);
    }
    CHECK_RC(reactor_free(r), REACTOR_E_INVALID);
  }
  race_crew_destroy(&crew);
  tu_close_pair(p);
  printf("   %ld rounds in %.2f s: %ld owner calls, %ld registrations, reactor_free saw BUSY %ld "
         "times\n",
         rounds, tu_now() - t0, owner_calls, accepted, atomic_load(&busy_total));
  return tu_finish(PROG);
}
