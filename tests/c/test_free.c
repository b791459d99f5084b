/*
 * test_free.c - reactor_free (API.md §1, §2, §4; DECISIONS "Threads", "Handles").
 *
 * Checks:
 *   - reactor_free while running -> REACTOR_E_BUSY, from a callback on the reactor thread
 *     and from another thread; the reactor keeps working afterwards;
 *   - reactor_free runs the release of every pending registration exactly once: timers
 *     (with and without a handle), a reader, a writer, system event triggers, a pending
 *     call_when_running, a queued call_from_thread, an open async handle, a pending
 *     remote call; no callback runs inside reactor_free;
 *   - a reactor whose creating thread has exited can be freed from another thread;
 *   - reactor_free(NULL) is OK; a second reactor_free -> INVALID.
 */
#include "test_util.h"

static const char *PROG = "test_free";

static atomic_int busy_checked;

static void *free_from_thread(void *arg) {
  CHECK_RC(reactor_free(arg), REACTOR_E_BUSY);
  return NULL;
}

static void busy_cb(reactor_t *r, void *ud) {
  (void)ud;
  CHECK_RC(reactor_free(r), REACTOR_E_BUSY);
  pthread_t th;
  REQUIRE(pthread_create(&th, NULL, free_from_thread, r) == 0);
  pthread_join(th, NULL);
  /* still fully alive */
  CHECK_EQ(reactor_is_running(r), 1);
  CHECK_OK(reactor_call_later(r, 0.0, tu_stop_cb, NULL, NULL, NULL));
  atomic_store(&busy_checked, 1);
}

static void test_busy(void) {
  SECTION("reactor_free while running -> BUSY (reactor thread and other thread)");
  reactor_t *r = tu_new_reactor();
  tu_banner(PROG, r);
  CHECK_OK(reactor_call_later(r, 0.0, busy_cb, NULL, NULL, NULL));
  CHECK_OK(reactor_run(r));
  CHECK_EQ(atomic_load(&busy_checked), 1);
  CHECK_OK(reactor_free(r));
}

/* ---- release of everything pending ----------------------------------------- */

static atomic_int released, called;

static void heap_release(void *ud) {
  free(ud);
  atomic_fetch_add(&released, 1);
}

static void must_not_cb(reactor_t *r, void *ud) {
  (void)r;
  (void)ud;
  atomic_fetch_add(&called, 1);
}

static void must_not_fd(reactor_t *r, int fd, uint32_t ev, void *ud) {
  (void)r;
  (void)fd;
  (void)ev;
  (void)ud;
  atomic_fetch_add(&called, 1);
}

static int must_not_trigger(reactor_t *r, uint64_t id, void *ud) {
  (void)r;
  (void)id;
  (void)ud;
  atomic_fetch_add(&called, 1);
  return 0;
}

static void *ud(void) {
  void *p = malloc(16);
  REQUIRE(p != NULL);
  return p;
}

static void test_free_releases(void) {
  SECTION("reactor_free releases every pending registration once");
  reactor_t *r = tu_new_reactor();
  int p[2];
  tu_pipe(p);
  tu_fill(p[1]); /* writer not writable; reader not read */
  reactor_delayed_call_t *h = NULL;
  reactor_async_t *a = NULL;
  reactor_remote_t *rem = NULL;
  uint64_t id;
  int expected = 0;

  CHECK_OK(reactor_call_later(r, 100.0, must_not_cb, ud(), heap_release, &h)); expected++;
  CHECK_OK(reactor_call_later(r, 200.0, must_not_cb, ud(), heap_release, NULL)); expected++;
  CHECK_OK(reactor_add_reader(r, p[0], must_not_fd, ud(), heap_release)); expected++;
  CHECK_OK(reactor_add_writer(r, p[1], must_not_fd, ud(), heap_release)); expected++;
  CHECK_OK(reactor_add_system_event_trigger(r, REACTOR_PHASE_BEFORE, "shutdown", must_not_trigger,
                                            ud(), heap_release, &id)); expected++;
  CHECK_OK(reactor_add_system_event_trigger(r, REACTOR_PHASE_DURING, "custom", must_not_trigger,
                                            ud(), heap_release, &id)); expected++;
  CHECK_OK(reactor_call_when_running(r, must_not_cb, ud(), heap_release)); expected++;
  CHECK_OK(reactor_call_from_thread(r, must_not_cb, ud(), heap_release)); expected++;
  CHECK_OK(reactor_async_new(r, must_not_cb, ud(), heap_release, &a)); expected++;
  CHECK_OK(reactor_remote_new(r, &rem));
  CHECK_OK(reactor_remote_call(rem, must_not_cb, ud(), heap_release)); expected++;

  CHECK_EQ(atomic_load(&released), 0);
  CHECK_OK(reactor_free(r));
  CHECK_EQ(atomic_load(&released), expected);
  CHECK_EQ(atomic_load(&called), 0);

  /* handles outlive the reactor */
  CHECK_RC(reactor_delayed_call_cancel(h), REACTOR_E_CLOSED);
  reactor_delayed_call_release(h);
  void *late = ud();
  CHECK_RC(reactor_remote_call(rem, must_not_cb, late, heap_release), REACTOR_E_CLOSED);
  free(late);
  reactor_remote_free(rem);
  CHECK_EQ(atomic_load(&released), expected);
  tu_close_pair(p);
}

/* ---- free after the creating thread exited ------------------------------- */

static void *creator(void *arg) {
  reactor_t **out = arg;
  reactor_t *r = tu_new_reactor();
  CHECK_OK(reactor_call_later(r, 100.0, must_not_cb, ud(), heap_release, NULL));
  CHECK_OK(reactor_iterate(r, 0.0));
  *out = r;
  return NULL;
}

static void test_free_after_thread_exit(void) {
  SECTION("free a reactor after its thread exited");
  reactor_t *r = NULL;
  pthread_t th;
  REQUIRE(pthread_create(&th, NULL, creator, &r) == 0);
  pthread_join(th, NULL);
  REQUIRE(r != NULL);
  int before = atomic_load(&released);
  CHECK_OK(reactor_free(r));
  CHECK_EQ(atomic_load(&released), before + 1);
}

static void test_free_null_twice(void) {
  SECTION("free(NULL) OK; free twice -> INVALID");
  CHECK_OK(reactor_free(NULL));
  reactor_t *r = tu_new_reactor();
  CHECK_OK(reactor_free(r));
  CHECK_RC(reactor_free(r), REACTOR_E_INVALID);
}

int main(void) {
  tu_watchdog(30);
  test_busy();
  test_free_releases();
  test_free_after_thread_exit();
  test_free_null_twice();
  return tu_finish(PROG);
}
