/*
 * test_util.h - small shared helpers for the libreactor C test programs.
 *
 * Conventions (relied on by the harness):
 *   - each test is a standalone program: exit 0 = pass, 77 = skip, else fail;
 *   - REACTOR_BACKEND (epoll|poll) in the environment selects the backend, so
 *     tests create reactors with reactor_new(NULL, ...) or REACTOR_BACKEND_DEFAULT;
 *   - REACTOR_TEST_VALGRIND=1 means "running under valgrind": scale heavy loops down.
 *
 * CHECK* macros are non-fatal: they print file:line and the expression and count
 * the failure; tu_finish() turns the count into the exit status.  REQUIRE* macros
 * are fatal (used where continuing would crash or hang).
 */
#ifndef REACTOR_TEST_UTIL_H
#define REACTOR_TEST_UTIL_H

#include <reactor.h>

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* Number of failed checks so far (checks may run on several threads). */
static atomic_int tu_failures __attribute__((unused));

/* Human-readable name of a status, via reactor_strerror (never NULL by contract,
 * but be defensive so a broken library cannot crash the test's own printing). */
static inline const char *tu_status(int status) {
  const char *s = reactor_strerror(status);
  return s ? s : "(reactor_strerror returned NULL)";
}

#define CHECK(expr)                                                              \
  do {                                                                           \
    if (!(expr)) {                                                               \
      fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #expr);   \
      atomic_fetch_add(&tu_failures, 1);                                         \
    }                                                                            \
  } while (0)

/* Integer equality (anything that fits in long long). */
#define CHECK_EQ(a, b)                                                           \
  do {                                                                           \
    long long tu_a_ = (long long)(a), tu_b_ = (long long)(b);                    \
    if (tu_a_ != tu_b_) {                                                        \
      fprintf(stderr, "%s:%d: CHECK_EQ failed: %s == %s (%lld vs %lld)\n",       \
              __FILE__, __LINE__, #a, #b, tu_a_, tu_b_);                         \
      atomic_fetch_add(&tu_failures, 1);                                         \
    }                                                                            \
  } while (0)

/* Status equality: prints both statuses with their reactor_strerror text. */
#define CHECK_RC(expr, expected)                                                 \
  do {                                                                           \
    int tu_rc_ = (expr), tu_ex_ = (expected);                                    \
    if (tu_rc_ != tu_ex_) {                                                      \
      fprintf(stderr, "%s:%d: CHECK_RC failed: %s\n   got %d (%s), want %s = %d (%s)\n", \
              __FILE__, __LINE__, #expr, tu_rc_, tu_status(tu_rc_), #expected,  \
              tu_ex_, tu_status(tu_ex_));                                        \
      atomic_fetch_add(&tu_failures, 1);                                         \
    }                                                                            \
  } while (0)

#define CHECK_OK(expr) CHECK_RC((expr), REACTOR_OK)

/* Doubles within an absolute tolerance. */
#define CHECK_NEAR(a, b, eps)                                                    \
  do {                                                                           \
    double tu_a_ = (double)(a), tu_b_ = (double)(b);                             \
    if (!(fabs(tu_a_ - tu_b_) <= (eps))) {                                       \
      fprintf(stderr, "%s:%d: CHECK_NEAR failed: %s ~ %s (%.9g vs %.9g, eps %g)\n", \
              __FILE__, __LINE__, #a, #b, tu_a_, tu_b_, (double)(eps));          \
      atomic_fetch_add(&tu_failures, 1);                                         \
    }                                                                            \
  } while (0)

/* Fatal variants: report and exit(1) at once. */
#define REQUIRE(expr)                                                            \
  do {                                                                           \
    if (!(expr)) {                                                               \
      fprintf(stderr, "%s:%d: REQUIRE failed: %s\n", __FILE__, __LINE__, #expr); \
      exit(1);                                                                   \
    }                                                                            \
  } while (0)

#define REQUIRE_OK(expr)                                                         \
  do {                                                                           \
    int tu_rc_ = (expr);                                                         \
    if (tu_rc_ != REACTOR_OK) {                                                  \
      fprintf(stderr, "%s:%d: REQUIRE_OK failed: %s -> %d (%s)\n", __FILE__,     \
              __LINE__, #expr, tu_rc_, tu_status(tu_rc_));                       \
      exit(1);                                                                   \
    }                                                                            \
  } while (0)

/* Print a sub-check banner. */
#define SECTION(name) printf("-- %s\n", (name))

/* ---- environment ------------------------------------------------------- */

/* True when the harness runs us under valgrind (REACTOR_TEST_VALGRIND=1). */
static inline int tu_valgrind(void) {
  const char *v = getenv("REACTOR_TEST_VALGRIND");
  return v && *v && strcmp(v, "0") != 0;
}

/* Pick the loop size for the current mode. */
static inline long tu_scale(long native, long under_valgrind) {
  return tu_valgrind() ? under_valgrind : native;
}

/* ---- time -------------------------------------------------------------- */

/* CLOCK_MONOTONIC in seconds. */
static inline double tu_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static inline void tu_sleep_ms(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) == -1 && errno == EINTR) {
  }
}

/* ---- watchdog: a hung test fails loudly instead of hanging the harness --- */

static inline void tu_watchdog_handler(int sig) {
  (void)sig;
  static const char msg[] = "watchdog: test timed out (hang?)\n";
  ssize_t n = write(2, msg, sizeof msg - 1);
  (void)n;
  _exit(3);
}

/* Arm a SIGALRM watchdog; seconds are multiplied by 5 under valgrind. */
static inline void tu_watchdog(unsigned seconds) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = tu_watchdog_handler;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGALRM, &sa, NULL);
  alarm(tu_valgrind() ? seconds * 5 : seconds);
}

/* ---- fds ---------------------------------------------------------------- */

/* A pipe with O_NONBLOCK|O_CLOEXEC on both ends; fatal on failure. */
static inline void tu_pipe(int fds[2]) {
  if (pipe2(fds, O_NONBLOCK | O_CLOEXEC) != 0) {
    perror("pipe2");
    exit(1);
  }
}

/* A non-blocking AF_UNIX stream socketpair; fatal on failure. */
static inline void tu_socketpair(int sv[2]) {
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) != 0) {
    perror("socketpair");
    exit(1);
  }
}

static inline void tu_close_pair(int fds[2]) {
  close(fds[0]);
  close(fds[1]);
}

/* Write one byte; fatal if it fails. */
static inline void tu_write_byte(int fd) {
  char c = 'x';
  if (write(fd, &c, 1) != 1) {
    perror("write");
    exit(1);
  }
}

/* Read and discard everything currently readable; returns bytes drained. */
static inline long tu_drain(int fd) {
  char buf[4096];
  long total = 0;
  for (;;) {
    ssize_t n = read(fd, buf, sizeof buf);
    if (n <= 0) break;
    total += n;
  }
  return total;
}

/* Fill a non-blocking fd's buffer until write would block. */
static inline void tu_fill(int fd) {
  char buf[4096];
  memset(buf, 'f', sizeof buf);
  for (;;) {
    ssize_t n = write(fd, buf, sizeof buf);
    if (n > 0) continue;
    if (n < 0 && errno == EINTR) continue;
    break;
  }
  /* some kernels accept small writes after a large one fails */
  for (;;) {
    ssize_t n = write(fd, buf, 1);
    if (n == 1 || (n < 0 && errno == EINTR)) continue;
    break;
  }
}

/* Does fd list (n entries) contain v? */
static inline int tu_contains(const int *fds, size_t n, int v) {
  for (size_t i = 0; i < n; i++)
    if (fds[i] == v) return 1;
  return 0;
}

/* ---- reactors ---------------------------------------------------------- */

/* New reactor with default options (REACTOR_BACKEND from the environment). */
static inline reactor_t *tu_new_reactor(void) {
  reactor_t *r = NULL;
  REQUIRE_OK(reactor_new(NULL, &r));
  REQUIRE(r != NULL);
  return r;
}

/* New reactor with these options (see tu_options); fatal on failure. */
static inline reactor_t *tu_new_reactor_with(const reactor_options_t *o) {
  reactor_t *r = NULL;
  REQUIRE_OK(reactor_new(o, &r));
  REQUIRE(r != NULL);
  return r;
}

/* Default options (REACTOR_BACKEND from the environment), to adjust before tu_new_reactor_with. */
static inline reactor_options_t tu_options(void) {
  reactor_options_t o;
  reactor_options_init(&o);
  o.backend = REACTOR_BACKEND_DEFAULT;
  return o;
}

/* New reactor with a manual clock (time moves only by reactor_clock_advance). */
static inline reactor_t *tu_new_manual_reactor(void) {
  reactor_options_t o = tu_options();
  o.manual_clock = 1;
  return tu_new_reactor_with(&o);
}

/* Print the banner: program name and backend. */
static inline void tu_banner(const char *prog, reactor_t *r) {
  const char *b = reactor_backend_name(r);
  printf("%s: backend=%s%s\n", prog, b ? b : "(null)", tu_valgrind() ? " (valgrind)" : "");
}

/* Print the banner for programs that create their reactors later: a probe reactor tells the backend. */
static inline void tu_banner_probe(const char *prog) {
  reactor_t *probe = tu_new_reactor();
  tu_banner(prog, probe);
  CHECK_OK(reactor_free(probe));
}

/* Read the loop statistics; fatal on failure. */
static inline reactor_stats_t tu_stats(const reactor_t *r) {
  reactor_stats_t s;
  memset(&s, 0, sizeof s);
  s.struct_size = (uint32_t)sizeof s;
  REQUIRE_OK(reactor_stats(r, &s));
  return s;
}

/* ---- generic callbacks -------------------------------------------------- */

/* A release function that counts into an atomic_int pointed to by user data. */
static inline void tu_count_release(void *ud) { atomic_fetch_add((atomic_int *)ud, 1); }

/* A callback that counts into an atomic_int pointed to by user data. */
static inline void tu_count_cb(reactor_t *r, void *ud) {
  (void)r;
  atomic_fetch_add((atomic_int *)ud, 1);
}

/* Callbacks that stop / crash the reactor. */
static inline void tu_stop_cb(reactor_t *r, void *ud) {
  (void)ud;
  CHECK_OK(reactor_stop(r));
}

static inline void tu_noop_cb(reactor_t *r, void *ud) {
  (void)r;
  (void)ud;
}

/* End of test: report and give the exit status. */
static inline int tu_finish(const char *prog) {
  int f = atomic_load(&tu_failures);
  if (f) {
    printf("%s: FAIL (%d failed checks)\n", prog, f);
    return 1;
  }
  printf("%s: PASS\n", prog);
  return 0;
}

#endif /* REACTOR_TEST_UTIL_H */
