/*
 * race_util.h - helpers shared by the test_race_*.c programs (threads racing API calls).
 *
 *   - a "crew": persistent worker threads that run one body per round, started and ended by
 *     two barriers shared with the main thread (no thread creation per round);
 *   - heap user data whose release frees it and counts, so a missing release is a leak
 *     (valgrind/LSan), a second release is a double free (glibc/ASan/valgrind) and a release
 *     of data the caller kept is a double free too (the caller frees what was refused);
 *   - a small per-thread PRNG and a CPU-burning spin, to vary where a race lands.
 *
 * Only contract guarantees are asserted by the tests; timing is only used to spread races.
 */
#ifndef REACTOR_RACE_UTIL_H
#define REACTOR_RACE_UTIL_H

#include "test_util.h"

#include <sched.h>

#define RACE_MAX_CREW 8

typedef struct race_crew race_crew_t;
typedef void (*race_body_fn)(race_crew_t *crew, int index);

struct race_crew {
  int n;
  pthread_t threads[RACE_MAX_CREW];
  pthread_barrier_t start, end;
  race_body_fn body;
  void *arg;
  long round; /* written by the main thread before `start`; read by the crew after it */
  int quit;   /* likewise */
};

typedef struct race_crew_arg {
  race_crew_t *crew;
  int index;
} race_crew_arg_t;

/* One crew per program (the per-thread arguments live here). */
static race_crew_arg_t race_crew_args[RACE_MAX_CREW] __attribute__((unused));

static inline void *race_crew_main(void *p) {
  race_crew_arg_t *a = p;
  race_crew_t *c = a->crew;
  for (;;) {
    pthread_barrier_wait(&c->start);
    if (c->quit) return NULL;
    c->body(c, a->index);
    pthread_barrier_wait(&c->end);
  }
}

/* Starts n persistent threads that run body(crew, index) once per round. */
static inline void race_crew_init(race_crew_t *c, int n, race_body_fn body, void *arg) {
  REQUIRE(n > 0 && n <= RACE_MAX_CREW && race_crew_args[0].crew == NULL);
  memset(c, 0, sizeof *c);
  c->n = n;
  c->body = body;
  c->arg = arg;
  REQUIRE(pthread_barrier_init(&c->start, NULL, (unsigned)n + 1) == 0);
  REQUIRE(pthread_barrier_init(&c->end, NULL, (unsigned)n + 1) == 0);
  for (int i = 0; i < n; i++) {
    race_crew_args[i].crew = c;
    race_crew_args[i].index = i;
    REQUIRE(pthread_create(&c->threads[i], NULL, race_crew_main, &race_crew_args[i]) == 0);
  }
}

/* Releases the crew into round `round`; the main thread may then race it. */
static inline void race_crew_begin(race_crew_t *c, long round) {
  c->round = round;
  pthread_barrier_wait(&c->start);
}

/* Waits until every crew thread finished the round's body. */
static inline void race_crew_end(race_crew_t *c) { pthread_barrier_wait(&c->end); }

static inline void race_crew_destroy(race_crew_t *c) {
  c->quit = 1;
  pthread_barrier_wait(&c->start);
  for (int i = 0; i < c->n; i++) pthread_join(c->threads[i], NULL);
  pthread_barrier_destroy(&c->start);
  pthread_barrier_destroy(&c->end);
}

/* ---- randomness and spinning --------------------------------------------------------- */

/* xorshift64*: seed with anything (0 is mapped to a constant). */
static inline uint64_t race_rand(uint64_t *state) {
  uint64_t x = *state ? *state : 0x9E3779B97F4A7C15ULL;
  x ^= x >> 12;
  x ^= x << 25;
  x ^= x >> 27;
  *state = x;
  return x * 0x2545F4914F6CDD1DULL;
}

static inline uint64_t race_seed(long round, int who) {
  uint64_t s = ((uint64_t)round + 1) * 0x9E3779B97F4A7C15ULL ^
               ((uint64_t)who + 1) * 0xBF58476D1CE4E5B9ULL;
  race_rand(&s);
  return s;
}

/* Burns roughly `n` short steps of CPU (no system call), to shift where a race lands. */
static inline void race_spin(unsigned n) {
  volatile unsigned sink = 0;
  for (unsigned i = 0; i < n; i++) sink += i;
  (void)sink;
}

/* A spin gate: parties leave it within ~100 ns of each other (measured on 2 cores: the closest
 * two in ~95% of rounds; a pthread barrier wakes them one by one, microseconds apart). Each
 * party arrives and waits, yielding now and then, until all arrived; then the last one waits
 * ~1 us, long enough for the others to be spinning without system calls, and opens the gate.
 * Reset it before each round. Under valgrind (one thread at a time) waiters yield often. */
typedef struct race_gate {
  atomic_int arrived;
  atomic_int open;
} race_gate_t;

static inline void race_gate_reset(race_gate_t *g) {
  atomic_store(&g->arrived, 0);
  atomic_store(&g->open, 0);
}

static inline void race_gate(race_gate_t *g, int parties) {
  if (atomic_fetch_add(&g->arrived, 1) + 1 == parties) {
    race_spin(2000);
    atomic_store_explicit(&g->open, 1, memory_order_release);
    return;
  }
  unsigned tight = tu_valgrind() ? 255u : 0xFFFFFu; /* yield period once all arrived */
  for (unsigned spins = 1; !atomic_load_explicit(&g->open, memory_order_acquire); spins++) {
    int all_in = atomic_load_explicit(&g->arrived, memory_order_relaxed) >= parties;
    unsigned period = all_in ? tight : 255u;
    if ((spins & period) == 0) sched_yield();
  }
}

/* ---- heap user data ------------------------------------------------------------------- */

/* Counters one test (or one section of it) keeps about its heap user data. */
typedef struct race_counts {
  atomic_long accepted; /* calls that returned OK (ownership passed to the library) */
  atomic_long refused;  /* calls that returned an error (the caller freed the data) */
  atomic_long ran;      /* callbacks that ran */
  atomic_long released; /* release hooks that ran */
} race_counts_t;

typedef struct race_ud {
  race_counts_t *counts;
  atomic_int ran;  /* callback (or pool work) calls */
  atomic_int done; /* completion calls (call_in_thread_with_callback's done) */
  long tag;
} race_ud_t;

static inline race_ud_t *race_ud_new(race_counts_t *counts, long tag) {
  race_ud_t *u = calloc(1, sizeof *u);
  REQUIRE(u != NULL);
  u->counts = counts;
  u->tag = tag;
  return u;
}

/* The release hook: counts and frees (a second release is a double free). */
static inline void race_ud_release(void *p) {
  race_ud_t *u = p;
  atomic_fetch_add(&u->counts->released, 1);
  free(u);
}

/* A callback that counts; running twice for one registration is a check failure. */
static inline void race_ud_ran(race_ud_t *u) {
  if (atomic_fetch_add(&u->ran, 1) != 0) {
    fprintf(stderr, "   callback ran twice for one registration (tag %ld)\n", u->tag);
    atomic_fetch_add(&tu_failures, 1);
  }
  atomic_fetch_add(&u->counts->ran, 1);
}

static inline void race_ud_cb(reactor_t *r, void *p) {
  (void)r;
  race_ud_ran(p);
}

/* Books the outcome of a call that took `u` (made with `counts`): OK leaves it with the library
 * (which may have released it already: `u` is not touched then), else the caller frees it at
 * once (so a later release by the library is a double free). */
static inline void race_ud_settle(race_counts_t *counts, race_ud_t *u, int rc) {
  if (rc == REACTOR_OK) {
    atomic_fetch_add(&counts->accepted, 1);
  } else {
    atomic_fetch_add(&counts->refused, 1);
    free(u);
  }
}

static inline void race_counts_reset(race_counts_t *c) {
  atomic_store(&c->accepted, 0);
  atomic_store(&c->refused, 0);
  atomic_store(&c->ran, 0);
  atomic_store(&c->released, 0);
}

/* Every accepted registration was released exactly once (checked once the reactor is freed). */
#define RACE_CHECK_RELEASED(counts)                                                          \
  do {                                                                                     \
    long acc_ = atomic_load(&(counts)->accepted), rel_ = atomic_load(&(counts)->released); \
    if (acc_ != rel_) {                                                                    \
      fprintf(stderr, "%s:%d: %ld registrations accepted but %ld releases ran\n", __FILE__,  \
              __LINE__, acc_, rel_);                                                       \
      atomic_fetch_add(&tu_failures, 1);                                                   \
    }                                                                                      \
  } while (0)

/* Is `rc` one of the `n` statuses in `allowed`? Otherwise report it (with what returned it). */
static inline int race_status_in(int rc, const int *allowed, int n, const char *what, long round) {
  for (int i = 0; i < n; i++)
    if (rc == allowed[i]) return 1;
  fprintf(stderr, "   round %ld: %s -> %d (%s): not an allowed status\n", round, what, rc,
          tu_status(rc));
  atomic_fetch_add(&tu_failures, 1);
  return 0;
}

#define RACE_ALLOWED(rc, what, round, ...)                                                   \
  race_status_in((rc), (const int[]){__VA_ARGS__},                                           \
                 (int)(sizeof((const int[]){__VA_ARGS__}) / sizeof(int)), (what), (round))

/* Stop reporting after a few failures of one kind (thousands of rounds would flood the log). */
static inline int race_report(atomic_int *budget) { return atomic_fetch_add(budget, 1) < 5; }

/* A reactor with default options except a small thread pool (pool threads are per round). */
static inline reactor_t *race_new_reactor(size_t pool_max) {
  reactor_options_t o = tu_options();
  o.thread_pool_max = pool_max;
  return tu_new_reactor_with(&o);
}

#endif /* REACTOR_RACE_UTIL_H */
