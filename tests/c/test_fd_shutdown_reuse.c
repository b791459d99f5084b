/*
 * test_fd_shutdown_reuse.c - fd registrations at shutdown and after fd reuse
 * (API.md §5, §7; DECISIONS "System events" shutdown order, "File descriptors").
 *
 * Checks:
 *   - on shutdown every remaining reader/writer (pipe reader, pipe writer, socket with
 *     both) gets exactly one call with REACTOR_SHUTDOWN, during-shutdown (is_running 0),
 *     before user DURING triggers; before-shutdown still sees them listed; afterwards
 *     the lists are empty and every release ran exactly once;
 *   - an fd closed and reused (close it, a new pipe gets the same number, add_reader with
 *     a new callback) never reaches the old callback; the old user data is released;
 *   - a closed and reused fd number whose stale registration was not replaced never
 *     delivers the new pipe's data to the old callback;
 *   - poll backend: a closed (not reused) fd reports REACTOR_ERROR once and is removed;
 *     epoll: no callback for it;
 *   - "shutdown" fired by hand while idle gives registrations their SHUTDOWN call and
 *     removes them; the reactor can still run afterwards (DECISIONS).
 */
#include "test_util.h"

static const char *PROG = "test_fd_shutdown_reuse";

typedef struct fdrec {
  const char *name;
  int calls, shutdown_calls, readable_calls, error_calls, releases;
  int running_at_shutdown;
} fdrec_t;

static void fd_release(void *ud) { ((fdrec_t *)ud)->releases++; }

static void fd_cb(reactor_t *r, int fd, uint32_t events, void *ud) {
  fdrec_t *x = ud;
  x->calls++;
  if (events & REACTOR_SHUTDOWN) {
    x->shutdown_calls++;
    x->running_at_shutdown = reactor_is_running(r);
  }
  if (events & REACTOR_READABLE) {
    x->readable_calls++;
    tu_drain(fd); /* level-triggered: do not spin */
  }
  if (events & REACTOR_ERROR) x->error_calls++;
}

static void fresh(fdrec_t *x, const char *name) {
  memset(x, 0, sizeof *x);
  x->name = name;
  x->running_at_shutdown = -1;
}

/* ---- shutdown ------------------------------------------------------------ */

static fdrec_t r1, w1, r2, w2;
static int before_ok, during_ran;

static int shutdown_calls_total(void) {
  return r1.shutdown_calls + w1.shutdown_calls + r2.shutdown_calls + w2.shutdown_calls;
}

static int before_shutdown(reactor_t *r, uint64_t id, void *ud) {
  (void)id;
  (void)ud;
  int fds[8];
  size_t nr = 0, nw = 0;
  CHECK_OK(reactor_get_readers(r, fds, 8, &nr));
  CHECK_OK(reactor_get_writers(r, fds, 8, &nw));
  CHECK_EQ(nr, 2);
  CHECK_EQ(nw, 2);
  CHECK_EQ(shutdown_calls_total(), 0);
  before_ok = 1;
  return 0;
}

static int during_shutdown(reactor_t *r, uint64_t id, void *ud) {
  (void)id;
  (void)ud;
  during_ran = 1;
  /* fd registrations got their SHUTDOWN call before user DURING triggers and are gone */
  CHECK_EQ(shutdown_calls_total(), 4);
  int fds[8];
  size_t nr = 99, nw = 99;
  CHECK_OK(reactor_get_readers(r, fds, 8, &nr));
  CHECK_OK(reactor_get_writers(r, fds, 8, &nw));
  CHECK_EQ(nr, 0);
  CHECK_EQ(nw, 0);
  return 0;
}

static void test_shutdown(void) {
  SECTION("every registration gets exactly one SHUTDOWN call and is removed");
  reactor_t *r = tu_new_reactor();
  tu_banner(PROG, r);
  fresh(&r1, "r1");
  fresh(&w1, "w1");
  fresh(&r2, "r2");
  fresh(&w2, "w2");
  int p[2], q[2], sv[2];
  tu_pipe(p);
  tu_pipe(q);
  tu_socketpair(sv);
  tu_fill(q[1]);  /* writer not writable */
  tu_fill(sv[0]); /* writer not writable */
  uint64_t id;
  CHECK_OK(reactor_add_reader(r, p[0], fd_cb, &r1, fd_release));
  CHECK_OK(reactor_add_writer(r, q[1], fd_cb, &w1, fd_release));
  CHECK_OK(reactor_add_reader(r, sv[0], fd_cb, &r2, fd_release));
  CHECK_OK(reactor_add_writer(r, sv[0], fd_cb, &w2, fd_release));
  CHECK_OK(reactor_add_system_event_trigger(r, REACTOR_PHASE_BEFORE, "shutdown", before_shutdown,
                                            NULL, NULL, &id));
  CHECK_OK(reactor_add_system_event_trigger(r, REACTOR_PHASE_DURING, "shutdown", during_shutdown,
                                            NULL, NULL, &id));
  CHECK_OK(reactor_call_later(r, 0.02, tu_stop_cb, NULL, NULL, NULL));
  CHECK_OK(reactor_run(r));
  CHECK_EQ(before_ok, 1);
  CHECK_EQ(during_ran, 1);
  fdrec_t *all[] = {&r1, &w1, &r2, &w2};
  for (int i = 0; i < 4; i++) {
    fdrec_t *x = all[i];
    if (x->calls != 1 || x->shutdown_calls != 1 || x->releases != 1 || x->running_at_shutdown != 0) {
      fprintf(stderr, "   %s: calls %d, shutdown calls %d, releases %d, is_running %d\n", x->name,
              x->calls, x->shutdown_calls, x->releases, x->running_at_shutdown);
      atomic_fetch_add(&tu_failures, 1);
    }
  }
  int fds[8];
  size_t n = 99;
  CHECK_OK(reactor_get_readers(r, fds, 8, &n));
  CHECK_EQ(n, 0);
  CHECK_OK(reactor_free(r));
  CHECK_EQ(r1.releases + w1.releases + r2.releases + w2.releases, 4);
  tu_close_pair(p);
  tu_close_pair(q);
  tu_close_pair(sv);
}

/* ---- reuse ---------------------------------------------------------------- */

/* A new pipe whose read end has number want_rd (the number just closed). */
static void pipe_at(int fds[2], int want_rd) {
  tu_pipe(fds);
  if (fds[0] != want_rd) {
    REQUIRE(dup3(fds[0], want_rd, O_CLOEXEC) == want_rd);
    close(fds[0]);
    fds[0] = want_rd;
  }
  REQUIRE(fds[1] != want_rd);
}

static void iterate_n(reactor_t *r, int n) {
  for (int i = 0; i < n; i++) CHECK_OK(reactor_iterate(r, 0.05));
}

static void test_reuse_readd(reactor_t *r) {
  SECTION("closed and reused fd, re-added: the old callback is never reached");
  static fdrec_t old, neu;
  fresh(&old, "old");
  fresh(&neu, "new");
  int a[2], b[2];
  tu_pipe(a);
  CHECK_OK(reactor_add_reader(r, a[0], fd_cb, &old, fd_release));
  iterate_n(r, 1);
  int num = a[0];
  tu_close_pair(a); /* closed without removing */
  pipe_at(b, num);
  printf("   old fd %d, new pipe read end %d\n", num, b[0]);
  CHECK_OK(reactor_add_reader(r, b[0], fd_cb, &neu, fd_release));
  tu_write_byte(b[1]);
  for (int i = 0; i < 10 && neu.readable_calls == 0; i++) iterate_n(r, 1);
  CHECK_EQ(neu.readable_calls, 1);
  CHECK_EQ(old.calls, 0);
  CHECK_EQ(old.releases, 1);
  tu_write_byte(b[1]);
  iterate_n(r, 2);
  CHECK_EQ(neu.readable_calls, 2);
  CHECK_EQ(old.calls, 0);
  CHECK_OK(reactor_remove_reader(r, b[0]));
  iterate_n(r, 1);
  CHECK_EQ(neu.releases, 1);
  tu_close_pair(b);
}

static void test_reuse_stale(reactor_t *r) {
  SECTION("closed and reused fd, not re-added: old callback gets no data events");
  static fdrec_t old, neu;
  fresh(&old, "old");
  fresh(&neu, "new");
  int c[2], d[2];
  tu_pipe(c);
  CHECK_OK(reactor_add_reader(r, c[0], fd_cb, &old, fd_release));
  iterate_n(r, 1);
  int num = c[0];
  tu_close_pair(c);
  pipe_at(d, num);
  tu_write_byte(d[1]);
  iterate_n(r, 3);
  printf("   old callback: %d calls (%d readable, %d error)\n", old.calls, old.readable_calls,
         old.error_calls);
  CHECK_EQ(old.readable_calls, 0);
  CHECK(old.calls <= 1);
  /* adopting the number for the new pipe works and releases the stale registration */
  int old_readable = old.readable_calls;
  CHECK_OK(reactor_add_reader(r, d[0], fd_cb, &neu, fd_release));
  tu_write_byte(d[1]); /* fresh data, in case the check above failed and drained the pipe */
  for (int i = 0; i < 10 && neu.readable_calls == 0; i++) iterate_n(r, 1);
  CHECK_EQ(neu.readable_calls, 1);
  CHECK_EQ(old.readable_calls, old_readable); /* replaced: never again */
  CHECK_EQ(old.releases, 1);
  CHECK_OK(reactor_remove_reader(r, d[0]));
  iterate_n(r, 1);
  CHECK_EQ(neu.releases, 1);
  tu_close_pair(d);
}

static void test_closed_not_reused(reactor_t *r) {
  SECTION("closed fd, not reused");
  static fdrec_t x;
  fresh(&x, "x");
  int e[2];
  tu_pipe(e);
  tu_write_byte(e[1]);
  CHECK_OK(reactor_add_reader(r, e[0], fd_cb, &x, fd_release));
  tu_close_pair(e); /* nothing opens an fd until the checks below are done */
  iterate_n(r, 3);
  printf("   callback after close: %d calls, %d error, %d readable\n", x.calls, x.error_calls,
         x.readable_calls);
  CHECK_EQ(x.readable_calls, 0);
  if (strcmp(reactor_backend_name(r), "poll") == 0) {
    /* DECISIONS: poll reports REACTOR_ERROR once, then removes the registration */
    CHECK_EQ(x.error_calls, 1);
    CHECK_EQ(x.calls, 1);
    CHECK_EQ(x.releases, 1);
    int fds[4];
    size_t n = 99;
    CHECK_OK(reactor_get_readers(r, fds, 4, &n));
    CHECK_EQ(n, 0);
  } else {
    CHECK_EQ(x.calls, 0); /* the kernel dropped it from the epoll set */
  }
}

static void test_shutdown_by_hand(void) {
  SECTION("\"shutdown\" fired by hand while idle");
  reactor_t *r = tu_new_reactor();
  static fdrec_t x;
  fresh(&x, "x");
  int p[2];
  tu_pipe(p);
  CHECK_OK(reactor_add_reader(r, p[0], fd_cb, &x, fd_release));
  CHECK_OK(reactor_fire_system_event(r, "shutdown"));
  CHECK_EQ(x.shutdown_calls, 1);
  CHECK_EQ(x.calls, 1);
  int fds[4];
  size_t n = 99;
  CHECK_OK(reactor_get_readers(r, fds, 4, &n));
  CHECK_EQ(n, 0);
  CHECK_OK(reactor_iterate(r, 0.0));
  CHECK_EQ(x.releases, 1);
  CHECK_OK(reactor_call_later(r, 0.0, tu_stop_cb, NULL, NULL, NULL));
  CHECK_OK(reactor_run(r));
  CHECK_EQ(x.calls, 1);
  CHECK_OK(reactor_free(r));
  tu_close_pair(p);
}

int main(void) {
  tu_watchdog(30);
  test_shutdown();
  reactor_t *r = tu_new_reactor();
  test_reuse_readd(r);
  test_reuse_stale(r);
  test_closed_not_reused(r);
  CHECK_OK(reactor_free(r));
  test_shutdown_by_hand();
  return tu_finish(PROG);
}
