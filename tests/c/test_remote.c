/*
 * test_remote.c - reference-counted remote handles (API.md §4, §7).
 *
 * Checks:
 *   - remote_call before free works from the owner and from another thread; the callback
 *     runs on the reactor thread (not inside remote_call) and its release runs once;
 *   - remote calls accepted before reactor_remote_free still run;
 *   - after reactor_free: remote_call -> REACTOR_E_CLOSED from any thread, release NOT
 *     called (caller keeps ud, freed here so valgrind sees no leak/double free);
 *     remote_free afterwards is fine;
 *   - after a run that ended with stop: remote_call -> CLOSED (reactor.h), release not called;
 *   - argument errors: NULL handle / NULL cb / NULL out -> INVALID; remote_free(NULL) is a no-op.
 */
#include "test_util.h"

static const char *PROG = "test_remote";

static atomic_int calls, releases, off_thread;
static pthread_t owner;

static void remote_cb(reactor_t *r, void *ud) {
  (void)r;
  CHECK(ud != NULL);
  atomic_fetch_add(&calls, 1);
  if (!pthread_equal(pthread_self(), owner)) atomic_fetch_add(&off_thread, 1);
}

static void heap_release(void *ud) {
  free(ud);
  atomic_fetch_add(&releases, 1);
}

static void *heap_ud(void) {
  void *p = malloc(32);
  REQUIRE(p != NULL);
  return p;
}

static void *call_thread(void *arg) {
  CHECK_OK(reactor_remote_call(arg, remote_cb, heap_ud(), heap_release));
  return NULL;
}

static void *closed_thread(void *arg) {
  void *ud = heap_ud();
  CHECK_RC(reactor_remote_call(arg, remote_cb, ud, heap_release), REACTOR_E_CLOSED);
  free(ud);
  return NULL;
}

static void iterate_until(reactor_t *r, int want) {
  for (int i = 0; i < 20 && atomic_load(&calls) < want; i++) CHECK_OK(reactor_iterate(r, 0.25));
}

int main(void) {
  tu_watchdog(30);
  owner = pthread_self();
  reactor_t *r = tu_new_reactor();
  tu_banner(PROG, r);
  reactor_remote_t *h = NULL, *h2 = NULL, *bad = NULL;

  SECTION("argument errors");
  CHECK_RC(reactor_remote_new(NULL, &bad), REACTOR_E_INVALID);
  CHECK_RC(reactor_remote_new(r, NULL), REACTOR_E_INVALID);
  CHECK(bad == NULL);
  reactor_remote_free(NULL);

  SECTION("remote_call before free, owner and other thread");
  CHECK_OK(reactor_remote_new(r, &h));
  REQUIRE(h != NULL);
  CHECK_RC(reactor_remote_call(NULL, remote_cb, NULL, NULL), REACTOR_E_INVALID);
  CHECK_RC(reactor_remote_call(h, NULL, NULL, NULL), REACTOR_E_INVALID);
  CHECK_OK(reactor_remote_call(h, remote_cb, heap_ud(), heap_release));
  CHECK_EQ(atomic_load(&calls), 0); /* not inside remote_call */
  pthread_t th;
  REQUIRE(pthread_create(&th, NULL, call_thread, h) == 0);
  pthread_join(th, NULL);
  iterate_until(r, 2);
  CHECK_EQ(atomic_load(&calls), 2);
  CHECK_OK(reactor_iterate(r, 0.0));
  CHECK_EQ(atomic_load(&releases), 2);
  CHECK_EQ(atomic_load(&off_thread), 0);

  SECTION("calls accepted before remote_free still run");
  CHECK_OK(reactor_remote_new(r, &h2));
  CHECK_OK(reactor_remote_call(h2, remote_cb, heap_ud(), heap_release));
  CHECK_OK(reactor_remote_call(h2, remote_cb, heap_ud(), heap_release));
  reactor_remote_free(h2);
  iterate_until(r, 4);
  CHECK_EQ(atomic_load(&calls), 4);
  CHECK_OK(reactor_iterate(r, 0.0));
  CHECK_EQ(atomic_load(&releases), 4);

  SECTION("after reactor_free: CLOSED, release not called");
  CHECK_OK(reactor_free(r));
  void *ud = heap_ud();
  CHECK_RC(reactor_remote_call(h, remote_cb, ud, heap_release), REACTOR_E_CLOSED);
  free(ud); /* still ours */
  REQUIRE(pthread_create(&th, NULL, closed_thread, h) == 0);
  pthread_join(th, NULL);
  CHECK_EQ(atomic_load(&calls), 4);
  CHECK_EQ(atomic_load(&releases), 4);
  reactor_remote_free(h);

  SECTION("after a run that ended with stop: CLOSED");
  r = tu_new_reactor();
  CHECK_OK(reactor_remote_new(r, &h));
  CHECK_OK(reactor_call_later(r, 0.0, tu_stop_cb, NULL, NULL, NULL));
  CHECK_OK(reactor_run(r));
  ud = heap_ud();
  CHECK_RC(reactor_remote_call(h, remote_cb, ud, heap_release), REACTOR_E_CLOSED);
  free(ud);
  CHECK_OK(reactor_free(r));
  reactor_remote_free(h);
  CHECK_EQ(atomic_load(&calls), 4);
  CHECK_EQ(atomic_load(&releases), 4);
  return tu_finish(PROG);
}
