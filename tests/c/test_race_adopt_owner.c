/*
 * test_race_adopt_owner.c - reactor_run from another thread racing the owner's own calls
 * (API.md §7: "called from another thread while the reactor is idle (not inside run, iterate
 * or any other call on it), it makes the calling thread the owner").
 *
 * Each round: the main thread creates a reactor (so it owns it) and keeps making owner calls
 * - reactor_iterate(r, 0), reactor_call_later with a handle then cancel, add_reader then
 * remove_reader on a pipe - while a crew thread T calls reactor_run until it returns OK
 * (adopted, ran and was stopped) or has tried 20 times (the owner keeps calling until then). A
 * call_when_running callback registered first tells the main thread that T's run started.
 * Checks per round:
 *   - the owner's calls return OK, or WRONG_THREAD once T adopted the reactor; after the first
 *     WRONG_THREAD every later owner call returns WRONG_THREAD too (ownership never returns);
 *   - T's reactor_run returns OK (it adopted; the main thread then stops it with
 *     reactor_call_from_thread, which returns OK, and a callback calling reactor_stop), or
 *     WRONG_THREAD, ALREADY_RUNNING or BUSY;
 *   - WRONG_THREAD seen by the owner implies T's run started, and T's run started iff it
 *     returned OK;
 *   - reactor_free afterwards is OK, and every registration that returned OK was released
 *     exactly once (heap user data: a second release is a double free, a missing one a leak);
 *     the never-due timer never ran.
 * 3000 rounds (50 under valgrind).
 */
#include "race_util.h"

static const char *PROG = "test_race_adopt_owner";

/* The owner stops once the adopter made this many attempts (or after max_owner_calls). */
#define ATTEMPTS_PER_ROUND 20
static long max_owner_calls;

static reactor_t *g_r;
static atomic_int done, won, t_exited, t_rc, round_attempts;
static race_gate_t gate;
static race_counts_t counts;
static atomic_int timer_ran, stop_rc, report_budget;
static atomic_long attempts, refusals[3]; /* WRONG_THREAD, ALREADY_RUNNING, BUSY */

static void started_cb(reactor_t *r, void *ud) {
  (void)r;
  (void)ud;
  atomic_store(&won, 1);
}

static void stop_cb(reactor_t *r, void *ud) {
  atomic_store(&stop_rc, reactor_stop(r));
  race_ud_ran(ud);
}

static void never_cb(reactor_t *r, void *ud) {
  (void)r;
  (void)ud;
  atomic_fetch_add(&timer_ran, 1);
}

static void fd_cb(reactor_t *r, int fd, uint32_t events, void *ud) {
  (void)r;
  (void)fd;
  (void)events;
  (void)ud; /* REACTOR_SHUTDOWN reaches a reader the owner could no longer remove */
}

/* T: try to adopt until it worked or the owner is done. */
static void adopter(race_crew_t *c, int index) {
  uint64_t seed = race_seed(c->round, index);
  race_gate(&gate, 2);
  race_spin((unsigned)(race_rand(&seed) % 500));
  int rc = REACTOR_E_BUSY;
  while (!atomic_load(&done)) {
    rc = reactor_run(g_r);
    atomic_fetch_add(&attempts, 1);
    atomic_fetch_add(&round_attempts, 1);
    if (rc == REACTOR_E_WRONG_THREAD) atomic_fetch_add(&refusals[0], 1);
    if (rc == REACTOR_E_ALREADY_RUNNING) atomic_fetch_add(&refusals[1], 1);
    if (rc == REACTOR_E_BUSY) atomic_fetch_add(&refusals[2], 1);
    if (!RACE_ALLOWED(rc, "reactor_run (adopter)", c->round, REACTOR_OK, REACTOR_E_WRONG_THREAD,
                      REACTOR_E_ALREADY_RUNNING, REACTOR_E_BUSY))
      break;
    if (rc == REACTOR_OK) break;
    if (tu_valgrind()) sched_yield(); /* one thread at a time: let the owner make progress */
  }
  atomic_store(&t_rc, rc);
  atomic_store(&t_exited, 1);
}

/* One owner call (cycling through three kinds); returns its status. */
static int owner_call(reactor_t *r, int k, int rfd, long round) {
  switch (k % 3) {
  case 0:
    return reactor_iterate(r, 0.0);
  case 1: {
    reactor_delayed_call_t *h = NULL;
    race_ud_t *u = race_ud_new(&counts, k);
    int rc = reactor_call_later(r, 100.0, never_cb, u, race_ud_release, &h);
    race_ud_settle(&counts, u, rc);
    if (rc != REACTOR_OK) return rc;
    int crc = reactor_delayed_call_cancel(h);
    reactor_delayed_call_release(h);
    RACE_ALLOWED(crc, "reactor_delayed_call_cancel (owner)", round, REACTOR_OK,
                 REACTOR_E_WRONG_THREAD);
    return crc;
  }
  default: {
    race_ud_t *u = race_ud_new(&counts, k);
    int rc = reactor_add_reader(r, rfd, fd_cb, u, race_ud_release);
    race_ud_settle(&counts, u, rc);
    if (rc != REACTOR_OK) return rc;
    int rrc = reactor_remove_reader(r, rfd);
    RACE_ALLOWED(rrc, "reactor_remove_reader (owner)", round, REACTOR_OK, REACTOR_E_WRONG_THREAD);
    return rrc;
  }
  }
}

int main(void) {
  tu_watchdog(60);
  long rounds = tu_scale(3000, 50);
  max_owner_calls = tu_scale(20000, 500);
  int p[2];
  tu_pipe(p);
  tu_banner_probe(PROG);

  race_crew_t crew;
  race_crew_init(&crew, 1, adopter, NULL);
  long adopted = 0, owner_kept = 0, lost_mid_round = 0, bad_rounds = 0;
  double t0 = tu_now();
  SECTION("owner iterate / call_later+cancel / add+remove_reader vs reactor_run elsewhere");
  long rounds_run = 0;
  for (long round = 0; round < rounds; round++, rounds_run++) {
    reactor_t *r = tu_new_reactor();
    race_counts_reset(&counts);
    REQUIRE_OK(reactor_call_when_running(r, started_cb, NULL, NULL));
    g_r = r;
    atomic_store(&done, 0);
    atomic_store(&won, 0);
    atomic_store(&t_exited, 0);
    atomic_store(&t_rc, 12345);
    atomic_store(&stop_rc, 12345);
    race_gate_reset(&gate);
    atomic_store(&round_attempts, 0);

    int failed_before = atomic_load(&tu_failures);
    race_crew_begin(&crew, round);
    race_gate(&gate, 2);
    int lost = 0, after_loss = 0;
    for (int k = 0; k < max_owner_calls; k++) {
      if (!lost && (atomic_load(&round_attempts) >= ATTEMPTS_PER_ROUND || atomic_load(&t_exited)))
        break;
      if (tu_valgrind() && (k & 3) == 3) sched_yield(); /* let the adopter try between calls */
      int rc = owner_call(r, k + (int)(round % 3), p[0], round);
      if (lost) {
        if (rc != REACTOR_E_WRONG_THREAD) {
          atomic_fetch_add(&tu_failures, 1);
          if (race_report(&report_budget))
            fprintf(stderr, "   round %ld: owner call %d -> %d (%s) after WRONG_THREAD\n", round, k,
                    rc, tu_status(rc));
        }
        if (++after_loss == 3) break; /* one call of each kind: they all stay refused */
        continue;
      }
      if (!RACE_ALLOWED(rc, "owner call", round, REACTOR_OK, REACTOR_E_WRONG_THREAD)) break;
      if (rc == REACTOR_E_WRONG_THREAD) lost = 1;
    }
    atomic_store(&done, 1);
    /* Either T gave up, or its run started (then it runs until stopped from here). */
    while (!atomic_load(&t_exited) && !atomic_load(&won)) sched_yield();
    if (atomic_load(&won)) {
      race_ud_t *u = race_ud_new(&counts, -1);
      int rc = reactor_call_from_thread(r, stop_cb, u, race_ud_release);
      race_ud_settle(&counts, u, rc);
      if (rc != REACTOR_OK) {
        atomic_fetch_add(&tu_failures, 1);
        fprintf(stderr, "   round %ld: call_from_thread to stop the adopter -> %d (%s)\n", round,
                rc, tu_status(rc));
        exit(1); /* the adopter's run would never end */
      }
    }
    race_crew_end(&crew);

    int trc = atomic_load(&t_rc), w = atomic_load(&won);
    if ((trc == REACTOR_OK) != (w == 1) || (lost && !w)) {
      atomic_fetch_add(&tu_failures, 1);
      if (race_report(&report_budget))
        fprintf(stderr,
                "   round %ld: adopter's run -> %d (%s), its run started: %d, owner lost: %d\n",
                round, trc, tu_status(trc), w, lost);
    }
    if (w) {
      adopted++;
      if (lost) lost_mid_round++;
      if (atomic_load(&stop_rc) != REACTOR_OK) {
        atomic_fetch_add(&tu_failures, 1);
        if (race_report(&report_budget))
          fprintf(stderr, "   round %ld: reactor_stop in the adopter's run -> %d\n", round,
                  atomic_load(&stop_rc));
      }
    } else {
      owner_kept++;
    }
    int frc = reactor_free(r);
    if (frc != REACTOR_OK) {
      atomic_fetch_add(&tu_failures, 1);
      if (race_report(&report_budget))
        fprintf(stderr, "   round %ld: reactor_free -> %d (%s)\n", round, frc, tu_status(frc));
    }
    long acc = atomic_load(&counts.accepted), rel = atomic_load(&counts.released);
    if (acc != rel) {
      atomic_fetch_add(&tu_failures, 1);
      if (race_report(&report_budget))
        fprintf(stderr, "   round %ld: %ld registrations accepted, %ld releases ran\n", round, acc,
                rel);
    }
    if (atomic_load(&tu_failures) != failed_before) {
      /* the reactor may be poisoned or half freed: stop here rather than cascade */
      printf("   stopping after the failed round %ld\n", round);
      rounds_run++;
      bad_rounds++;
      break;
    }
  }
  if (!bad_rounds) race_crew_destroy(&crew);
  tu_close_pair(p);
  printf("   %ld rounds in %.2f s: adopted %ld (owner saw WRONG_THREAD in %ld), owner kept it %ld; "
         "%ld reactor_run attempts, refused with WRONG_THREAD %ld, ALREADY_RUNNING %ld, BUSY %ld\n",
         rounds_run, tu_now() - t0, adopted, lost_mid_round, owner_kept, atomic_load(&attempts),
         atomic_load(&refusals[0]), atomic_load(&refusals[1]), atomic_load(&refusals[2]));
  CHECK_EQ(atomic_load(&timer_ran), 0);
  return tu_finish(PROG);
}
