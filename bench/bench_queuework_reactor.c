/* libreactor version of the queuework shapes (see queuework_common.h):
 * reactor_call_in_thread_with_callback on the reactor's pool, sized with
 * reactor_suggest_thread_pool_size(r, threads). */
#define BENCH_LIB "libreactor"
#include "queuework_common.h"
#include <reactor.h>

static reactor_t *r;

static void *work(void *ud) { return (void *)qw_work((uintptr_t)ud); }

static void done(reactor_t *rr, void *res, void *ud);

static void submit_next(void) {
  uintptr_t i = qw_submitted++;
  CHECK(reactor_call_in_thread_with_callback(r, work, done, (void *)i, NULL));
}

static void done(reactor_t *rr, void *res, void *ud) {
  if (qw_completion((uintptr_t)ud, (uintptr_t)res)) {
    CHECK(reactor_stop(rr));
    return;
  }
  if (qw_window && qw_submitted < qw_n) submit_next();
}

static void start(reactor_t *rr, void *ud) {
  (void)rr;
  (void)ud;
  qw_c0 = cpu_ns();
  qw_t0 = now_ns();
  size_t first = qw_window ? qw_window : qw_n;
  for (size_t i = 0; i < first; i++) submit_next();
}

int main(int argc, char **argv) {
  qw_init(argc, argv);
  CHECK(reactor_new(NULL, &r));
  printf("INFO lib=libreactor version=%s backend=%s\n", reactor_version_string(),
         reactor_backend_name(r));
  CHECK(reactor_suggest_thread_pool_size(r, (size_t)qw_threads));
  CHECK(reactor_call_when_running(r, start, NULL, NULL));
  CHECK(reactor_run(r));
  qw_report();
  /* loop and pool statistics, for the log (run.py prints INFO lines with iterations=) */
  reactor_stats_t ls;
  memset(&ls, 0, sizeof ls);
  ls.struct_size = sizeof ls;
  reactor_threadpool_stats_t ps;
  memset(&ps, 0, sizeof ps);
  ps.struct_size = sizeof ps;
  if (reactor_stats(r, &ls) == REACTOR_OK &&
      reactor_threadpool_stats(reactor_get_thread_pool(r), &ps) == REACTOR_OK)
    printf("INFO shape=%s lib=libreactor iterations=%llu polls=%llu wakeups=%llu callbacks=%llu "
           "thread_calls=%llu pool_completed=%llu pool_stolen=%llu\n",
           g_shape, (unsigned long long)ls.iterations, (unsigned long long)ls.polls,
           (unsigned long long)ls.wakeups, (unsigned long long)ls.callbacks,
           (unsigned long long)ls.thread_calls, (unsigned long long)ps.completed,
           (unsigned long long)ps.stolen);
  CHECK(reactor_free(r));
  return 0;
}
