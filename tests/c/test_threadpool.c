/*
 * test_threadpool.c - standalone thread pools: reactor_threadpool_* (API.md §4, §7; DECISIONS
 * "Thread pool").
 *
 * Checks:
 *   - 8 submitting threads x 100 000 jobs (4 x 2 000 under valgrind): every job runs exactly
 *     once, every release runs once; stats.completed counts them all;
 *   - release of a job's user data runs after the job, on the worker that ran it, never on the
 *     submitting thread; reactor_is_in_io_thread-like affinity: jobs run off the submitter;
 *   - jobs that submit jobs (a binary tree of 2^14 - 1 jobs) all run;
 *   - resize while busy: growing 1 -> 6 lets 6 jobs run at once, shrinking to 2 brings the
 *     workers down to 2 while jobs keep running; every job runs (jobs wait for permits the test
 *     hands out, so none of this depends on how fast the machine is);
 *   - stop with 100 000 queued jobs (held behind a blocker) runs them all before it returns and
 *     leaves no worker; stop twice is OK; free without stop does the same;
 *   - after stop: submit -> REACTOR_E_CLOSED with release not called, resize -> CLOSED, stats OK;
 *   - stop from one of the pool's own jobs -> REACTOR_E_BUSY;
 *   - an idle pool parks its workers (stats.idle == workers) and sleeps: over 300 ms the process
 *     uses less CPU than half the wall time and makes fewer than 20 context switches (a spinning or
 *     polling worker breaks one or the other; load cannot make a parked pool break either);
 *   - misuse: sizes (max 0, min > max, max > REACTOR_THREADPOOL_MAX_THREADS), NULL out / pool /
 *     fn / stats, struct_size rules, stale and made-up handles, double free, free(NULL).
 */
#include <limits.h>
#include <sys/resource.h>

#include "test_util.h"

static const char *PROG = "test_threadpool";

static reactor_threadpool_stats_t pool_stats(reactor_threadpool_t *p) {
  reactor_threadpool_stats_t s;
  memset(&s, 0, sizeof s);
  s.struct_size = (uint32_t)sizeof s;
  REQUIRE_OK(reactor_threadpool_stats(p, &s));
  return s;
}

/* Wait up to `seconds` for `*v >= want`; returns 1 if it got there. */
static int wait_for(atomic_long *v, long want, double seconds) {
  double end = tu_now() + (tu_valgrind() ? seconds * 5 : seconds);
  while (atomic_load(v) < want) {
    if (tu_now() > end) return 0;
    tu_sleep_ms(1);
  }
  return 1;
}

/* ---- stress: 8 submitters, exactly once ---------------------------------------- */

#define MAX_SUBMITTERS 8
static reactor_threadpool_t *g_pool;
static long n_threads, n_jobs;
static _Atomic unsigned char *ran;
static atomic_long runs, releases, submit_errors;
static pthread_t submitters[MAX_SUBMITTERS];
static pthread_barrier_t g_barrier;

static void stress_job(void *ud) {
  uintptr_t i = (uintptr_t)ud;
  atomic_fetch_add(&ran[i], 1);
  atomic_fetch_add(&runs, 1);
}

static void stress_release(void *ud) {
  (void)ud;
  atomic_fetch_add(&releases, 1);
}

static void *stress_submitter(void *arg) {
  uintptr_t t = (uintptr_t)arg;
  pthread_barrier_wait(&g_barrier);
  for (long i = 0; i < n_jobs; i++) {
    int rc = reactor_threadpool_submit(g_pool, stress_job, (void *)(t * (uintptr_t)n_jobs + (uintptr_t)i),
                                       stress_release);
    if (rc != REACTOR_OK && atomic_fetch_add(&submit_errors, 1) < 5)
      fprintf(stderr, "   submit -> %d (%s)\n", rc, tu_status(rc));
  }
  return NULL;
}

static void test_stress(void) {
  n_threads = tu_scale(8, 4);
  n_jobs = tu_scale(100000, 2000);
  long total = n_threads * n_jobs;
  char what[96];
  snprintf(what, sizeof what, "%ld threads x %ld jobs run exactly once", n_threads, n_jobs);
  SECTION(what);
  ran = calloc((size_t)total, 1);
  REQUIRE(ran != NULL);
  REQUIRE_OK(reactor_threadpool_new(0, 4, &g_pool));
  pthread_barrier_init(&g_barrier, NULL, (unsigned)n_threads);
  double t0 = tu_now();
  for (long t = 0; t < n_threads; t++)
    REQUIRE(pthread_create(&submitters[t], NULL, stress_submitter, (void *)(uintptr_t)t) == 0);
  for (long t = 0; t < n_threads; t++) pthread_join(submitters[t], NULL);
  CHECK_OK(reactor_threadpool_stop(g_pool));
  printf("   %ld jobs in %.3f s\n", atomic_load(&runs), tu_now() - t0);
  pthread_barrier_destroy(&g_barrier);
  CHECK_EQ(atomic_load(&submit_errors), 0);
  CHECK_EQ(atomic_load(&runs), total);
  CHECK_EQ(atomic_load(&releases), total);
  long bad = 0;
  for (long i = 0; i < total; i++)
    if (atomic_load(&ran[i]) != 1) bad++;
  CHECK_EQ(bad, 0);
  reactor_threadpool_stats_t s = pool_stats(g_pool);
  CHECK_EQ(s.completed, total);
  CHECK_EQ(s.workers, 0);
  CHECK_EQ(s.queued, 0);
  printf("   stolen %llu\n", (unsigned long long)s.stolen);
  reactor_threadpool_free(g_pool);
  g_pool = NULL;
  free((void *)ran);
}

/* ---- release after the job, on the worker ----------------------------------------- */

typedef struct {
  atomic_int ran;
  pthread_t worker;
} job_rec_t;

static atomic_long rec_ok, rec_bad;
static pthread_t main_thread;

static void rec_job(void *ud) {
  job_rec_t *j = ud;
  j->worker = pthread_self();
  if (pthread_equal(j->worker, main_thread)) atomic_fetch_add(&rec_bad, 1);
  atomic_store(&j->ran, 1);
}

static void rec_release(void *ud) {
  job_rec_t *j = ud;
  if (atomic_load(&j->ran) == 1 && pthread_equal(j->worker, pthread_self()))
    atomic_fetch_add(&rec_ok, 1);
  else
    atomic_fetch_add(&rec_bad, 1);
  free(j);
}

static void test_release_on_worker(void) {
  SECTION("release runs after the job, on the same worker");
  reactor_threadpool_t *p;
  REQUIRE_OK(reactor_threadpool_new(2, 3, &p));
  long n = tu_scale(2000, 200);
  for (long i = 0; i < n; i++) {
    job_rec_t *j = calloc(1, sizeof *j);
    REQUIRE(j != NULL);
    CHECK_OK(reactor_threadpool_submit(p, rec_job, j, rec_release));
  }
  reactor_threadpool_free(p); /* free without stop: stops first */
  CHECK_EQ(atomic_load(&rec_ok), n);
  CHECK_EQ(atomic_load(&rec_bad), 0);
}

/* ---- jobs that submit jobs ------------------------------------------------------- */

static reactor_threadpool_t *tree_pool;
static atomic_long tree_nodes, tree_errors;

static void tree_job(void *ud) {
  uintptr_t depth = (uintptr_t)ud;
  atomic_fetch_add(&tree_nodes, 1);
  if (depth == 0) return;
  for (int k = 0; k < 2; k++)
    if (reactor_threadpool_submit(tree_pool, tree_job, (void *)(depth - 1), NULL) != REACTOR_OK)
      atomic_fetch_add(&tree_errors, 1);
}

static void test_nested(void) {
  SECTION("jobs that submit jobs");
  uintptr_t depth = tu_valgrind() ? 9 : 13;
  long total = (1L << (depth + 1)) - 1;
  REQUIRE_OK(reactor_threadpool_new(0, 4, &tree_pool));
  CHECK_OK(reactor_threadpool_submit(tree_pool, tree_job, (void *)depth, NULL));
  CHECK(wait_for(&tree_nodes, total, 30));
  CHECK_OK(reactor_threadpool_stop(tree_pool));
  CHECK_EQ(atomic_load(&tree_nodes), total);
  CHECK_EQ(atomic_load(&tree_errors), 0);
  reactor_threadpool_stats_t s = pool_stats(tree_pool);
  CHECK_EQ(s.completed, total);
  printf("   %ld jobs, stolen %llu\n", total, (unsigned long long)s.stolen);
  reactor_threadpool_free(tree_pool);
}

/* ---- resize while busy ----------------------------------------------------------- */

static atomic_long busy_now, busy_peak, busy_done;
/* A job finishes only once it holds a permit: job k (in start order) needs busy_permits > k. The
 * test hands out permits, so how many jobs run at once is decided by the pool, not by timing. */
static atomic_long busy_tickets, busy_permits;

static void busy_job(void *ud) {
  (void)ud;
  long now = atomic_fetch_add(&busy_now, 1) + 1;
  long peak = atomic_load(&busy_peak);
  while (now > peak && !atomic_compare_exchange_weak(&busy_peak, &peak, now)) {
  }
  long ticket = atomic_fetch_add(&busy_tickets, 1);
  while (atomic_load(&busy_permits) <= ticket) tu_sleep_ms(1);
  atomic_fetch_sub(&busy_now, 1);
  atomic_fetch_add(&busy_done, 1);
}

static void test_resize(void) {
  SECTION("resize while busy: grow 1 -> 6, shrink to 2");
  reactor_threadpool_t *p;
  REQUIRE_OK(reactor_threadpool_new(1, 1, &p));
  long n = tu_scale(1500, 600);
  for (long i = 0; i < n; i++) CHECK_OK(reactor_threadpool_submit(p, busy_job, NULL, NULL));
  /* One job runs and holds its worker (no permits yet); a second worker would show in busy_peak. */
  CHECK(wait_for(&busy_now, 1, 30));
  tu_sleep_ms(20);
  CHECK_EQ(pool_stats(p).workers, 1);
  CHECK_EQ(atomic_load(&busy_peak), 1);
  /* Grown to 6: six jobs hold six workers, however long the workers take to start. */
  CHECK_OK(reactor_threadpool_resize(p, 0, 6));
  CHECK(wait_for(&busy_now, 6, 30));
  tu_sleep_ms(20);
  CHECK_EQ(atomic_load(&busy_peak), 6);
  CHECK_EQ(pool_stats(p).workers, 6);
  /* Shrunk to 2: let the six running jobs finish (six permits); four workers must leave instead of
   * taking the next job, and the two that stay each take one and hold it. */
  CHECK_OK(reactor_threadpool_resize(p, 0, 2));
  atomic_store(&busy_permits, 6);
  double end = tu_now() + (tu_valgrind() ? 150 : 30);
  while (pool_stats(p).workers > 2 && tu_now() < end) tu_sleep_ms(1);
  CHECK_EQ(pool_stats(p).workers, 2);
  CHECK(atomic_load(&busy_done) <= 6); /* still busy: the shrink happened while jobs were queued */
  /* The six finish (a job stops counting as running before it counts as done), two more start. */
  while ((atomic_load(&busy_done) < 6 || atomic_load(&busy_now) != 2) && tu_now() < end) tu_sleep_ms(1);
  CHECK_EQ(atomic_load(&busy_done), 6);
  CHECK_EQ(atomic_load(&busy_now), 2);
  /* From here on at most two jobs at once, through to the last one. */
  atomic_store(&busy_peak, 2);
  atomic_store(&busy_permits, LONG_MAX);
  CHECK_OK(reactor_threadpool_stop(p));
  CHECK(atomic_load(&busy_peak) <= 2);
  CHECK_EQ(atomic_load(&busy_done), n);
  reactor_threadpool_free(p);
}

/* ---- stop / free with a full queue ---------------------------------------------- */

static atomic_int blocker_go;
static atomic_long blocked_runs, queued_runs, queued_releases;

static void blocker_job(void *ud) {
  (void)ud;
  atomic_fetch_add(&blocked_runs, 1);
  while (!atomic_load(&blocker_go)) tu_sleep_ms(1);
}

static void count_job(void *ud) {
  (void)ud;
  atomic_fetch_add(&queued_runs, 1);
}

static void count_release(void *ud) {
  (void)ud;
  atomic_fetch_add(&queued_releases, 1);
}

static void *open_blocker_later(void *arg) {
  (void)arg;
  tu_sleep_ms(50);
  atomic_store(&blocker_go, 1);
  return NULL;
}

static void fill_queue(reactor_threadpool_t *p, long n) {
  atomic_store(&blocker_go, 0);
  atomic_store(&blocked_runs, 0);
  atomic_store(&queued_runs, 0);
  atomic_store(&queued_releases, 0);
  CHECK_OK(reactor_threadpool_submit(p, blocker_job, NULL, NULL));
  CHECK(wait_for(&blocked_runs, 1, 10));
  for (long i = 0; i < n; i++) CHECK_OK(reactor_threadpool_submit(p, count_job, NULL, count_release));
  reactor_threadpool_stats_t s = pool_stats(p);
  CHECK_EQ(s.queued, n);
  CHECK_EQ(s.workers, 1);
  CHECK_EQ(atomic_load(&queued_runs), 0);
}

static void test_stop_with_queue(void) {
  long n = tu_scale(100000, 5000);
  SECTION("stop with 100 000 queued jobs runs them all, joins every worker");
  reactor_threadpool_t *p;
  REQUIRE_OK(reactor_threadpool_new(0, 1, &p));
  fill_queue(p, n);
  pthread_t th;
  REQUIRE(pthread_create(&th, NULL, open_blocker_later, NULL) == 0);
  CHECK_OK(reactor_threadpool_stop(p));
  CHECK_EQ(atomic_load(&queued_runs), n);
  CHECK_EQ(atomic_load(&queued_releases), n);
  reactor_threadpool_stats_t s = pool_stats(p);
  CHECK_EQ(s.workers, 0);
  CHECK_EQ(s.queued, 0);
  CHECK_EQ(s.completed, n + 1);
  pthread_join(th, NULL);

  SECTION("after stop: submit -> CLOSED (release not called), resize -> CLOSED, stop again OK");
  CHECK_RC(reactor_threadpool_submit(p, count_job, NULL, count_release), REACTOR_E_CLOSED);
  CHECK_EQ(atomic_load(&queued_releases), n);
  CHECK_EQ(atomic_load(&queued_runs), n);
  CHECK_RC(reactor_threadpool_resize(p, 0, 4), REACTOR_E_CLOSED);
  CHECK_OK(reactor_threadpool_stop(p));
  CHECK_EQ(pool_stats(p).workers, 0);
  reactor_threadpool_free(p);

  SECTION("free without stop runs every queued job first");
  REQUIRE_OK(reactor_threadpool_new(0, 1, &p));
  fill_queue(p, n / 10);
  REQUIRE(pthread_create(&th, NULL, open_blocker_later, NULL) == 0);
  reactor_threadpool_free(p);
  CHECK_EQ(atomic_load(&queued_runs), n / 10);
  CHECK_EQ(atomic_load(&queued_releases), n / 10);
  pthread_join(th, NULL);
}

/* ---- stop from inside ------------------------------------------------------------- */

static atomic_int inner_stop_rc = 1;

static void stop_self_job(void *ud) { atomic_store(&inner_stop_rc, reactor_threadpool_stop(ud)); }

static void test_stop_from_job(void) {
  SECTION("stop from one of the pool's own jobs -> BUSY");
  reactor_threadpool_t *p;
  REQUIRE_OK(reactor_threadpool_new(1, 2, &p));
  CHECK_OK(reactor_threadpool_submit(p, stop_self_job, p, NULL));
  CHECK_OK(reactor_threadpool_stop(p));
  CHECK_RC(atomic_load(&inner_stop_rc), REACTOR_E_BUSY);
  reactor_threadpool_free(p);
}

/* ---- idle pools sleep ------------------------------------------------------------- */

static double process_cpu(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return (double)ru.ru_utime.tv_sec + (double)ru.ru_stime.tv_sec +
         ((double)ru.ru_utime.tv_usec + (double)ru.ru_stime.tv_usec) * 1e-6;
}

/* Context switches of every thread of the process: voluntary (a thread blocked or slept) plus
 * involuntary (a running thread was preempted). Threads parked on a futex make none. */
static long process_switches(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_nvcsw + ru.ru_nivcsw;
}

static void test_idle(void) {
  SECTION("idle workers park (stats.idle) and sleep");
  reactor_threadpool_t *p;
  REQUIRE_OK(reactor_threadpool_new(3, 3, &p));
  atomic_store(&queued_runs, 0);
  for (int i = 0; i < 100; i++) CHECK_OK(reactor_threadpool_submit(p, count_job, NULL, NULL));
  double end = tu_now() + (tu_valgrind() ? 150 : 30); /* generous: only a broken pool waits it out */
  reactor_threadpool_stats_t s = pool_stats(p);
  while ((s.idle != 3 || s.completed != 100) && tu_now() < end) {
    tu_sleep_ms(2);
    s = pool_stats(p);
  }
  CHECK_EQ(s.workers, 3);
  CHECK_EQ(s.idle, 3);
  CHECK_EQ(s.completed, 100);
  if (!tu_valgrind()) {
    /* Behaviour, not speed: parked workers neither run nor wake up. Load cannot make these fail (it
     * only takes CPU away from threads that run) and each catches a worker that does not park:
     *   - CPU under half the wall time: a spinning worker uses about all of it (three, up to two
     *     cores' worth) unless the machine is busy, when it gets less...
     *   - ...but then it is preempted over and over, and a worker that polls with short sleeps
     *     switches at every sleep: under 20 context switches in 300 ms (this thread's sleep is one;
     *     a 1 ms poll loop alone makes about 300). */
    double c0 = process_cpu(), w0 = tu_now();
    long x0 = process_switches();
    tu_sleep_ms(300);
    double used = process_cpu() - c0, wall = tu_now() - w0;
    long switches = process_switches() - x0;
    printf("   while idle for %.0f ms: %.1f ms CPU, %ld context switches\n", wall * 1e3, used * 1e3,
           switches);
    CHECK(used < 0.5 * wall);
    CHECK(switches < 20);
  }
  reactor_threadpool_free(p);
}

/* ---- misuse ------------------------------------------------------------------------ */

static atomic_int misuse_releases;

static void misuse_release(void *ud) {
  (void)ud;
  atomic_fetch_add(&misuse_releases, 1);
}

static void test_misuse(void) {
  SECTION("misuse: sizes, NULLs, struct_size, stale handles");
  reactor_threadpool_t *p = (reactor_threadpool_t *)0x1;
  CHECK_RC(reactor_threadpool_new(0, 0, &p), REACTOR_E_INVALID);
  CHECK_RC(reactor_threadpool_new(3, 2, &p), REACTOR_E_INVALID);
  CHECK_RC(reactor_threadpool_new(0, REACTOR_THREADPOOL_MAX_THREADS + 1, &p), REACTOR_E_INVALID);
  CHECK_RC(reactor_threadpool_new(SIZE_MAX, SIZE_MAX, &p), REACTOR_E_INVALID);
  CHECK_RC(reactor_threadpool_new(0, 1, NULL), REACTOR_E_INVALID);
  CHECK(p == (reactor_threadpool_t *)0x1); /* out written only on success */
  REQUIRE_OK(reactor_threadpool_new(0, 1, &p));
  CHECK(p != NULL);

  CHECK_RC(reactor_threadpool_submit(NULL, count_job, NULL, misuse_release), REACTOR_E_INVALID);
  CHECK_RC(reactor_threadpool_submit(p, NULL, NULL, misuse_release), REACTOR_E_INVALID);
  CHECK_RC(reactor_threadpool_resize(p, 0, 0), REACTOR_E_INVALID);
  CHECK_RC(reactor_threadpool_resize(p, 2, 1), REACTOR_E_INVALID);
  CHECK_RC(reactor_threadpool_resize(NULL, 0, 1), REACTOR_E_INVALID);
  CHECK_RC(reactor_threadpool_stats(p, NULL), REACTOR_E_INVALID);
  CHECK_RC(reactor_threadpool_stats(NULL, NULL), REACTOR_E_INVALID);
  CHECK_RC(reactor_threadpool_stop(NULL), REACTOR_E_INVALID);

  reactor_threadpool_stats_t small;
  memset(&small, 0xAB, sizeof small);
  small.struct_size = 8;
  CHECK_RC(reactor_threadpool_stats(p, &small), REACTOR_E_INVALID);
  CHECK_EQ(small.workers, 0xABABABABABABABABULL); /* nothing written */
  struct {
    reactor_threadpool_stats_t s;
    uint64_t extra[2];
  } big;
  memset(&big, 0xAB, sizeof big);
  big.s.struct_size = (uint32_t)sizeof big;
  /* unknown trailing bytes must be zero (API.md §7): else UNSUPPORTED, nothing written */
  CHECK_RC(reactor_threadpool_stats(p, &big.s), REACTOR_E_UNSUPPORTED);
  CHECK_EQ(big.s.workers, 0xABABABABABABABABULL);
  memset(&big, 0, sizeof big);
  big.s.struct_size = (uint32_t)sizeof big;
  CHECK_OK(reactor_threadpool_stats(p, &big.s));
  CHECK_EQ(big.s.struct_size, sizeof big);
  CHECK_EQ(big.extra[0], 0);
  CHECK_EQ(big.extra[1], 0);
  CHECK_EQ(big.s.completed, 0);

  reactor_threadpool_free(p);
  /* stale handle: detected, never touched */
  CHECK_RC(reactor_threadpool_submit(p, count_job, NULL, misuse_release), REACTOR_E_INVALID);
  CHECK_RC(reactor_threadpool_stop(p), REACTOR_E_INVALID);
  CHECK_RC(reactor_threadpool_resize(p, 0, 2), REACTOR_E_INVALID);
  reactor_threadpool_stats_t s;
  memset(&s, 0, sizeof s);
  s.struct_size = sizeof s;
  CHECK_RC(reactor_threadpool_stats(p, &s), REACTOR_E_INVALID);
  reactor_threadpool_free(p); /* double free: harmless */
  reactor_threadpool_free(NULL);
  int local = 0;
  CHECK_RC(reactor_threadpool_submit((reactor_threadpool_t *)&local, count_job, NULL, misuse_release),
           REACTOR_E_INVALID);
  reactor_threadpool_free((reactor_threadpool_t *)&local);
  CHECK_EQ(atomic_load(&misuse_releases), 0); /* refused submits never release */
}

int main(void) {
  tu_watchdog(120);
  main_thread = pthread_self();
  printf("%s%s\n", PROG, tu_valgrind() ? " (valgrind)" : "");
  test_misuse();
  test_stress();
  test_release_on_worker();
  test_nested();
  test_resize();
  test_stop_with_queue();
  test_stop_from_job();
  test_idle();
  return tu_finish(PROG);
}
