/* Shared helpers for the libreactor benchmark programs (one .c per library).
 *
 * Every program is invoked as   bench_<lib> <shape> [key=value ...]
 * and prints machine-readable lines
 *   RESULT shape=<shape> lib=<lib> metric=<metric> value=<number> unit=<unit>
 * which bench/run.py parses.  Shapes: timers, fanout, callthread, callthread_paced,
 * callthread_closure, callthread_closure_paced, async.
 */
#ifndef BENCH_COMMON_H
#define BENCH_COMMON_H

#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#ifndef BENCH_LIB
#error "define BENCH_LIB before including common.h"
#endif

#include "bench_util.h"

/* ---------------------------------------------------------------- PRNG */

/* splitmix64, fixed seed: every library sees the same delay sequence */
static uint64_t g_rng = 0x5eed5eed12345678ull;
static inline uint64_t rng_next(void) {
  uint64_t z = (g_rng += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}
static inline unsigned delay_ms_next(void) { return (unsigned)(rng_next() % 1000u); }

/* ---------------------------------------------------------------- misc */

static void raise_nofile(void) {
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
}

static int cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

static uint64_t pct(uint64_t *sorted, size_t n, double p) {
  if (n == 0) return 0;
  size_t i = (size_t)(p * (double)(n - 1) + 0.5);
  if (i >= n) i = n - 1;
  return sorted[i];
}

/* ------------------------------------------ mutex-protected call queue (peers, floor) */
/* The standard "call on the loop thread" pattern used with uv_async / ev_async / libevent:
 * a malloc'd node per call, pushed under a mutex; the loop thread takes the whole list under the
 * mutex and runs it outside the lock.  The list is intrusive (a qlink_t first in each node), so
 * one queue carries both node kinds: the callthread shapes' qnode_t {fn, arg}, and the closure
 * shapes' closure_t, the caller's own 32-byte allocation, which then needs no second node. */

typedef struct qlink {
  struct qlink *next;
} qlink_t;
typedef struct {
  pthread_mutex_t mu;
  qlink_t *head;
  qlink_t **tail;
} mqueue_t;

static inline void mq_init(mqueue_t *q) {
  pthread_mutex_init(&q->mu, NULL);
  q->head = NULL;
  q->tail = &q->head;
}

/* append l; returns 1 if the queue was empty (the loop takes everything it finds, so that is the
 * only push that needs to wake it) */
static inline int mq_push_link(mqueue_t *q, qlink_t *l) {
  l->next = NULL;
  pthread_mutex_lock(&q->mu);
  int was_empty = q->head == NULL;
  *q->tail = l;
  q->tail = &l->next;
  pthread_mutex_unlock(&q->mu);
  return was_empty;
}

/* detach the whole list, oldest first */
static inline qlink_t *mq_take_all(mqueue_t *q) {
  pthread_mutex_lock(&q->mu);
  qlink_t *l = q->head;
  q->head = NULL;
  q->tail = &q->head;
  pthread_mutex_unlock(&q->mu);
  return l;
}

/* callthread shapes: a node per call holding (fn, arg), freed by mq_drain after the call.
 * Their producers wake the loop only when the push found the queue empty. */
typedef void (*qfn_t)(void *arg);
typedef struct qnode {
  qlink_t link; /* first: a qlink_t * is a qnode_t * */
  qfn_t fn;
  void *arg;
} qnode_t;

/* returns 1 if the queue was empty (caller must wake the loop) */
static inline int mq_push(mqueue_t *q, qfn_t fn, void *arg) {
  qnode_t *n = malloc(sizeof *n);
  if (!n) abort();
  n->fn = fn;
  n->arg = arg;
  return mq_push_link(q, &n->link);
}

/* run every queued call; returns how many ran */
static inline size_t mq_drain(mqueue_t *q) {
  qlink_t *l = mq_take_all(q);
  size_t k = 0;
  while (l) {
    qlink_t *next = l->next;
    qnode_t *n = (qnode_t *)l;
    n->fn(n->arg);
    free(n);
    l = next;
    k++;
  }
  return k;
}

/* ------------------------------------------ closures (callthread_closure shapes) */
/* What an application calling into the loop from a thread usually has: a malloc'd closure per
 * call (function + captured state) that the callback frees once it ran.  libreactor gets it as the
 * user data of reactor_call_from_thread (its own queue record is the library's business); the
 * peers link the closure itself into the mutex queue above and call their async send once per
 * call, as code that does not track the queue's emptiness does. */

typedef struct closure closure_t;
/* runs on the loop thread and frees c; returns 1 = stop the loop */
typedef int (*closure_fn)(closure_t *c);
struct closure {
  qlink_t link;     /* the peers' queue link (first, see mqueue_t); unused by libreactor */
  closure_fn fn;
  uint64_t payload; /* flood: the call's index; paced: its CLOCK_MONOTONIC send time */
  uint64_t state;   /* stands for the rest of the captured state; not read */
};
_Static_assert(sizeof(closure_t) == 32, "the closure shapes promise a 32-byte closure");

static inline closure_t *closure_new(closure_fn fn, uint64_t payload) {
  closure_t *c = malloc(sizeof *c);
  if (!c) abort();
  c->link.next = NULL;
  c->fn = fn;
  c->payload = payload;
  c->state = 0;
  return c;
}

/* peers, on the loop thread: run every queued closure (each frees itself) in one batch;
 * returns 1 if one of them asked to stop the loop */
static inline int cq_drain(mqueue_t *q) {
  qlink_t *l = mq_take_all(q);
  int stop = 0;
  while (l) {
    qlink_t *next = l->next; /* read before fn frees the closure */
    closure_t *c = (closure_t *)l;
    stop |= c->fn(c);
    l = next;
  }
  return stop;
}

/* ------------------------------------------ callthread / async shared state */

/* flood */
static size_t ct_n;                  /* calls to make */
static size_t ct_count;              /* calls seen (loop thread) */
static size_t ct_order_errors;       /* payload != expected index */
static _Atomic uint64_t ct_t_first;  /* producer: before first send */
static uint64_t ct_t_last;           /* loop: at last callback */
static size_t ct_send_errors;

/* paced */
static uint64_t *lat_ns; /* per-call one-way latency */
static double paced_rate;
static uint64_t paced_t0;

/* producer side helpers: the per-library program supplies send_call(fn, arg) */
static void paced_wait(size_t i) {
  uint64_t target = paced_t0 + (uint64_t)((double)i * 1e9 / paced_rate);
  while (now_ns() < target) { /* spin: 10 us spacing is below sleep granularity */
  }
}

static void report_flood(void) {
  double secs = (double)(ct_t_last - atomic_load(&ct_t_first)) / 1e9;
  result("rate", (double)ct_n / secs, "calls_per_s");
  result("order_errors", (double)ct_order_errors, "count");
  if (ct_send_errors) result("send_errors", (double)ct_send_errors, "count");
}

static const char *arg_str(const char *key, const char *dflt) {
  size_t kl = strlen(key);
  for (int i = 2; i < g_argc; i++)
    if (strncmp(g_argv[i], key, kl) == 0 && g_argv[i][kl] == '=') return g_argv[i] + kl + 1;
  return dflt;
}

static void report_paced(size_t n) {
  const char *dump = arg_str("dump", NULL); /* dump=FILE: "index latency_ns" per call, in order */
  if (dump) {
    FILE *f = fopen(dump, "w");
    if (f) {
      for (size_t i = 0; i < n; i++) fprintf(f, "%zu %llu\n", i, (unsigned long long)lat_ns[i]);
      fclose(f);
    }
  }
  size_t skip = n > 2000 ? 1000 : 0; /* first 10 ms are warm-up */
  uint64_t *v = lat_ns + skip;
  size_t m = n - skip;
  qsort(v, m, sizeof *v, cmp_u64);
  result("p50", (double)pct(v, m, 0.50) / 1000.0, "us");
  result("p99", (double)pct(v, m, 0.99) / 1000.0, "us");
  result("p999", (double)pct(v, m, 0.999) / 1000.0, "us");
  result("samples", (double)m, "count");
  if (ct_send_errors) result("send_errors", (double)ct_send_errors, "count");
}

/* async */
static size_t as_n;
static atomic_int as_done;        /* set by the producer before its last send */
static size_t as_callbacks;       /* loop thread */
static uint64_t as_t0, as_t1;     /* producer: first send .. after last send */
static uint64_t as_t_end;         /* loop: callback that saw as_done */
static size_t as_send_errors;

static void report_async(void) {
  result("rate", (double)as_n / ((double)(as_t1 - as_t0) / 1e9), "sends_per_s");
  result("callbacks", (double)as_callbacks, "count");
  result("wall_to_last_cb", (double)(as_t_end - as_t0) / 1e6, "ms");
  if (as_send_errors) result("send_errors", (double)as_send_errors, "count");
}

/* ------------------------------------------ fanout shared state (libevent test/bench.c) */

static int fo_pipes = 1000, fo_active = 100, fo_writes = 1000, fo_rounds = 500;
static int *fo_fds;        /* 2 per pipe: [2i] read end, [2i+1] write end */
static long fo_count;      /* bytes read this round */
static long fo_fired;      /* bytes written this round */
static long fo_writes_left;
static long fo_failures;

static void fo_setup(void) {
  raise_nofile();
  fo_pipes = (int)arg_num("pipes", fo_pipes);
  fo_active = (int)arg_num("active", fo_active);
  fo_writes = (int)arg_num("writes", fo_writes);
  fo_rounds = (int)arg_num("rounds", fo_rounds);
  fo_fds = calloc((size_t)fo_pipes * 2, sizeof(int));
  for (int i = 0; i < fo_pipes; i++)
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, &fo_fds[2 * i]) != 0) die("socketpair", errno);
}

/* the body of libevent's read_cb: read 1 byte, pass a byte on to the next pipe */
static inline void fo_on_readable(long idx, int fd) {
  unsigned char ch;
  ssize_t n = recv(fd, &ch, 1, 0);
  if (n >= 0)
    fo_count += n;
  else
    fo_failures++;
  if (fo_writes_left) {
    long widx = idx + 1;
    if (widx >= fo_pipes) widx -= fo_pipes;
    if (send(fo_fds[2 * widx + 1], "e", 1, 0) != 1) fo_failures++;
    fo_writes_left--;
    fo_fired++;
  }
}

/* kick a round off: one byte into each of the `active` spaced pipes */
static void fo_round_start(void) {
  fo_fired = 0;
  int space = (fo_pipes / fo_active) * 2;
  for (int i = 0; i < fo_active; i++, fo_fired++)
    if (send(fo_fds[i * space + 1], "e", 1, 0) != 1) fo_failures++;
  fo_count = 0;
  fo_writes_left = fo_writes;
}

/* run `rounds` rounds; loop_once() runs one non-blocking loop pass */
static void fo_run(void (*loop_once)(void)) {
  loop_once(); /* settle */
  /* one untimed warm-up round */
  fo_round_start();
  while (fo_count != fo_fired) loop_once();
  uint64_t *round_ns = calloc((size_t)fo_rounds, sizeof(uint64_t));
  uint64_t events = 0, passes = 0;
  uint64_t c0 = cpu_ns();
  for (int r = 0; r < fo_rounds; r++) {
    fo_round_start();
    uint64_t t0 = now_ns();
    do {
      loop_once();
      passes++;
    } while (fo_count != fo_fired);
    round_ns[r] = now_ns() - t0;
    events += (uint64_t)fo_count;
  }
  uint64_t c1 = cpu_ns();
  qsort(round_ns, (size_t)fo_rounds, sizeof(uint64_t), cmp_u64);
  result("cpu_per_event", (double)(c1 - c0) / 1000.0 / (double)events, "us");
  result("round_median", (double)pct(round_ns, (size_t)fo_rounds, 0.5) / 1000.0, "us");
  result("passes_per_round", (double)passes / fo_rounds, "count");
  if (fo_failures) result("failures", (double)fo_failures, "count");
}

/* ------------------------------------------ timers shared state */

static size_t tm_n;
static size_t tm_fired;
static uint64_t tm_rss0, tm_cpu0;

static void tm_begin(void) {
  tm_n = (size_t)arg_num("n", 1000000);
  tm_fired = 0;
  tm_rss0 = maxrss_bytes();
  tm_cpu0 = cpu_ns();
}

static void tm_end(void) {
  uint64_t cpu = cpu_ns() - tm_cpu0;
  uint64_t rss = maxrss_bytes();
  if (tm_fired != tm_n) result("missing", (double)(tm_n - tm_fired), "count");
  result("rate", (double)tm_n / ((double)cpu / 1e9), "per_cpu_s");
  result("rss_per_timer", (double)(rss - tm_rss0) / (double)tm_n, "bytes");
}

static void common_init(int argc, char **argv) {
  g_argc = argc;
  g_argv = argv;
  if (argc < 2) {
    fprintf(stderr,
            "usage: %s timers|fanout|callthread|callthread_paced|callthread_closure|"
            "callthread_closure_paced|async [key=value...]\n",
            argv[0]);
    exit(2);
  }
  g_shape = argv[1];
  watchdog((unsigned)arg_num("timeout", 20));
  ct_n = (size_t)arg_num("n", 1000000);
  as_n = ct_n;
  paced_rate = arg_num("rate", 100000);
}

static size_t paced_n;

/* ------------------------------------------ producers (run on a separate pthread) */
/* Each program defines these senders (0 = sent, else an error code).  send_closure hands a
 * malloc'd closure over; on an error it was not queued and send_closure frees it. */
static int send_flood(void *arg);
static int send_paced(void *arg);
static int send_closure(closure_t *c);
static int send_async(void);

/* loop-side bodies of the closure shapes (below, next to flood_seen / paced_seen) */
static int closure_flood_fn(closure_t *c);
static int closure_paced_fn(closure_t *c);

/* One flood / paced producer loop for both the plain shapes (the payload is the call's argument)
 * and the closure shapes (the payload goes into a fresh 32-byte closure per call).  `closure` is
 * a constant at each call site, so the compiler specialises the loop. */
static inline void flood_calls(int closure) {
  atomic_store(&ct_t_first, now_ns());
  for (size_t i = 0; i < ct_n; i++) {
    int rc = closure ? send_closure(closure_new(closure_flood_fn, i))
                     : send_flood((void *)(uintptr_t)i);
    if (rc != 0) ct_send_errors++;
  }
}

static inline void paced_calls(int closure) {
  paced_t0 = now_ns() + 1000000; /* start 1 ms from now */
  for (size_t i = 0; i < paced_n; i++) {
    paced_wait(i);
    uint64_t t = now_ns(); /* send time, taken before the closure's malloc: that is part of the call */
    int rc = closure ? send_closure(closure_new(closure_paced_fn, t))
                     : send_paced((void *)(uintptr_t)t);
    if (rc != 0) ct_send_errors++;
  }
}

static void *flood_producer(void *unused) {
  (void)unused;
  flood_calls(0);
  return NULL;
}
static void *paced_producer(void *unused) {
  (void)unused;
  paced_calls(0);
  return NULL;
}
static void *closure_flood_producer(void *unused) {
  (void)unused;
  flood_calls(1);
  return NULL;
}
static void *closure_paced_producer(void *unused) {
  (void)unused;
  paced_calls(1);
  return NULL;
}

static void *async_producer(void *unused) {
  (void)unused;
  as_t0 = now_ns();
  for (size_t i = 0; i < as_n; i++) {
    if (i + 1 == as_n) atomic_store(&as_done, 1); /* the last send guarantees a callback after it */
    /* the last send may land after the loop already stopped on as_done: not an error */
    if (send_async() != 0 && i + 1 != as_n) as_send_errors++;
  }
  as_t1 = now_ns();
  return NULL;
}

static pthread_t start_thread(void *(*fn)(void *)) {
  pthread_t t;
  if (pthread_create(&t, NULL, fn, NULL) != 0) die("pthread_create", errno);
  return t;
}

/* ------------------------------------------ loop-thread bodies; return 1 = stop the loop */

static inline int flood_seen(void *arg) {
  if ((uintptr_t)arg != ct_count) ct_order_errors++;
  if (++ct_count == ct_n) {
    ct_t_last = now_ns();
    return 1;
  }
  return 0;
}

static inline int paced_seen(void *arg) {
  lat_ns[ct_count++] = now_ns() - (uint64_t)(uintptr_t)arg;
  return ct_count == paced_n;
}

/* the closure shapes' loop-side bodies: the same bookkeeping, then the callback frees its closure */
static int closure_flood_fn(closure_t *c) {
  int stop = flood_seen((void *)(uintptr_t)c->payload);
  free(c);
  return stop;
}

static int closure_paced_fn(closure_t *c) {
  int stop = paced_seen((void *)(uintptr_t)c->payload);
  free(c);
  return stop;
}

static inline int async_seen(void) {
  as_callbacks++;
  if (atomic_load(&as_done)) {
    as_t_end = now_ns();
    return 1;
  }
  return 0;
}

/* ------------------------------------------ main */

static int run_timers(void);
static int run_fanout(void);
static int run_callthread(void);
static int run_callthread_paced(void);
static int run_callthread_closure(void);
static int run_callthread_closure_paced(void);
static int run_async(void);

/* the paced shapes: latency buffer, the loop thread's CPU around the run, report */
static int run_paced(int (*run)(void)) {
  lat_ns = malloc(paced_n * sizeof(uint64_t));
  memset(lat_ns, 0, paced_n * sizeof(uint64_t)); /* fault the pages in now */
  uint64_t c0 = thread_cpu_ns();
  int rc = run();
  uint64_t c1 = thread_cpu_ns();
  if (rc == 0) {
    report_paced(ct_count);
    /* CPU the loop thread (main) spent per call: shows busy polling or costly wake-ups */
    result("loop_cpu_per_call", (double)(c1 - c0) / 1000.0 / (double)ct_count, "us");
  }
  return rc;
}

int main(int argc, char **argv) {
  common_init(argc, argv);
  paced_n = (size_t)(paced_rate * arg_num("secs", 1.5));
  int rc;
  if (!strcmp(g_shape, "timers"))
    rc = run_timers();
  else if (!strcmp(g_shape, "fanout")) {
    fo_setup();
    rc = run_fanout();
  } else if (!strcmp(g_shape, "callthread")) {
    if ((rc = run_callthread()) == 0) report_flood();
  } else if (!strcmp(g_shape, "callthread_closure")) {
    if ((rc = run_callthread_closure()) == 0) report_flood();
  } else if (!strcmp(g_shape, "callthread_paced"))
    rc = run_paced(run_callthread_paced);
  else if (!strcmp(g_shape, "callthread_closure_paced"))
    rc = run_paced(run_callthread_closure_paced);
  else if (!strcmp(g_shape, "async")) {
    if ((rc = run_async()) == 0) report_async();
  } else {
    fprintf(stderr, "unknown shape %s\n", g_shape);
    return 2;
  }
  return rc;
}

#endif
