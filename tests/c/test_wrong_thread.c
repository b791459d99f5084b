/*
 * test_wrong_thread.c - thread ownership (API.md §1, §7; DECISIONS "Threads").
 *
 * Checks, from a foreign pthread on a reactor owned by the main thread (manual clock):
 *   - status functions return REACTOR_E_WRONG_THREAD and change nothing: call_later,
 *     add_reader/add_writer/remove_*, get_readers/get_writers/remove_all, stop, crash,
 *     iterate, call_when_running, triggers (add/remove/fire/complete), cancel/reset/delay,
 *     clock_advance, stats, async_new, async_close, remote_new; the thread check comes
 *     before argument checks (bad args still -> WRONG_THREAD); no release is called;
 *   - getters give neutral values: is_running 0, seconds NaN, delayed_call_count 0,
 *     backend_timeout_ms -1, delayed_call_active 0, delayed_call_get_time NaN;
 *   - any-thread functions work: call_from_thread (runs later on the owner), wake_up,
 *     async_send, is_in_io_thread (0 there, 1 on the owner), backend_name, backend_fd;
 *   - reactor_free from another thread while not running works and runs the releases;
 *   - reactor_run from another thread while idle makes that thread the owner: callbacks
 *     run there, the creator then gets is_in_io_thread 0 and WRONG_THREAD, and can still
 *     free it after the runner exited.
 */
#include "test_util.h"

static const char *PROG = "test_wrong_thread";

typedef struct shared {
  reactor_t *r;
  reactor_delayed_call_t *c;
  reactor_async_t *a;
  uint64_t trigger_id;
  int fd_r, fd_w;
  const char *owner_backend_name;
  int owner_backend_fd;
} shared_t;

static atomic_int releases, callbacks;
static pthread_t owner;
static atomic_int ran_on_owner;

static void count_release(void *ud) {
  (void)ud;
  atomic_fetch_add(&releases, 1);
}

static void sig_cb(reactor_t *r, int signum, void *ud) {
  (void)r;
  (void)signum;
  (void)ud;
}

static void cb(reactor_t *r, void *ud) {
  (void)r;
  (void)ud;
  atomic_fetch_add(&callbacks, 1);
}

static void owner_cb(reactor_t *r, void *ud) {
  (void)r;
  (void)ud;
  if (pthread_equal(pthread_self(), owner)) atomic_fetch_add(&ran_on_owner, 1);
}

static void fd_cb(reactor_t *r, int fd, uint32_t ev, void *ud) {
  (void)r;
  (void)fd;
  (void)ev;
  (void)ud;
  atomic_fetch_add(&callbacks, 1);
}

static int trig(reactor_t *r, uint64_t id, void *ud) {
  (void)r;
  (void)id;
  (void)ud;
  atomic_fetch_add(&callbacks, 1);
  return 0;
}

#define WT(expr) CHECK_RC((expr), REACTOR_E_WRONG_THREAD)

static void *foreign(void *arg) {
  shared_t *s = arg;
  reactor_t *r = s->r;
  int fds[4];
  size_t n = 0;
  uint64_t id = 0;
  reactor_delayed_call_t *h = NULL;
  reactor_async_t *a = NULL;
  reactor_remote_t *rem = NULL;
  reactor_stats_t st;
  memset(&st, 0xAB, sizeof st);
  st.struct_size = sizeof st;

  printf("-- foreign thread: status functions -> WRONG_THREAD\n");
  WT(reactor_call_later(r, 1.0, cb, NULL, count_release, &h));
  CHECK(h == NULL);
  WT(reactor_call_later(r, NAN, NULL, NULL, NULL, NULL)); /* thread check first */
  WT(reactor_add_reader(r, s->fd_r, fd_cb, NULL, count_release));
  WT(reactor_add_writer(r, s->fd_w, fd_cb, NULL, count_release));
  WT(reactor_add_reader(r, -1, NULL, NULL, NULL));
  WT(reactor_remove_reader(r, s->fd_r));
  WT(reactor_remove_writer(r, s->fd_w));
  WT(reactor_get_readers(r, fds, 4, &n));
  WT(reactor_get_writers(r, fds, 4, &n));
  WT(reactor_remove_all(r, fds, 4, &n));
  WT(reactor_stop(r));
  WT(reactor_crash(r));
  WT(reactor_iterate(r, 0.0));
  WT(reactor_call_when_running(r, cb, NULL, count_release));
  WT(reactor_add_system_event_trigger(r, REACTOR_PHASE_BEFORE, "ev", trig, NULL, count_release,
                                      &id));
  WT(reactor_remove_system_event_trigger(r, s->trigger_id));
  WT(reactor_fire_system_event(r, "ev"));
  WT(reactor_trigger_complete(r, s->trigger_id));
  WT(reactor_trigger_complete_now(r, s->trigger_id));
  WT(reactor_add_signal_handler(r, SIGUSR1, sig_cb, NULL, count_release, &id));
  WT(reactor_remove_signal_handler(r, 1));
  WT(reactor_install_resolver(r, NULL, NULL, count_release));
  WT(reactor_delayed_call_cancel(s->c));
  WT(reactor_delayed_call_reset(s->c, 1.0));
  WT(reactor_delayed_call_delay(s->c, 1.0));
  WT(reactor_delayed_call_reset(s->c, -1.0)); /* thread check first */
  WT(reactor_clock_advance(r, 100.0));
  WT(reactor_stats(r, &st));
  CHECK(st.iterations == 0xABABABABABABABABULL); /* not written */
  WT(reactor_async_new(r, cb, NULL, count_release, &a));
  CHECK(a == NULL);
  WT(reactor_async_close(s->a));
  WT(reactor_remote_new(r, &rem));
  CHECK(rem == NULL);

  printf("-- foreign thread: neutral getters\n");
  CHECK_EQ(reactor_is_running(r), 0);
  CHECK(isnan(reactor_seconds(r)));
  CHECK_EQ(reactor_delayed_call_count(r), 0);
  CHECK_EQ(reactor_backend_timeout_ms(r), -1);
  CHECK_EQ(reactor_delayed_call_active(s->c), 0);
  CHECK(isnan(reactor_delayed_call_get_time(s->c)));

  printf("-- foreign thread: any-thread functions work\n");
  CHECK_EQ(reactor_is_in_io_thread(r), 0);
  const char *name = reactor_backend_name(r);
  CHECK(name != NULL && s->owner_backend_name != NULL && strcmp(name, s->owner_backend_name) == 0);
  CHECK_EQ(reactor_backend_fd(r), s->owner_backend_fd);
  CHECK_OK(reactor_call_from_thread(r, owner_cb, NULL, count_release));
  CHECK_OK(reactor_wake_up(r));
  CHECK_OK(reactor_async_send(s->a));
  return NULL;
}

static void *free_thread(void *arg) {
  CHECK_OK(reactor_free(arg));
  return NULL;
}

/* ---- run from another thread moves ownership ------------------------------------ */

static pthread_t runner;
static atomic_int on_runner, runner_io;

static void runner_cb(reactor_t *r, void *ud) {
  (void)ud;
  if (pthread_equal(pthread_self(), runner)) atomic_fetch_add(&on_runner, 1);
  atomic_store(&runner_io, reactor_is_in_io_thread(r));
  CHECK_OK(reactor_stop(r));
}

static void *run_thread(void *arg) {
  CHECK_OK(reactor_run(arg));
  return NULL;
}

static void test_run_elsewhere(void) {
  SECTION("reactor_run from another thread makes it the owner");
  reactor_t *r = tu_new_reactor();
  CHECK_OK(reactor_call_later(r, 0.0, runner_cb, NULL, NULL, NULL));
  REQUIRE(pthread_create(&runner, NULL, run_thread, r) == 0);
  pthread_join(runner, NULL);
  CHECK_EQ(atomic_load(&on_runner), 1);
  CHECK_EQ(atomic_load(&runner_io), 1);
  CHECK_EQ(reactor_is_in_io_thread(r), 0);
  reactor_delayed_call_t *h = NULL;
  CHECK_RC(reactor_call_later(r, 1.0, tu_noop_cb, NULL, NULL, &h), REACTOR_E_WRONG_THREAD);
  CHECK(h == NULL);
  CHECK_OK(reactor_free(r));
}

int main(void) {
  tu_watchdog(30);
  owner = pthread_self();
  reactor_t *r = tu_new_manual_reactor();
  tu_banner(PROG, r);
  shared_t s;
  memset(&s, 0, sizeof s);
  s.r = r;
  int p[2];
  tu_pipe(p);
  s.fd_r = p[0];
  s.fd_w = p[1];
  atomic_int async_calls = 0;

  CHECK_EQ(reactor_is_in_io_thread(r), 1);
  CHECK_OK(reactor_call_later(r, 5.0, cb, NULL, count_release, &s.c));
  CHECK_OK(reactor_call_later(r, 0.0, cb, NULL, count_release, NULL)); /* due: timeout 0 */
  CHECK_OK(reactor_add_system_event_trigger(r, REACTOR_PHASE_BEFORE, "ev", trig, NULL,
                                            count_release, &s.trigger_id));
  CHECK_OK(reactor_async_new(r, tu_count_cb, &async_calls, NULL, &s.a));
  s.owner_backend_name = reactor_backend_name(r);
  s.owner_backend_fd = reactor_backend_fd(r);
  double now = reactor_seconds(r);

  /* owner sees real values */
  CHECK_EQ(reactor_delayed_call_count(r), 2);
  CHECK_EQ(reactor_backend_timeout_ms(r), 0);
  CHECK_EQ(reactor_delayed_call_active(s.c), 1);

  pthread_t th;
  REQUIRE(pthread_create(&th, NULL, foreign, &s) == 0);
  pthread_join(th, NULL);

  SECTION("nothing changed");
  CHECK_EQ(atomic_load(&callbacks), 0);
  CHECK_EQ(atomic_load(&releases), 0);
  CHECK_EQ(reactor_delayed_call_count(r), 2);
  CHECK_EQ(reactor_delayed_call_active(s.c), 1);
  CHECK_NEAR(reactor_delayed_call_get_time(s.c), now + 5.0, 1e-9);
  CHECK_NEAR(reactor_seconds(r), now, 1e-9);
  int fds[4];
  size_t n = 99;
  CHECK_OK(reactor_get_readers(r, fds, 4, &n));
  CHECK_EQ(n, 0);
  CHECK_OK(reactor_get_writers(r, fds, 4, &n));
  CHECK_EQ(n, 0);
  CHECK_EQ(reactor_is_in_io_thread(r), 1);

  SECTION("the foreign call_from_thread and async_send run on the owner");
  for (int i = 0; i < 5 && (atomic_load(&ran_on_owner) == 0 || atomic_load(&async_calls) == 0); i++)
    CHECK_OK(reactor_iterate(r, 0.5));
  CHECK_EQ(atomic_load(&ran_on_owner), 1);
  CHECK_EQ(atomic_load(&async_calls), 1);
  CHECK_EQ(atomic_load(&callbacks), 1); /* the due call_later(0) */
  CHECK_OK(reactor_async_close(s.a));
  CHECK_OK(reactor_iterate(r, 0.0));
  CHECK_EQ(atomic_load(&releases), 2); /* call_from_thread ud + the due call */

  SECTION("reactor_free from another thread while not running");
  REQUIRE(pthread_create(&th, NULL, free_thread, r) == 0);
  pthread_join(th, NULL);
  /* remaining: the 5 s call and the trigger */
  CHECK_EQ(atomic_load(&releases), 4);
  reactor_delayed_call_release(s.c);
  tu_close_pair(p);
  test_run_elsewhere();
  return tu_finish(PROG);
}
