/*
 * test_lifecycle.c - the run/stop/crash/iterate state machine (API.md §2, §7).
 *
 * Checks:
 *   - stop (and crash) before run -> REACTOR_E_NOT_RUNNING;
 *   - inside a callback: run and iterate -> REACTOR_E_ALREADY_RUNNING,
 *     first stop OK, second stop -> REACTOR_E_NOT_RUNNING (already stopping);
 *   - after a run that ended with stop: run and iterate -> REACTOR_E_NOT_RESTARTABLE,
 *     stop -> REACTOR_E_NOT_RUNNING, is_running 0;
 *   - call_later(0, stop) ends run promptly even with a 10 s timer pending;
 *   - crash ends run without shutdown triggers; run again works: startup fires again
 *     (only triggers added before the second run, one-shot), is_running is true again
 *     in during-startup, a delay-0 call scheduled just before crash runs in the
 *     second run, and the final stop fires the shutdown triggers;
 *   - crash leaves the rest of the current batch pending (DECISIONS): a second due timer,
 *     a second queued thread call, a second ready reader do not run in that run; the next
 *     pass (iterate) delivers each exactly once;
 *   - call_later before run counts its delay from the call, not from run: a 0.3 s call made 0.5 s
 *     before run fires before a 0.1 s call made just before run (an ordering, so a loaded machine
 *     cannot fail it; counted from run it would fire after);
 *   - iterate(0) returns at once with a 30 s timer pending (and does not fire it);
 *     iterate(-1) returns promptly once a due call ran; iterate(NaN) -> INVALID.
 *
 * Time bounds are generous (a third of the far timer they tell apart), never speed.
 */
#include "test_util.h"

static const char *PROG = "test_lifecycle";

/* ---- stop twice / re-entrant run ---------------------------------------- */

static atomic_int reentry_done;

static void reentry_cb(reactor_t *r, void *ud) {
  (void)ud;
  CHECK_EQ(reactor_is_running(r), 1);
  CHECK_RC(reactor_run(r), REACTOR_E_ALREADY_RUNNING);
  CHECK_RC(reactor_iterate(r, 0.0), REACTOR_E_ALREADY_RUNNING);
  CHECK_OK(reactor_stop(r));
  CHECK_RC(reactor_stop(r), REACTOR_E_NOT_RUNNING);
  atomic_store(&reentry_done, 1);
}

static void test_stop_before_run_and_twice(void) {
  SECTION("stop before run, stop twice, run/iterate inside a callback, run after stop");
  reactor_t *r = tu_new_reactor();
  tu_banner(PROG, r);

  CHECK_EQ(reactor_is_running(r), 0);
  CHECK_RC(reactor_stop(r), REACTOR_E_NOT_RUNNING);
  CHECK_RC(reactor_crash(r), REACTOR_E_NOT_RUNNING);
  /* the failed stop changed nothing: the reactor can still run */
  CHECK_OK(reactor_call_later(r, 0.0, reentry_cb, NULL, NULL, NULL));
  CHECK_OK(reactor_run(r));
  CHECK_EQ(atomic_load(&reentry_done), 1);
  CHECK_EQ(reactor_is_running(r), 0);

  /* a run that ended with stop is final */
  CHECK_RC(reactor_run(r), REACTOR_E_NOT_RESTARTABLE);
  CHECK_RC(reactor_iterate(r, 0.0), REACTOR_E_NOT_RESTARTABLE);
  CHECK_RC(reactor_stop(r), REACTOR_E_NOT_RUNNING);
  CHECK_EQ(reactor_is_running(r), 0);
  CHECK_OK(reactor_free(r));
}

/* ---- call_later(0, stop) ------------------------------------------------ */

static void must_not_run_cb(reactor_t *r, void *ud) {
  (void)r;
  fprintf(stderr, "callback '%s' must not run\n", (const char *)ud);
  atomic_fetch_add(&tu_failures, 1);
}

static void test_call_later_zero_stop(void) {
  SECTION("call_later(0, stop) ends run; a 30 s timer does not delay it");
  reactor_t *r = tu_new_reactor();
  atomic_int releases = 0;
  CHECK_OK(reactor_call_later(r, 30.0, must_not_run_cb, "30 s timer", NULL, NULL));
  CHECK_OK(reactor_call_later(r, 0.0, tu_stop_cb, &releases, tu_count_release, NULL));
  double t0 = tu_now();
  CHECK_OK(reactor_run(r));
  double el = tu_now() - t0;
  printf("   run took %.3f s\n", el);
  CHECK(el < 10.0); /* not at the 30 s timer */
  CHECK_EQ(atomic_load(&releases), 1); /* the stop call ran, then was released */
  CHECK_OK(reactor_free(r));
}

/* ---- crash and run again ------------------------------------------------ */

static atomic_int first_startup, first_startup_running;
static atomic_int second_startup, second_startup_running, second_after;
static atomic_int shutdown_before, leftover_runs, crash_runs;

static int first_startup_trigger(reactor_t *r, uint64_t id, void *ud) {
  (void)id;
  (void)ud;
  atomic_fetch_add(&first_startup, 1);
  atomic_store(&first_startup_running, reactor_is_running(r));
  return 0;
}

static int second_startup_trigger(reactor_t *r, uint64_t id, void *ud) {
  (void)id;
  (void)ud;
  atomic_fetch_add(&second_startup, 1);
  atomic_store(&second_startup_running, reactor_is_running(r));
  return 0;
}

static int second_after_trigger(reactor_t *r, uint64_t id, void *ud) {
  (void)r;
  (void)id;
  (void)ud;
  atomic_fetch_add(&second_after, 1);
  return 0;
}

static int shutdown_before_trigger(reactor_t *r, uint64_t id, void *ud) {
  (void)r;
  (void)id;
  (void)ud;
  atomic_fetch_add(&shutdown_before, 1);
  return 0;
}

static void leftover_cb(reactor_t *r, void *ud) {
  (void)ud;
  atomic_fetch_add(&leftover_runs, 1);
  CHECK_EQ(reactor_is_running(r), 1);
  CHECK_OK(reactor_stop(r));
}

static void crash_cb(reactor_t *r, void *ud) {
  (void)ud;
  atomic_fetch_add(&crash_runs, 1);
  /* scheduled from a timer with delay 0: it belongs to a later pass, so crash leaves it pending */
  CHECK_OK(reactor_call_later(r, 0.0, leftover_cb, NULL, NULL, NULL));
  CHECK_OK(reactor_crash(r));
  CHECK_EQ(atomic_load(&leftover_runs), 0);
}

static void test_crash_and_rerun(void) {
  SECTION("crash ends run without shutdown; run again fires new startup triggers");
  reactor_t *r = tu_new_reactor();
  uint64_t id;
  CHECK_OK(reactor_add_system_event_trigger(r, REACTOR_PHASE_DURING, "startup", first_startup_trigger,
                                            NULL, NULL, &id));
  CHECK_OK(reactor_add_system_event_trigger(r, REACTOR_PHASE_BEFORE, "shutdown",
                                            shutdown_before_trigger, NULL, NULL, &id));
  CHECK_OK(reactor_call_later(r, 0.0, crash_cb, NULL, NULL, NULL));
  CHECK_OK(reactor_call_later(r, 30.0, must_not_run_cb, "30 s safety timer", NULL, NULL));

  CHECK_OK(reactor_run(r)); /* ends by crash */
  CHECK_EQ(atomic_load(&crash_runs), 1);
  CHECK_EQ(atomic_load(&first_startup), 1);
  CHECK_EQ(atomic_load(&first_startup_running), 1);
  CHECK_EQ(atomic_load(&shutdown_before), 0); /* crash: no shutdown triggers */
  CHECK_EQ(atomic_load(&leftover_runs), 0);
  CHECK_EQ(reactor_is_running(r), 0);
  CHECK_RC(reactor_crash(r), REACTOR_E_NOT_RUNNING);

  /* new triggers added before the second run fire; the first one (one-shot) does not */
  CHECK_OK(reactor_add_system_event_trigger(r, REACTOR_PHASE_DURING, "startup",
                                            second_startup_trigger, NULL, NULL, &id));
  CHECK_OK(reactor_add_system_event_trigger(r, REACTOR_PHASE_AFTER, "startup", second_after_trigger,
                                            NULL, NULL, &id));
  CHECK_OK(reactor_run(r)); /* leftover_cb stops it */
  CHECK_EQ(atomic_load(&first_startup), 1);
  CHECK_EQ(atomic_load(&second_startup), 1);
  CHECK_EQ(atomic_load(&second_startup_running), 1);
  CHECK_EQ(atomic_load(&second_after), 1);
  CHECK_EQ(atomic_load(&leftover_runs), 1);
  CHECK_EQ(atomic_load(&shutdown_before), 1);
  CHECK_EQ(reactor_is_running(r), 0);
  CHECK_RC(reactor_run(r), REACTOR_E_NOT_RESTARTABLE);
  CHECK_OK(reactor_free(r));
}

/* ---- crash leaves the rest of the batch pending ------------------------------ */

static int batch_ran[2];

static void batch_cb(reactor_t *r, void *ud) {
  batch_ran[(intptr_t)ud]++;
  if (batch_ran[0] + batch_ran[1] == 1) CHECK_OK(reactor_crash(r)); /* the first one crashes */
}

static void batch_fd_cb(reactor_t *r, int fd, uint32_t events, void *ud) {
  (void)events;
  tu_drain(fd);
  batch_cb(r, ud);
}

static void test_crash_leftovers(void) {
  SECTION("crash leaves the rest of the current batch pending");
  reactor_t *r = tu_new_reactor();
  CHECK_OK(reactor_call_later(r, 30.0, must_not_run_cb, "30 s safety timer", NULL, NULL));

  /* two due timers: FIFO, the first crashes */
  memset(batch_ran, 0, sizeof batch_ran);
  CHECK_OK(reactor_call_later(r, 0.0, batch_cb, (void *)0, NULL, NULL));
  CHECK_OK(reactor_call_later(r, 0.0, batch_cb, (void *)1, NULL, NULL));
  CHECK_OK(reactor_run(r));
  CHECK_EQ(batch_ran[0], 1);
  CHECK_EQ(batch_ran[1], 0);
  CHECK_OK(reactor_iterate(r, 0.0));
  CHECK_EQ(batch_ran[0], 1);
  CHECK_EQ(batch_ran[1], 1);

  /* two queued thread calls: in order, the first crashes */
  memset(batch_ran, 0, sizeof batch_ran);
  CHECK_OK(reactor_call_from_thread(r, batch_cb, (void *)0, NULL));
  CHECK_OK(reactor_call_from_thread(r, batch_cb, (void *)1, NULL));
  CHECK_OK(reactor_run(r));
  CHECK_EQ(batch_ran[0], 1);
  CHECK_EQ(batch_ran[1], 0);
  CHECK_OK(reactor_iterate(r, 0.0));
  CHECK_EQ(batch_ran[0], 1);
  CHECK_EQ(batch_ran[1], 1);

  /* two ready readers: whichever runs first crashes; the other is delivered by the next pass */
  memset(batch_ran, 0, sizeof batch_ran);
  int p[2], q[2];
  tu_pipe(p);
  tu_pipe(q);
  tu_write_byte(p[1]);
  tu_write_byte(q[1]);
  CHECK_OK(reactor_add_reader(r, p[0], batch_fd_cb, (void *)0, NULL));
  CHECK_OK(reactor_add_reader(r, q[0], batch_fd_cb, (void *)1, NULL));
  CHECK_OK(reactor_run(r));
  CHECK_EQ(batch_ran[0] + batch_ran[1], 1);
  CHECK_OK(reactor_iterate(r, 0.0));
  CHECK_EQ(batch_ran[0], 1);
  CHECK_EQ(batch_ran[1], 1);
  CHECK_OK(reactor_remove_reader(r, p[0]));
  CHECK_OK(reactor_remove_reader(r, q[0]));
  tu_close_pair(p);
  tu_close_pair(q);
  CHECK_OK(reactor_free(r));
}

/* ---- call_later before run ------------------------------------------------ */

static double fired_at;
static char fire_order[8];

/* Appends its tag to fire_order; the second call to fire stops the reactor. */
static void mark_cb(reactor_t *r, void *ud) {
  const char *tag = ud;
  if (strcmp(tag, "E") == 0) fired_at = tu_now();
  strncat(fire_order, tag, sizeof fire_order - strlen(fire_order) - 1);
  if (strlen(fire_order) == 2) CHECK_OK(reactor_stop(r));
}

static void test_call_later_before_run(void) {
  SECTION("call_later before run counts from the call");
  reactor_t *r = tu_new_reactor();
  fire_order[0] = '\0';
  reactor_delayed_call_t *early;
  CHECK_OK(reactor_call_later(r, 0.3, mark_cb, "E", NULL, &early));
  tu_sleep_ms(500);
  double t1 = tu_now();
  /* Counted from its call, E's deadline (call + 0.3) has passed when run starts; counted from run it
   * would be t1 + 0.3, after L's t1 + 0.1. Both fire in deadline order however late the loop is. */
  CHECK_OK(reactor_call_later(r, 0.1, mark_cb, "L", NULL, NULL));
  CHECK(reactor_delayed_call_get_time(early) < t1); /* at most (call time + 0.3) <= t1 - 0.2 */
  CHECK_OK(reactor_run(r));
  printf("   fired in order %s, E %.3f s after run started (its deadline had passed)\n", fire_order,
         fired_at - t1);
  CHECK(strcmp(fire_order, "EL") == 0);
  reactor_delayed_call_release(early);
  CHECK_OK(reactor_free(r));
}

/* ---- iterate ----------------------------------------------------------- */

static void test_iterate(void) {
  SECTION("iterate(0) does not block with a 30 s timer; iterate(-1) returns after dispatch; NaN");
  reactor_t *r = tu_new_reactor();
  atomic_int ran = 0;
  CHECK_OK(reactor_call_later(r, 30.0, must_not_run_cb, "30 s timer", NULL, NULL));

  double t0 = tu_now();
  CHECK_OK(reactor_iterate(r, 0.0));
  double el = tu_now() - t0;
  printf("   iterate(0) took %.3f s\n", el);
  CHECK(el < 10.0); /* not at the 30 s timer */

  CHECK_RC(reactor_iterate(r, NAN), REACTOR_E_INVALID);

  /* a bounded wait with nothing ready returns by its bound, not at the 30 s timer */
  t0 = tu_now();
  CHECK_OK(reactor_iterate(r, 0.05));
  el = tu_now() - t0;
  printf("   iterate(0.05) took %.3f s\n", el);
  CHECK(el < 10.0);

  /* iterate(-1) with a due call returns once it ran (not at the 30 s timer) */
  CHECK_OK(reactor_call_later(r, 0.0, tu_count_cb, &ran, NULL, NULL));
  t0 = tu_now();
  CHECK_OK(reactor_iterate(r, -1.0));
  el = tu_now() - t0;
  printf("   iterate(-1) took %.3f s\n", el);
  CHECK(el < 10.0);
  CHECK_EQ(atomic_load(&ran), 1);

  /* iterate needs no run and fires no system events, so the reactor can still run */
  CHECK_EQ(reactor_is_running(r), 0);
  CHECK_OK(reactor_call_later(r, 0.0, tu_stop_cb, NULL, NULL, NULL));
  CHECK_OK(reactor_run(r));
  CHECK_OK(reactor_free(r));
}

int main(void) {
  tu_watchdog(60); /* above the 30 s timers, so a broken wait fails its CHECK, not the watchdog */
  test_stop_before_run_and_twice();
  test_call_later_zero_stop();
  test_crash_and_rerun();
  test_crash_leftovers();
  test_call_later_before_run();
  test_iterate();
  return tu_finish(PROG);
}
