/*
 * test_poison.c - an internal failure (a Rust panic, injected with reactor_test_inject_panic) never
 * crosses the C boundary: the call in progress returns REACTOR_E_INTERNAL, the reactor is poisoned
 * (later calls return REACTOR_E_INTERNAL or their neutral value), other reactors are unaffected, and
 * reactor_free still frees it and runs every release exactly once (API.md §1, issue "foundation v2").
 *
 * Each fault point is tried: the start of a pass (run and iterate), right after a host callback
 * returns (inside the dispatch), and inside a reactor-thread API call.
 */
#include "test_util.h"

#define PROG "test_poison"

typedef struct {
  reactor_t *r;
  int pipe[2];
  atomic_int released;  /* releases of everything registered below */
  int registered;       /* how many releases to expect */
  reactor_delayed_call_t *pending, *soon;
  reactor_async_t *async;
  reactor_remote_t *remote;
} fixture_t;

static int trigger_ok(reactor_t *r, uint64_t id, void *ud) {
  (void)r;
  (void)id;
  (void)ud;
  return REACTOR_OK;
}

static void reader_cb(reactor_t *r, int fd, uint32_t events, void *ud) {
  (void)r;
  (void)events;
  (void)ud;
  tu_drain(fd);
}

static void *work(void *ud) { return ud; }
static void done(reactor_t *r, void *result, void *ud) {
  (void)r;
  (void)result;
  (void)ud;
}

static void *call_from_other_thread(void *arg) {
  reactor_t *r = arg;
  atomic_int dummy = 0;
  /* An any-thread call on a poisoned reactor is refused, and the data stays the caller's. */
  CHECK_RC(reactor_call_from_thread(r, tu_noop_cb, &dummy, tu_count_release), REACTOR_E_INTERNAL);
  CHECK_EQ(atomic_load(&dummy), 0);
  return NULL;
}

static void setup(fixture_t *f) {
  memset(f, 0, sizeof *f);
  f->r = tu_new_reactor();
  reactor_t *r = f->r;
  atomic_int *rel = &f->released;
  tu_pipe(f->pipe);
  REQUIRE_OK(reactor_call_later(r, 60.0, tu_noop_cb, rel, tu_count_release, &f->pending));
  REQUIRE_OK(reactor_call_later(r, 0.0, tu_noop_cb, rel, tu_count_release, &f->soon));
  REQUIRE_OK(reactor_call_later(r, 0.0, tu_noop_cb, rel, tu_count_release, NULL));
  REQUIRE_OK(reactor_add_reader(r, f->pipe[0], reader_cb, rel, tu_count_release));
  REQUIRE_OK(reactor_add_writer(r, f->pipe[1], reader_cb, rel, tu_count_release));
  tu_write_byte(f->pipe[1]);
  REQUIRE_OK(reactor_add_system_event_trigger(r, REACTOR_PHASE_BEFORE, "shutdown", trigger_ok, rel,
                                              tu_count_release, NULL));
  REQUIRE_OK(reactor_add_system_event_trigger(r, REACTOR_PHASE_DURING, "custom", trigger_ok, rel,
                                              tu_count_release, NULL));
  REQUIRE_OK(reactor_call_when_running(r, tu_noop_cb, rel, tu_count_release));
  REQUIRE_OK(reactor_async_new(r, tu_noop_cb, rel, tu_count_release, &f->async));
  REQUIRE_OK(reactor_async_send(f->async));
  REQUIRE_OK(reactor_call_from_thread(r, tu_noop_cb, rel, tu_count_release));
  REQUIRE_OK(reactor_call_in_thread_with_callback(r, work, done, rel, tu_count_release));
  REQUIRE_OK(reactor_remote_new(r, &f->remote));
  f->registered = 11;
}

/* After the injected panic: every call is refused, nothing is released early, free works. */
static void check_poisoned_then_free(fixture_t *f) {
  reactor_t *r = f->r;
  atomic_int mine = 0;
  CHECK_RC(reactor_call_later(r, 0.0, tu_noop_cb, &mine, tu_count_release, NULL),
           REACTOR_E_INTERNAL);
  CHECK_RC(reactor_iterate(r, 0), REACTOR_E_INTERNAL);
  CHECK_RC(reactor_run(r), REACTOR_E_INTERNAL);
  CHECK_RC(reactor_stop(r), REACTOR_E_INTERNAL);
  CHECK_RC(reactor_add_reader(r, f->pipe[0], reader_cb, &mine, tu_count_release),
           REACTOR_E_INTERNAL);
  CHECK_RC(reactor_call_from_thread(r, tu_noop_cb, &mine, tu_count_release), REACTOR_E_INTERNAL);
  CHECK_RC(reactor_delayed_call_cancel(f->pending), REACTOR_E_INTERNAL);
  CHECK_EQ(reactor_is_running(r), 0);
  CHECK_EQ(reactor_delayed_call_count(r), 0);
  CHECK_EQ(atomic_load(&mine), 0); /* refused calls never take (or release) the data */
  pthread_t t;
  REQUIRE(pthread_create(&t, NULL, call_from_other_thread, r) == 0);
  pthread_join(t, NULL);
  CHECK(atomic_load(&f->released) < f->registered);

  CHECK_OK(reactor_free(r));
  CHECK_EQ(atomic_load(&f->released), f->registered);
  CHECK_RC(reactor_free(r), REACTOR_E_INVALID);
  CHECK_RC(reactor_async_send(f->async), REACTOR_E_INVALID);
  CHECK_RC(reactor_remote_call(f->remote, tu_noop_cb, &mine, tu_count_release), REACTOR_E_CLOSED);
  CHECK_RC(reactor_delayed_call_cancel(f->pending), REACTOR_E_CLOSED);
  int soon = reactor_delayed_call_cancel(f->soon);
  CHECK(soon == REACTOR_E_CLOSED || soon == REACTOR_E_ALREADY_CALLED);
  CHECK_EQ(atomic_load(&mine), 0);
  reactor_delayed_call_release(f->pending);
  reactor_delayed_call_release(f->soon);
  reactor_remote_free(f->remote);
  tu_close_pair(f->pipe);
}

/* Another reactor keeps working while one is poisoned. */
static void check_other_reactor_unaffected(void) {
  reactor_t *other = tu_new_reactor();
  atomic_int ran = 0;
  CHECK_OK(reactor_call_later(other, 0.0, tu_count_cb, &ran, NULL, NULL));
  CHECK_OK(reactor_iterate(other, 0));
  CHECK_EQ(atomic_load(&ran), 1);
  CHECK_OK(reactor_free(other));
}

int main(void) {
  tu_watchdog(60);
  printf("%s%s\n", PROG, tu_valgrind() ? " (valgrind)" : "");
  fixture_t f;

  SECTION("panic at the start of a pass of run: run returns INTERNAL");
  setup(&f);
  CHECK_OK(reactor_test_inject_panic(f.r, REACTOR_TEST_PANIC_NEXT_PASS));
  CHECK_RC(reactor_run(f.r), REACTOR_E_INTERNAL);
  check_other_reactor_unaffected();
  check_poisoned_then_free(&f);

  SECTION("panic at the start of a pass of iterate");
  setup(&f);
  CHECK_OK(reactor_test_inject_panic(f.r, REACTOR_TEST_PANIC_NEXT_PASS));
  CHECK_RC(reactor_iterate(f.r, 0), REACTOR_E_INTERNAL);
  check_poisoned_then_free(&f);

  SECTION("panic right after a host callback returned (inside the dispatch)");
  setup(&f);
  CHECK_OK(reactor_test_inject_panic(f.r, REACTOR_TEST_PANIC_AFTER_CALLBACK));
  CHECK_RC(reactor_run(f.r), REACTOR_E_INTERNAL);
  check_poisoned_then_free(&f);

  SECTION("panic inside a reactor-thread call: that call returns INTERNAL, ud stays the caller's");
  setup(&f);
  CHECK_OK(reactor_test_inject_panic(f.r, REACTOR_TEST_PANIC_IN_CALL));
  atomic_int mine = 0;
  CHECK_RC(reactor_call_later(f.r, 0.0, tu_noop_cb, &mine, tu_count_release, NULL),
           REACTOR_E_INTERNAL);
  CHECK_EQ(atomic_load(&mine), 0);
  check_poisoned_then_free(&f);

  SECTION("after an iterate, a panic while the reactor runs the rest of its registrations");
  setup(&f);
  CHECK_OK(reactor_iterate(f.r, 0)); /* timers, reader, thread calls ran: released */
  CHECK_OK(reactor_test_inject_panic(f.r, REACTOR_TEST_PANIC_AFTER_CALLBACK));
  CHECK_RC(reactor_run(f.r), REACTOR_E_INTERNAL);
  check_poisoned_then_free(&f);

  SECTION("unknown fault point or handle -> INVALID");
  reactor_t *r = tu_new_reactor();
  CHECK_RC(reactor_test_inject_panic(r, 0), REACTOR_E_INVALID);
  CHECK_RC(reactor_test_inject_panic(r, 99), REACTOR_E_INVALID);
  CHECK_RC(reactor_test_inject_panic(NULL, REACTOR_TEST_PANIC_IN_CALL), REACTOR_E_INVALID);
  CHECK_OK(reactor_free(r));

  return tu_finish(PROG);
}
