/*
 * test_fds.c - reader/writer registrations (API.md §5, §7; DECISIONS "File descriptors").
 *
 * Checks:
 *   - add_reader/add_writer; READABLE to the reader with the right fd and user data,
 *     WRITABLE to the writer; reader and writer of one fd are independent;
 *   - get_readers/get_writers list user fds, an fd with both listed once in each list;
 *     cap limits what is written, out_count gets the total;
 *   - replacing a reader releases the old user data and the old callback never runs again;
 *   - remove twice or never added -> NOT_FOUND; add/remove with fd -1 -> INVALID;
 *     NULL callback -> INVALID; failed adds never call release;
 *   - add_reader/add_writer on a closed fd (and a huge unused number) -> an error status;
 *   - remove_all returns exactly the user fds (each once; no internal waker/async fds),
 *   - the reactor's own fds (poller, waker) are refused by add_reader/add_writer (INVALID),
 *     releases every registration, calls no callback, leaves the lists empty;
 *   - HANGUP bit is reported to the reader when the write end of a pipe is closed.
 */
#include "test_util.h"

static const char *PROG = "test_fds";

typedef struct fdrec {
  const char *name;
  int calls;
  int releases;
  int last_fd;
  uint32_t last_events;
  void *last_ud;
} fdrec_t;

static void fd_release(void *ud) { ((fdrec_t *)ud)->releases++; }

static void fd_cb(reactor_t *r, int fd, uint32_t events, void *ud) {
  (void)r;
  fdrec_t *x = ud;
  x->calls++;
  x->last_fd = fd;
  x->last_events = events;
  x->last_ud = ud;
}

static void fresh(fdrec_t *x, const char *name) {
  memset(x, 0, sizeof *x);
  x->name = name;
  x->last_fd = -1;
}

static size_t list_readers(reactor_t *r, int *out, size_t cap) {
  size_t n = 12345;
  CHECK_OK(reactor_get_readers(r, out, cap, &n));
  return n;
}

static size_t list_writers(reactor_t *r, int *out, size_t cap) {
  size_t n = 12345;
  CHECK_OK(reactor_get_writers(r, out, cap, &n));
  return n;
}

static void test_basic(reactor_t *r) {
  SECTION("add reader/writer, events, lists");
  static fdrec_t rd, wr, rd2, wr2;
  fresh(&rd, "rd");
  fresh(&wr, "wr");
  fresh(&rd2, "rd2");
  fresh(&wr2, "wr2");
  int p[2], sv[2];
  tu_pipe(p);
  tu_socketpair(sv);
  int fds[8];

  CHECK_EQ(list_readers(r, fds, 8), 0);
  CHECK_EQ(list_writers(r, fds, 8), 0);

  CHECK_OK(reactor_add_reader(r, p[0], fd_cb, &rd, fd_release));
  CHECK_OK(reactor_add_writer(r, p[1], fd_cb, &wr, fd_release));
  /* sv[0] has both a reader and a writer */
  CHECK_OK(reactor_add_reader(r, sv[0], fd_cb, &rd2, fd_release));
  CHECK_OK(reactor_add_writer(r, sv[0], fd_cb, &wr2, fd_release));
  CHECK_EQ(wr.calls + wr2.calls, 0); /* never inside the call that registered them */

  size_t n = list_readers(r, fds, 8);
  CHECK_EQ(n, 2);
  CHECK(tu_contains(fds, n, p[0]) && tu_contains(fds, n, sv[0]));
  n = list_writers(r, fds, 8);
  CHECK_EQ(n, 2);
  CHECK(tu_contains(fds, n, p[1]) && tu_contains(fds, n, sv[0]));

  /* cap: only cap entries written, total reported */
  int small[2] = {-7, -7};
  n = list_readers(r, small, 1);
  CHECK_EQ(n, 2);
  CHECK(small[0] == p[0] || small[0] == sv[0]);
  CHECK_EQ(small[1], -7);

  /* writers are writable at once; readers are not readable yet */
  CHECK_OK(reactor_iterate(r, 0.5));
  CHECK(wr.calls >= 1 && (wr.last_events & REACTOR_WRITABLE));
  CHECK_EQ(wr.last_fd, p[1]);
  CHECK(wr.last_ud == &wr);
  CHECK(wr2.calls >= 1 && (wr2.last_events & REACTOR_WRITABLE));
  CHECK_EQ(wr2.last_fd, sv[0]);
  CHECK_EQ(rd.calls, 0);
  CHECK_EQ(rd2.calls, 0);

  /* remove the writers; make both readers readable */
  CHECK_OK(reactor_remove_writer(r, p[1]));
  CHECK_OK(reactor_remove_writer(r, sv[0]));
  CHECK_RC(reactor_remove_writer(r, p[1]), REACTOR_E_NOT_FOUND);
  CHECK_EQ(list_writers(r, fds, 8), 0);
  int wr_calls = wr.calls, wr2_calls = wr2.calls;
  tu_write_byte(p[1]);
  tu_write_byte(sv[1]);
  for (int i = 0; i < 5 && (rd.calls == 0 || rd2.calls == 0); i++) CHECK_OK(reactor_iterate(r, 0.5));
  CHECK_EQ(rd.calls, 1);
  CHECK(rd.last_events & REACTOR_READABLE);
  CHECK_EQ(rd.last_fd, p[0]);
  CHECK(rd.last_ud == &rd);
  CHECK_EQ(rd2.calls, 1);
  CHECK(rd2.last_events & REACTOR_READABLE);
  CHECK_EQ(rd2.last_fd, sv[0]);
  CHECK_EQ(wr.calls, wr_calls);   /* removed: never again */
  CHECK_EQ(wr2.calls, wr2_calls);
  tu_drain(p[0]);
  tu_drain(sv[0]);

  CHECK_OK(reactor_remove_reader(r, p[0]));
  CHECK_RC(reactor_remove_reader(r, p[0]), REACTOR_E_NOT_FOUND);
  CHECK_OK(reactor_remove_reader(r, sv[0]));
  CHECK_EQ(list_readers(r, fds, 8), 0);
  CHECK_OK(reactor_iterate(r, 0.0));
  CHECK_EQ(rd.releases + rd2.releases + wr.releases + wr2.releases, 4);
  tu_close_pair(p);
  tu_close_pair(sv);
}

static void test_replace(reactor_t *r) {
  SECTION("replacing a reader releases the old one");
  static fdrec_t old, neu;
  fresh(&old, "old");
  fresh(&neu, "new");
  int p[2];
  tu_pipe(p);
  CHECK_OK(reactor_add_reader(r, p[0], fd_cb, &old, fd_release));
  CHECK_OK(reactor_add_reader(r, p[0], fd_cb, &neu, fd_release));
  int fds[4];
  CHECK_EQ(list_readers(r, fds, 4), 1);
  tu_write_byte(p[1]);
  for (int i = 0; i < 5 && neu.calls == 0; i++) CHECK_OK(reactor_iterate(r, 0.5));
  CHECK_EQ(old.releases, 1);
  CHECK_EQ(old.calls, 0);
  CHECK_EQ(neu.calls, 1);
  CHECK_EQ(neu.releases, 0);
  CHECK_OK(reactor_remove_reader(r, p[0]));
  CHECK_OK(reactor_iterate(r, 0.0));
  CHECK_EQ(neu.releases, 1);
  tu_close_pair(p);
}

static void test_errors(reactor_t *r) {
  SECTION("NOT_FOUND / INVALID / closed fd");
  static fdrec_t x;
  fresh(&x, "x");
  int p[2];
  tu_pipe(p);
  CHECK_RC(reactor_remove_reader(r, p[0]), REACTOR_E_NOT_FOUND); /* never added */
  CHECK_RC(reactor_remove_writer(r, p[1]), REACTOR_E_NOT_FOUND);
  CHECK_RC(reactor_add_reader(r, -1, fd_cb, &x, fd_release), REACTOR_E_INVALID);
  CHECK_RC(reactor_add_writer(r, -1, fd_cb, &x, fd_release), REACTOR_E_INVALID);
  CHECK_RC(reactor_remove_reader(r, -1), REACTOR_E_INVALID);
  CHECK_RC(reactor_remove_writer(r, -1), REACTOR_E_INVALID);
  CHECK_RC(reactor_add_reader(r, p[0], NULL, &x, fd_release), REACTOR_E_INVALID);
  CHECK_RC(reactor_add_writer(r, p[1], NULL, &x, fd_release), REACTOR_E_INVALID);

  /* an fd that is not open: close a pipe and use its numbers (nothing reopens them meanwhile) */
  int closed_r = p[0], closed_w = p[1];
  tu_close_pair(p);
  int rc = reactor_add_reader(r, closed_r, fd_cb, &x, fd_release);
  printf("   add_reader(closed fd) -> %d (%s)\n", rc, tu_status(rc));
  CHECK(rc < 0);
  rc = reactor_add_writer(r, closed_w, fd_cb, &x, fd_release);
  printf("   add_writer(closed fd) -> %d (%s)\n", rc, tu_status(rc));
  CHECK(rc < 0);
  rc = reactor_add_reader(r, 1000000, fd_cb, &x, fd_release);
  printf("   add_reader(1000000) -> %d (%s)\n", rc, tu_status(rc));
  CHECK(rc < 0);
  CHECK_EQ(x.releases, 0); /* ownership never passed */
  CHECK_EQ(x.calls, 0);
  int fds[4];
  CHECK_EQ(list_readers(r, fds, 4), 0);
  CHECK_EQ(list_writers(r, fds, 4), 0);
  /* NULL out pointers are covered by test_misuse.c */
}

static void test_remove_all(reactor_t *r) {
  SECTION("remove_all returns exactly the user fds");
  static fdrec_t a, b, c, d;
  fresh(&a, "a");
  fresh(&b, "b");
  fresh(&c, "c");
  fresh(&d, "d");
  int p[2], sv[2];
  tu_pipe(p);
  tu_socketpair(sv);
  tu_fill(sv[0]); /* so its writer is not constantly writable */

  /* make the reactor create its internal fds (waker, async) first */
  atomic_int ran = 0;
  reactor_async_t *as = NULL;
  CHECK_OK(reactor_call_from_thread(r, tu_count_cb, &ran, NULL));
  CHECK_OK(reactor_async_new(r, tu_noop_cb, NULL, NULL, &as));
  CHECK_OK(reactor_async_send(as));
  CHECK_OK(reactor_iterate(r, 0.0));
  CHECK_EQ(atomic_load(&ran), 1);

  CHECK_OK(reactor_add_reader(r, p[0], fd_cb, &a, fd_release));
  CHECK_OK(reactor_add_writer(r, p[1], fd_cb, &b, fd_release));
  CHECK_OK(reactor_add_reader(r, sv[0], fd_cb, &c, fd_release));
  CHECK_OK(reactor_add_writer(r, sv[0], fd_cb, &d, fd_release));
  int fds[16];
  for (int i = 0; i < 16; i++) fds[i] = -7;
  size_t n = 0;
  CHECK_OK(reactor_remove_all(r, fds, 16, &n));
  printf("   remove_all -> %zu fds\n", n);
  CHECK_EQ(n, 3);
  CHECK(tu_contains(fds, n, p[0]));
  CHECK(tu_contains(fds, n, p[1]));
  CHECK(tu_contains(fds, n, sv[0]));
  CHECK_EQ(fds[3], -7);
  CHECK_EQ(list_readers(r, fds, 16), 0);
  CHECK_EQ(list_writers(r, fds, 16), 0);
  CHECK_OK(reactor_iterate(r, 0.0));
  CHECK_EQ(a.releases + b.releases + c.releases + d.releases, 4);
  CHECK_EQ(a.calls + b.calls + c.calls + d.calls, 0);
  /* removed: removing again finds nothing */
  CHECK_RC(reactor_remove_reader(r, p[0]), REACTOR_E_NOT_FOUND);
  CHECK_RC(reactor_remove_writer(r, sv[0]), REACTOR_E_NOT_FOUND);
  /* internal machinery still works after remove_all */
  CHECK_OK(reactor_call_from_thread(r, tu_count_cb, &ran, NULL));
  CHECK_OK(reactor_iterate(r, 0.5));
  CHECK_EQ(atomic_load(&ran), 2);
  n = 99;
  CHECK_OK(reactor_remove_all(r, fds, 16, &n));
  CHECK_EQ(n, 0);
  CHECK_OK(reactor_async_close(as));
  tu_close_pair(p);
  tu_close_pair(sv);
}

static void test_hangup(reactor_t *r) {
  SECTION("HANGUP when the write end of a pipe is closed");
  static fdrec_t h;
  fresh(&h, "h");
  int p[2];
  tu_pipe(p);
  CHECK_OK(reactor_add_reader(r, p[0], fd_cb, &h, fd_release));
  close(p[1]);
  for (int i = 0; i < 5 && h.calls == 0; i++) CHECK_OK(reactor_iterate(r, 0.5));
  printf("   reader events after hangup: 0x%x\n", (unsigned)h.last_events);
  CHECK(h.calls >= 1);
  CHECK(h.last_events & REACTOR_HANGUP);
  CHECK_OK(reactor_remove_reader(r, p[0]));
  CHECK_OK(reactor_iterate(r, 0.0));
  CHECK_EQ(h.releases, 1);
  close(p[0]);
}

static int fd_is_open(int fd) { return fcntl(fd, F_GETFD) != -1; }

static void test_internal_fds_refused(void) {
  SECTION("the reactor's own fds (poller, waker) are refused and never listed");
  enum { SCAN = 1024 };
  static unsigned char before[SCAN];
  for (int fd = 0; fd < SCAN; fd++) before[fd] = (unsigned char)fd_is_open(fd);
  reactor_t *r = tu_new_reactor();
  int internal = 0;
  static fdrec_t rec;
  fresh(&rec, "internal");
  for (int fd = 0; fd < SCAN; fd++) {
    if (before[fd] || !fd_is_open(fd)) continue;
    internal++;
    CHECK_RC(reactor_add_reader(r, fd, fd_cb, &rec, fd_release), REACTOR_E_INVALID);
    CHECK_RC(reactor_add_writer(r, fd, fd_cb, &rec, fd_release), REACTOR_E_INVALID);
    CHECK_RC(reactor_remove_reader(r, fd), REACTOR_E_NOT_FOUND);
  }
  printf("   %d internal fds\n", internal);
  CHECK(internal >= 1); /* at least the waker (and the epoll fd on epoll) */
  CHECK_EQ(rec.releases, 0); /* refused registrations are not ours to release */
  int fds[4];
  CHECK_EQ(list_readers(r, fds, 4), 0);
  size_t n = 99;
  CHECK_OK(reactor_remove_all(r, fds, 4, &n));
  CHECK_EQ(n, 0);
  /* the waker still works after all that */
  atomic_int ran = 0;
  CHECK_OK(reactor_call_from_thread(r, tu_count_cb, &ran, NULL));
  CHECK_OK(reactor_iterate(r, 1.0));
  CHECK_EQ(atomic_load(&ran), 1);
  CHECK_OK(reactor_free(r));
}

int main(void) {
  tu_watchdog(30);
  reactor_t *r = tu_new_reactor();
  tu_banner(PROG, r);
  test_basic(r);
  test_replace(r);
  test_errors(r);
  test_remove_all(r);
  test_hangup(r);
  CHECK_OK(reactor_free(r));
  test_internal_fds_refused();
  return tu_finish(PROG);
}
