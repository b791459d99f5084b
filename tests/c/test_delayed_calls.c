/*
 * test_delayed_calls.c - IDelayedCall semantics (API.md §3, §7; DECISIONS "Handles", "Time").
 *
 * Checks (manual clock unless noted):
 *   - call_later with negative, NaN, +/-infinite delay or NULL cb -> INVALID, release not called;
 *   - get_time = now + delay; reset earlier/later moves get_time to now + seconds;
 *     delay adds (negative moves earlier, never before now); reset with negative/NaN/inf
 *     and delay with NaN/inf -> INVALID and change nothing;
 *   - active 1 while pending, 0 after cancel / after it ran / inside its own callback;
 *   - cancel twice -> ALREADY_CANCELLED (reset/delay after cancel too); cancel/reset/delay
 *     after it ran and from inside its own callback -> ALREADY_CALLED; cancel releases ud
 *     once; a cancelled call never runs;
 *   - delayed_call_count counts pending, not cancelled, not run;
 *   - clock_advance: runs due calls (deadline <= now), negative/NaN/inf -> INVALID,
 *     a delay-0 call scheduled by a call that advance ran waits for a later pass,
 *     non-manual reactor -> UNSUPPORTED; reactor_seconds starts at 0 and follows advance;
 *   - handle release from another thread works, the call still runs; release twice harmless;
 *   - handle whose reactor was freed: cancel/reset/delay of a call still pending then -> CLOSED, of
 *     one that ran -> ALREADY_CALLED, of a cancelled one -> ALREADY_CANCELLED; active 0, get_time keeps
 *     the last scheduled time, release works; the call's ud is released by reactor_free;
 *   - real clock: reactor_seconds is CLOCK_MONOTONIC, get_time = seconds + delay.
 */
#include "test_util.h"

static const char *PROG = "test_delayed_calls";
#define EPS 1e-9

typedef struct dc {
  reactor_delayed_call_t *h;
  atomic_int ran;
  atomic_int releases;
} dc_t;

static void dc_release(void *ud) { atomic_fetch_add(&((dc_t *)ud)->releases, 1); }
static void dc_cb(reactor_t *r, void *ud) {
  (void)r;
  atomic_fetch_add(&((dc_t *)ud)->ran, 1);
}

static void self_cb(reactor_t *r, void *ud) {
  (void)r;
  dc_t *d = ud;
  atomic_fetch_add(&d->ran, 1);
  CHECK_EQ(reactor_delayed_call_active(d->h), 0);
  CHECK_RC(reactor_delayed_call_cancel(d->h), REACTOR_E_ALREADY_CALLED);
  CHECK_RC(reactor_delayed_call_reset(d->h, 1.0), REACTOR_E_ALREADY_CALLED);
  CHECK_RC(reactor_delayed_call_delay(d->h, 1.0), REACTOR_E_ALREADY_CALLED);
}

static void test_invalid_delays(reactor_t *r) {
  SECTION("call_later invalid delays");
  dc_t d = {NULL, 0, 0};
  reactor_delayed_call_t *h = NULL;
  double bad[] = {-1.0, -1e-9, NAN, INFINITY, -INFINITY};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    CHECK_RC(reactor_call_later(r, bad[i], dc_cb, &d, dc_release, &h), REACTOR_E_INVALID);
    CHECK(h == NULL); /* out written only on success */
  }
  CHECK_RC(reactor_call_later(r, 1.0, NULL, &d, dc_release, &h), REACTOR_E_INVALID);
  CHECK(h == NULL);
  CHECK_EQ(atomic_load(&d.releases), 0); /* ownership never passed */
  CHECK_EQ(reactor_delayed_call_count(r), 0);
}

static void test_reset_delay(reactor_t *r) {
  SECTION("reset / delay move get_time; invalid values change nothing");
  static dc_t d = {NULL, 0, 0};
  CHECK_NEAR(reactor_seconds(r), 0.0, EPS);
  CHECK_OK(reactor_call_later(r, 10.0, dc_cb, &d, dc_release, &d.h));
  REQUIRE(d.h != NULL);
  CHECK_EQ(reactor_delayed_call_active(d.h), 1);
  CHECK_EQ(reactor_delayed_call_count(r), 1);
  CHECK_NEAR(reactor_delayed_call_get_time(d.h), 10.0, EPS);

  CHECK_OK(reactor_delayed_call_reset(d.h, 5.0)); /* earlier */
  CHECK_NEAR(reactor_delayed_call_get_time(d.h), 5.0, EPS);
  CHECK_OK(reactor_delayed_call_reset(d.h, 20.0)); /* later */
  CHECK_NEAR(reactor_delayed_call_get_time(d.h), 20.0, EPS);
  CHECK_RC(reactor_delayed_call_reset(d.h, -1.0), REACTOR_E_INVALID);
  CHECK_RC(reactor_delayed_call_reset(d.h, NAN), REACTOR_E_INVALID);
  CHECK_RC(reactor_delayed_call_reset(d.h, INFINITY), REACTOR_E_INVALID);
  CHECK_NEAR(reactor_delayed_call_get_time(d.h), 20.0, EPS);

  CHECK_OK(reactor_delayed_call_delay(d.h, 3.0));
  CHECK_NEAR(reactor_delayed_call_get_time(d.h), 23.0, EPS);
  CHECK_OK(reactor_delayed_call_delay(d.h, -10.0));
  CHECK_NEAR(reactor_delayed_call_get_time(d.h), 13.0, EPS);
  CHECK_OK(reactor_delayed_call_delay(d.h, -100.0)); /* never before now (0.0) */
  CHECK_NEAR(reactor_delayed_call_get_time(d.h), 0.0, EPS);
  CHECK_RC(reactor_delayed_call_delay(d.h, NAN), REACTOR_E_INVALID);
  CHECK_RC(reactor_delayed_call_delay(d.h, INFINITY), REACTOR_E_INVALID);
  CHECK_RC(reactor_delayed_call_delay(d.h, -INFINITY), REACTOR_E_INVALID);
  CHECK_NEAR(reactor_delayed_call_get_time(d.h), 0.0, EPS);
  CHECK_EQ(reactor_delayed_call_active(d.h), 1);
  CHECK_EQ(atomic_load(&d.ran), 0); /* due, but nothing ran it yet */

  CHECK_OK(reactor_delayed_call_reset(d.h, 10.0));
  CHECK_NEAR(reactor_delayed_call_get_time(d.h), 10.0, EPS);

  /* time moves: now = 1.0 */
  CHECK_OK(reactor_clock_advance(r, 1.0));
  CHECK_NEAR(reactor_seconds(r), 1.0, EPS);
  CHECK_EQ(atomic_load(&d.ran), 0);
  CHECK_OK(reactor_delayed_call_reset(d.h, 2.0)); /* now + 2 */
  CHECK_NEAR(reactor_delayed_call_get_time(d.h), 3.0, EPS);
  CHECK_OK(reactor_delayed_call_delay(d.h, -100.0));
  CHECK_NEAR(reactor_delayed_call_get_time(d.h), 1.0, EPS); /* clamped to now */
  CHECK_OK(reactor_delayed_call_delay(d.h, 0.5));
  CHECK_NEAR(reactor_delayed_call_get_time(d.h), 1.5, EPS);

  CHECK_OK(reactor_clock_advance(r, 0.25));
  CHECK_EQ(atomic_load(&d.ran), 0);
  CHECK_OK(reactor_clock_advance(r, 0.25)); /* now 1.5 == deadline: due */
  CHECK_EQ(atomic_load(&d.ran), 1);
  CHECK_EQ(reactor_delayed_call_active(d.h), 0);
  CHECK_EQ(reactor_delayed_call_count(r), 0);
  CHECK_RC(reactor_delayed_call_cancel(d.h), REACTOR_E_ALREADY_CALLED);
  CHECK_RC(reactor_delayed_call_reset(d.h, 1.0), REACTOR_E_ALREADY_CALLED);
  CHECK_RC(reactor_delayed_call_delay(d.h, 1.0), REACTOR_E_ALREADY_CALLED);
  CHECK_OK(reactor_iterate(r, 0.0));
  CHECK_EQ(atomic_load(&d.releases), 1);
  reactor_delayed_call_release(d.h);
  reactor_delayed_call_release(d.h); /* twice: harmless */
}

static void test_cancel(reactor_t *r) {
  SECTION("cancel, cancel twice, reset/delay after cancel");
  static dc_t d = {NULL, 0, 0};
  CHECK_OK(reactor_call_later(r, 5.0, dc_cb, &d, dc_release, &d.h));
  CHECK_EQ(reactor_delayed_call_count(r), 1);
  CHECK_OK(reactor_delayed_call_cancel(d.h));
  CHECK_EQ(reactor_delayed_call_active(d.h), 0);
  CHECK_EQ(reactor_delayed_call_count(r), 0);
  CHECK_RC(reactor_delayed_call_cancel(d.h), REACTOR_E_ALREADY_CANCELLED);
  CHECK_RC(reactor_delayed_call_reset(d.h, 1.0), REACTOR_E_ALREADY_CANCELLED);
  CHECK_RC(reactor_delayed_call_delay(d.h, 1.0), REACTOR_E_ALREADY_CANCELLED);
  CHECK_OK(reactor_clock_advance(r, 10.0));
  CHECK_OK(reactor_iterate(r, 0.0));
  CHECK_EQ(atomic_load(&d.ran), 0);
  CHECK_EQ(atomic_load(&d.releases), 1);
  reactor_delayed_call_release(d.h);
}

static void test_inside_own_callback(reactor_t *r) {
  SECTION("cancel/reset/delay inside its own callback -> ALREADY_CALLED");
  static dc_t d = {NULL, 0, 0};
  CHECK_OK(reactor_call_later(r, 1.0, self_cb, &d, dc_release, &d.h));
  CHECK_OK(reactor_clock_advance(r, 1.0));
  CHECK_EQ(atomic_load(&d.ran), 1);
  CHECK_OK(reactor_iterate(r, 0.0));
  CHECK_EQ(atomic_load(&d.releases), 1);
  reactor_delayed_call_release(d.h);
}

static void test_count(reactor_t *r) {
  SECTION("delayed_call_count");
  static dc_t a = {NULL, 0, 0}, b = {NULL, 0, 0}, c = {NULL, 0, 0};
  CHECK_OK(reactor_call_later(r, 1.0, dc_cb, &a, dc_release, &a.h));
  CHECK_OK(reactor_call_later(r, 2.0, dc_cb, &b, dc_release, &b.h));
  CHECK_OK(reactor_call_later(r, 3.0, dc_cb, &c, dc_release, NULL)); /* no handle */
  CHECK_EQ(reactor_delayed_call_count(r), 3);
  CHECK_OK(reactor_delayed_call_cancel(b.h));
  CHECK_EQ(reactor_delayed_call_count(r), 2);
  CHECK_OK(reactor_clock_advance(r, 1.0));
  CHECK_EQ(atomic_load(&a.ran), 1);
  CHECK_EQ(reactor_delayed_call_count(r), 1);
  CHECK_OK(reactor_clock_advance(r, 2.0));
  CHECK_EQ(atomic_load(&c.ran), 1);
  CHECK_EQ(reactor_delayed_call_count(r), 0);
  CHECK_OK(reactor_iterate(r, 0.0));
  CHECK_EQ(atomic_load(&a.releases) + atomic_load(&b.releases) + atomic_load(&c.releases), 3);
  reactor_delayed_call_release(a.h);
  reactor_delayed_call_release(b.h);
}

static void *release_thread(void *arg) {
  reactor_delayed_call_release(arg);
  return NULL;
}

static void test_release_other_thread(reactor_t *r) {
  SECTION("handle release from another thread; the call still runs");
  static dc_t d = {NULL, 0, 0};
  CHECK_OK(reactor_call_later(r, 2.0, dc_cb, &d, dc_release, &d.h));
  pthread_t th;
  REQUIRE(pthread_create(&th, NULL, release_thread, d.h) == 0);
  pthread_join(th, NULL);
  CHECK_EQ(reactor_delayed_call_count(r), 1);
  CHECK_OK(reactor_clock_advance(r, 2.0));
  CHECK_EQ(atomic_load(&d.ran), 1);
  CHECK_OK(reactor_iterate(r, 0.0));
  CHECK_EQ(atomic_load(&d.releases), 1);
}

static atomic_int chained_ran;
static void chained_cb(reactor_t *r, void *ud) {
  (void)r;
  (void)ud;
  atomic_fetch_add(&chained_ran, 1);
}
static void chain_cb(reactor_t *r, void *ud) {
  dc_cb(r, ud);
  CHECK_OK(reactor_call_later(r, 0.0, chained_cb, NULL, NULL, NULL));
}

static void test_advance_chain(reactor_t *r) {
  SECTION("clock_advance runs calls due; what they schedule with delay 0 waits");
  static dc_t d = {NULL, 0, 0};
  CHECK_OK(reactor_call_later(r, 1.0, chain_cb, &d, dc_release, NULL));
  CHECK_OK(reactor_clock_advance(r, 1.0));
  CHECK_EQ(atomic_load(&d.ran), 1);
  CHECK_EQ(atomic_load(&chained_ran), 0);
  CHECK_EQ(reactor_delayed_call_count(r), 1);
  CHECK_OK(reactor_iterate(r, 0.0));
  CHECK_EQ(atomic_load(&chained_ran), 1);
  CHECK_EQ(reactor_delayed_call_count(r), 0);
}

static void test_clock_errors(reactor_t *r) {
  SECTION("clock_advance errors");
  double before = reactor_seconds(r);
  CHECK_RC(reactor_clock_advance(r, -1.0), REACTOR_E_INVALID);
  CHECK_RC(reactor_clock_advance(r, NAN), REACTOR_E_INVALID);
  CHECK_RC(reactor_clock_advance(r, INFINITY), REACTOR_E_INVALID);
  CHECK_NEAR(reactor_seconds(r), before, EPS);
  CHECK_OK(reactor_clock_advance(r, 0.0));
  CHECK_NEAR(reactor_seconds(r), before, EPS);
}

static void test_after_free(void) {
  SECTION("handle outlives its reactor");
  reactor_t *r = tu_new_manual_reactor();
  static dc_t d = {NULL, 0, 0};
  CHECK_OK(reactor_clock_advance(r, 4.0));
  CHECK_OK(reactor_call_later(r, 3.0, dc_cb, &d, dc_release, &d.h));
  CHECK_OK(reactor_free(r));
  CHECK_EQ(atomic_load(&d.ran), 0);
  CHECK_EQ(atomic_load(&d.releases), 1); /* reactor_free released the pending call */
  CHECK_RC(reactor_delayed_call_cancel(d.h), REACTOR_E_CLOSED);
  CHECK_RC(reactor_delayed_call_reset(d.h, 1.0), REACTOR_E_CLOSED);
  CHECK_RC(reactor_delayed_call_delay(d.h, 1.0), REACTOR_E_CLOSED);
  CHECK_EQ(reactor_delayed_call_active(d.h), 0);
  CHECK_NEAR(reactor_delayed_call_get_time(d.h), 7.0, EPS);
  reactor_delayed_call_release(d.h);
  CHECK_EQ(atomic_load(&d.releases), 1);

  SECTION("after reactor_free a handle reports what happened: ALREADY_CALLED / ALREADY_CANCELLED");
  r = tu_new_manual_reactor();
  static dc_t called = {NULL, 0, 0}, cancelled = {NULL, 0, 0};
  CHECK_OK(reactor_call_later(r, 1.0, dc_cb, &called, dc_release, &called.h));
  CHECK_OK(reactor_call_later(r, 1.0, dc_cb, &cancelled, dc_release, &cancelled.h));
  CHECK_OK(reactor_delayed_call_cancel(cancelled.h));
  CHECK_OK(reactor_clock_advance(r, 2.0));
  CHECK_EQ(atomic_load(&called.ran), 1);
  CHECK_OK(reactor_free(r));
  CHECK_RC(reactor_delayed_call_cancel(called.h), REACTOR_E_ALREADY_CALLED);
  CHECK_RC(reactor_delayed_call_reset(called.h, 1.0), REACTOR_E_ALREADY_CALLED);
  CHECK_RC(reactor_delayed_call_delay(called.h, 1.0), REACTOR_E_ALREADY_CALLED);
  CHECK_RC(reactor_delayed_call_cancel(cancelled.h), REACTOR_E_ALREADY_CANCELLED);
  CHECK_RC(reactor_delayed_call_reset(cancelled.h, 1.0), REACTOR_E_ALREADY_CANCELLED);
  CHECK_RC(reactor_delayed_call_delay(cancelled.h, 1.0), REACTOR_E_ALREADY_CANCELLED);
  CHECK_EQ(reactor_delayed_call_active(called.h), 0);
  CHECK_EQ(reactor_delayed_call_active(cancelled.h), 0);
  CHECK_EQ(atomic_load(&called.releases), 1);
  CHECK_EQ(atomic_load(&cancelled.releases), 1);
  reactor_delayed_call_release(called.h);
  reactor_delayed_call_release(cancelled.h);
}

static void test_real_clock(void) {
  SECTION("real clock: seconds is CLOCK_MONOTONIC; advance unsupported");
  double before = tu_now();
  reactor_t *r = tu_new_reactor();
  static dc_t d = {NULL, 0, 0};
  double s0 = reactor_seconds(r);
  double after = tu_now();
  /* the same clock: between two CLOCK_MONOTONIC readings taken around the reactor's creation and this
   * call (ordering, no slack that a loaded machine could exceed; a cached loop time is fine too) */
  CHECK(before <= s0 + 1e-9 && s0 <= after + 1e-9);
  CHECK_OK(reactor_call_later(r, 0.5, dc_cb, &d, dc_release, &d.h));
  double s1 = reactor_seconds(r);
  double t = reactor_delayed_call_get_time(d.h);
  CHECK(t >= s0 + 0.5 - EPS && t <= s1 + 0.5 + EPS);
  CHECK(s1 >= s0);
  CHECK_RC(reactor_clock_advance(r, 1.0), REACTOR_E_UNSUPPORTED);
  CHECK_OK(reactor_delayed_call_cancel(d.h));
  reactor_delayed_call_release(d.h);
  CHECK_OK(reactor_free(r));
  CHECK_EQ(atomic_load(&d.releases), 1);
  CHECK_EQ(atomic_load(&d.ran), 0);
}

int main(void) {
  tu_watchdog(30);
  reactor_t *r = tu_new_manual_reactor();
  tu_banner(PROG, r);
  test_invalid_delays(r);
  test_reset_delay(r);
  test_cancel(r);
  test_inside_own_callback(r);
  test_count(r);
  test_release_other_thread(r);
  test_advance_chain(r);
  test_clock_errors(r);
  CHECK_OK(reactor_free(r));
  test_after_free();
  test_real_clock();
  return tu_finish(PROG);
}
