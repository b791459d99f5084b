/*
 * test_async.c - coalescing async handles (API.md §4).
 *
 * Checks:
 *   - several sends before the callback runs give exactly one call (same thread, iterate);
 *     a send after the callback ran gives another;
 *   - sends from 4 threads (100 000 each; 5 000 under valgrind) coalesce:
 *     1 <= callbacks <= sends, every callback on the reactor thread;
 *   - the last send is always followed by a callback: each thread writes its "done" flag,
 *     then sends once more, then waits until a callback has observed its flag;
 *   - async_close runs release once; using the closed handle -> INVALID;
 *   - reactor_free closes async handles still open (their release runs);
 *   - async_new with NULL callback or NULL out -> INVALID (release not called);
 *   - async_send from a signal handler (async-signal-safe) wakes iterate(-1).
 */
#include "test_util.h"

static const char *PROG = "test_async";

#define NTHREADS 4

static reactor_t *g_r;
static reactor_async_t *g_async;
static long n_sends;
static atomic_int done_flag[NTHREADS];
static atomic_int acked[NTHREADS];
static atomic_long callbacks;
static atomic_int send_errors, ack_timeouts, off_thread;
static pthread_t reactor_thread;

static void async_cb(reactor_t *r, void *ud) {
  (void)ud;
  atomic_fetch_add(&callbacks, 1);
  if (!pthread_equal(pthread_self(), reactor_thread)) atomic_fetch_add(&off_thread, 1);
  int all = 1;
  for (int i = 0; i < NTHREADS; i++) {
    if (atomic_load(&done_flag[i])) atomic_store(&acked[i], 1);
    if (!atomic_load(&acked[i])) all = 0;
  }
  if (all && reactor_is_running(r)) reactor_stop(r);
}

static void *sender(void *arg) {
  int tid = (int)(intptr_t)arg;
  for (long i = 0; i < n_sends; i++) {
    int rc = reactor_async_send(g_async);
    if (rc != REACTOR_OK && atomic_fetch_add(&send_errors, 1) < 5)
      fprintf(stderr, "   async_send -> %d (%s)\n", rc, tu_status(rc));
  }
  atomic_store(&done_flag[tid], 1); /* written before the final send */
  CHECK_OK(reactor_async_send(g_async));
  double t0 = tu_now(), limit = tu_valgrind() ? 40.0 : 10.0;
  while (!atomic_load(&acked[tid])) {
    if (tu_now() - t0 > limit) {
      fprintf(stderr, "   thread %d: no callback after its last send\n", tid);
      atomic_fetch_add(&ack_timeouts, 1);
      break;
    }
    tu_sleep_ms(1);
  }
  return NULL;
}

static void safety_cb(reactor_t *r, void *ud) {
  (void)ud;
  fprintf(stderr, "   safety timer fired: async callbacks stopped arriving\n");
  atomic_fetch_add(&tu_failures, 1);
  reactor_crash(r);
}

static void test_threads(void) {
  n_sends = tu_scale(100000, 5000);
  printf("-- %d threads x %ld sends coalesce; the last send is followed by a callback\n", NTHREADS,
         n_sends);
  g_r = tu_new_reactor();
  tu_banner(PROG, g_r);
  reactor_thread = pthread_self();
  atomic_int rel = 0;
  CHECK_OK(reactor_async_new(g_r, async_cb, &rel, tu_count_release, &g_async));
  CHECK_OK(reactor_call_later(g_r, tu_valgrind() ? 50.0 : 20.0, safety_cb, NULL, NULL, NULL));
  pthread_t th[NTHREADS];
  for (int i = 0; i < NTHREADS; i++)
    REQUIRE(pthread_create(&th[i], NULL, sender, (void *)(intptr_t)i) == 0);
  CHECK_OK(reactor_run(g_r));
  for (int i = 0; i < NTHREADS; i++) pthread_join(th[i], NULL);
  long cbs = atomic_load(&callbacks);
  long total = (n_sends + 1) * NTHREADS;
  printf("   %ld sends -> %ld callbacks\n", total, cbs);
  CHECK(cbs >= 1);
  CHECK(cbs <= total);
  CHECK_EQ(atomic_load(&send_errors), 0);
  CHECK_EQ(atomic_load(&ack_timeouts), 0);
  CHECK_EQ(atomic_load(&off_thread), 0);
  for (int i = 0; i < NTHREADS; i++) CHECK_EQ(atomic_load(&acked[i]), 1);
  CHECK_EQ(atomic_load(&rel), 0);
  CHECK_OK(reactor_async_close(g_async));
  CHECK_EQ(atomic_load(&rel), 1);
  CHECK_RC(reactor_async_close(g_async), REACTOR_E_INVALID);
  CHECK_RC(reactor_async_send(g_async), REACTOR_E_INVALID);
  CHECK_OK(reactor_free(g_r));
  CHECK_EQ(atomic_load(&rel), 1);
}

static atomic_int free_cbs;
static void counting_cb(reactor_t *r, void *ud) {
  (void)r;
  (void)ud;
  atomic_fetch_add(&free_cbs, 1);
}

static void test_coalesce_same_thread(void) {
  SECTION("sends before the callback runs coalesce into one call");
  reactor_t *r = tu_new_reactor();
  atomic_int calls = 0, rel = 0, rel2 = 0;
  reactor_async_t *a = NULL, *b = NULL;
  CHECK_OK(reactor_async_new(r, tu_count_cb, &calls, NULL, &a));
  CHECK_OK(reactor_iterate(r, 0.0));
  CHECK_EQ(atomic_load(&calls), 0); /* no send, no call */
  CHECK_OK(reactor_async_send(a));
  CHECK_OK(reactor_async_send(a));
  CHECK_OK(reactor_async_send(a));
  CHECK_EQ(atomic_load(&calls), 0); /* never inside send */
  CHECK_OK(reactor_iterate(r, 1.0));
  CHECK_EQ(atomic_load(&calls), 1);
  CHECK_OK(reactor_iterate(r, 0.0));
  CHECK_EQ(atomic_load(&calls), 1);
  CHECK_OK(reactor_async_send(a));
  CHECK_OK(reactor_iterate(r, 1.0));
  CHECK_EQ(atomic_load(&calls), 2);
  CHECK_OK(reactor_async_close(a));

  SECTION("async_new argument errors; reactor_free closes open asyncs");
  reactor_async_t *bad = NULL;
  CHECK_RC(reactor_async_new(r, NULL, &rel, tu_count_release, &bad), REACTOR_E_INVALID);
  CHECK(bad == NULL);
  CHECK_RC(reactor_async_new(r, tu_count_cb, &rel, tu_count_release, NULL), REACTOR_E_INVALID);
  CHECK_EQ(atomic_load(&rel), 0);
  CHECK_OK(reactor_async_new(r, counting_cb, &rel2, tu_count_release, &b));
  CHECK_OK(reactor_async_new(r, counting_cb, &rel2, tu_count_release, &bad));
  CHECK_OK(reactor_async_send(b));
  /* b has a send pending and is still open; bad is idle and open */
  CHECK_OK(reactor_free(r));
  CHECK_EQ(atomic_load(&free_cbs), 0); /* free runs no callback */
  CHECK_EQ(atomic_load(&rel2), 2);      /* both open handles released */
}

/* ---- send from a signal handler --------------------------------------------- */

static reactor_async_t *sig_async;
static volatile sig_atomic_t sig_send_rc = 1;

static void usr1_handler(int sig) {
  (void)sig;
  sig_send_rc = reactor_async_send(sig_async);
}

static void test_signal_send(void) {
  SECTION("async_send from a signal handler");
  reactor_t *r = tu_new_reactor();
  atomic_int calls = 0;
  CHECK_OK(reactor_async_new(r, tu_count_cb, &calls, NULL, &sig_async));
  struct sigaction sa, old;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = usr1_handler;
  sigemptyset(&sa.sa_mask);
  REQUIRE(sigaction(SIGUSR1, &sa, &old) == 0);
  raise(SIGUSR1);
  CHECK_EQ(sig_send_rc, REACTOR_OK);
  CHECK_OK(reactor_call_later(r, 30.0, tu_noop_cb, NULL, NULL, NULL)); /* bounds a broken wait */
  double t0 = tu_now();
  CHECK_OK(reactor_iterate(r, -1.0));
  CHECK(tu_now() - t0 < 10.0); /* woken by the send, not by the 30 s timer */
  CHECK_EQ(atomic_load(&calls), 1);
  sigaction(SIGUSR1, &old, NULL);
  CHECK_OK(reactor_async_close(sig_async));
  CHECK_OK(reactor_free(r));
}

int main(void) {
  tu_watchdog(60);
  test_coalesce_same_thread();
  test_threads();
  test_signal_send();
  return tu_finish(PROG);
}
