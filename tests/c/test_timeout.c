/*
 * test_timeout.c - reactor_backend_timeout_ms tracks the earliest pending call
 * (API.md §3, §5; DECISIONS.md / API.md §7 "rounds up, clamps to INT_MAX, manual clock").
 *
 * Checks (real clock):
 *   - -1 with no timer; -1 when the only call was cancelled;
 *   - bounded by the earliest call: 1 s and 5 s pending -> <= 1000; cancel the 1 s call
 *     -> between 1000 and 5000; reset the 5 s call to 0.5 s -> <= 500;
 *   - rounds up (never early): for a 2.5 ms call, timeout_ms * 1e-3 >= the remaining time
 *     computed from reactor_seconds readings around the calls;
 *   - 0 when a call is due (call_later(0), or a short call after sleeping past it);
 *   - a 1e30 s deadline gives a large positive timeout (INT_MAX-ish), never negative;
 *   - 0 when a call_from_thread is queued (work is ready);
 * Checks (manual clock): -1 with nothing due, 0 when a call is due, -1 again after it ran.
 */
#include <limits.h>

#include "test_util.h"

static const char *PROG = "test_timeout";

static void test_real_clock(void) {
  reactor_t *r = tu_new_reactor();
  tu_banner(PROG, r);
  reactor_delayed_call_t *c1 = NULL, *c5 = NULL, *c = NULL;
  int t;

  SECTION("no timer / cancelled only timer -> -1");
  CHECK_EQ(reactor_backend_timeout_ms(r), -1);
  CHECK_OK(reactor_call_later(r, 1.0, tu_noop_cb, NULL, NULL, &c));
  t = reactor_backend_timeout_ms(r);
  CHECK(t > 0 && t <= 1000);
  CHECK_OK(reactor_delayed_call_cancel(c));
  CHECK_EQ(reactor_backend_timeout_ms(r), -1);
  reactor_delayed_call_release(c);

  SECTION("earliest call bounds the timeout");
  CHECK_OK(reactor_call_later(r, 5.0, tu_noop_cb, NULL, NULL, &c5));
  t = reactor_backend_timeout_ms(r);
  printf("   5 s call: %d ms\n", t);
  CHECK(t > 1000 && t <= 5000);
  CHECK_OK(reactor_call_later(r, 1.0, tu_noop_cb, NULL, NULL, &c1));
  t = reactor_backend_timeout_ms(r);
  printf("   1 s + 5 s calls: %d ms\n", t);
  CHECK(t > 0 && t <= 1000);
  CHECK_OK(reactor_delayed_call_cancel(c1));
  t = reactor_backend_timeout_ms(r);
  CHECK(t > 1000 && t <= 5000);
  CHECK_OK(reactor_delayed_call_reset(c5, 0.5));
  t = reactor_backend_timeout_ms(r);
  printf("   reset to 0.5 s: %d ms\n", t);
  CHECK(t > 0 && t <= 500);
  CHECK_OK(reactor_delayed_call_cancel(c5));
  CHECK_EQ(reactor_backend_timeout_ms(r), -1);
  reactor_delayed_call_release(c1);
  reactor_delayed_call_release(c5);

  SECTION("rounds up, never early");
  for (int i = 0; i < 5; i++) {
    const double d = 0.0025;
    double s0 = reactor_seconds(r);
    CHECK_OK(reactor_call_later(r, d, tu_noop_cb, NULL, NULL, &c));
    t = reactor_backend_timeout_ms(r);
    double s1 = reactor_seconds(r);
    /* deadline >= s0 + d, and the timeout was computed at some time <= s1 */
    double min_remaining = s0 + d - s1;
    printf("   2.5 ms call: timeout %d ms (remaining at least %.4f ms)\n", t, min_remaining * 1e3);
    CHECK(t >= 0 && t <= 3);
    CHECK((double)t * 1e-3 >= min_remaining - 1e-9);
    CHECK_OK(reactor_delayed_call_cancel(c));
    reactor_delayed_call_release(c);
  }

  SECTION("due call -> 0");
  CHECK_OK(reactor_call_later(r, 0.0, tu_noop_cb, NULL, NULL, &c));
  CHECK_EQ(reactor_backend_timeout_ms(r), 0);
  CHECK_OK(reactor_delayed_call_cancel(c));
  reactor_delayed_call_release(c);
  CHECK_OK(reactor_call_later(r, 0.002, tu_noop_cb, NULL, NULL, &c));
  tu_sleep_ms(10);
  CHECK_EQ(reactor_backend_timeout_ms(r), 0);
  CHECK_OK(reactor_iterate(r, 0.0)); /* runs it */
  CHECK_EQ(reactor_delayed_call_active(c), 0);
  CHECK_EQ(reactor_backend_timeout_ms(r), -1);
  reactor_delayed_call_release(c);

  SECTION("distant deadline 1e30 s -> large positive timeout");
  CHECK_OK(reactor_call_later(r, 1e30, tu_noop_cb, NULL, NULL, &c));
  t = reactor_backend_timeout_ms(r);
  printf("   1e30 s call: %d ms (INT_MAX = %d)\n", t, INT_MAX);
  CHECK(t >= INT_MAX / 2);
  CHECK_OK(reactor_delayed_call_cancel(c));
  reactor_delayed_call_release(c);

  SECTION("queued thread call -> 0");
  atomic_int ran = 0;
  CHECK_OK(reactor_call_from_thread(r, tu_count_cb, &ran, NULL));
  CHECK_EQ(reactor_backend_timeout_ms(r), 0);
  CHECK_OK(reactor_iterate(r, 0.0));
  CHECK_EQ(atomic_load(&ran), 1);
  CHECK_EQ(reactor_backend_timeout_ms(r), -1);

  CHECK_OK(reactor_free(r));
}

static void test_manual_clock(void) {
  SECTION("manual clock: 0 when due, else -1");
  reactor_t *r = tu_new_manual_reactor();
  atomic_int ran = 0;
  CHECK_EQ(reactor_backend_timeout_ms(r), -1);
  CHECK_OK(reactor_call_later(r, 1.0, tu_count_cb, &ran, NULL, NULL));
  CHECK_EQ(reactor_backend_timeout_ms(r), -1);
  CHECK_OK(reactor_clock_advance(r, 0.5));
  CHECK_EQ(reactor_backend_timeout_ms(r), -1);
  CHECK_OK(reactor_call_later(r, 0.0, tu_count_cb, &ran, NULL, NULL));
  CHECK_EQ(reactor_backend_timeout_ms(r), 0);
  CHECK_OK(reactor_iterate(r, 0.0));
  CHECK_EQ(atomic_load(&ran), 1);
  CHECK_EQ(reactor_backend_timeout_ms(r), -1);
  CHECK_OK(reactor_clock_advance(r, 0.5)); /* runs the 1 s call */
  CHECK_EQ(atomic_load(&ran), 2);
  CHECK_EQ(reactor_backend_timeout_ms(r), -1);
  CHECK_OK(reactor_free(r));
}

int main(void) {
  tu_watchdog(30);
  test_real_clock();
  test_manual_clock();
  return tu_finish(PROG);
}
