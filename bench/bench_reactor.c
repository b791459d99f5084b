/* libreactor versions of the benchmark shapes (see common.h, README.md), written against
 * /work/shared/API.md sections 2-5 with default reactor options. */
#define BENCH_LIB "libreactor"
#include "common.h"
#include <reactor.h>

static reactor_t *r;

#define RCHECK(expr)                                                                               \
  do {                                                                                             \
    int _st = (expr);                                                                              \
    if (_st != REACTOR_OK) {                                                                       \
      fprintf(stderr, "%s: %s\n", #expr, reactor_strerror(_st));                                   \
      die(#expr, _st);                                                                             \
    }                                                                                              \
  } while (0)

static void new_reactor(void) {
  RCHECK(reactor_new(NULL, &r));
  printf("INFO lib=libreactor version=%s backend=%s\n", reactor_version_string(),
         reactor_backend_name(r));
}

/* loop statistics, for the log (run.py ignores INFO lines) */
static void print_stats(void) {
  reactor_stats_t st;
  memset(&st, 0, sizeof st);
  st.struct_size = sizeof st;
  if (reactor_stats(r, &st) == REACTOR_OK)
    printf("INFO shape=%s lib=libreactor iterations=%llu polls=%llu wakeups=%llu callbacks=%llu "
           "timers_fired=%llu thread_calls=%llu backend_ctl_calls=%llu idle_s=%.3f\n",
           g_shape, (unsigned long long)st.iterations, (unsigned long long)st.polls,
           (unsigned long long)st.wakeups, (unsigned long long)st.callbacks,
           (unsigned long long)st.timers_fired, (unsigned long long)st.thread_calls,
           (unsigned long long)st.backend_ctl_calls, st.idle_seconds);
}

static void finish(void) {
  print_stats();
  RCHECK(reactor_free(r));
}

/* ---------------------------------------------------------------- timers */
/* reactor_call_later(..., out=NULL): the library owns the call; stop from the last callback */

static void tm_cb(reactor_t *rr, void *ud) {
  (void)ud;
  if (++tm_fired == tm_n) reactor_stop(rr);
}

static int run_timers(void) {
  new_reactor();
  tm_begin();
  for (size_t i = 0; i < tm_n; i++)
    RCHECK(reactor_call_later(r, (double)delay_ms_next() / 1000.0, tm_cb, NULL, NULL, NULL));
  RCHECK(reactor_run(r));
  tm_end();
  finish();
  return 0;
}

/* ---------------------------------------------------------------- fanout */

static void fo_cb(reactor_t *rr, int fd, uint32_t events, void *ud) {
  (void)rr;
  if (events & REACTOR_SHUTDOWN) return;
  fo_on_readable((long)(intptr_t)ud, fd);
}

static void fo_once(void) {
  int st = reactor_iterate(r, 0.0);
  if (st != REACTOR_OK) die("reactor_iterate", st);
}

static int run_fanout(void) {
  new_reactor();
  for (int i = 0; i < fo_pipes; i++)
    RCHECK(reactor_add_reader(r, fo_fds[2 * i], fo_cb, (void *)(intptr_t)i, NULL));
  fo_run(fo_once);
  finish();
  return 0;
}

/* ---------------------------------------------------------------- callthread */
/* reactor_call_from_thread with the payload as user data, no release */

static void flood_cb(reactor_t *rr, void *ud) {
  if (flood_seen(ud)) reactor_stop(rr);
}
static void paced_cb(reactor_t *rr, void *ud) {
  if (paced_seen(ud)) reactor_stop(rr);
}
static int send_flood(void *arg) { return reactor_call_from_thread(r, flood_cb, arg, NULL); }
static int send_paced(void *arg) { return reactor_call_from_thread(r, paced_cb, arg, NULL); }

static int run_ct(void *(*producer)(void *)) {
  new_reactor();
  pthread_t t = start_thread(producer);
  RCHECK(reactor_run(r));
  pthread_join(t, NULL);
  finish();
  return 0;
}
static int run_callthread(void) { return run_ct(flood_producer); }
static int run_callthread_paced(void) { return run_ct(paced_producer); }

/* ---------------------------------------------------------------- callthread_closure */
/* one reactor_call_from_thread per call with the malloc'd closure as user data; the callback runs
 * it and the closure frees itself (no release function: the callback owns it) */

static void closure_cb(reactor_t *rr, void *ud) {
  closure_t *c = ud;
  if (c->fn(c)) reactor_stop(rr); /* c is freed by now */
}
static int send_closure(closure_t *c) {
  int st = reactor_call_from_thread(r, closure_cb, c, NULL);
  if (st != REACTOR_OK) free(c); /* not queued: still ours */
  return st;
}
static int run_callthread_closure(void) { return run_ct(closure_flood_producer); }
static int run_callthread_closure_paced(void) { return run_ct(closure_paced_producer); }

/* ---------------------------------------------------------------- async */

static reactor_async_t *as_handle;

static void on_as(reactor_t *rr, void *ud) {
  (void)ud;
  if (async_seen()) reactor_stop(rr);
}
static int send_async(void) { return reactor_async_send(as_handle); }

static int run_async(void) {
  new_reactor();
  RCHECK(reactor_async_new(r, on_as, NULL, NULL, &as_handle));
  pthread_t t = start_thread(async_producer);
  RCHECK(reactor_run(r));
  pthread_join(t, NULL);
  finish(); /* reactor_free closes the async handle */
  return 0;
}
