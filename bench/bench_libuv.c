/* libuv 1.x versions of the benchmark shapes (see common.h, README.md). */
#define BENCH_LIB "libuv"
#include "common.h"
#include <uv.h>

static uv_loop_t *loop;

/* ---------------------------------------------------------------- timers */
/* one uv_timer_t per timer (the handle memory belongs to the caller in libuv and is counted) */

static void tm_cb(uv_timer_t *t) {
  (void)t;
  tm_fired++; /* one-shot timers stop themselves; uv_run returns when none is left */
}

static int run_timers(void) {
  loop = uv_default_loop();
  tm_begin();
  uv_timer_t *ts = malloc(tm_n * sizeof *ts);
  for (size_t i = 0; i < tm_n; i++) {
    uv_timer_init(loop, &ts[i]);
    CHECK(uv_timer_start(&ts[i], tm_cb, delay_ms_next(), 0));
  }
  uv_run(loop, UV_RUN_DEFAULT);
  tm_end();
  return 0;
}

/* ---------------------------------------------------------------- fanout */

static uv_poll_t *fo_polls;

static void fo_cb(uv_poll_t *p, int status, int events) {
  (void)status;
  (void)events;
  fo_on_readable((long)(intptr_t)p->data, fo_fds[2 * (long)(intptr_t)p->data]);
}

static void fo_once(void) { uv_run(loop, UV_RUN_NOWAIT); }

static int run_fanout(void) {
  loop = uv_default_loop();
  fo_polls = calloc((size_t)fo_pipes, sizeof *fo_polls);
  for (int i = 0; i < fo_pipes; i++) {
    CHECK(uv_poll_init(loop, &fo_polls[i], fo_fds[2 * i]));
    fo_polls[i].data = (void *)(intptr_t)i;
    CHECK(uv_poll_start(&fo_polls[i], UV_READABLE, fo_cb));
  }
  fo_run(fo_once);
  return 0;
}

/* ---------------------------------------------------------------- callthread (uv_async + mutex queue) */
/* callthread: wake only when the push found the queue empty; callthread_closure: the closure is
 * the queue node and every call sends (uv_async_send coalesces pending sends itself) */

static uv_async_t q_async;
static mqueue_t q;

static void on_q_async(uv_async_t *a) {
  (void)a;
  mq_drain(&q);
}

static void flood_fn(void *arg) {
  if (flood_seen(arg)) uv_stop(loop);
}
static void paced_fn(void *arg) {
  if (paced_seen(arg)) uv_stop(loop);
}
static int send_flood(void *arg) { return mq_push(&q, flood_fn, arg) ? uv_async_send(&q_async) : 0; }
static int send_paced(void *arg) { return mq_push(&q, paced_fn, arg) ? uv_async_send(&q_async) : 0; }

static void on_closures(uv_async_t *a) {
  if (cq_drain(&q)) uv_stop(a->loop);
}
static int send_closure(closure_t *c) {
  mq_push_link(&q, &c->link);
  return uv_async_send(&q_async);
}

static int run_q(void *(*producer)(void *), uv_async_cb on_wake) {
  loop = uv_default_loop();
  mq_init(&q);
  CHECK(uv_async_init(loop, &q_async, on_wake));
  pthread_t t = start_thread(producer);
  uv_run(loop, UV_RUN_DEFAULT);
  pthread_join(t, NULL);
  uv_close((uv_handle_t *)&q_async, NULL);
  uv_run(loop, UV_RUN_DEFAULT);
  return 0;
}
static int run_callthread(void) { return run_q(flood_producer, on_q_async); }
static int run_callthread_paced(void) { return run_q(paced_producer, on_q_async); }
static int run_callthread_closure(void) { return run_q(closure_flood_producer, on_closures); }
static int run_callthread_closure_paced(void) { return run_q(closure_paced_producer, on_closures); }

/* ---------------------------------------------------------------- async */

static uv_async_t as_async;

static void on_as(uv_async_t *a) {
  (void)a;
  if (async_seen()) uv_stop(loop);
}
static int send_async(void) { return uv_async_send(&as_async); }

static int run_async(void) {
  loop = uv_default_loop();
  CHECK(uv_async_init(loop, &as_async, on_as));
  pthread_t t = start_thread(async_producer);
  uv_run(loop, UV_RUN_DEFAULT);
  pthread_join(t, NULL);
  uv_close((uv_handle_t *)&as_async, NULL);
  uv_run(loop, UV_RUN_DEFAULT);
  return 0;
}
