/*
 * test_threadpool_reactor.c - the reactor's thread pool (API.md §4, §7; DECISIONS "Thread pool"):
 * reactor_call_in_thread, reactor_call_in_thread_with_callback, reactor_get_thread_pool,
 * reactor_suggest_thread_pool_size.
 *
 * Checks:
 *   - call_in_thread_with_callback from the reactor thread (before and during run) and from 4
 *     other threads: work runs on pool threads (reactor_is_in_io_thread is 0 there), done runs
 *     exactly once on the reactor thread with work's result, release runs after done on the
 *     reactor thread; a chain of serial round trips (done submits the next) works;
 *   - call_in_thread: fn runs on a pool thread, release after it on the same thread;
 *   - the pool is not started before run (stats.workers == 0, jobs wait, queued counts them) and
 *     every worker is joined before run returns (their thread ids are gone from /proc/self/task);
 *   - suggest_thread_pool_size(17) before run: 17 blocking jobs run at once (stats.workers 17);
 *     the default max is 10; options.thread_pool_max = 3 caps at 3 (jobs block until the expected
 *     number run at once, then hold 0.2 s more so a worker past the cap would show; only a 15 s
 *     deadline, never a race against the clock, ends a wait that does not come true);
 *   - the reactor stops before done could run: done is not called, release is (reactor thread);
 *     afterwards call_in_thread[_with_callback] -> CLOSED with release not called;
 *   - reactor_free of a reactor that never ran: queued work runs, done is not called, release
 *     runs on the freeing thread;
 *   - "shutdown" fired by hand on a reactor that never ran destroys the pool (jobs run, workers
 *     0); the reactor can still run afterwards and its pool works;
 *   - iterate (no run) also starts the pool;
 *   - misuse: NULL reactor / fn / work / done -> INVALID (release not called), sizes 0 or too
 *     big -> INVALID, suggest/get_thread_pool from another thread -> WRONG_THREAD / NULL,
 *     stop of the borrowed pool -> BUSY, free of it ignored, stale after reactor_free.
 */
#include <dirent.h>
#include <sys/syscall.h>

#include "test_util.h"

static const char *PROG = "test_threadpool_reactor";

static reactor_threadpool_stats_t pool_stats(reactor_threadpool_t *p) {
  reactor_threadpool_stats_t s;
  memset(&s, 0, sizeof s);
  s.struct_size = (uint32_t)sizeof s;
  REQUIRE_OK(reactor_threadpool_stats(p, &s));
  return s;
}

static void safety_cb(reactor_t *r, void *ud) {
  fprintf(stderr, "   safety timer fired: %s\n", (const char *)ud);
  atomic_fetch_add(&tu_failures, 1);
  reactor_crash(r);
}

static void safety(reactor_t *r, const char *what) {
  CHECK_OK(reactor_call_later(r, tu_valgrind() ? 100.0 : 20.0, safety_cb, (void *)what, NULL, NULL));
}

/* ---- done callbacks: results, threads, exactly once -------------------------------- */

typedef struct {
  long value;
  atomic_int worked, done, released;
  pthread_t work_thread;
} call_t;

static reactor_t *g_r;
static pthread_t reactor_thread;
static long n_total;
static atomic_long done_count, bad_result, bad_thread, work_in_io_thread, release_count,
    release_bad, submit_errors;

static void *double_work(void *ud) {
  call_t *c = ud;
  if (pthread_equal(pthread_self(), reactor_thread)) atomic_fetch_add(&bad_thread, 1);
  if (reactor_is_in_io_thread(g_r)) atomic_fetch_add(&work_in_io_thread, 1);
  c->work_thread = pthread_self();
  atomic_fetch_add(&c->worked, 1);
  return (void *)(intptr_t)(c->value * 2);
}

static void check_done(reactor_t *r, void *result, call_t *c) {
  if (r != g_r || !pthread_equal(pthread_self(), reactor_thread)) atomic_fetch_add(&bad_thread, 1);
  if ((intptr_t)result != c->value * 2 || atomic_load(&c->worked) != 1) atomic_fetch_add(&bad_result, 1);
  if (atomic_fetch_add(&c->done, 1) != 0) atomic_fetch_add(&bad_result, 1);
}

static void count_done(reactor_t *r, void *result, void *ud) {
  check_done(r, result, ud);
  if (atomic_fetch_add(&done_count, 1) + 1 == n_total) CHECK_OK(reactor_stop(r));
}

static void call_release(void *ud) {
  call_t *c = ud;
  if (atomic_load(&c->done) != 1 || !pthread_equal(pthread_self(), reactor_thread))
    atomic_fetch_add(&release_bad, 1);
  atomic_fetch_add(&release_count, 1);
  free(c);
}

static call_t *new_call(long value) {
  call_t *c = calloc(1, sizeof *c);
  REQUIRE(c != NULL);
  c->value = value;
  return c;
}

static void submit_one(long value) {
  int rc = reactor_call_in_thread_with_callback(g_r, double_work, count_done, new_call(value), call_release);
  if (rc != REACTOR_OK && atomic_fetch_add(&submit_errors, 1) < 5)
    fprintf(stderr, "   call_in_thread_with_callback -> %d (%s)\n", rc, tu_status(rc));
}

static long per_thread;

static void *foreign_submitter(void *arg) {
  long base = (long)(intptr_t)arg;
  for (long i = 0; i < per_thread; i++) submit_one(base + i);
  return NULL;
}

/* serial round trips: done submits the next */
static long chain_left;
static void chain_done(reactor_t *r, void *result, void *ud);

static void chain_next(reactor_t *r) {
  int rc = reactor_call_in_thread_with_callback(r, double_work, chain_done, new_call(chain_left), call_release);
  if (rc != REACTOR_OK) atomic_fetch_add(&submit_errors, 1);
}

static void chain_done(reactor_t *r, void *result, void *ud) {
  check_done(r, result, ud);
  if (--chain_left > 0)
    chain_next(r);
  else if (atomic_fetch_add(&done_count, 1) + 1 == n_total)
    CHECK_OK(reactor_stop(r));
}

static pthread_t foreign[4];
static void start_foreign(reactor_t *r, void *ud) {
  (void)ud;
  for (long t = 0; t < 4; t++)
    REQUIRE(pthread_create(&foreign[t], NULL, foreign_submitter, (void *)(intptr_t)(1000000 * (t + 1))) == 0);
  for (long i = 0; i < per_thread; i++) submit_one(-i); /* from the reactor thread while running */
  chain_left = tu_scale(2000, 100);
  chain_next(r);
}

static void test_done_callbacks(void) {
  SECTION("done on the reactor thread with the right result, exactly once; release after it");
  g_r = tu_new_reactor();
  tu_banner(PROG, g_r);
  reactor_thread = pthread_self();
  per_thread = tu_scale(20000, 300);
  /* before run + 4 threads + during run + the chain (one count when it ends) */
  n_total = per_thread + 4 * per_thread + per_thread + 1;
  for (long i = 0; i < per_thread; i++) submit_one(5000000 + i);
  CHECK_OK(reactor_call_when_running(g_r, start_foreign, NULL, NULL));
  safety(g_r, "done callbacks missing");
  double t0 = tu_now();
  CHECK_OK(reactor_run(g_r));
  printf("   %ld calls in %.3f s\n", atomic_load(&done_count), tu_now() - t0);
  for (int t = 0; t < 4; t++) pthread_join(foreign[t], NULL);
  CHECK_EQ(atomic_load(&submit_errors), 0);
  CHECK_EQ(atomic_load(&done_count), n_total);
  CHECK_EQ(atomic_load(&bad_result), 0);
  CHECK_EQ(atomic_load(&bad_thread), 0);
  CHECK_EQ(atomic_load(&work_in_io_thread), 0);
  CHECK_EQ(atomic_load(&release_bad), 0);
  CHECK_EQ(atomic_load(&release_count), n_total - 1 + tu_scale(2000, 100));
  CHECK_OK(reactor_free(g_r));
}

/* ---- call_in_thread; not started before run; joined before run returns ------------- */

#define MAX_TIDS 64
static atomic_long plain_runs, plain_release_ok, plain_release_bad;
static pid_t seen_tids[MAX_TIDS];
static atomic_int n_seen_tids;
static pthread_mutex_t tid_lock = PTHREAD_MUTEX_INITIALIZER;

static void note_tid(void) {
  pid_t tid = (pid_t)syscall(SYS_gettid);
  pthread_mutex_lock(&tid_lock);
  int n = atomic_load(&n_seen_tids), known = 0;
  for (int i = 0; i < n; i++) known |= seen_tids[i] == tid;
  if (!known && n < MAX_TIDS) {
    seen_tids[n] = tid;
    atomic_store(&n_seen_tids, n + 1);
  }
  pthread_mutex_unlock(&tid_lock);
}

typedef struct {
  pthread_t thread;
  atomic_int ran;
} plain_t;

static void plain_job(void *ud) {
  plain_t *p = ud;
  note_tid();
  p->thread = pthread_self();
  atomic_store(&p->ran, 1);
  atomic_fetch_add(&plain_runs, 1);
  tu_sleep_ms(1);
}

static void plain_release(void *ud) {
  plain_t *p = ud;
  if (atomic_load(&p->ran) && pthread_equal(p->thread, pthread_self()))
    atomic_fetch_add(&plain_release_ok, 1);
  else
    atomic_fetch_add(&plain_release_bad, 1);
  free(p);
}

static long plain_n;

static void stop_when_all_ran(reactor_t *r, void *ud) {
  (void)ud;
  if (atomic_load(&plain_release_ok) + atomic_load(&plain_release_bad) >= plain_n)
    CHECK_OK(reactor_stop(r));
  else
    CHECK_OK(reactor_call_later(r, 0.002, stop_when_all_ran, NULL, NULL, NULL));
}

static int tid_alive(pid_t tid) {
  char path[64];
  snprintf(path, sizeof path, "/proc/self/task/%d", (int)tid);
  DIR *d = opendir(path);
  if (d) closedir(d);
  return d != NULL;
}

static void test_lazy_start_and_join(void) {
  SECTION("call_in_thread: waits for run, release on the worker, workers joined before run returns");
  reactor_t *r = tu_new_reactor();
  plain_n = tu_scale(200, 40);
  for (long i = 0; i < plain_n; i++) {
    plain_t *p = calloc(1, sizeof *p);
    REQUIRE(p != NULL);
    CHECK_OK(reactor_call_in_thread(r, plain_job, p, plain_release));
  }
  reactor_threadpool_t *pool = reactor_get_thread_pool(r);
  REQUIRE(pool != NULL);
  CHECK(pool == reactor_get_thread_pool(r)); /* the same borrowed handle every time */
  tu_sleep_ms(50);
  reactor_threadpool_stats_t s = pool_stats(pool);
  CHECK_EQ(s.workers, 0);
  CHECK_EQ(s.queued, plain_n);
  CHECK_EQ(atomic_load(&plain_runs), 0);
  CHECK_OK(reactor_call_when_running(r, stop_when_all_ran, NULL, NULL));
  safety(r, "call_in_thread jobs never ran");
  CHECK_OK(reactor_run(r));
  CHECK_EQ(atomic_load(&plain_runs), plain_n);
  CHECK_EQ(atomic_load(&plain_release_ok), plain_n);
  CHECK_EQ(atomic_load(&plain_release_bad), 0);
  s = pool_stats(pool);
  CHECK_EQ(s.workers, 0);
  CHECK_EQ(s.completed, plain_n);
  int n = atomic_load(&n_seen_tids), alive = 0;
  CHECK(n >= 1);
  for (int i = 0; i < n; i++) alive += tid_alive(seen_tids[i]);
  printf("   %d worker threads seen, %d still alive after run\n", n, alive);
  CHECK_EQ(alive, 0);

  SECTION("after the run ended with stop: CLOSED, release not called");
  long before = atomic_load(&plain_release_ok);
  plain_t p = {0};
  CHECK_RC(reactor_call_in_thread(r, plain_job, &p, plain_release), REACTOR_E_CLOSED);
  CHECK_RC(reactor_call_in_thread_with_callback(r, double_work, count_done, &p, plain_release),
           REACTOR_E_CLOSED);
  CHECK_RC(reactor_threadpool_submit(pool, plain_job, &p, plain_release), REACTOR_E_CLOSED);
  CHECK_EQ(atomic_load(&plain_release_ok) + atomic_load(&plain_release_bad), before);
  CHECK_EQ(atomic_load(&p.ran), 0);
  CHECK_OK(reactor_free(r));
  CHECK_RC(reactor_threadpool_stats(pool, &s), REACTOR_E_INVALID); /* borrowed handle died with r */
}

/* ---- pool sizes: suggest 17, default 10, options 3 -------------------------------- */

static pthread_mutex_t blk_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t blk_cond = PTHREAD_COND_INITIALIZER;
static int blk_now, blk_peak, blk_expected, blk_done, blk_jobs;
static struct timespec blk_full_at; /* CLOCK_REALTIME when blk_peak reached blk_expected */

static struct timespec add_ms(struct timespec t, long ms) {
  t.tv_sec += ms / 1000;
  t.tv_nsec += (ms % 1000) * 1000000L;
  if (t.tv_nsec >= 1000000000L) {
    t.tv_sec++;
    t.tv_nsec -= 1000000000L;
  }
  return t;
}

/* Blocks until `blk_expected` jobs have run at once. When more jobs than that were submitted (a cap
 * is being checked), it then holds until 0.2 s (1 s valgrind) after that moment, so that a worker
 * beyond the cap would have time to show in blk_peak. The 15 s (75 s valgrind) deadline only keeps
 * a broken pool from hanging the test: a loaded machine just makes the wait longer. */
static void blocking_job(void *ud) {
  (void)ud;
  pthread_mutex_lock(&blk_lock);
  blk_now++;
  if (blk_now > blk_peak) {
    blk_peak = blk_now;
    if (blk_peak == blk_expected) clock_gettime(CLOCK_REALTIME, &blk_full_at);
  }
  pthread_cond_broadcast(&blk_cond);
  struct timespec deadline;
  clock_gettime(CLOCK_REALTIME, &deadline);
  deadline = add_ms(deadline, tu_valgrind() ? 75000 : 15000); /* below the safety timer */
  while (blk_peak < blk_expected)
    if (pthread_cond_timedwait(&blk_cond, &blk_lock, &deadline) != 0) break;
  if (blk_jobs > blk_expected && blk_peak >= blk_expected) {
    struct timespec hold = add_ms(blk_full_at, tu_valgrind() ? 1000 : 200);
    while (pthread_cond_timedwait(&blk_cond, &blk_lock, &hold) == 0) {
    }
  }
  blk_now--;
  blk_done++;
  pthread_mutex_unlock(&blk_lock);
}

static reactor_threadpool_stats_t blk_stats;
static int blk_stats_taken;

static void poll_blockers(reactor_t *r, void *ud) {
  (void)ud;
  pthread_mutex_lock(&blk_lock);
  int done = blk_done, peak = blk_peak;
  pthread_mutex_unlock(&blk_lock);
  if (peak == blk_expected && !blk_stats_taken) {
    blk_stats = pool_stats(reactor_get_thread_pool(r));
    blk_stats_taken = 1;
  }
  if (done == blk_jobs)
    CHECK_OK(reactor_stop(r));
  else
    CHECK_OK(reactor_call_later(r, 0.001, poll_blockers, NULL, NULL, NULL));
}

/* Runs `jobs` blocking jobs that wait for `expected` of them at once; returns the peak seen. */
static int blocking_run(reactor_t *r, int jobs, int expected) {
  blk_now = blk_peak = blk_done = 0;
  blk_expected = expected;
  blk_jobs = jobs;
  blk_stats_taken = 0;
  for (int i = 0; i < jobs; i++) CHECK_OK(reactor_call_in_thread(r, blocking_job, NULL, NULL));
  CHECK_OK(reactor_call_when_running(r, poll_blockers, NULL, NULL));
  safety(r, "blocking jobs never finished");
  CHECK_OK(reactor_run(r));
  CHECK_OK(reactor_free(r));
  return blk_peak;
}

static void test_sizes(void) {
  SECTION("suggest_thread_pool_size(17) before run: 17 jobs at once");
  reactor_t *r = tu_new_reactor();
  CHECK_RC(reactor_suggest_thread_pool_size(r, 0), REACTOR_E_INVALID);
  CHECK_RC(reactor_suggest_thread_pool_size(r, REACTOR_THREADPOOL_MAX_THREADS + 1), REACTOR_E_INVALID);
  CHECK_OK(reactor_suggest_thread_pool_size(r, 17));
  CHECK_EQ(blocking_run(r, 17, 17), 17);
  CHECK(blk_stats_taken);
  CHECK_EQ(blk_stats.workers, 17);

  SECTION("default max: 10");
  r = tu_new_reactor();
  CHECK_EQ(blocking_run(r, 12, 10), 10);

  SECTION("options.thread_pool_max = 3; suggest after the pool exists resizes it");
  reactor_options_t o;
  reactor_options_init(&o);
  CHECK_EQ(o.thread_pool_max, 10);
  o.thread_pool_max = 3;
  REQUIRE_OK(reactor_new(&o, &r));
  CHECK_EQ(blocking_run(r, 5, 3), 3);
  REQUIRE_OK(reactor_new(&o, &r));
  CHECK(reactor_get_thread_pool(r) != NULL); /* the pool exists, not started */
  CHECK_OK(reactor_suggest_thread_pool_size(r, 4));
  CHECK_EQ(blocking_run(r, 4, 4), 4);
}

/* ---- stop before done; free before done ---------------------------------------------- */

static atomic_int sd_shutting_down, sd_done, sd_released, sd_release_on_reactor, sd_worked;

static void *wait_for_shutdown_work(void *ud) {
  (void)ud;
  double end = tu_now() + 20;
  while (!atomic_load(&sd_shutting_down) && tu_now() < end) tu_sleep_ms(1);
  atomic_fetch_add(&sd_worked, 1);
  return (void *)1;
}

static void sd_done_cb(reactor_t *r, void *result, void *ud) {
  (void)r;
  (void)result;
  (void)ud;
  atomic_fetch_add(&sd_done, 1);
}

static void sd_release(void *ud) {
  (void)ud;
  atomic_fetch_add(&sd_released, 1);
  if (pthread_equal(pthread_self(), reactor_thread)) atomic_fetch_add(&sd_release_on_reactor, 1);
}

static int before_shutdown(reactor_t *r, uint64_t id, void *ud) {
  (void)r;
  (void)id;
  (void)ud;
  atomic_store(&sd_shutting_down, 1);
  return REACTOR_OK;
}

static void submit_then_stop(reactor_t *r, void *ud) {
  (void)ud;
  for (int i = 0; i < 3; i++)
    CHECK_OK(reactor_call_in_thread_with_callback(r, wait_for_shutdown_work, sd_done_cb, NULL, sd_release));
  CHECK_OK(reactor_stop(r));
}

static void test_stop_before_done(void) {
  SECTION("reactor stops before done can run: done not called, release called");
  reactor_t *r = tu_new_reactor();
  reactor_thread = pthread_self();
  CHECK_OK(reactor_add_system_event_trigger(r, REACTOR_PHASE_BEFORE, "shutdown", before_shutdown, NULL,
                                            NULL, NULL));
  CHECK_OK(reactor_call_when_running(r, submit_then_stop, NULL, NULL));
  safety(r, "stop before done");
  CHECK_OK(reactor_run(r));
  CHECK_EQ(atomic_load(&sd_worked), 3); /* the pool ran its queue before run returned */
  CHECK_EQ(atomic_load(&sd_done), 0);
  CHECK_EQ(atomic_load(&sd_released), 3);
  CHECK_EQ(atomic_load(&sd_release_on_reactor), 3);
  CHECK_OK(reactor_free(r));
  CHECK_EQ(atomic_load(&sd_released), 3);

  SECTION("reactor freed before it ran: work runs, done not called, release on the freeing thread");
  atomic_store(&sd_worked, 0);
  atomic_store(&sd_released, 0);
  atomic_store(&sd_release_on_reactor, 0);
  atomic_store(&sd_shutting_down, 1);
  r = tu_new_reactor();
  for (int i = 0; i < 5; i++)
    CHECK_OK(reactor_call_in_thread_with_callback(r, wait_for_shutdown_work, sd_done_cb, NULL, sd_release));
  tu_sleep_ms(20);
  CHECK_EQ(atomic_load(&sd_worked), 0); /* never ran: the pool waits for run */
  CHECK_OK(reactor_free(r));
  CHECK_EQ(atomic_load(&sd_worked), 5);
  CHECK_EQ(atomic_load(&sd_done), 0);
  CHECK_EQ(atomic_load(&sd_released), 5);
  CHECK_EQ(atomic_load(&sd_release_on_reactor), 5); /* this thread freed it */
}

/* ---- shutdown fired by hand; iterate starts the pool --------------------------------- */

static atomic_long hand_runs;
static void hand_job(void *ud) {
  (void)ud;
  atomic_fetch_add(&hand_runs, 1);
}

static atomic_int iter_done;
static void *iter_work(void *ud) { return ud; }
static void iter_done_cb(reactor_t *r, void *result, void *ud) {
  (void)r;
  CHECK(result == ud);
  atomic_fetch_add(&iter_done, 1);
}

static void test_fired_by_hand(void) {
  SECTION("shutdown fired by hand on a reactor that never ran destroys the pool");
  reactor_t *r = tu_new_reactor();
  for (int i = 0; i < 50; i++) CHECK_OK(reactor_call_in_thread(r, hand_job, NULL, NULL));
  reactor_threadpool_t *pool = reactor_get_thread_pool(r);
  REQUIRE(pool != NULL);
  tu_sleep_ms(10);
  CHECK_EQ(atomic_load(&hand_runs), 0);
  CHECK_OK(reactor_fire_system_event(r, "shutdown"));
  CHECK_EQ(atomic_load(&hand_runs), 50); /* stop runs the queue */
  reactor_threadpool_stats_t s = pool_stats(pool);
  CHECK_EQ(s.workers, 0);
  CHECK_EQ(s.queued, 0);

  SECTION("... the reactor still runs afterwards, and so does its pool");
  for (int i = 0; i < 9; i++) CHECK_OK(reactor_call_in_thread(r, hand_job, NULL, NULL));
  CHECK_OK(reactor_threadpool_submit(pool, hand_job, NULL, NULL)); /* the borrowed handle too */
  tu_sleep_ms(10);
  CHECK_EQ(atomic_load(&hand_runs), 50); /* waits for run again */
  CHECK_OK(reactor_call_in_thread_with_callback(r, iter_work, iter_done_cb, (void *)0x77, NULL));
  double end = tu_now() + (tu_valgrind() ? 50 : 10);
  while ((atomic_load(&iter_done) == 0 || atomic_load(&hand_runs) < 60) && tu_now() < end)
    CHECK_OK(reactor_iterate(r, 0.05));
  CHECK_EQ(atomic_load(&iter_done), 1); /* iterate started the pool too */
  CHECK_EQ(atomic_load(&hand_runs), 60);
  CHECK_OK(reactor_free(r));
}

/* ---- misuse ------------------------------------------------------------------------ */

static atomic_int misuse_releases;
static void misuse_release(void *ud) {
  (void)ud;
  atomic_fetch_add(&misuse_releases, 1);
}

static atomic_long misuse_runs;
static void misuse_job(void *ud) {
  (void)ud;
  atomic_fetch_add(&misuse_runs, 1);
}

static int foreign_suggest_rc;
static reactor_threadpool_t *foreign_pool = (reactor_threadpool_t *)0x1;
static int foreign_call_rc = 1;
static void *foreign_misuse(void *arg) {
  reactor_t *r = arg;
  foreign_suggest_rc = reactor_suggest_thread_pool_size(r, 4);
  foreign_pool = reactor_get_thread_pool(r);
  foreign_call_rc = reactor_call_in_thread(r, misuse_job, NULL, NULL); /* any thread: fine */
  return NULL;
}

static void test_misuse(void) {
  SECTION("misuse: NULLs, wrong thread, borrowed pool");
  reactor_t *r = tu_new_reactor();
  CHECK_RC(reactor_call_in_thread(NULL, hand_job, NULL, misuse_release), REACTOR_E_INVALID);
  CHECK_RC(reactor_call_in_thread(r, NULL, NULL, misuse_release), REACTOR_E_INVALID);
  CHECK_RC(reactor_call_in_thread_with_callback(NULL, iter_work, iter_done_cb, NULL, misuse_release),
           REACTOR_E_INVALID);
  CHECK_RC(reactor_call_in_thread_with_callback(r, NULL, iter_done_cb, NULL, misuse_release),
           REACTOR_E_INVALID);
  CHECK_RC(reactor_call_in_thread_with_callback(r, iter_work, NULL, NULL, misuse_release),
           REACTOR_E_INVALID);
  CHECK_RC(reactor_suggest_thread_pool_size(NULL, 4), REACTOR_E_INVALID);
  CHECK(reactor_get_thread_pool(NULL) == NULL);

  pthread_t th;
  REQUIRE(pthread_create(&th, NULL, foreign_misuse, r) == 0);
  pthread_join(th, NULL);
  CHECK_RC(foreign_suggest_rc, REACTOR_E_WRONG_THREAD);
  CHECK(foreign_pool == NULL);
  CHECK_OK(foreign_call_rc);

  reactor_threadpool_t *pool = reactor_get_thread_pool(r);
  REQUIRE(pool != NULL);
  CHECK_RC(reactor_threadpool_stop(pool), REACTOR_E_BUSY);
  reactor_threadpool_free(pool); /* ignored: borrowed */
  CHECK_OK(reactor_threadpool_submit(pool, misuse_job, NULL, NULL));
  CHECK_OK(reactor_threadpool_resize(pool, 0, 2));
  CHECK_EQ(pool_stats(pool).queued, 2);
  CHECK_EQ(atomic_load(&misuse_releases), 0);

  reactor_options_t o;
  reactor_options_init(&o);
  o.thread_pool_max = 0;
  reactor_t *bad = NULL;
  CHECK_RC(reactor_new(&o, &bad), REACTOR_E_INVALID);
  CHECK_OK(reactor_free(r)); /* runs the two queued jobs */
  CHECK_EQ(atomic_load(&misuse_runs), 2);
}

int main(void) {
  tu_watchdog(120);
  test_misuse();
  test_done_callbacks();
  test_lazy_start_and_join();
  test_sizes();
  test_stop_before_done();
  test_fired_by_hand();
  return tu_finish(PROG);
}
