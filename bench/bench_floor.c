/* "floor": the same shapes written directly on raw syscalls (epoll, eventfd, a binary heap,
 * a mutex queue) with no library, as a lower bound for what an event loop can cost here. */
#define BENCH_LIB "floor"
#include "common.h"
#include <sys/epoll.h>
#include <sys/eventfd.h>

static int epfd;
static int stop_flag;

static void ep_add(int fd, uint64_t data) {
  struct epoll_event ev = {.events = EPOLLIN, .data.u64 = data};
  if (epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) != 0) die("epoll_ctl", errno);
}

/* ---------------------------------------------------------------- timers: binary heap + epoll */

typedef struct {
  uint64_t deadline; /* ns, CLOCK_MONOTONIC */
  uint64_t seq;      /* FIFO for equal deadlines */
  void (*cb)(void *);
  void *ud;
} hent_t; /* 32 bytes */

static hent_t *heap;
static size_t heap_len, heap_cap;
static uint64_t heap_seq;

static inline int hless(const hent_t *a, const hent_t *b) {
  return a->deadline < b->deadline || (a->deadline == b->deadline && a->seq < b->seq);
}

static void heap_push(uint64_t deadline, void (*cb)(void *), void *ud) {
  if (heap_len == heap_cap) {
    heap_cap = heap_cap ? heap_cap * 2 : 1024;
    heap = realloc(heap, heap_cap * sizeof *heap);
    if (!heap) die("realloc", 0);
  }
  hent_t e = {deadline, heap_seq++, cb, ud};
  size_t i = heap_len++;
  while (i > 0) {
    size_t p = (i - 1) / 2;
    if (!hless(&e, &heap[p])) break;
    heap[i] = heap[p];
    i = p;
  }
  heap[i] = e;
}

static hent_t heap_pop(void) {
  hent_t top = heap[0];
  hent_t last = heap[--heap_len];
  size_t i = 0, n = heap_len;
  for (;;) {
    size_t c = 2 * i + 1;
    if (c >= n) break;
    if (c + 1 < n && hless(&heap[c + 1], &heap[c])) c++;
    if (!hless(&heap[c], &last)) break;
    heap[i] = heap[c];
    i = c;
  }
  if (n) heap[i] = last;
  return top;
}

static void tm_cb(void *ud) {
  (void)ud;
  tm_fired++;
}

static int run_timers(void) {
  epfd = epoll_create1(EPOLL_CLOEXEC);
  tm_begin();
  for (size_t i = 0; i < tm_n; i++) {
    unsigned ms = delay_ms_next();
    heap_push(now_ns() + (uint64_t)ms * 1000000ull, tm_cb, NULL);
  }
  struct epoll_event evs[64];
  while (heap_len) {
    uint64_t now = now_ns();
    int timeout = 0;
    if (heap[0].deadline > now) timeout = (int)((heap[0].deadline - now + 999999) / 1000000);
    epoll_wait(epfd, evs, 64, timeout);
    now = now_ns();
    while (heap_len && heap[0].deadline <= now) {
      hent_t e = heap_pop();
      e.cb(e.ud);
    }
  }
  tm_end();
  return 0;
}

/* ---------------------------------------------------------------- fanout: plain epoll */

static void fo_once(void) {
  struct epoll_event evs[256];
  int n = epoll_wait(epfd, evs, 256, 0);
  for (int i = 0; i < n; i++) {
    long idx = (long)evs[i].data.u64;
    fo_on_readable(idx, fo_fds[2 * idx]);
  }
}

static int run_fanout(void) {
  epfd = epoll_create1(EPOLL_CLOEXEC);
  for (int i = 0; i < fo_pipes; i++) ep_add(fo_fds[2 * i], (uint64_t)i);
  fo_run(fo_once);
  return 0;
}

/* ---------------------------------------------------------------- callthread: eventfd + mutex queue */

static int efd;
static mqueue_t q;

static void wake(void) {
  uint64_t one = 1;
  if (write(efd, &one, 8) != 8) die("write eventfd", errno);
}

/* The floor's coalescing async send, what uv_async_send and ev_async_send do inside: write the
 * eventfd only when no wake-up is pending.  The loop clears the flag before it looks at its work,
 * so a send that finds the flag set is covered by the wake-up still to be handled. */
static atomic_int wake_pending;

static void async_wake(void) {
  if (atomic_load_explicit(&wake_pending, memory_order_relaxed)) return;
  if (atomic_exchange(&wake_pending, 1) == 0) wake();
}

static void flood_fn(void *arg) {
  if (flood_seen(arg)) stop_flag = 1;
}
static void paced_fn(void *arg) {
  if (paced_seen(arg)) stop_flag = 1;
}
static int send_flood(void *arg) {
  if (mq_push(&q, flood_fn, arg)) wake();
  return 0;
}
static int send_paced(void *arg) {
  if (mq_push(&q, paced_fn, arg)) wake();
  return 0;
}

static void drain_calls(void) { mq_drain(&q); } /* flood_fn / paced_fn set stop_flag */

/* callthread_closure: the closure is the queue node and, like the peers, every call sends; the
 * send is async_wake, so the eventfd is written only when no wake-up is pending */
static int send_closure(closure_t *c) {
  mq_push_link(&q, &c->link);
  async_wake();
  return 0;
}
static void drain_closures(void) {
  atomic_store(&wake_pending, 0);
  if (cq_drain(&q)) stop_flag = 1;
}

static int run_q(void *(*producer)(void *), void (*drain)(void)) {
  epfd = epoll_create1(EPOLL_CLOEXEC);
  efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  ep_add(efd, 0);
  mq_init(&q);
  pthread_t t = start_thread(producer);
  struct epoll_event evs[8];
  while (!stop_flag) {
    int n = epoll_wait(epfd, evs, 8, -1);
    if (n > 0) {
      uint64_t v;
      if (read(efd, &v, 8) < 0 && errno != EAGAIN) die("read eventfd", errno);
      drain();
    }
  }
  pthread_join(t, NULL);
  return 0;
}
static int run_callthread(void) { return run_q(flood_producer, drain_calls); }
static int run_callthread_paced(void) { return run_q(paced_producer, drain_calls); }
static int run_callthread_closure(void) { return run_q(closure_flood_producer, drain_closures); }
static int run_callthread_closure_paced(void) { return run_q(closure_paced_producer, drain_closures); }

/* ---------------------------------------------------------------- async: pending flag + eventfd */

static int send_async(void) {
  async_wake();
  return 0;
}

static int run_async(void) {
  epfd = epoll_create1(EPOLL_CLOEXEC);
  efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  ep_add(efd, 0);
  pthread_t t = start_thread(async_producer);
  struct epoll_event evs[8];
  while (!stop_flag) {
    int n = epoll_wait(epfd, evs, 8, -1);
    if (n > 0) {
      uint64_t v;
      if (read(efd, &v, 8) < 0 && errno != EAGAIN) die("read eventfd", errno);
      atomic_store(&wake_pending, 0);
      if (async_seen()) stop_flag = 1;
    }
  }
  pthread_join(t, NULL);
  return 0;
}
