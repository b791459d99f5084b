/*
 * test_held_sleep.c - the loop sleeps (no busy polling) while a phase is held
 * (API.md §2 "The loop sleeps (no busy polling) while a phase is held").
 *
 * Checks:
 *   - a before-startup trigger returns REACTOR_PENDING; a 200 ms timer completes it;
 *     between the hold and the completion reactor_stats().polls grows by < 50 and at
 *     least ~150 ms passed (the timer was not early);
 *   - the same for a held before-shutdown phase;
 *   - the same for a held custom event driven by iterate(-1).
 */
#include "test_util.h"

static const char *PROG = "test_held_sleep";

static uint64_t hold_id;
static uint64_t polls_at_hold;
static double time_at_hold;
static int completed;

static void complete_cb(reactor_t *r, void *ud) {
  const char *what = ud;
  reactor_stats_t s = tu_stats(r);
  double waited = tu_now() - time_at_hold;
  uint64_t polls = s.polls - polls_at_hold;
  printf("   %s: held %.3f s, %llu polls while held\n", what, waited, (unsigned long long)polls);
  CHECK(polls < 50);
  CHECK(waited > 0.15);
  CHECK_OK(reactor_trigger_complete(r, hold_id));
  completed++;
}

static int hold_fn(reactor_t *r, uint64_t id, void *ud) {
  hold_id = id;
  polls_at_hold = tu_stats(r).polls;
  time_at_hold = tu_now();
  CHECK_OK(reactor_call_later(r, 0.2, complete_cb, ud, NULL, NULL));
  return REACTOR_PENDING;
}

static int stop_trigger(reactor_t *r, uint64_t id, void *ud) {
  (void)id;
  (void)ud;
  CHECK_OK(reactor_stop(r));
  return 0;
}

static int flag_trigger(reactor_t *r, uint64_t id, void *ud) {
  (void)r;
  (void)id;
  (*(int *)ud)++;
  return 0;
}

static void safety_cb(reactor_t *r, void *ud) {
  (void)ud;
  fprintf(stderr, "   safety timer fired\n");
  atomic_fetch_add(&tu_failures, 1);
  reactor_crash(r);
}

int main(void) {
  tu_watchdog(60); /* above the 30 s timer, so a broken wait fails its CHECK, not the watchdog */
  reactor_t *r = tu_new_reactor();
  tu_banner(PROG, r);
  uint64_t id;
  int shutdown_done = 0;

  SECTION("held startup and shutdown sleep");
  CHECK_OK(reactor_add_system_event_trigger(r, REACTOR_PHASE_BEFORE, "startup", hold_fn,
                                            "startup", NULL, &id));
  CHECK_OK(reactor_add_system_event_trigger(r, REACTOR_PHASE_AFTER, "startup", stop_trigger, NULL,
                                            NULL, &id));
  CHECK_OK(reactor_add_system_event_trigger(r, REACTOR_PHASE_BEFORE, "shutdown", hold_fn,
                                            "shutdown", NULL, &id));
  CHECK_OK(reactor_add_system_event_trigger(r, REACTOR_PHASE_AFTER, "shutdown", flag_trigger,
                                            &shutdown_done, NULL, &id));
  CHECK_OK(reactor_call_later(r, 20.0, safety_cb, NULL, NULL, NULL));
  CHECK_OK(reactor_run(r));
  CHECK_EQ(completed, 2);
  CHECK_EQ(shutdown_done, 1);
  CHECK_OK(reactor_free(r));

  SECTION("held custom event, iterate(-1)");
  r = tu_new_reactor();
  int during = 0;
  CHECK_OK(reactor_add_system_event_trigger(r, REACTOR_PHASE_BEFORE, "custom", hold_fn, "custom",
                                            NULL, &id));
  CHECK_OK(reactor_add_system_event_trigger(r, REACTOR_PHASE_DURING, "custom", flag_trigger,
                                            &during, NULL, &id));
  CHECK_OK(reactor_fire_system_event(r, "custom"));
  CHECK_EQ(during, 0);
  /* a far timer bounds each iterate(-1) if the held/completed event failed to wake it */
  CHECK_OK(reactor_call_later(r, 30.0, tu_noop_cb, NULL, NULL, NULL));
  double t0 = tu_now();
  while (during == 0 && tu_now() - t0 < 40.0) CHECK_OK(reactor_iterate(r, -1.0));
  double el = tu_now() - t0;
  printf("   custom event released after %.3f s\n", el);
  CHECK(el < 10.0); /* the 0.2 s completion woke it, not the 30 s timer */
  CHECK_EQ(completed, 3);
  CHECK_EQ(during, 1);
  CHECK_OK(reactor_free(r));
  return tu_finish(PROG);
}
