/*
 * test_signal_handlers.c - host signal handlers (API.md §8.2, §8.6; DECISIONS "Signals").
 *
 * Checks:
 *   - a handler runs on the reactor thread, on a pass after the delivery, never inside the signal
 *     handler: raise() from a callback does not call it before that callback returns; iterate
 *     dispatches it (also without run); signum is passed; handlers of one signal run in the order
 *     added; three deliveries before the reactor looks coalesce into one call;
 *   - the disposition: installed with the first handler (replacing a custom one), the custom one is
 *     back after the last handler is removed, and after reactor_free of a reactor with handlers;
 *     a second reactor's handler for the same signal keeps it installed until both are gone;
 *   - two reactors with handlers for one signal: both are called;
 *   - a SIGTERM handler replaces the built-in stop for its reactor: run keeps running and the
 *     handler stops it; SIGCHLD is allowed;
 *   - remove: releases inside the call; a handler removing itself from its own callback is released
 *     after it returns and not called again; one removed by an earlier handler of the same delivery
 *     is not called; one added during a dispatch misses that delivery; remove twice/unknown ->
 *     NOT_FOUND;
 *   - bad input: NULL cb, 0, NSIG, -1, SIGKILL, SIGSTOP, SIGSEGV, SIGBUS, SIGFPE, SIGILL, glibc's
 *     reserved 32 and 33 -> INVALID with nothing released; out_id may be NULL; reactor_free runs
 *     every remaining release.
 */
#include "test_util.h"

#include <sys/wait.h>

static const char *PROG = "test_signal_handlers";

static volatile sig_atomic_t custom_hits;
static void custom_handler(int sig) {
  (void)sig;
  custom_hits++;
}

static void install_custom(int sig) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = custom_handler;
  sigemptyset(&sa.sa_mask);
  REQUIRE(sigaction(sig, &sa, NULL) == 0);
}

static int custom_installed(int sig) {
  struct sigaction cur;
  REQUIRE(sigaction(sig, NULL, &cur) == 0);
  return !(cur.sa_flags & SA_SIGINFO) && cur.sa_handler == custom_handler;
}

typedef struct handler {
  const char *name;
  int calls;
  int last_signum;
  atomic_int releases;
  uint64_t id;
  reactor_t *remove_self_from; /* remove its own id inside the callback */
  uint64_t remove_other;       /* an id to remove inside the callback */
  int add_during;              /* add `late` for the same signal inside the callback */
} handler_t;

static char order[256];
static pthread_t reactor_thread;
static int in_raise_callback;

static void on_signal(reactor_t *r, int signum, void *ud) {
  handler_t *h = ud;
  CHECK(pthread_equal(pthread_self(), reactor_thread));
  CHECK_EQ(in_raise_callback, 0);
  h->calls++;
  h->last_signum = signum;
  strncat(order, h->name, sizeof order - strlen(order) - 1);
  strncat(order, " ", sizeof order - strlen(order) - 1);
  if (h->remove_self_from) {
    CHECK_OK(reactor_remove_signal_handler(r, h->id));
    CHECK_EQ(atomic_load(&h->releases), 0); /* released after this returns */
    CHECK_RC(reactor_remove_signal_handler(r, h->id), REACTOR_E_NOT_FOUND);
  }
  if (h->remove_other) {
    CHECK_OK(reactor_remove_signal_handler(r, h->remove_other));
    h->remove_other = 0;
  }
}

static void release_handler(void *ud) { atomic_fetch_add(&((handler_t *)ud)->releases, 1); }

static void add(reactor_t *r, int sig, handler_t *h) {
  CHECK_OK(reactor_add_signal_handler(r, sig, on_signal, h, release_handler, &h->id));
}

static void raise_in_callback(reactor_t *r, void *ud) {
  (void)r;
  in_raise_callback = 1;
  raise((int)(intptr_t)ud);
  in_raise_callback = 0;
}

static void iterate_a_few(reactor_t *r) {
  for (int i = 0; i < 3; i++) CHECK_OK(reactor_iterate(r, 0.05));
}

static void test_order_coalescing_and_disposition(void) {
  SECTION("handlers in order, after the callback, coalesced; disposition installed and restored");
  install_custom(SIGUSR1);
  custom_hits = 0;
  reactor_t *r = tu_new_reactor();
  handler_t a = {.name = "a"}, b = {.name = "b"};
  order[0] = '\0';
  add(r, SIGUSR1, &a);
  CHECK(!custom_installed(SIGUSR1));
  add(r, SIGUSR1, &b);
  CHECK_OK(reactor_call_later(r, 0.0, raise_in_callback, (void *)(intptr_t)SIGUSR1, NULL, NULL));
  iterate_a_few(r);
  CHECK(strcmp(order, "a b ") == 0);
  CHECK_EQ(a.last_signum, SIGUSR1);
  CHECK_EQ(custom_hits, 0);

  /* three deliveries before the reactor looks: one call each */
  raise(SIGUSR1);
  raise(SIGUSR1);
  raise(SIGUSR1);
  iterate_a_few(r);
  CHECK_EQ(a.calls, 2);
  CHECK_EQ(b.calls, 2);

  CHECK_OK(reactor_remove_signal_handler(r, a.id));
  CHECK_EQ(atomic_load(&a.releases), 1); /* inside the call */
  CHECK(!custom_installed(SIGUSR1));
  CHECK_RC(reactor_remove_signal_handler(r, a.id), REACTOR_E_NOT_FOUND);
  CHECK_RC(reactor_remove_signal_handler(r, 12345), REACTOR_E_NOT_FOUND);
  CHECK_OK(reactor_remove_signal_handler(r, b.id));
  CHECK(custom_installed(SIGUSR1)); /* the last one went: the custom handler is back */
  raise(SIGUSR1);
  CHECK_EQ(custom_hits, 1);
  iterate_a_few(r);
  CHECK_EQ(a.calls + b.calls, 4);

  /* reactor_free with a handler: released, disposition restored */
  handler_t c = {.name = "c"};
  add(r, SIGUSR1, &c);
  CHECK(!custom_installed(SIGUSR1));
  CHECK_OK(reactor_free(r));
  CHECK_EQ(atomic_load(&c.releases), 1);
  CHECK(custom_installed(SIGUSR1));
}

static void test_remove_during_dispatch(void) {
  SECTION("removing itself, removing a later one, adding during a dispatch");
  reactor_t *r = tu_new_reactor();
  handler_t self = {.name = "self"}, remover = {.name = "remover"}, victim = {.name = "victim"};
  order[0] = '\0';
  self.remove_self_from = r;
  add(r, SIGUSR2, &self);
  add(r, SIGUSR2, &remover);
  add(r, SIGUSR2, &victim);
  remover.remove_other = victim.id;
  raise(SIGUSR2);
  iterate_a_few(r);
  CHECK(strcmp(order, "self remover ") == 0);
  CHECK_EQ(atomic_load(&self.releases), 1); /* after its callback returned */
  CHECK_EQ(atomic_load(&victim.releases), 1);
  CHECK_EQ(victim.calls, 0);
  raise(SIGUSR2);
  iterate_a_few(r);
  CHECK_EQ(self.calls, 1);
  CHECK_EQ(remover.calls, 2);
  CHECK_OK(reactor_remove_signal_handler(r, remover.id));
  CHECK_OK(reactor_free(r));
  CHECK_EQ(atomic_load(&remover.releases), 1);
}

static handler_t late = {.name = "late"};
static reactor_t *adder_reactor;
static void adder(reactor_t *r, int signum, void *ud) {
  (void)ud;
  strncat(order, "adder ", sizeof order - strlen(order) - 1);
  if (late.id == 0) CHECK_OK(reactor_add_signal_handler(r, signum, on_signal, &late, release_handler, &late.id));
}

static void test_add_during_dispatch(void) {
  SECTION("a handler added during a dispatch misses that delivery");
  reactor_t *r = tu_new_reactor();
  adder_reactor = r;
  uint64_t id;
  order[0] = '\0';
  CHECK_OK(reactor_add_signal_handler(r, SIGUSR2, adder, NULL, NULL, &id));
  raise(SIGUSR2);
  iterate_a_few(r);
  CHECK(strcmp(order, "adder ") == 0);
  CHECK_EQ(late.calls, 0);
  raise(SIGUSR2);
  iterate_a_few(r);
  CHECK(strcmp(order, "adder adder late ") == 0);
  CHECK_OK(reactor_free(r));
  CHECK_EQ(atomic_load(&late.releases), 1);
}

static void test_two_reactors(void) {
  SECTION("two reactors with handlers for one signal: both called; disposition kept until both go");
  install_custom(SIGUSR1);
  reactor_t *r1 = tu_new_reactor(), *r2 = tu_new_reactor();
  handler_t h1 = {.name = "h1"}, h2 = {.name = "h2"};
  add(r1, SIGUSR1, &h1);
  add(r2, SIGUSR1, &h2);
  raise(SIGUSR1);
  iterate_a_few(r1);
  iterate_a_few(r2);
  CHECK_EQ(h1.calls, 1);
  CHECK_EQ(h2.calls, 1);
  CHECK_OK(reactor_free(r1));
  CHECK(!custom_installed(SIGUSR1)); /* r2 still needs it */
  CHECK_OK(reactor_free(r2));
  CHECK(custom_installed(SIGUSR1));
  CHECK_EQ(atomic_load(&h1.releases) + atomic_load(&h2.releases), 2);
}

static int term_calls;
static void on_term(reactor_t *r, int signum, void *ud) {
  (void)ud;
  CHECK_EQ(signum, SIGTERM);
  if (++term_calls == 2) CHECK_OK(reactor_stop(r));
}

static void raise_term(reactor_t *r, void *ud) {
  (void)r;
  (void)ud;
  raise(SIGTERM);
}

static void safety_cb(reactor_t *r, void *ud) {
  (void)ud;
  fprintf(stderr, "   safety timer fired\n");
  atomic_fetch_add(&tu_failures, 1);
  reactor_crash(r);
}

static void test_replaces_builtin_stop(void) {
  SECTION("a SIGTERM handler replaces the built-in stop for its reactor");
  reactor_options_t o = tu_options();
  o.install_signal_handlers = 1;
  reactor_t *r = tu_new_reactor_with(&o);
  uint64_t id;
  CHECK_OK(reactor_add_signal_handler(r, SIGTERM, on_term, NULL, NULL, &id));
  CHECK_OK(reactor_call_later(r, 0.01, raise_term, NULL, NULL, NULL));
  CHECK_OK(reactor_call_later(r, 0.2, raise_term, NULL, NULL, NULL));
  CHECK_OK(reactor_call_later(r, 20.0, safety_cb, NULL, NULL, NULL));
  CHECK_OK(reactor_run(r)); /* the first SIGTERM did not stop it: the handler's second call did */
  CHECK_EQ(term_calls, 2);
  CHECK_OK(reactor_free(r));
}

static void test_sigchld_allowed(void) {
  SECTION("SIGCHLD is allowed; out_id may be NULL");
  reactor_t *r = tu_new_reactor();
  handler_t h = {.name = "chld"};
  CHECK_OK(reactor_add_signal_handler(r, SIGCHLD, on_signal, &h, release_handler, NULL));
  pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) _exit(0);
  double t0 = tu_now();
  while (h.calls == 0 && tu_now() - t0 < 10) CHECK_OK(reactor_iterate(r, 0.1));
  CHECK_EQ(h.calls, 1);
  CHECK_EQ(h.last_signum, SIGCHLD);
  int status;
  REQUIRE(waitpid(pid, &status, 0) == pid);
  CHECK_OK(reactor_free(r));
  CHECK_EQ(atomic_load(&h.releases), 1);
}

static void test_bad_input(void) {
  SECTION("bad input: INVALID, nothing released");
  reactor_t *r = tu_new_reactor();
  handler_t h = {.name = "bad"};
  uint64_t id = 77;
  CHECK_RC(reactor_add_signal_handler(r, SIGUSR1, NULL, &h, release_handler, &id), REACTOR_E_INVALID);
  int refused[] = {0, -1, NSIG, 1000, SIGKILL, SIGSTOP, SIGSEGV, SIGBUS, SIGFPE, SIGILL, 32, 33};
  for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++)
    CHECK_RC(reactor_add_signal_handler(r, refused[i], on_signal, &h, release_handler, &id),
             REACTOR_E_INVALID);
  CHECK_EQ(id, 77);
  CHECK_EQ(atomic_load(&h.releases), 0);
  CHECK_RC(reactor_add_signal_handler(NULL, SIGUSR1, on_signal, &h, release_handler, &id),
           REACTOR_E_INVALID);
  CHECK_RC(reactor_remove_signal_handler(NULL, 1), REACTOR_E_INVALID);
  CHECK_RC(reactor_remove_signal_handler(r, 0), REACTOR_E_NOT_FOUND);
  CHECK_OK(reactor_free(r));
  CHECK_EQ(atomic_load(&h.releases), 0);
}

int main(void) {
  tu_watchdog(60);
  reactor_thread = pthread_self();
  tu_banner_probe(PROG);
  test_order_coalescing_and_disposition();
  test_remove_during_dispatch();
  test_add_during_dispatch();
  test_two_reactors();
  test_replaces_builtin_stop();
  test_sigchld_allowed();
  test_bad_input();
  return tu_finish(PROG);
}
