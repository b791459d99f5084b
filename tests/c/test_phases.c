/*
 * test_phases.c - startup/shutdown phases, is_running, call_when_running (API.md §2, §7).
 *
 * Checks:
 *   - order: before-startup, during-startup, then call_when_running callbacks queued before
 *     run interleaved FIFO with after-startup triggers (they are after-startup triggers);
 *   - is_running: false before run and in before-startup; true in during-startup,
 *     after-startup, timers, before-shutdown; false in during-shutdown, after-shutdown
 *     and after run returns;
 *   - call_when_running while running calls the callback at once (before it returns);
 *     every callback's release runs exactly once;
 *   - shutdown triggers never run inside reactor_stop; all of them (BEFORE, DURING,
 *     AFTER, FIFO inside a phase) finish before run returns;
 *   - run and iterate from a trigger -> REACTOR_E_ALREADY_RUNNING; stop while already
 *     stopping (from a before-shutdown trigger) -> REACTOR_E_NOT_RUNNING;
 *   - stop from a before-startup trigger is accepted and run ends with a normal shutdown;
 *   - call_when_running from a before-startup trigger (not running yet) joins the current
 *     startup as an after-startup trigger: it runs after the earlier-added ones, running.
 */
#include "test_util.h"

static const char *PROG = "test_phases";

static char order[512];

static void log_event(const char *name) {
  strncat(order, name, sizeof order - strlen(order) - 1);
  strncat(order, " ", sizeof order - strlen(order) - 1);
}

typedef struct rec {
  const char *name;
  int ran;
  int running;  /* is_running seen when it ran */
  int releases;
  int try_run;  /* call run/iterate inside and expect ALREADY_RUNNING */
  int try_stop; /* call stop inside and expect NOT_RUNNING (already stopping) */
} rec_t;

static void rec_release(void *ud) { ((rec_t *)ud)->releases++; }

static void rec_common(reactor_t *r, rec_t *x) {
  x->ran++;
  x->running = reactor_is_running(r);
  log_event(x->name);
  if (x->try_run) {
    CHECK_RC(reactor_run(r), REACTOR_E_ALREADY_RUNNING);
    CHECK_RC(reactor_iterate(r, 0.0), REACTOR_E_ALREADY_RUNNING);
  }
  if (x->try_stop) CHECK_RC(reactor_stop(r), REACTOR_E_NOT_RUNNING);
}

static int rec_trigger(reactor_t *r, uint64_t id, void *ud) {
  (void)id;
  rec_common(r, ud);
  return 0;
}

static void rec_cb(reactor_t *r, void *ud) { rec_common(r, ud); }

static rec_t sB = {"sB", 0, 0, 0, 1, 0}, sD = {"sD", 0, 0, 0, 0, 0}, sA = {"sA", 0, 0, 0, 0, 0};
static rec_t cwr1 = {"cwr1", 0, 0, 0, 0, 0}, cwr2 = {"cwr2", 0, 0, 0, 0, 0};
static rec_t cwr3 = {"cwr3", 0, 0, 0, 0, 0};
static rec_t hB1 = {"hB1", 0, 0, 0, 0, 0}, hB2 = {"hB2", 0, 0, 0, 0, 1};
static rec_t hD = {"hD", 0, 0, 0, 1, 0}, hA = {"hA", 0, 0, 0, 1, 0};
static int timer_running = -1;

static int shutdown_trigger_runs(void) { return hB1.ran + hB2.ran + hD.ran + hA.ran; }

static void timer_cb(reactor_t *r, void *ud) {
  (void)ud;
  timer_running = reactor_is_running(r);
  log_event("T");
  /* while running, call_when_running calls at once */
  CHECK_OK(reactor_call_when_running(r, rec_cb, &cwr3, rec_release));
  CHECK_EQ(cwr3.ran, 1);
  CHECK_OK(reactor_stop(r));
  log_event("stop");
  CHECK_EQ(shutdown_trigger_runs(), 0); /* never inside stop */
  CHECK_EQ(reactor_is_running(r), 1);   /* still running until during-shutdown */
}

/* cwr2 schedules the timer, so the timer surely runs after startup completed */
static void cwr2_cb(reactor_t *r, void *ud) {
  rec_common(r, ud);
  CHECK_OK(reactor_call_later(r, 0.0, timer_cb, NULL, NULL, NULL));
}

static void add_trigger(reactor_t *r, reactor_phase_t ph, const char *ev, rec_t *x) {
  uint64_t id = 0;
  CHECK_OK(reactor_add_system_event_trigger(r, ph, ev, rec_trigger, x, rec_release, &id));
}

static void test_phases(void) {
  SECTION("phase order, is_running per phase, call_when_running, shutdown after stop");
  reactor_t *r = tu_new_reactor();
  tu_banner(PROG, r);

  add_trigger(r, REACTOR_PHASE_BEFORE, "startup", &sB);
  add_trigger(r, REACTOR_PHASE_DURING, "startup", &sD);
  CHECK_OK(reactor_call_when_running(r, rec_cb, &cwr1, rec_release));
  add_trigger(r, REACTOR_PHASE_AFTER, "startup", &sA);
  CHECK_OK(reactor_call_when_running(r, cwr2_cb, &cwr2, rec_release));
  /* shutdown triggers, added in an order different from the phase order */
  add_trigger(r, REACTOR_PHASE_AFTER, "shutdown", &hA);
  add_trigger(r, REACTOR_PHASE_DURING, "shutdown", &hD);
  add_trigger(r, REACTOR_PHASE_BEFORE, "shutdown", &hB1);
  add_trigger(r, REACTOR_PHASE_BEFORE, "shutdown", &hB2);

  CHECK_EQ(reactor_is_running(r), 0);
  CHECK_EQ(cwr1.ran, 0); /* not called at once when not running */
  CHECK_OK(reactor_run(r));
  CHECK_EQ(reactor_is_running(r), 0);

  printf("   order: %s\n", order);
  CHECK(strcmp(order, "sB sD cwr1 sA cwr2 T cwr3 stop hB1 hB2 hD hA ") == 0);

  rec_t *all[] = {&sB, &sD, &sA, &cwr1, &cwr2, &cwr3, &hB1, &hB2, &hD, &hA};
  for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
    if (all[i]->ran != 1 || all[i]->releases != 1) {
      fprintf(stderr, "   %s: ran %d, released %d (want 1, 1)\n", all[i]->name, all[i]->ran,
              all[i]->releases);
      atomic_fetch_add(&tu_failures, 1);
    }
  }
  CHECK_EQ(sB.running, 0);
  CHECK_EQ(sD.running, 1);
  CHECK_EQ(cwr1.running, 1);
  CHECK_EQ(sA.running, 1);
  CHECK_EQ(cwr2.running, 1);
  CHECK_EQ(timer_running, 1);
  CHECK_EQ(cwr3.running, 1);
  CHECK_EQ(hB1.running, 1);
  CHECK_EQ(hB2.running, 1);
  CHECK_EQ(hD.running, 0);
  CHECK_EQ(hA.running, 0);
  CHECK_OK(reactor_free(r));
}

/* ---- stop from before-startup ------------------------------------------ */

static int early_shutdown_runs;

static int stop_in_before_startup(reactor_t *r, uint64_t id, void *ud) {
  (void)id;
  (void)ud;
  CHECK_OK(reactor_stop(r));
  return 0;
}

static int count_shutdown(reactor_t *r, uint64_t id, void *ud) {
  (void)r;
  (void)id;
  (void)ud;
  early_shutdown_runs++;
  return 0;
}

static void safety_cb(reactor_t *r, void *ud) {
  (void)ud;
  fprintf(stderr, "   safety timer fired: run did not end after stop in before-startup\n");
  atomic_fetch_add(&tu_failures, 1);
  reactor_crash(r);
}

static void test_stop_in_before_startup(void) {
  SECTION("stop from a before-startup trigger");
  reactor_t *r = tu_new_reactor();
  uint64_t id;
  CHECK_OK(reactor_add_system_event_trigger(r, REACTOR_PHASE_BEFORE, "startup",
                                            stop_in_before_startup, NULL, NULL, &id));
  CHECK_OK(reactor_add_system_event_trigger(r, REACTOR_PHASE_BEFORE, "shutdown", count_shutdown,
                                            NULL, NULL, &id));
  CHECK_OK(reactor_call_later(r, 10.0, safety_cb, NULL, NULL, NULL));
  CHECK_OK(reactor_run(r));
  CHECK_EQ(early_shutdown_runs, 1);
  CHECK_EQ(reactor_is_running(r), 0);
  CHECK_RC(reactor_run(r), REACTOR_E_NOT_RESTARTABLE);
  CHECK_OK(reactor_free(r));
}

/* ---- call_when_running from before-startup ---------------------------------- */

static char order2[128];
static int y_running = -1;

static void y_cb(reactor_t *r, void *ud) {
  (void)ud;
  strcat(order2, "Y ");
  y_running = reactor_is_running(r);
  CHECK_OK(reactor_stop(r));
}

static int before_adds_cwr(reactor_t *r, uint64_t id, void *ud) {
  (void)id;
  (void)ud;
  strcat(order2, "B ");
  CHECK_OK(reactor_call_when_running(r, y_cb, NULL, NULL));
  CHECK(strcmp(order2, "B ") == 0); /* not called at once: not running yet */
  return 0;
}

static int z_trigger(reactor_t *r, uint64_t id, void *ud) {
  (void)r;
  (void)id;
  (void)ud;
  strcat(order2, "Z ");
  return 0;
}

static void test_cwr_from_before_startup(void) {
  SECTION("call_when_running from a before-startup trigger joins the current startup");
  reactor_t *r = tu_new_reactor();
  uint64_t id;
  CHECK_OK(reactor_add_system_event_trigger(r, REACTOR_PHASE_BEFORE, "startup", before_adds_cwr,
                                            NULL, NULL, &id));
  CHECK_OK(reactor_add_system_event_trigger(r, REACTOR_PHASE_AFTER, "startup", z_trigger, NULL,
                                            NULL, &id));
  CHECK_OK(reactor_call_later(r, 10.0, safety_cb, NULL, NULL, NULL));
  CHECK_OK(reactor_run(r));
  printf("   order: %s\n", order2);
  CHECK(strcmp(order2, "B Z Y ") == 0);
  CHECK_EQ(y_running, 1);
  CHECK_OK(reactor_free(r));
}

int main(void) {
  tu_watchdog(30);
  test_phases();
  test_stop_in_before_startup();
  test_cwr_from_before_startup();
  return tu_finish(PROG);
}
