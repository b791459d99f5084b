/* libev 4.x versions of the benchmark shapes (see common.h, README.md). */
#define BENCH_LIB "libev"
#include "common.h"
#include <ev.h>

static struct ev_loop *loop;

/* ---------------------------------------------------------------- timers */

static void tm_cb(struct ev_loop *l, ev_timer *w, int revents) {
  (void)l;
  (void)w;
  (void)revents;
  tm_fired++; /* non-repeating timers stop themselves; ev_run returns when none is left */
}

static int run_timers(void) {
  loop = ev_default_loop(EVBACKEND_EPOLL);
  tm_begin();
  ev_timer *ts = malloc(tm_n * sizeof *ts);
  for (size_t i = 0; i < tm_n; i++) {
    ev_timer_init(&ts[i], tm_cb, (double)delay_ms_next() / 1000.0, 0.);
    ev_timer_start(loop, &ts[i]);
  }
  ev_run(loop, 0);
  tm_end();
  return 0;
}

/* ---------------------------------------------------------------- fanout */

static ev_io *fo_ios;

static void fo_cb(struct ev_loop *l, ev_io *w, int revents) {
  (void)l;
  (void)revents;
  fo_on_readable((long)(intptr_t)w->data, w->fd);
}

static void fo_once(void) { ev_run(loop, EVRUN_NOWAIT); }

static int run_fanout(void) {
  loop = ev_default_loop(EVBACKEND_EPOLL);
  fo_ios = calloc((size_t)fo_pipes, sizeof *fo_ios);
  for (int i = 0; i < fo_pipes; i++) {
    ev_io_init(&fo_ios[i], fo_cb, fo_fds[2 * i], EV_READ);
    fo_ios[i].data = (void *)(intptr_t)i;
    ev_io_start(loop, &fo_ios[i]);
  }
  fo_run(fo_once);
  return 0;
}

/* ---------------------------------------------------------------- callthread (ev_async + mutex queue) */
/* callthread: wake only when the push found the queue empty; callthread_closure: the closure is
 * the queue node and every call sends (ev_async_send coalesces pending sends itself) */

static ev_async q_async;
static mqueue_t q;

static void on_q_async(struct ev_loop *l, ev_async *w, int revents) {
  (void)l;
  (void)w;
  (void)revents;
  mq_drain(&q);
}

static void flood_fn(void *arg) {
  if (flood_seen(arg)) ev_break(loop, EVBREAK_ALL);
}
static void paced_fn(void *arg) {
  if (paced_seen(arg)) ev_break(loop, EVBREAK_ALL);
}
static int send_flood(void *arg) {
  if (mq_push(&q, flood_fn, arg)) ev_async_send(loop, &q_async);
  return 0;
}
static int send_paced(void *arg) {
  if (mq_push(&q, paced_fn, arg)) ev_async_send(loop, &q_async);
  return 0;
}

static void on_closures(struct ev_loop *l, ev_async *w, int revents) {
  (void)w;
  (void)revents;
  if (cq_drain(&q)) ev_break(l, EVBREAK_ALL);
}
static int send_closure(closure_t *c) {
  mq_push_link(&q, &c->link);
  ev_async_send(loop, &q_async);
  return 0;
}

static int run_q(void *(*producer)(void *), void (*on_wake)(struct ev_loop *, ev_async *, int)) {
  loop = ev_default_loop(EVBACKEND_EPOLL);
  mq_init(&q);
  ev_async_init(&q_async, on_wake);
  ev_async_start(loop, &q_async);
  pthread_t t = start_thread(producer);
  ev_run(loop, 0);
  pthread_join(t, NULL);
  ev_async_stop(loop, &q_async);
  return 0;
}
static int run_callthread(void) { return run_q(flood_producer, on_q_async); }
static int run_callthread_paced(void) { return run_q(paced_producer, on_q_async); }
static int run_callthread_closure(void) { return run_q(closure_flood_producer, on_closures); }
static int run_callthread_closure_paced(void) { return run_q(closure_paced_producer, on_closures); }

/* ---------------------------------------------------------------- async */

static ev_async as_async;

static void on_as(struct ev_loop *l, ev_async *w, int revents) {
  (void)w;
  (void)revents;
  if (async_seen()) ev_break(l, EVBREAK_ALL);
}
static int send_async(void) {
  ev_async_send(loop, &as_async);
  return 0;
}

static int run_async(void) {
  loop = ev_default_loop(EVBACKEND_EPOLL);
  ev_async_init(&as_async, on_as);
  ev_async_start(loop, &as_async);
  pthread_t t = start_thread(async_producer);
  ev_run(loop, 0);
  pthread_join(t, NULL);
  ev_async_stop(loop, &as_async);
  return 0;
}
