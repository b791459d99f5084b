/*
 * test_race_adopt.c - threads racing to adopt an idle reactor through reactor_run (API.md §7
 * "Ownership moves only through reactor_run ... Racing threads: exactly one wins").
 *
 * Each round: the main thread creates a reactor and registers a call_when_running callback
 * that records where it ran and calls reactor_stop; then 3 crew threads (plus, on odd rounds,
 * the main thread, which owns the reactor) leave a spin gate together and call reactor_run at
 * once (every fourth round with random sub-microsecond head starts); a refused caller tries again
 * until the winner's reactor_run returned, so both ends of the winner's run are raced. Checks per
 * round:
 *   - exactly one reactor_run returns REACTOR_OK;
 *   - every other call returns WRONG_THREAD, ALREADY_RUNNING, BUSY or (once the winner's run
 *     ended with stop) NOT_RESTARTABLE;
 *   - the callback ran exactly once, on the winner's thread, with reactor_is_in_io_thread 1
 *     and reactor_is_running 1;
 *   - reactor_free afterwards (main thread, not the owner any more unless it won) is OK and
 *     the callback's release ran exactly once.
 * 10000 rounds (50 under valgrind). On a loaded 2-core machine the racers are often serialized
 * by the scheduler, so natively this catches a broken adoption only now and then; under
 * ThreadSanitizer (scripts/tsan.sh) it is caught every time.
 */
#include "race_util.h"

static const char *PROG = "test_race_adopt";

#define RACERS 3
#define MAIN_INDEX RACERS

static reactor_t *g_r;
static atomic_int rc_of[RACERS + 1];
static _Thread_local int my_index = -1;

static race_gate_t gate;
static atomic_int parties;
static atomic_int winner_done, finished;
static atomic_long refusals;
static atomic_int cb_calls, cb_index, cb_io, cb_running, cb_releases, safety_fired;
static atomic_int report_budget;

static void winner_cb(reactor_t *r, void *ud) {
  (void)ud;
  atomic_fetch_add(&cb_calls, 1);
  atomic_store(&cb_index, my_index);
  atomic_store(&cb_io, reactor_is_in_io_thread(r));
  atomic_store(&cb_running, reactor_is_running(r));
  int rc = reactor_stop(r);
  if (rc != REACTOR_OK && race_report(&report_budget))
    fprintf(stderr, "   reactor_stop in the winner's callback -> %d (%s)\n", rc, tu_status(rc));
  if (rc != REACTOR_OK) atomic_fetch_add(&tu_failures, 1);
}

static void winner_release(void *ud) {
  (void)ud;
  atomic_fetch_add(&cb_releases, 1);
}

static void safety_cb(reactor_t *r, void *ud) {
  (void)ud;
  atomic_fetch_add(&safety_fired, 1);
  reactor_crash(r);
}

static int refused(int rc) {
  return rc == REACTOR_E_WRONG_THREAD || rc == REACTOR_E_ALREADY_RUNNING || rc == REACTOR_E_BUSY;
}

/* All racers leave a spin gate together (every fourth round some start a little later) and call
 * reactor_run; a refused one tries again until the winner's reactor_run has returned, so the
 * start and the end of the winner's run are both raced. */
static void race_run(long round, int index) {
  race_gate(&gate, atomic_load(&parties));
  if (round % 4 == 3) {
    uint64_t seed = race_seed(round, index);
    race_spin((unsigned)(race_rand(&seed) % 2000));
  }
  int rc, stop_after_this;
  do {
    /* the winner's run is over, or everybody else gave up (a broken library: no winner) */
    stop_after_this =
        atomic_load(&winner_done) || atomic_load(&finished) == atomic_load(&parties) - 1;
    rc = reactor_run(g_r);
    if (rc == REACTOR_OK) atomic_store(&winner_done, 1);
    else if (refused(rc)) atomic_fetch_add(&refusals, 1);
  } while (refused(rc) && !stop_after_this);
  atomic_store(&rc_of[index], rc);
  atomic_fetch_add(&finished, 1);
}

static void racer(race_crew_t *c, int index) {
  my_index = index;
  race_run(c->round, index);
}

int main(void) {
  tu_watchdog(60);
  my_index = MAIN_INDEX;
  long rounds = tu_scale(10000, 50);
  tu_banner_probe(PROG);

  race_crew_t crew;
  race_crew_init(&crew, RACERS, racer, NULL);
  long main_wins = 0, crew_wins = 0, bad_rounds = 0;
  long seen[6] = {0}; /* OK, WRONG_THREAD, ALREADY_RUNNING, BUSY, NOT_RESTARTABLE, other */
  double t0 = tu_now();
  SECTION("3-4 threads call reactor_run on an idle reactor at once");
  long rounds_run = 0;
  for (long round = 0; round < rounds; round++, rounds_run++) {
    reactor_t *r = tu_new_reactor();
    REQUIRE_OK(reactor_call_when_running(r, winner_cb, NULL, winner_release));
    /* Ends a run that nothing stopped (only if the library lets two runs in). */
    REQUIRE_OK(reactor_call_later(r, tu_valgrind() ? 30.0 : 5.0, safety_cb, NULL, NULL, NULL));
    g_r = r;
    atomic_store(&cb_calls, 0);
    atomic_store(&cb_index, -1);
    atomic_store(&cb_io, -1);
    atomic_store(&cb_running, -1);
    atomic_store(&cb_releases, 0);
    int main_races = (round & 1) != 0;
    for (int i = 0; i <= RACERS; i++) atomic_store(&rc_of[i], 12345);

    race_gate_reset(&gate);
    atomic_store(&winner_done, 0);
    atomic_store(&finished, 0);
    atomic_store(&parties, RACERS + main_races);
    race_crew_begin(&crew, round);
    if (main_races) race_run(round, MAIN_INDEX);
    race_crew_end(&crew);

    int oks = 0, winner = -1, failed_before = atomic_load(&tu_failures);
    for (int i = 0; i <= RACERS; i++) {
      if (i == MAIN_INDEX && !main_races) continue;
      int rc = atomic_load(&rc_of[i]);
      switch (rc) {
      case REACTOR_OK: oks++; winner = i; seen[0]++; break;
      case REACTOR_E_WRONG_THREAD: seen[1]++; break;
      case REACTOR_E_ALREADY_RUNNING: seen[2]++; break;
      case REACTOR_E_BUSY: seen[3]++; break;
      case REACTOR_E_NOT_RESTARTABLE: seen[4]++; break;
      default:
        seen[5]++;
        atomic_fetch_add(&tu_failures, 1);
        if (race_report(&report_budget))
          fprintf(stderr, "   round %ld: reactor_run on thread %d -> %d (%s)\n", round, i, rc,
                  tu_status(rc));
      }
    }
    if (oks != 1) {
      atomic_fetch_add(&tu_failures, 1);
      if (race_report(&report_budget))
        fprintf(stderr, "   round %ld: %d reactor_run calls returned OK (want exactly 1)\n", round,
                oks);
    }
    int calls = atomic_load(&cb_calls);
    if (calls != 1 || (oks == 1 && atomic_load(&cb_index) != winner) || atomic_load(&cb_io) != 1 ||
        atomic_load(&cb_running) != 1) {
      atomic_fetch_add(&tu_failures, 1);
      if (race_report(&report_budget))
        fprintf(stderr,
                "   round %ld: callback ran %d times (want 1), on thread %d (winner %d), "
                "is_in_io_thread %d, is_running %d (want 1, 1)\n",
                round, calls, atomic_load(&cb_index), winner, atomic_load(&cb_io),
                atomic_load(&cb_running));
    }
    if (winner == MAIN_INDEX)
      main_wins++;
    else if (winner >= 0)
      crew_wins++;

    int frc = reactor_free(r);
    if (frc != REACTOR_OK) {
      atomic_fetch_add(&tu_failures, 1);
      if (race_report(&report_budget))
        fprintf(stderr, "   round %ld: reactor_free after the race -> %d (%s)\n", round, frc,
                tu_status(frc));
    }
    if (atomic_load(&cb_releases) != 1) {
      atomic_fetch_add(&tu_failures, 1);
      if (race_report(&report_budget))
        fprintf(stderr, "   round %ld: the callback's release ran %d times (want 1)\n", round,
                atomic_load(&cb_releases));
    }
    if (atomic_load(&tu_failures) != failed_before) {
      /* the reactor may be poisoned or still run on a crew thread: stop here, leave the crew */
      bad_rounds++;
      printf("   stopping after the failed round %ld\n", round);
      rounds_run++;
      break;
    }
  }
  if (!bad_rounds) race_crew_destroy(&crew);
  printf("   %ld rounds in %.2f s: winner main %ld, crew %ld; %ld refused attempts; losers ended "
         "with WRONG_THREAD %ld, ALREADY_RUNNING %ld, BUSY %ld, NOT_RESTARTABLE %ld; other %ld; "
         "bad rounds %ld\n",
         rounds_run, tu_now() - t0, main_wins, crew_wins, atomic_load(&refusals), seen[1], seen[2],
         seen[3], seen[4], seen[5], bad_rounds);
  CHECK_EQ(atomic_load(&safety_fired), 0);
  return tu_finish(PROG);
}
