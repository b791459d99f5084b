/*
 * test_log.c - the log hook (API.md §1, §2; DECISIONS "System events").
 *
 * Checks:
 *   - the default log (errors to stderr) does not crash on a failing trigger;
 *   - a user log fn set with reactor_set_log_fn receives REACTOR_LOG_ERROR with its user
 *     data and a non-empty message for a failing trigger, on the reactor thread;
 *   - REACTOR_PENDING returned from a DURING trigger is logged as REACTOR_LOG_WARN and
 *     does not hold the event (AFTER still runs before fire returns);
 *   - the hook is per reactor; reactor_set_log_fn(r, NULL, NULL) stops calls to the old fn.
 */
#include "test_util.h"

static const char *PROG = "test_log";

typedef struct cap {
  int errors, warns, infos, others, bad_thread;
  char last[512];
} cap_t;

static pthread_t owner;

static void log_fn(void *ud, int level, const char *message) {
  cap_t *c = ud;
  switch (level) {
  case REACTOR_LOG_ERROR: c->errors++; break;
  case REACTOR_LOG_WARN: c->warns++; break;
  case REACTOR_LOG_INFO: c->infos++; break;
  default: c->others++; break;
  }
  if (!pthread_equal(pthread_self(), owner)) c->bad_thread++;
  CHECK(message != NULL);
  if (message) {
    CHECK(message[0] != '\0');
    snprintf(c->last, sizeof c->last, "%s", message);
  }
}

static int fail_trigger(reactor_t *r, uint64_t id, void *ud) {
  (void)r;
  (void)id;
  (void)ud;
  return -1;
}

static int pending_trigger(reactor_t *r, uint64_t id, void *ud) {
  (void)r;
  (void)id;
  (void)ud;
  return REACTOR_PENDING;
}

static int count_trigger(reactor_t *r, uint64_t id, void *ud) {
  (void)r;
  (void)id;
  (*(int *)ud)++;
  return 0;
}

static void add(reactor_t *r, reactor_phase_t ph, const char *ev, reactor_trigger_fn fn, void *ud) {
  uint64_t id;
  CHECK_OK(reactor_add_system_event_trigger(r, ph, ev, fn, ud, NULL, &id));
}

int main(void) {
  tu_watchdog(30);
  owner = pthread_self();
  reactor_t *r = tu_new_reactor();
  reactor_t *r2 = tu_new_reactor();
  tu_banner(PROG, r);
  int after = 0;

  SECTION("default log does not crash (an error line on stderr is expected)");
  add(r, REACTOR_PHASE_BEFORE, "e1", fail_trigger, NULL);
  add(r, REACTOR_PHASE_AFTER, "e1", count_trigger, &after);
  CHECK_OK(reactor_fire_system_event(r, "e1"));
  CHECK_EQ(after, 1);

  SECTION("user log fn gets ERROR");
  cap_t c, c2;
  memset(&c, 0, sizeof c);
  memset(&c2, 0, sizeof c2);
  reactor_set_log_fn(r, log_fn, &c);
  reactor_set_log_fn(r2, log_fn, &c2);
  add(r, REACTOR_PHASE_BEFORE, "e2", fail_trigger, NULL);
  add(r, REACTOR_PHASE_AFTER, "e2", count_trigger, &after);
  CHECK_OK(reactor_fire_system_event(r, "e2"));
  CHECK_EQ(after, 2);
  printf("   errors %d, last message \"%s\"\n", c.errors, c.last);
  CHECK(c.errors >= 1);
  CHECK_EQ(c.bad_thread, 0);
  CHECK_EQ(c2.errors + c2.warns, 0); /* per reactor */

  SECTION("PENDING from a DURING trigger is a warning and does not hold");
  add(r, REACTOR_PHASE_DURING, "e3", pending_trigger, NULL);
  add(r, REACTOR_PHASE_AFTER, "e3", count_trigger, &after);
  CHECK_OK(reactor_fire_system_event(r, "e3"));
  printf("   warns %d, last message \"%s\"\n", c.warns, c.last);
  CHECK(c.warns >= 1);
  CHECK_EQ(after, 3);
  CHECK_OK(reactor_fire_system_event(r, "e3")); /* not held: not BUSY */

  SECTION("set_log_fn(NULL) detaches the user fn");
  reactor_set_log_fn(r, NULL, NULL);
  int errors_before = c.errors;
  add(r, REACTOR_PHASE_BEFORE, "e4", fail_trigger, NULL);
  CHECK_OK(reactor_fire_system_event(r, "e4"));
  CHECK_EQ(c.errors, errors_before);

  CHECK_OK(reactor_free(r));
  CHECK_OK(reactor_free(r2));
  return tu_finish(PROG);
}
