/*
 * test_race_free_calls.c - any-thread calls racing reactor_free: the "host misbehaves" cases.
 *
 * API.md §4 says call_from_thread, call_in_thread and async_send must not race reactor_free, but
 * §1 says no call has undefined behaviour on anything that can be checked at run time. So a call
 * racing the free must return a status - OK, INVALID (the handle is gone) or CLOSED (it is going)
 * - and if it returned OK its user data is released exactly once (after its callback ran, or
 * inside reactor_free); if it returned an error it is never released (the caller frees it).
 *
 * Each round: the main thread creates a reactor (thread pool of 2) with one async handle, crew
 * threads leave a spin gate together and call in a loop until they get INVALID, and the reactor is
 * freed after a random delay - on odd rounds by the main thread (its owner) after 0-3
 * reactor_iterate(r, 0) passes that run some of the calls, on even rounds by a crew thread;
 * reactor_free may say BUSY while a call is in progress and is retried. Sections:
 *   1. reactor_call_from_thread from 2 threads;
 *   2. reactor_call_in_thread and reactor_call_in_thread_with_callback;
 *   3. reactor_async_send and reactor_wake_up;
 *   4. all of them at once.
 * Checks per round: statuses only from {OK, INVALID, CLOSED} (async_send, wake_up: {OK, INVALID};
 * reactor_free: {OK, BUSY}); after INVALID the same call gives INVALID again; releases == calls
 * that returned OK, for every kind (heap user data: a double release is a double free, a
 * missing one a leak); callbacks, work and done ran at most once per registration, done only
 * after its work; the async handle's release ran exactly once.
 * 1000 rounds per section, 3000 for the cheap section 3 (25/75 under valgrind).
 * `test_race_free_calls N` runs only section N.
 */
#include "race_util.h"

static const char *PROG = "test_race_free_calls";

enum role { IDLE, CFT, CIT, CIT_CB, ASYNC_SEND, WAKE_UP, FREER };
static const char *const role_name[] = {"idle",
                                        "reactor_call_from_thread",
                                        "reactor_call_in_thread",
                                        "reactor_call_in_thread_with_callback",
                                        "reactor_async_send",
                                        "reactor_wake_up",
                                        "reactor_free"};

#define CREW 6
static int roles[CREW];
static int crew_freer; /* a crew thread frees in this round (else the main thread) */

static reactor_t *g_r;
static reactor_async_t *g_async;
static race_counts_t c_cft, c_cit, c_citcb, c_async;
static atomic_long done_calls, done_before_work, async_calls;
static atomic_int parties, report_budget;
static race_gate_t gate;

static void cft_cb(reactor_t *r, void *ud) {
  (void)r;
  race_ud_ran(ud);
}

static void work(void *ud) { race_ud_ran(ud); }

static void *work_result(void *ud) {
  race_ud_ran(ud);
  return ud;
}

static void done(reactor_t *r, void *result, void *ud) {
  (void)r;
  race_ud_t *u = ud;
  atomic_fetch_add(&done_calls, 1);
  if (result != ud || atomic_load(&u->ran) != 1) atomic_fetch_add(&done_before_work, 1);
  if (atomic_fetch_add(&u->done, 1) != 0) {
    fprintf(stderr, "   done ran twice for one registration\n");
    atomic_fetch_add(&tu_failures, 1);
  }
}

static void async_cb(reactor_t *r, void *ud) {
  (void)r;
  (void)ud;
  atomic_fetch_add(&async_calls, 1);
}

/* Frees g_r, retrying while a call is in progress; returns the number of BUSY answers. */
static long free_it(long round) {
  long busy = 0;
  for (;;) {
    int rc = reactor_free(g_r);
    if (rc == REACTOR_OK) return busy;
    if (!RACE_ALLOWED(rc, "reactor_free", round, REACTOR_OK, REACTOR_E_BUSY)) return busy;
    busy++;
    if ((busy & 63) == 0) sched_yield();
  }
}

/* One call of `role`; returns its status (the caller's bookkeeping is done here). */
static int one_call(int role, long n) {
  race_ud_t *u;
  int rc;
  switch (role) {
  case CFT:
    u = race_ud_new(&c_cft, n);
    rc = reactor_call_from_thread(g_r, cft_cb, u, race_ud_release);
    race_ud_settle(&c_cft, u, rc);
    return rc;
  case CIT:
    u = race_ud_new(&c_cit, n);
    rc = reactor_call_in_thread(g_r, work, u, race_ud_release);
    race_ud_settle(&c_cit, u, rc);
    return rc;
  case CIT_CB:
    u = race_ud_new(&c_citcb, n);
    rc = reactor_call_in_thread_with_callback(g_r, work_result, done, u, race_ud_release);
    race_ud_settle(&c_citcb, u, rc);
    return rc;
  case ASYNC_SEND:
    return reactor_async_send(g_async);
  default:
    race_spin(20); /* leave gaps a freer can use, as the other calls do */
    return reactor_wake_up(g_r);
  }
}

static void crew_body(race_crew_t *c, int index) {
  int role = roles[index];
  if (role == IDLE || (role == FREER && !crew_freer)) return;
  uint64_t seed = race_seed(c->round, index);
  race_gate(&gate, atomic_load(&parties));
  if (role == FREER) {
    race_spin((unsigned)(race_rand(&seed) % 5000));
    free_it(c->round);
    return;
  }
  for (long n = 0;; n++) {
    if (n >= 256 && (n & 7) == 0) sched_yield(); /* enough calls made: let the freer in */
    int rc = one_call(role, n);
    int ok = (role == ASYNC_SEND || role == WAKE_UP)
                 ? RACE_ALLOWED(rc, role_name[role], c->round, REACTOR_OK, REACTOR_E_INVALID)
                 : RACE_ALLOWED(rc, role_name[role], c->round, REACTOR_OK, REACTOR_E_INVALID,
                                REACTOR_E_CLOSED);
    if (!ok) break;
    if (rc == REACTOR_E_INVALID) {
      /* gone for good */
      rc = one_call(role, -1);
      if (rc != REACTOR_E_INVALID) {
        atomic_fetch_add(&tu_failures, 1);
        if (race_report(&report_budget))
          fprintf(stderr, "   round %ld: %s -> %d (%s) after INVALID\n", c->round, role_name[role],
                  rc, tu_status(rc));
      }
      break;
    }
  }
}

static void check_counts(const char *what, race_counts_t *c, long round) {
  long acc = atomic_load(&c->accepted), rel = atomic_load(&c->released);
  if (acc != rel) {
    atomic_fetch_add(&tu_failures, 1);
    if (race_report(&report_budget))
      fprintf(stderr, "   round %ld: %s: %ld accepted, %ld releases ran\n", round, what, acc, rel);
  }
}

static int only_section; /* argv[1]: run just that section (to tell failures apart by hand) */

static void section(race_crew_t *crew, const char *name, const int *section_roles, long rounds,
                    long *round_base) {
  if (only_section && name[0] - '0' != only_section) return;
  SECTION(name);
  memcpy(roles, section_roles, sizeof roles);
  long accepted = 0, refused = 0, ran = 0, bad = 0;
  double t0 = tu_now();
  for (long i = 0; i < rounds; i++) {
    long round = (*round_base)++;
    uint64_t seed = race_seed(round, 1000);
    reactor_t *r = race_new_reactor(2);
    race_counts_reset(&c_cft);
    race_counts_reset(&c_cit);
    race_counts_reset(&c_citcb);
    race_counts_reset(&c_async);
    race_ud_t *au = race_ud_new(&c_async, -1);
    int arc = reactor_async_new(r, async_cb, au, race_ud_release, &g_async);
    REQUIRE(arc == REACTOR_OK);
    race_ud_settle(&c_async, au, arc);
    g_r = r;
    crew_freer = (round & 1) == 0;
    int n = 1; /* main */
    for (int k = 0; k < CREW; k++)
      if (roles[k] != IDLE && (roles[k] != FREER || crew_freer)) n++;
    atomic_store(&parties, n);
    race_gate_reset(&gate);
    int failed_before = atomic_load(&tu_failures);

    race_crew_begin(crew, round);
    race_gate(&gate, n);
    if (!crew_freer) {
      int passes = (int)(race_rand(&seed) % 4);
      race_spin((unsigned)(race_rand(&seed) % 5000));
      for (int k = 0; k < passes; k++) CHECK_OK(reactor_iterate(r, 0.0));
      free_it(round);
    }
    race_crew_end(crew);

    CHECK_RC(reactor_free(r), REACTOR_E_INVALID);
    check_counts("call_from_thread", &c_cft, round);
    check_counts("call_in_thread", &c_cit, round);
    check_counts("call_in_thread_with_callback", &c_citcb, round);
    check_counts("async handle", &c_async, round);
    if (atomic_load(&done_before_work)) {
      atomic_fetch_add(&tu_failures, 1);
      if (race_report(&report_budget))
        fprintf(stderr, "   round %ld: done ran without its work's result\n", round);
      atomic_store(&done_before_work, 0);
    }
    accepted += atomic_load(&c_cft.accepted) + atomic_load(&c_cit.accepted) +
                atomic_load(&c_citcb.accepted);
    refused += atomic_load(&c_cft.refused) + atomic_load(&c_cit.refused) +
               atomic_load(&c_citcb.refused);
    ran += atomic_load(&c_cft.ran) + atomic_load(&c_cit.ran) + atomic_load(&c_citcb.ran);
    if (atomic_load(&tu_failures) != failed_before) bad++;
  }
  printf("   %ld rounds in %.2f s: %ld calls accepted (%ld ran, the rest released by the free), "
         "%ld refused; bad rounds %ld\n",
         rounds, tu_now() - t0, accepted, ran, refused, bad);
}

int main(int argc, char **argv) {
  tu_watchdog(90);
  if (argc > 1) only_section = atoi(argv[1]);
  long rounds = tu_scale(1000, 25);
  tu_banner_probe(PROG);

  race_crew_t crew;
  race_crew_init(&crew, CREW, crew_body, NULL);
  long round = 0;
  section(&crew, "1. reactor_call_from_thread x2 vs reactor_free",
          (const int[CREW]){CFT, CFT, IDLE, IDLE, IDLE, FREER}, rounds, &round);
  section(&crew, "2. reactor_call_in_thread, _with_callback vs reactor_free",
          (const int[CREW]){CIT, CIT_CB, IDLE, IDLE, IDLE, FREER}, rounds, &round);
  section(&crew, "3. reactor_async_send, reactor_wake_up vs reactor_free",
          (const int[CREW]){ASYNC_SEND, WAKE_UP, IDLE, IDLE, IDLE, FREER}, 3 * rounds, &round);
  section(&crew, "4. all of them vs reactor_free",
          (const int[CREW]){CFT, CIT, CIT_CB, ASYNC_SEND, WAKE_UP, FREER}, rounds, &round);
  race_crew_destroy(&crew);
  printf("   done callbacks %ld, async callbacks %ld\n", atomic_load(&done_calls),
         atomic_load(&async_calls));
  return tu_finish(PROG);
}
