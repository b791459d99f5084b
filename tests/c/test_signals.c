/*
 * test_signals.c - SIGINT/SIGTERM handling during run (API.md §2 options, §7 "Signals").
 *
 * Checks:
 *   - install_signal_handlers=1: raise(SIGTERM) (and SIGINT) from a timer callback stops
 *     the reactor gracefully: run returns OK and a before-shutdown trigger ran;
 *   - the previous disposition (a custom handler installed before run) is restored after
 *     run returns, and the signal is not left blocked: raising it again after run reaches
 *     the custom handler; a SIG_DFL disposition comes back as SIG_DFL;
 *   - install_signal_handlers=0: nothing is installed (the custom handler is in place
 *     during run and gets the signal) and the reactor keeps running.
 */
#include "test_util.h"

static const char *PROG = "test_signals";

static volatile sig_atomic_t custom_hits[NSIG];

static void custom_handler(int sig) { custom_hits[sig]++; }

static void install_custom(int sig) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = custom_handler;
  sigemptyset(&sa.sa_mask);
  REQUIRE(sigaction(sig, &sa, NULL) == 0);
}

static int handler_is(int sig, void (*h)(int)) {
  struct sigaction cur;
  REQUIRE(sigaction(sig, NULL, &cur) == 0);
  return !(cur.sa_flags & SA_SIGINFO) && cur.sa_handler == h;
}

static int is_blocked(int sig) {
  sigset_t set;
  sigemptyset(&set);
  pthread_sigmask(SIG_BLOCK, NULL, &set);
  return sigismember(&set, sig) == 1;
}

static reactor_t *new_reactor(int install) {
  reactor_options_t o = tu_options();
  o.install_signal_handlers = install;
  return tu_new_reactor_with(&o);
}

static int shutdown_runs;
static int count_shutdown(reactor_t *r, uint64_t id, void *ud) {
  (void)r;
  (void)id;
  (void)ud;
  shutdown_runs++;
  return 0;
}

static void raise_cb(reactor_t *r, void *ud) {
  (void)r;
  raise((int)(intptr_t)ud);
}

static void safety_cb(reactor_t *r, void *ud) {
  fprintf(stderr, "   safety timer fired: %s\n", (const char *)ud);
  atomic_fetch_add(&tu_failures, 1);
  reactor_crash(r);
}

static void test_signal_stops(int sig, const char *name) {
  printf("-- install_signal_handlers=1: raise(%s) stops gracefully, disposition restored\n", name);
  install_custom(sig);
  custom_hits[sig] = 0;
  shutdown_runs = 0;
  reactor_t *r = new_reactor(1);
  uint64_t id;
  CHECK_OK(reactor_add_system_event_trigger(r, REACTOR_PHASE_BEFORE, "shutdown", count_shutdown,
                                            NULL, NULL, &id));
  CHECK_OK(reactor_call_later(r, 0.02, raise_cb, (void *)(intptr_t)sig, NULL, NULL));
  CHECK_OK(reactor_call_later(r, 10.0, safety_cb, "signal did not stop the reactor", NULL, NULL));
  CHECK_OK(reactor_run(r));
  CHECK_EQ(shutdown_runs, 1);
  printf("   custom handler hits during run: %d\n", (int)custom_hits[sig]);
  CHECK(handler_is(sig, custom_handler));
  CHECK(!is_blocked(sig));
  int before = custom_hits[sig];
  raise(sig);
  CHECK_EQ(custom_hits[sig], before + 1);
  CHECK_OK(reactor_free(r));
  signal(sig, SIG_DFL);
}

static void test_default_restored(void) {
  SECTION("install_signal_handlers=1: SIG_DFL comes back as SIG_DFL");
  signal(SIGINT, SIG_DFL);
  signal(SIGTERM, SIG_DFL);
  reactor_t *r = new_reactor(1);
  CHECK_OK(reactor_call_later(r, 0.01, tu_stop_cb, NULL, NULL, NULL));
  CHECK_OK(reactor_run(r));
  CHECK(handler_is(SIGINT, SIG_DFL));
  CHECK(handler_is(SIGTERM, SIG_DFL));
  CHECK(!is_blocked(SIGINT));
  CHECK(!is_blocked(SIGTERM));
  CHECK_OK(reactor_free(r));
}

static int during_checks_done;
static void check_not_installed_cb(reactor_t *r, void *ud) {
  (void)ud;
  CHECK(handler_is(SIGTERM, custom_handler));
  CHECK(!is_blocked(SIGTERM));
  int before = custom_hits[SIGTERM];
  raise(SIGTERM);
  CHECK_EQ(custom_hits[SIGTERM], before + 1);
  CHECK_EQ(reactor_is_running(r), 1);
  during_checks_done = 1;
}

static void still_running_cb(reactor_t *r, void *ud) {
  (void)ud;
  CHECK_EQ(reactor_is_running(r), 1);
  CHECK_EQ(shutdown_runs, 0); /* the signal did not stop it */
  CHECK_OK(reactor_stop(r));
}

static void test_not_installed(void) {
  SECTION("install_signal_handlers=0: nothing installed");
  install_custom(SIGTERM);
  custom_hits[SIGTERM] = 0;
  shutdown_runs = 0;
  reactor_t *r = new_reactor(0);
  uint64_t id;
  CHECK_OK(reactor_add_system_event_trigger(r, REACTOR_PHASE_BEFORE, "shutdown", count_shutdown,
                                            NULL, NULL, &id));
  CHECK_OK(reactor_call_later(r, 0.02, check_not_installed_cb, NULL, NULL, NULL));
  CHECK_OK(reactor_call_later(r, 0.1, still_running_cb, NULL, NULL, NULL));
  CHECK_OK(reactor_run(r));
  CHECK_EQ(during_checks_done, 1);
  CHECK_EQ(shutdown_runs, 1);
  CHECK(handler_is(SIGTERM, custom_handler));
  CHECK_OK(reactor_free(r));
  signal(SIGTERM, SIG_DFL);
}

int main(void) {
  tu_watchdog(30);
  reactor_t *r = tu_new_reactor();
  tu_banner(PROG, r);
  CHECK_OK(reactor_free(r));
  test_signal_stops(SIGTERM, "SIGTERM");
  test_signal_stops(SIGINT, "SIGINT");
  test_default_restored();
  test_not_installed();
  return tu_finish(PROG);
}
