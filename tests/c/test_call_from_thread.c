/*
 * test_call_from_thread.c - reactor_call_from_thread (API.md §4, §7; DECISIONS "Loop").
 *
 * Checks:
 *   - 8 threads x 100 000 calls (4 x 5 000 under valgrind), started before run: every call
 *     runs exactly once, each thread's calls arrive in order, every release runs once,
 *     all callbacks and releases run on the reactor thread;
 *   - calls queued before run (from the owner and from another thread) wait for run;
 *   - a backlog far larger than the queue's ring (20 000 calls from two threads before run):
 *     all run, in order per thread; the same backlog freed without running is released once each;
 *   - a call queued from inside a call_from_thread callback runs on the next pass;
 *   - call_from_thread from the reactor thread (in a callback) does not let the loop
 *     sleep: run with only a 5 s safety timer ends promptly; iterate(-1) returns promptly;
 *   - call_from_thread from another thread wakes a sleeping run promptly;
 *   - after a run that ended with stop -> REACTOR_E_CLOSED (owner and other thread), the
 *     release is not called (caller keeps ud); NULL cb -> INVALID.
 */
#include "test_util.h"

static const char *PROG = "test_call_from_thread";

/* ---- stress: exactly once, per-thread order ---------------------------- */

#define MAX_THREADS 8
static pthread_t reactor_thread;
static reactor_t *g_r;
static long n_threads, n_calls;
static pthread_barrier_t g_barrier;
static uint64_t next_seq[MAX_THREADS];
static uint64_t received, order_errors, wrong_thread_cbs;
static atomic_long releases;
static atomic_int submit_errors;

static atomic_long releases_off_thread;

static void stress_release(void *ud) {
  (void)ud;
  atomic_fetch_add(&releases, 1);
  if (!pthread_equal(pthread_self(), reactor_thread)) atomic_fetch_add(&releases_off_thread, 1);
}

static void stress_cb(reactor_t *r, void *ud) {
  uint64_t v = (uint64_t)(uintptr_t)ud;
  unsigned tid = (unsigned)(v >> 40);
  uint64_t seq = v & ((1ULL << 40) - 1);
  if (!pthread_equal(pthread_self(), reactor_thread)) wrong_thread_cbs++;
  if (tid >= MAX_THREADS || seq != next_seq[tid]) {
    if (order_errors++ < 5)
      fprintf(stderr, "   thread %u: got seq %llu, expected %llu\n", tid, (unsigned long long)seq,
              tid < MAX_THREADS ? (unsigned long long)next_seq[tid] : 0ULL);
    if (tid < MAX_THREADS) next_seq[tid] = seq + 1;
  } else {
    next_seq[tid]++;
  }
  if (++received == (uint64_t)(n_threads * n_calls)) CHECK_OK(reactor_stop(r));
}

static void *stress_thread(void *arg) {
  uint64_t tid = (uint64_t)(uintptr_t)arg;
  pthread_barrier_wait(&g_barrier);
  for (long i = 0; i < n_calls; i++) {
    void *ud = (void *)(uintptr_t)((tid << 40) | (uint64_t)i);
    int rc;
    while ((rc = reactor_call_from_thread(g_r, stress_cb, ud, stress_release)) == REACTOR_E_NOMEM)
      sched_yield();
    if (rc != REACTOR_OK) {
      if (atomic_fetch_add(&submit_errors, 1) < 5)
        fprintf(stderr, "   call_from_thread -> %d (%s)\n", rc, tu_status(rc));
    }
  }
  return NULL;
}

static void safety_cb(reactor_t *r, void *ud) {
  fprintf(stderr, "   safety timer fired: %s\n", (const char *)ud);
  atomic_fetch_add(&tu_failures, 1);
  reactor_crash(r);
}

static void test_stress(void) {
  n_threads = tu_scale(8, 4);
  n_calls = tu_scale(100000, 5000);
  char what[80];
  snprintf(what, sizeof what, "%ld threads x %ld calls, exactly once, in order", n_threads, n_calls);
  g_r = tu_new_reactor();
  tu_banner(PROG, g_r);
  SECTION(what);
  reactor_thread = pthread_self();
  pthread_barrier_init(&g_barrier, NULL, (unsigned)n_threads);
  pthread_t th[MAX_THREADS];
  for (long t = 0; t < n_threads; t++)
    REQUIRE(pthread_create(&th[t], NULL, stress_thread, (void *)(uintptr_t)t) == 0);
  CHECK_OK(reactor_call_later(g_r, tu_valgrind() ? 50.0 : 20.0, safety_cb, "stress not done", NULL,
                              NULL));
  double t0 = tu_now();
  CHECK_OK(reactor_run(g_r));
  printf("   %llu calls in %.3f s\n", (unsigned long long)received, tu_now() - t0);
  for (long t = 0; t < n_threads; t++) pthread_join(th[t], NULL);
  pthread_barrier_destroy(&g_barrier);
  CHECK_EQ(atomic_load(&submit_errors), 0);
  CHECK_EQ(received, n_threads * n_calls);
  CHECK_EQ(order_errors, 0);
  CHECK_EQ(wrong_thread_cbs, 0);
  for (long t = 0; t < n_threads; t++) CHECK_EQ(next_seq[t], n_calls);
  CHECK_EQ(atomic_load(&releases), n_threads * n_calls);
  CHECK_EQ(atomic_load(&releases_off_thread), 0); /* release runs on the reactor thread */
  CHECK_OK(reactor_free(g_r));
  g_r = NULL;
}

/* ---- queued before run -------------------------------------------------- */

static atomic_int early_owner, early_other, early_running_ok;

static void early_cb(reactor_t *r, void *ud) {
  atomic_fetch_add((atomic_int *)ud, 1);
  if (reactor_is_running(r)) atomic_fetch_add(&early_running_ok, 1);
  if (atomic_load(&early_owner) && atomic_load(&early_other)) reactor_stop(r);
}

static void *early_thread(void *arg) {
  CHECK_OK(reactor_call_from_thread(arg, early_cb, &early_other, NULL));
  return NULL;
}

static void test_queued_before_run(void) {
  SECTION("calls queued before run wait for it");
  reactor_t *r = tu_new_reactor();
  CHECK_OK(reactor_call_from_thread(r, early_cb, &early_owner, NULL));
  pthread_t th;
  REQUIRE(pthread_create(&th, NULL, early_thread, r) == 0);
  pthread_join(th, NULL);
  tu_sleep_ms(20);
  CHECK_EQ(atomic_load(&early_owner), 0);
  CHECK_EQ(atomic_load(&early_other), 0);
  CHECK_OK(reactor_call_later(r, 10.0, safety_cb, "queued calls never ran", NULL, NULL));
  CHECK_OK(reactor_run(r));
  CHECK_EQ(atomic_load(&early_owner), 1);
  CHECK_EQ(atomic_load(&early_other), 1);
  CHECK_EQ(atomic_load(&early_running_ok), 2);
  CHECK_OK(reactor_free(r));
}

/* ---- a backlog beyond the ring ------------------------------------------------ */
/* The queue keeps 256 calls in its ring and the rest in an overflow buffer (DECISIONS "Threads"):
 * 10 000 calls from another thread, then 10 000 from the owner, all queued before run. */

#define BACKLOG 10000
static long backlog_next[2], backlog_errors, backlog_ran;
static atomic_long backlog_releases;

static void backlog_cb(reactor_t *r, void *ud) {
  uintptr_t v = (uintptr_t)ud;
  unsigned who = (unsigned)(v >> 20);
  long seq = (long)(v & 0xfffff);
  if (who > 1 || seq != backlog_next[who]) {
    if (backlog_errors++ < 5) fprintf(stderr, "   backlog: %u got %ld\n", who, seq);
  } else {
    backlog_next[who]++;
  }
  /* the other thread's calls were all queued before the owner's */
  if (who == 1 && backlog_next[0] != BACKLOG) backlog_errors++;
  if (++backlog_ran == 2 * BACKLOG) CHECK_OK(reactor_stop(r));
}

static void backlog_release(void *ud) {
  (void)ud;
  atomic_fetch_add(&backlog_releases, 1);
}

static void *backlog_thread(void *arg) {
  for (uintptr_t i = 0; i < BACKLOG; i++)
    CHECK_OK(reactor_call_from_thread(arg, backlog_cb, (void *)i, backlog_release));
  return NULL;
}

static void queue_backlog(reactor_t *r) {
  pthread_t th;
  REQUIRE(pthread_create(&th, NULL, backlog_thread, r) == 0);
  pthread_join(th, NULL);
  for (uintptr_t i = 0; i < BACKLOG; i++)
    CHECK_OK(reactor_call_from_thread(r, backlog_cb, (void *)((1u << 20) | i), backlog_release));
}

static void test_backlog_beyond_the_ring(void) {
  SECTION("a backlog far beyond the ring runs in order, or is released by free");
  reactor_t *r = tu_new_reactor();
  queue_backlog(r);
  CHECK_OK(reactor_call_later(r, 20.0, safety_cb, "the backlog never finished", NULL, NULL));
  CHECK_OK(reactor_run(r));
  CHECK_EQ(backlog_ran, 2 * BACKLOG);
  CHECK_EQ(backlog_errors, 0);
  CHECK_EQ(atomic_load(&backlog_releases), 2 * BACKLOG);
  CHECK_OK(reactor_free(r));

  atomic_store(&backlog_releases, 0);
  backlog_ran = 0;
  r = tu_new_reactor();
  queue_backlog(r);
  CHECK_OK(reactor_free(r));
  CHECK_EQ(backlog_ran, 0);
  CHECK_EQ(atomic_load(&backlog_releases), 2 * BACKLOG);
}

/* ---- nested: next pass ------------------------------------------------------ */

static atomic_int a_ran, b_ran;

static void b_cb(reactor_t *r, void *ud) {
  (void)r;
  (void)ud;
  atomic_fetch_add(&b_ran, 1);
}

static void a_cb(reactor_t *r, void *ud) {
  (void)ud;
  atomic_fetch_add(&a_ran, 1);
  CHECK_OK(reactor_call_from_thread(r, b_cb, NULL, NULL));
  CHECK_EQ(atomic_load(&b_ran), 0); /* never inside the call that scheduled it */
}

static void test_nested_next_pass(void) {
  SECTION("a call queued from inside a call_from_thread callback runs on the next pass");
  reactor_t *r = tu_new_reactor();
  CHECK_OK(reactor_call_from_thread(r, a_cb, NULL, NULL));
  CHECK_OK(reactor_iterate(r, 0.0));
  CHECK_EQ(atomic_load(&a_ran), 1);
  CHECK_EQ(atomic_load(&b_ran), 0);
  CHECK_OK(reactor_iterate(r, 0.0));
  CHECK_EQ(atomic_load(&b_ran), 1);
  CHECK_OK(reactor_free(r));
}

/* ---- wake-ups ------------------------------------------------------------ */

static void queue_stop_cb(reactor_t *r, void *ud) {
  (void)ud;
  CHECK_OK(reactor_call_from_thread(r, tu_stop_cb, NULL, NULL));
}

static void *late_stopper(void *arg) {
  tu_sleep_ms(100);
  CHECK_OK(reactor_call_from_thread(arg, tu_stop_cb, NULL, NULL));
  return NULL;
}

static void test_wakeups(void) {
  SECTION("call_from_thread on the reactor thread: the loop does not sleep");
  reactor_t *r = tu_new_reactor();
  CHECK_OK(reactor_call_later(r, 30.0, safety_cb, "reactor-thread call did not wake the loop", NULL,
                              NULL));
  CHECK_OK(reactor_call_when_running(r, queue_stop_cb, NULL, NULL));
  double t0 = tu_now();
  CHECK_OK(reactor_run(r));
  double el = tu_now() - t0;
  printf("   run ended after %.3f s\n", el);
  CHECK(el < 10.0); /* not at the 30 s safety timer */
  CHECK_OK(reactor_free(r));

  SECTION("iterate(-1) returns promptly after a reactor-thread call_from_thread");
  r = tu_new_reactor();
  atomic_store(&b_ran, 0);
  CHECK_OK(reactor_call_later(r, 30.0, tu_noop_cb, NULL, NULL, NULL)); /* bounds a broken wait */
  CHECK_OK(reactor_call_later(r, 0.0, a_cb, NULL, NULL, NULL));       /* queues b_cb */
  t0 = tu_now();
  CHECK_OK(reactor_iterate(r, -1.0));
  el = tu_now() - t0;
  CHECK(el < 10.0); /* not at the 30 s timer */
  t0 = tu_now();
  CHECK_OK(reactor_iterate(r, -1.0));
  el = tu_now() - t0;
  printf("   second iterate(-1) took %.3f s\n", el);
  CHECK(el < 10.0);
  CHECK_EQ(atomic_load(&b_ran), 1);
  CHECK_OK(reactor_free(r));

  SECTION("call_from_thread from another thread wakes a sleeping run");
  r = tu_new_reactor();
  CHECK_OK(reactor_call_later(r, 30.0, safety_cb, "other-thread call did not wake the loop", NULL,
                              NULL));
  pthread_t th;
  REQUIRE(pthread_create(&th, NULL, late_stopper, r) == 0);
  t0 = tu_now();
  CHECK_OK(reactor_run(r));
  el = tu_now() - t0;
  printf("   run ended after %.3f s\n", el);
  CHECK(el < 10.0); /* the thread calls after 0.1 s; not at the 30 s safety timer */
  pthread_join(th, NULL);
  CHECK_OK(reactor_free(r));
}

/* ---- after stop --------------------------------------------------------------- */

static atomic_int closed_releases, closed_calls;
static void closed_release(void *ud) {
  free(ud);
  atomic_fetch_add(&closed_releases, 1);
}
static void closed_cb(reactor_t *r, void *ud) {
  (void)r;
  (void)ud;
  atomic_fetch_add(&closed_calls, 1);
}

static void *closed_thread(void *arg) {
  int *ud = malloc(sizeof *ud);
  REQUIRE(ud != NULL);
  CHECK_RC(reactor_call_from_thread(arg, closed_cb, ud, closed_release), REACTOR_E_CLOSED);
  free(ud); /* ownership stayed with the caller */
  return NULL;
}

static void test_after_stop(void) {
  SECTION("call_from_thread after stop -> CLOSED, release not called");
  reactor_t *r = tu_new_reactor();
  CHECK_RC(reactor_call_from_thread(r, NULL, NULL, NULL), REACTOR_E_INVALID);
  CHECK_OK(reactor_call_later(r, 0.0, tu_stop_cb, NULL, NULL, NULL));
  CHECK_OK(reactor_run(r));
  int *ud = malloc(sizeof *ud);
  REQUIRE(ud != NULL);
  CHECK_RC(reactor_call_from_thread(r, closed_cb, ud, closed_release), REACTOR_E_CLOSED);
  CHECK_EQ(atomic_load(&closed_releases), 0);
  free(ud);
  pthread_t th;
  REQUIRE(pthread_create(&th, NULL, closed_thread, r) == 0);
  pthread_join(th, NULL);
  CHECK_OK(reactor_free(r));
  CHECK_EQ(atomic_load(&closed_releases), 0);
  CHECK_EQ(atomic_load(&closed_calls), 0);
}

int main(void) {
  tu_watchdog(60);
  test_stress();
  test_queued_before_run();
  test_backlog_beyond_the_ring();
  test_nested_next_pass();
  test_wakeups();
  test_after_stop();
  return tu_finish(PROG);
}
