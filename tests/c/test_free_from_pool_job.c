/*
 * test_free_from_pool_job.c - reactor_free called from one of the reactor's own pool jobs (a thread
 * that is not the reactor's): it succeeds once the reactor is idle; the pool cannot join the worker
 * it runs on, so it is left to finish its queue on its own. Work still queued then runs, completions
 * that can no longer reach the reactor are dropped with their release (on the worker), and nothing
 * writes to the freed reactor's waker: every release runs exactly once, no callback runs after the
 * free, and the process stays clean under valgrind and ASan (API.md §1, §4; DECISIONS "Thread pool").
 */
#include "test_util.h"

#define PROG "test_free_from_pool_job"

static reactor_t *r;
static atomic_int main_idle;   /* the main thread no longer calls into r */
static atomic_int freed;       /* reactor_free returned OK on the worker */
static atomic_int free_status = 1;
static atomic_int works, dones, releases;

static void freeing_job(void *ud) {
  (void)ud;
  while (!atomic_load(&main_idle)) tu_sleep_ms(1);
  int st;
  /* BUSY while anyone is inside a call on the reactor: retry until it is free. */
  while ((st = reactor_free(r)) == REACTOR_E_BUSY) tu_sleep_ms(1);
  atomic_store(&free_status, st);
  atomic_store(&freed, 1);
}

static void *slow_work(void *ud) {
  while (!atomic_load(&freed)) tu_sleep_ms(1); /* finishes after the reactor is gone */
  atomic_fetch_add(&works, 1);
  return ud;
}

static void done(reactor_t *rr, void *result, void *ud) {
  (void)rr;
  (void)result;
  (void)ud;
  atomic_fetch_add(&dones, 1); /* must not happen: the reactor is freed before any work ends */
}

static void count_release(void *ud) {
  (void)ud;
  atomic_fetch_add(&releases, 1);
}

int main(void) {
  tu_watchdog(60);
  printf("%s%s\n", PROG, tu_valgrind() ? " (valgrind)" : "");
  enum { JOBS = 3 };
  r = tu_new_reactor();
  REQUIRE_OK(reactor_suggest_thread_pool_size(r, JOBS + 1));
  REQUIRE_OK(reactor_call_in_thread(r, freeing_job, NULL, NULL));
  for (int i = 0; i < JOBS; i++)
    REQUIRE_OK(reactor_call_in_thread_with_callback(r, slow_work, done, NULL, count_release));
  /* one pass starts the pool's workers; then the main thread stays out of the reactor */
  REQUIRE_OK(reactor_iterate(r, 0.0));
  atomic_store(&main_idle, 1);

  double deadline = tu_now() + 30.0;
  while ((!atomic_load(&freed) || atomic_load(&releases) < JOBS) && tu_now() < deadline)
    tu_sleep_ms(1);
  CHECK_EQ(atomic_load(&freed), 1);
  CHECK_OK(atomic_load(&free_status));
  CHECK_EQ(atomic_load(&works), JOBS);
  CHECK_EQ(atomic_load(&releases), JOBS);
  CHECK_EQ(atomic_load(&dones), 0);
  /* the handle is gone for everyone */
  CHECK_RC(reactor_free(r), REACTOR_E_INVALID);
  CHECK_RC(reactor_call_in_thread(r, freeing_job, NULL, NULL), REACTOR_E_INVALID);
  /* give the detached workers a moment to exit before the process does (valgrind leak check) */
  tu_sleep_ms(100);
  return tu_finish(PROG);
}
