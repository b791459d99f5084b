/*
 * test_misuse.c - hostile input never crashes (API.md §1, §7; DECISIONS "Constants", "Handles").
 *
 * Checks:
 *   - NULL reactor / handle / callback / out pointers -> REACTOR_E_INVALID for every status
 *     function; getters return their neutral value; void functions do nothing;
 *   - reactor_free(NULL) OK; reactor_free twice -> INVALID; a freed reactor handle is
 *     detected (INVALID, getters neutral); made-up handles are detected;
 *   - bad phase values -> INVALID; NULL event name -> INVALID;
 *   - reactor_strerror never returns NULL (known codes, 12345, -12345, INT_MIN, OS codes),
 *     known codes have non-empty texts;
 *   - status codes are distinct negatives; REACTOR_E_OS(e) / reactor_status_from_errno(e) /
 *     reactor_status_errno round-trip,
 *     and reactor_status_errno of non-OS statuses is 0.
 */
#include <limits.h>

#include "test_util.h"

static const char *PROG = "test_misuse";

static int trig(reactor_t *r, uint64_t id, void *ud) {
  (void)r;
  (void)id;
  (void)ud;
  return 0;
}

static void fd_cb(reactor_t *r, int fd, uint32_t ev, void *ud) {
  (void)r;
  (void)fd;
  (void)ev;
  (void)ud;
}

static void log_fn(void *ud, int level, const char *msg) {
  (void)ud;
  (void)level;
  (void)msg;
}

#define INV(expr) CHECK_RC((expr), REACTOR_E_INVALID)

static atomic_int releases;
static void sig_cb(reactor_t *r, int signum, void *ud) {
  (void)r;
  (void)signum;
  (void)ud;
}

static void rel(void *ud) {
  (void)ud;
  atomic_fetch_add(&releases, 1);
}

/* Every status function with a NULL (or otherwise invalid) reactor handle. */
static void null_and_bad_reactor(reactor_t *r, const char *what) {
  printf("-- %s reactor handle\n", what);
  int fds[4];
  size_t n = 0;
  uint64_t id = 0;
  reactor_delayed_call_t *h = NULL;
  reactor_async_t *a = NULL;
  reactor_remote_t *rem = NULL;
  reactor_stats_t st;
  memset(&st, 0, sizeof st);
  st.struct_size = sizeof st;

  INV(reactor_run(r));
  INV(reactor_stop(r));
  INV(reactor_crash(r));
  INV(reactor_iterate(r, 0.0));
  INV(reactor_call_when_running(r, tu_noop_cb, NULL, rel));
  INV(reactor_stats(r, &st));
  INV(reactor_add_system_event_trigger(r, REACTOR_PHASE_BEFORE, "x", trig, NULL, rel, &id));
  INV(reactor_remove_system_event_trigger(r, 1));
  INV(reactor_fire_system_event(r, "x"));
  INV(reactor_trigger_complete(r, 1));
  INV(reactor_trigger_complete_now(r, 1));
  INV(reactor_add_signal_handler(r, SIGUSR1, sig_cb, NULL, rel, &id));
  INV(reactor_remove_signal_handler(r, 1));
  INV(reactor_install_resolver(r, NULL, NULL, rel));
  INV(reactor_call_later(r, 1.0, tu_noop_cb, NULL, rel, &h));
  CHECK(h == NULL);
  INV(reactor_clock_advance(r, 1.0));
  INV(reactor_call_from_thread(r, tu_noop_cb, NULL, rel));
  INV(reactor_wake_up(r));
  INV(reactor_async_new(r, tu_noop_cb, NULL, rel, &a));
  CHECK(a == NULL);
  INV(reactor_remote_new(r, &rem));
  CHECK(rem == NULL);
  INV(reactor_add_reader(r, 0, fd_cb, NULL, rel));
  INV(reactor_add_writer(r, 1, fd_cb, NULL, rel));
  INV(reactor_remove_reader(r, 0));
  INV(reactor_remove_writer(r, 1));
  INV(reactor_remove_all(r, fds, 4, &n));
  INV(reactor_get_readers(r, fds, 4, &n));
  INV(reactor_get_writers(r, fds, 4, &n));

  /* getters: neutral values */
  CHECK_EQ(reactor_is_running(r), 0);
  CHECK_EQ(reactor_is_in_io_thread(r), 0);
  CHECK_EQ(reactor_delayed_call_count(r), 0);
  CHECK(isnan(reactor_seconds(r)));
  CHECK_EQ(reactor_backend_timeout_ms(r), -1);
  CHECK_EQ(reactor_backend_fd(r), -1);
  (void)reactor_backend_name(r); /* must not crash; value unspecified */
  reactor_set_log_fn(r, log_fn, NULL);
  CHECK_EQ(atomic_load(&releases), 0);
}

static void null_args(reactor_t *r) {
  SECTION("valid reactor, NULL / bad arguments");
  int fds[4];
  size_t n = 0;
  uint64_t id = 0;
  INV(reactor_new(NULL, NULL));
  INV(reactor_call_when_running(r, NULL, NULL, rel));
  INV(reactor_stats(r, NULL));
  INV(reactor_add_system_event_trigger(r, REACTOR_PHASE_BEFORE, NULL, trig, NULL, rel, &id));
  INV(reactor_add_system_event_trigger(r, REACTOR_PHASE_BEFORE, "x", NULL, NULL, rel, &id));
  INV(reactor_add_system_event_trigger(r, (reactor_phase_t)7, "x", trig, NULL, rel, &id));
  INV(reactor_add_system_event_trigger(r, (reactor_phase_t)-1, "x", trig, NULL, rel, &id));
  INV(reactor_fire_system_event(r, NULL));
  INV(reactor_call_later(r, 1.0, NULL, NULL, rel, NULL));
  INV(reactor_call_from_thread(r, NULL, NULL, rel));
  INV(reactor_add_reader(r, 0, NULL, NULL, rel));
  INV(reactor_get_readers(r, fds, 4, NULL));
  INV(reactor_get_writers(r, fds, 4, NULL));
  INV(reactor_remove_all(r, fds, 4, NULL));
  /* NULL out_fds with a non-zero cap while an fd is registered: must not write through NULL */
  int p[2];
  tu_pipe(p);
  CHECK_OK(reactor_add_reader(r, p[0], fd_cb, NULL, NULL));
  CHECK_OK(reactor_add_writer(r, p[1], fd_cb, NULL, NULL));
  INV(reactor_get_readers(r, NULL, 4, &n));
  INV(reactor_get_writers(r, NULL, 4, &n));
  INV(reactor_remove_all(r, NULL, 4, &n));
  CHECK_OK(reactor_remove_reader(r, p[0])); /* the failed remove_all changed nothing */
  CHECK_OK(reactor_remove_writer(r, p[1]));
  tu_close_pair(p);
  CHECK_EQ(atomic_load(&releases), 0);

  SECTION("NULL delayed call / async / remote handles");
  INV(reactor_delayed_call_cancel(NULL));
  INV(reactor_delayed_call_reset(NULL, 1.0));
  INV(reactor_delayed_call_delay(NULL, 1.0));
  CHECK_EQ(reactor_delayed_call_active(NULL), 0);
  CHECK(isnan(reactor_delayed_call_get_time(NULL)));
  reactor_delayed_call_release(NULL);
  INV(reactor_async_send(NULL));
  INV(reactor_async_close(NULL));
  INV(reactor_remote_call(NULL, tu_noop_cb, NULL, rel));
  reactor_remote_free(NULL);
  reactor_options_init(NULL);
  CHECK_EQ(atomic_load(&releases), 0);
}

static void strerror_and_codes(void) {
  SECTION("reactor_strerror and status codes");
  const int codes[] = {REACTOR_OK,
                       REACTOR_E_INVALID,
                       REACTOR_E_WRONG_THREAD,
                       REACTOR_E_ALREADY_RUNNING,
                       REACTOR_E_NOT_RUNNING,
                       REACTOR_E_NOT_RESTARTABLE,
                       REACTOR_E_ALREADY_CALLED,
                       REACTOR_E_ALREADY_CANCELLED,
                       REACTOR_E_NOT_FOUND,
                       REACTOR_E_BUSY,
                       REACTOR_E_CLOSED,
                       REACTOR_E_UNSUPPORTED,
                       REACTOR_E_TIMEOUT,
                       REACTOR_E_NOMEM,
                       REACTOR_E_CONNECTION_REFUSED,
                       REACTOR_E_DNS,
                       REACTOR_E_ADDRESS_IN_USE,
                       REACTOR_E_INVALID_ADDRESS,
                       REACTOR_E_MESSAGE_TOO_LONG,
                       REACTOR_E_PROCESS_EXITED,
                       REACTOR_E_INTERNAL,
                       REACTOR_E_CONNECTION_LOST,
                       REACTOR_E_CONNECTION_ABORTED,
                       REACTOR_E_CANCELLED,
                       REACTOR_E_PROCESS_TERMINATED};
  const size_t N = sizeof codes / sizeof codes[0];
  CHECK_EQ(REACTOR_OK, 0);
  /* the values API.md §6.1 fixes */
  CHECK_EQ(REACTOR_E_CONNECTION_LOST, -21);
  CHECK_EQ(REACTOR_E_CONNECTION_ABORTED, -22);
  CHECK_EQ(REACTOR_E_CANCELLED, -23);
  CHECK_EQ(REACTOR_E_PROCESS_TERMINATED, -24);
  for (size_t i = 0; i < N; i++) {
    const char *s = reactor_strerror(codes[i]);
    CHECK(s != NULL && s[0] != '\0');
    if (i > 0) CHECK(codes[i] < 0);
    CHECK_EQ(reactor_status_errno(codes[i]), 0);
    for (size_t j = 0; j < i; j++) {
      if (codes[i] == codes[j]) {
        fprintf(stderr, "   status codes #%zu and #%zu are both %d\n", j, i, codes[i]);
        atomic_fetch_add(&tu_failures, 1);
      }
    }
  }
  printf("   strerror(REACTOR_E_INVALID) = \"%s\"\n", tu_status(REACTOR_E_INVALID));
  const int odd[] = {12345, -12345, INT_MIN, INT_MAX, -9999, REACTOR_PENDING};
  for (size_t i = 0; i < sizeof odd / sizeof odd[0]; i++) CHECK(reactor_strerror(odd[i]) != NULL);

  const int errnos[] = {EPERM, ENOENT, EINTR, EBADF, EAGAIN, ENOMEM, EACCES, EINVAL, EMFILE, EPIPE,
                        ECONNREFUSED, 4095};
  for (size_t i = 0; i < sizeof errnos / sizeof errnos[0]; i++) {
    int s = REACTOR_E_OS(errnos[i]);
    CHECK(s < 0);
    CHECK_EQ(reactor_status_errno(s), errnos[i]);
    CHECK_EQ(reactor_status_from_errno(errnos[i]), s); /* the macro's function form */
    CHECK(reactor_strerror(s) != NULL);
    for (size_t j = 0; j < N; j++) CHECK(s != codes[j]);
  }
  CHECK_EQ(REACTOR_E_OS(EBADF), -10000 - EBADF);
  printf("   strerror(REACTOR_E_OS(EBADF)) = \"%s\"\n", tu_status(REACTOR_E_OS(EBADF)));
  CHECK_EQ(reactor_status_errno(REACTOR_OK), 0);
  CHECK_EQ(reactor_status_errno(12345), 0);
  /* out-of-range errno values map to EIO rather than an ambiguous code */
  CHECK_EQ(reactor_status_from_errno(0), REACTOR_E_OS(EIO));
  CHECK_EQ(reactor_status_from_errno(-5), REACTOR_E_OS(EIO));
  CHECK_EQ(reactor_status_from_errno(100000), REACTOR_E_OS(EIO));
}

int main(void) {
  tu_watchdog(30);
  reactor_t *r = tu_new_reactor();
  tu_banner(PROG, r);

  null_and_bad_reactor(NULL, "NULL");
  null_args(r);
  strerror_and_codes();

  SECTION("made-up handles");
  static char fake_mem[256];
  null_and_bad_reactor((reactor_t *)(void *)fake_mem, "made-up (static memory)");
  INV(reactor_delayed_call_cancel((reactor_delayed_call_t *)(void *)fake_mem));
  CHECK_EQ(reactor_delayed_call_active((reactor_delayed_call_t *)(void *)fake_mem), 0);
  reactor_delayed_call_release((reactor_delayed_call_t *)(void *)fake_mem);
  INV(reactor_async_send((reactor_async_t *)(void *)fake_mem));
  INV(reactor_remote_call((reactor_remote_t *)(void *)fake_mem, tu_noop_cb, NULL, rel));
  INV(reactor_free((reactor_t *)(void *)fake_mem));

  SECTION("free(NULL), free twice, use after free");
  CHECK_OK(reactor_free(NULL));
  CHECK_OK(reactor_free(r));
  CHECK_RC(reactor_free(r), REACTOR_E_INVALID);
  null_and_bad_reactor(r, "freed");
  return tu_finish(PROG);
}
