/* libevent 2.1 versions of the benchmark shapes (see common.h, README.md). */
#define BENCH_LIB "libevent"
#include "common.h"
#include <event2/event.h>
#include <event2/thread.h>

static struct event_base *base;

static struct event_base *new_base(void) {
  struct event_config *cfg = event_config_new();
  event_config_avoid_method(cfg, "select");
  event_config_avoid_method(cfg, "poll"); /* epoll, like the others */
  struct event_base *b = event_base_new_with_config(cfg);
  event_config_free(cfg);
  if (!b) die("event_base_new", 0);
  return b;
}

/* ---------------------------------------------------------------- timers */
/* one event_new'd timer per call, freed when it fires (libevent-owned, like call_later) */

static void tm_cb(evutil_socket_t fd, short what, void *arg) {
  (void)fd;
  (void)what;
  tm_fired++;
  event_free((struct event *)arg);
}

static int run_timers(void) {
  base = new_base();
  tm_begin();
  for (size_t i = 0; i < tm_n; i++) {
    unsigned ms = delay_ms_next();
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    struct event *ev = evtimer_new(base, tm_cb, event_self_cbarg());
    if (!ev) die("evtimer_new", 0);
    CHECK(evtimer_add(ev, &tv));
  }
  event_base_dispatch(base);
  tm_end();
  return 0;
}

/* ---------------------------------------------------------------- fanout (test/bench.c) */

static void fo_cb(evutil_socket_t fd, short what, void *arg) {
  (void)what;
  fo_on_readable((long)(intptr_t)arg, fd);
}

static void fo_once(void) { event_base_loop(base, EVLOOP_ONCE | EVLOOP_NONBLOCK); }

static int run_fanout(void) {
  base = new_base();
  for (int i = 0; i < fo_pipes; i++) {
    struct event *ev = event_new(base, fo_fds[2 * i], EV_READ | EV_PERSIST, fo_cb, (void *)(intptr_t)i);
    CHECK(event_add(ev, NULL));
  }
  fo_run(fo_once);
  return 0;
}

/* ---------------------------------------------------------------- callthread (event_active + mutex queue) */
/* callthread: wake only when the push found the queue empty; callthread_closure: the closure is
 * the queue node and every call activates the event (a no-op while it is still active) */

static struct event *q_ev;
static mqueue_t q;

static void on_q(evutil_socket_t fd, short what, void *arg) {
  (void)fd;
  (void)what;
  (void)arg;
  mq_drain(&q);
}

static void flood_fn(void *arg) {
  if (flood_seen(arg)) event_base_loopbreak(base);
}
static void paced_fn(void *arg) {
  if (paced_seen(arg)) event_base_loopbreak(base);
}
static int send_flood(void *arg) {
  if (mq_push(&q, flood_fn, arg)) event_active(q_ev, EV_READ, 0);
  return 0;
}
static int send_paced(void *arg) {
  if (mq_push(&q, paced_fn, arg)) event_active(q_ev, EV_READ, 0);
  return 0;
}

static void on_closures(evutil_socket_t fd, short what, void *arg) {
  (void)fd;
  (void)what;
  (void)arg;
  if (cq_drain(&q)) event_base_loopbreak(base);
}
static int send_closure(closure_t *c) {
  mq_push_link(&q, &c->link);
  event_active(q_ev, EV_READ, 0);
  return 0;
}

static int run_q(void *(*producer)(void *), event_callback_fn on_wake) {
  CHECK(evthread_use_pthreads());
  base = new_base();
  mq_init(&q);
  q_ev = event_new(base, -1, 0, on_wake, NULL);
  pthread_t t = start_thread(producer);
  event_base_loop(base, EVLOOP_NO_EXIT_ON_EMPTY);
  pthread_join(t, NULL);
  return 0;
}
static int run_callthread(void) { return run_q(flood_producer, on_q); }
static int run_callthread_paced(void) { return run_q(paced_producer, on_q); }
static int run_callthread_closure(void) { return run_q(closure_flood_producer, on_closures); }
static int run_callthread_closure_paced(void) { return run_q(closure_paced_producer, on_closures); }

/* ---------------------------------------------------------------- async */

static struct event *as_ev;

static void on_as(evutil_socket_t fd, short what, void *arg) {
  (void)fd;
  (void)what;
  (void)arg;
  if (async_seen()) event_base_loopbreak(base);
}
static int send_async(void) {
  event_active(as_ev, EV_READ, 0);
  return 0;
}

static int run_async(void) {
  CHECK(evthread_use_pthreads());
  base = new_base();
  as_ev = event_new(base, -1, 0, on_as, NULL);
  pthread_t t = start_thread(async_producer);
  event_base_loop(base, EVLOOP_NO_EXIT_ON_EMPTY);
  pthread_join(t, NULL);
  return 0;
}
