/*
 * test_triggers.c - system event triggers (API.md §2, §7; DECISIONS "System events").
 *
 * Checks:
 *   - reactor_fire_system_event runs BEFORE, DURING, AFTER triggers (FIFO in a phase)
 *     before it returns when nothing holds; the trigger id passed equals out_id;
 *     each trigger's release runs once;
 *   - triggers are one-shot: firing a custom event twice runs them once; a second
 *     firing runs only triggers added since;
 *   - removed triggers never run (release still runs once), including one removed by
 *     an earlier BEFORE trigger of the same firing; remove unknown/twice -> NOT_FOUND;
 *   - a failing trigger (negative return) is logged with REACTOR_LOG_ERROR through
 *     reactor_set_log_fn and the remaining triggers still run;
 *   - reactor_trigger_complete on an unknown / not pending id -> REACTOR_E_NOT_FOUND;
 *   - a BEFORE trigger returning REACTOR_PENDING holds DURING until
 *     reactor_trigger_complete (custom event driven by iterate; startup and shutdown
 *     driven by run); timers keep firing while held (they complete it); DURING never
 *     runs inside reactor_trigger_complete; two pending triggers both must complete;
 *     firing an event that is held -> REACTOR_E_BUSY;
 *   - reactor_trigger_complete_now: completing one of two held triggers runs nothing; completing
 *     the last runs DURING and AFTER before it returns (Twisted's DeferredList continuation), and
 *     their releases have run; again or unknown -> NOT_FOUND; "startup" held inside run and
 *     completed with it still continues on the next pass (never inside the call);
 *   - a trigger that completes its own id before returning PENDING does not hold;
 *   - triggers added while the event fires join the firing if their phase has not finished,
 *     else wait for the next firing (DECISIONS);
 *   - "startup"/"shutdown" fired by hand inside run -> BUSY; fired by hand while idle they
 *     run their triggers and the reactor can still run (DECISIONS).
 */
#include "test_util.h"

static const char *PROG = "test_triggers";

static char order[512];
static void log_event(const char *name) {
  strncat(order, name, sizeof order - strlen(order) - 1);
  strncat(order, " ", sizeof order - strlen(order) - 1);
}
static void reset_order(void) { order[0] = '\0'; }

typedef struct trig {
  const char *name;
  int ret;          /* value returned by the trigger */
  int ran;
  int releases;
  uint64_t id;      /* out_id from add */
  uint64_t seen_id; /* id passed to the trigger */
} trig_t;

static void trig_release(void *ud) { ((trig_t *)ud)->releases++; }

static int trig_fn(reactor_t *r, uint64_t id, void *ud) {
  (void)r;
  trig_t *t = ud;
  t->ran++;
  t->seen_id = id;
  log_event(t->name);
  return t->ret;
}

static void add(reactor_t *r, reactor_phase_t ph, const char *ev, trig_t *t) {
  CHECK_OK(reactor_add_system_event_trigger(r, ph, ev, trig_fn, t, trig_release, &t->id));
}

/* ---- fire runs everything before returning; one-shot -------------------- */

static void test_fire_and_one_shot(reactor_t *r) {
  SECTION("fire_system_event runs all phases before returning; one-shot");
  static trig_t a1 = {"a1", 0, 0, 0, 0, 0}, a2 = {"a2", 0, 0, 0, 0, 0}, b1 = {"b1", 0, 0, 0, 0, 0};
  static trig_t d1 = {"d1", 0, 0, 0, 0, 0}, d2 = {"d2", 0, 0, 0, 0, 0}, late = {"late", 0, 0, 0, 0, 0};
  reset_order();
  add(r, REACTOR_PHASE_AFTER, "ev", &a1);
  add(r, REACTOR_PHASE_DURING, "ev", &d1);
  add(r, REACTOR_PHASE_BEFORE, "ev", &b1);
  add(r, REACTOR_PHASE_DURING, "ev", &d2);
  add(r, REACTOR_PHASE_AFTER, "ev", &a2);
  CHECK(a1.id != a2.id && a1.id != b1.id && d1.id != d2.id);

  CHECK_OK(reactor_fire_system_event(r, "ev"));
  printf("   order: %s\n", order);
  CHECK(strcmp(order, "b1 d1 d2 a1 a2 ") == 0);
  trig_t *all[] = {&a1, &a2, &b1, &d1, &d2};
  for (size_t i = 0; i < 5; i++) {
    CHECK_EQ(all[i]->ran, 1);
    CHECK_EQ(all[i]->seen_id, all[i]->id);
    /* one-shot: released right after its phase ran, so before fire returns (API.md §7) */
    CHECK_EQ(all[i]->releases, 1);
  }

  /* one-shot: firing again runs nothing, then only what was added since */
  reset_order();
  CHECK_OK(reactor_fire_system_event(r, "ev"));
  CHECK_EQ(strlen(order), 0);
  add(r, REACTOR_PHASE_DURING, "ev", &late);
  CHECK_OK(reactor_fire_system_event(r, "ev"));
  CHECK(strcmp(order, "late ") == 0);
  CHECK_EQ(late.ran, 1);
  for (size_t i = 0; i < 5; i++) CHECK_EQ(all[i]->ran, 1);

  /* a fired trigger cannot be removed any more */
  CHECK_RC(reactor_remove_system_event_trigger(r, a1.id), REACTOR_E_NOT_FOUND);
  CHECK_OK(reactor_iterate(r, 0.0));
  for (size_t i = 0; i < 5; i++) CHECK_EQ(all[i]->releases, 1);
  CHECK_EQ(late.releases, 1);

  /* an event nobody listens to fires fine */
  CHECK_OK(reactor_fire_system_event(r, "nobody-listens"));
}

/* ---- removal ----------------------------------------------------------- */

typedef struct remover {
  reactor_t *r;
  uint64_t victims[2];
  int ran;
} remover_t;

static int remover_fn(reactor_t *r, uint64_t id, void *ud) {
  (void)id;
  remover_t *m = ud;
  m->ran++;
  log_event("remover");
  CHECK_OK(reactor_remove_system_event_trigger(r, m->victims[0]));
  CHECK_OK(reactor_remove_system_event_trigger(r, m->victims[1]));
  return 0;
}

static void test_remove(reactor_t *r) {
  SECTION("removed triggers never run; remove unknown/twice -> NOT_FOUND");
  static trig_t a = {"a", 0, 0, 0, 0, 0}, b = {"b", 0, 0, 0, 0, 0}, c = {"c", 0, 0, 0, 0, 0};
  reset_order();
  add(r, REACTOR_PHASE_BEFORE, "rm", &a);
  add(r, REACTOR_PHASE_BEFORE, "rm", &b);
  add(r, REACTOR_PHASE_BEFORE, "rm", &c);
  CHECK_OK(reactor_remove_system_event_trigger(r, b.id));
  CHECK_RC(reactor_remove_system_event_trigger(r, b.id), REACTOR_E_NOT_FOUND);
  CHECK_RC(reactor_remove_system_event_trigger(r, 0xdeadbeefULL), REACTOR_E_NOT_FOUND);
  CHECK_OK(reactor_fire_system_event(r, "rm"));
  CHECK(strcmp(order, "a c ") == 0);
  CHECK_EQ(b.ran, 0);
  CHECK_OK(reactor_iterate(r, 0.0));
  CHECK_EQ(a.releases, 1);
  CHECK_EQ(b.releases, 1);
  CHECK_EQ(c.releases, 1);

  SECTION("a BEFORE trigger removes a later BEFORE and a DURING trigger of the same firing");
  static trig_t later_before = {"later_before", 0, 0, 0, 0, 0}, during = {"during", 0, 0, 0, 0, 0};
  static trig_t after = {"after", 0, 0, 0, 0, 0};
  remover_t m = {r, {0, 0}, 0};
  uint64_t mid;
  reset_order();
  CHECK_OK(reactor_add_system_event_trigger(r, REACTOR_PHASE_BEFORE, "rm2", remover_fn, &m, NULL,
                                            &mid));
  add(r, REACTOR_PHASE_BEFORE, "rm2", &later_before);
  add(r, REACTOR_PHASE_DURING, "rm2", &during);
  add(r, REACTOR_PHASE_AFTER, "rm2", &after);
  m.victims[0] = later_before.id;
  m.victims[1] = during.id;
  CHECK_OK(reactor_fire_system_event(r, "rm2"));
  printf("   order: %s\n", order);
  CHECK(strcmp(order, "remover after ") == 0);
  CHECK_EQ(m.ran, 1);
  CHECK_EQ(later_before.ran, 0);
  CHECK_EQ(during.ran, 0);
  CHECK_EQ(after.ran, 1);
  CHECK_OK(reactor_iterate(r, 0.0));
  CHECK_EQ(later_before.releases, 1);
  CHECK_EQ(during.releases, 1);
  CHECK_EQ(after.releases, 1);
}

/* ---- failing trigger is logged ----------------------------------------- */

typedef struct logcap {
  int errors, warns, others;
  char last[256];
} logcap_t;

static void log_fn(void *ud, int level, const char *message) {
  logcap_t *c = ud;
  if (level == REACTOR_LOG_ERROR)
    c->errors++;
  else if (level == REACTOR_LOG_WARN)
    c->warns++;
  else
    c->others++;
  CHECK(message != NULL);
  if (message) snprintf(c->last, sizeof c->last, "%s", message);
}

static void test_failing_trigger(reactor_t *r) {
  SECTION("a failing trigger is logged (ERROR) and the rest still run");
  logcap_t cap;
  memset(&cap, 0, sizeof cap);
  reactor_set_log_fn(r, log_fn, &cap);
  static trig_t f1 = {"f1", -1, 0, 0, 0, 0}, ok1 = {"ok1", 0, 0, 0, 0, 0};
  static trig_t f2 = {"f2", REACTOR_E_INVALID, 0, 0, 0, 0}, d = {"d", 0, 0, 0, 0, 0};
  static trig_t a = {"a", 0, 0, 0, 0, 0};
  reset_order();
  add(r, REACTOR_PHASE_BEFORE, "fail", &f1);
  add(r, REACTOR_PHASE_BEFORE, "fail", &ok1);
  add(r, REACTOR_PHASE_DURING, "fail", &f2);
  add(r, REACTOR_PHASE_DURING, "fail", &d);
  add(r, REACTOR_PHASE_AFTER, "fail", &a);
  CHECK_OK(reactor_fire_system_event(r, "fail"));
  printf("   order: %s; errors logged: %d, last: \"%s\"\n", order, cap.errors, cap.last);
  CHECK(strcmp(order, "f1 ok1 f2 d a ") == 0);
  CHECK(cap.errors >= 2);
  CHECK(strlen(cap.last) > 0);
  reactor_set_log_fn(r, NULL, NULL);
  CHECK_OK(reactor_iterate(r, 0.0));
  CHECK_EQ(f1.releases + ok1.releases + f2.releases + d.releases + a.releases, 5);
}

/* ---- trigger_complete errors ------------------------------------------- */

static void test_complete_unknown(reactor_t *r) {
  SECTION("trigger_complete on unknown / not pending ids -> NOT_FOUND");
  CHECK_RC(reactor_trigger_complete(r, 999999), REACTOR_E_NOT_FOUND);
  CHECK_RC(reactor_trigger_complete(r, 0), REACTOR_E_NOT_FOUND);
  static trig_t t = {"t", 0, 0, 0, 0, 0};
  add(r, REACTOR_PHASE_BEFORE, "cu", &t);
  CHECK_RC(reactor_trigger_complete(r, t.id), REACTOR_E_NOT_FOUND); /* added, not pending */
  CHECK_OK(reactor_fire_system_event(r, "cu"));
  CHECK_RC(reactor_trigger_complete(r, t.id), REACTOR_E_NOT_FOUND); /* ran, returned 0 */
}

/* ---- held custom event, driven by iterate ------------------------------- */

typedef struct held {
  reactor_t *r;
  uint64_t ids[2];
  int which;       /* index of the id to complete */
  int timer_ran;
  int *during_ran; /* DURING counter to check it does not run inside complete */
} held_t;

static void complete_cb(reactor_t *r, void *ud) {
  held_t *h = ud;
  h->timer_ran++;
  log_event("timer");
  int before = *h->during_ran;
  CHECK_OK(reactor_trigger_complete(r, h->ids[h->which]));
  CHECK_EQ(*h->during_ran, before); /* never inside trigger_complete */
  CHECK_RC(reactor_trigger_complete(r, h->ids[h->which]), REACTOR_E_NOT_FOUND);
}

/* iterate until pred or ~5 s */
static void iterate_until(reactor_t *r, const int *flag) {
  double t0 = tu_now();
  while (!*flag && tu_now() - t0 < (tu_valgrind() ? 30.0 : 5.0)) CHECK_OK(reactor_iterate(r, 0.2));
}

static void test_held_custom(reactor_t *r) {
  SECTION("custom event held by two PENDING BEFORE triggers, completed from timers");
  static trig_t p1 = {"p1", REACTOR_PENDING, 0, 0, 0, 0}, p2 = {"p2", REACTOR_PENDING, 0, 0, 0, 0};
  static trig_t q = {"q", 0, 0, 0, 0, 0}, d = {"d", 0, 0, 0, 0, 0}, a = {"a", 0, 0, 0, 0, 0};
  reset_order();
  add(r, REACTOR_PHASE_BEFORE, "held", &p1);
  add(r, REACTOR_PHASE_BEFORE, "held", &q);
  add(r, REACTOR_PHASE_BEFORE, "held", &p2);
  add(r, REACTOR_PHASE_DURING, "held", &d);
  add(r, REACTOR_PHASE_AFTER, "held", &a);

  CHECK_OK(reactor_fire_system_event(r, "held"));
  CHECK(strcmp(order, "p1 q p2 ") == 0);
  CHECK_EQ(d.ran, 0);
  CHECK_EQ(a.ran, 0);
  CHECK_RC(reactor_fire_system_event(r, "held"), REACTOR_E_BUSY);

  held_t h1 = {r, {p1.id, p2.id}, 0, 0, &d.ran};
  held_t h2 = {r, {p1.id, p2.id}, 1, 0, &d.ran};
  CHECK_OK(reactor_call_later(r, 0.01, complete_cb, &h1, NULL, NULL));
  iterate_until(r, &h1.timer_ran);
  CHECK_EQ(h1.timer_ran, 1);
  for (int i = 0; i < 3; i++) CHECK_OK(reactor_iterate(r, 0.0));
  CHECK_EQ(d.ran, 0); /* p2 still pending */

  CHECK_OK(reactor_call_later(r, 0.01, complete_cb, &h2, NULL, NULL));
  iterate_until(r, &a.ran);
  printf("   order: %s\n", order);
  CHECK(strcmp(order, "p1 q p2 timer timer d a ") == 0);
  CHECK_EQ(d.ran, 1);
  CHECK_EQ(a.ran, 1);
  CHECK_RC(reactor_trigger_complete(r, p1.id), REACTOR_E_NOT_FOUND);
  CHECK_OK(reactor_iterate(r, 0.0));
  CHECK_EQ(p1.releases + p2.releases + q.releases + d.releases + a.releases, 5);
}

static void test_complete_now(reactor_t *r) {
  SECTION("trigger_complete_now runs DURING and AFTER before it returns once nothing holds");
  static trig_t p1 = {"p1", REACTOR_PENDING, 0, 0, 0, 0}, p2 = {"p2", REACTOR_PENDING, 0, 0, 0, 0};
  static trig_t d = {"d", 0, 0, 0, 0, 0}, a = {"a", 0, 0, 0, 0, 0};
  reset_order();
  add(r, REACTOR_PHASE_BEFORE, "now", &p1);
  add(r, REACTOR_PHASE_BEFORE, "now", &p2);
  add(r, REACTOR_PHASE_DURING, "now", &d);
  add(r, REACTOR_PHASE_AFTER, "now", &a);
  CHECK_OK(reactor_fire_system_event(r, "now"));
  CHECK(strcmp(order, "p1 p2 ") == 0);
  CHECK_OK(reactor_trigger_complete_now(r, p1.id));
  CHECK_EQ(d.ran, 0); /* p2 still holds */
  CHECK_RC(reactor_trigger_complete_now(r, p1.id), REACTOR_E_NOT_FOUND);
  CHECK_OK(reactor_trigger_complete_now(r, p2.id));
  printf("   order: %s\n", order);
  CHECK(strcmp(order, "p1 p2 d a ") == 0);
  CHECK_EQ(p1.releases + p2.releases + d.releases + a.releases, 4);
  CHECK_RC(reactor_trigger_complete_now(r, p2.id), REACTOR_E_NOT_FOUND);
  CHECK_RC(reactor_trigger_complete_now(r, 999999), REACTOR_E_NOT_FOUND);
  /* the event is idle again: a new firing runs only triggers added since */
  static trig_t d2 = {"d2", 0, 0, 0, 0, 0};
  add(r, REACTOR_PHASE_DURING, "now", &d2);
  CHECK_OK(reactor_fire_system_event(r, "now"));
  CHECK_EQ(d.ran, 1);
  CHECK_EQ(d2.ran, 1);
  /* nothing is left for the next pass */
  CHECK_OK(reactor_iterate(r, 0.0));
  CHECK_EQ(a.ran, 1);
}

static void safety_cb(reactor_t *r, void *ud);
static uint64_t now_hold_id;
static int now_during, now_completer_ran;

static int hold_startup_now(reactor_t *r, uint64_t id, void *ud) {
  (void)r;
  (void)ud;
  now_hold_id = id;
  return REACTOR_PENDING;
}

static void complete_startup_now_cb(reactor_t *r, void *ud) {
  (void)ud;
  now_completer_ran++;
  CHECK_OK(reactor_trigger_complete_now(r, now_hold_id));
  CHECK_EQ(now_during, 0); /* startup inside run: the next pass, not inside the call */
}

static int startup_now_during(reactor_t *r, uint64_t id, void *ud) {
  (void)id;
  (void)ud;
  now_during++;
  CHECK_OK(reactor_stop(r));
  return 0;
}

static void test_complete_now_startup(void) {
  SECTION("trigger_complete_now on a held startup inside run continues on the next pass");
  reactor_t *r = tu_new_reactor();
  uint64_t id;
  CHECK_OK(reactor_add_system_event_trigger(r, REACTOR_PHASE_BEFORE, "startup", hold_startup_now,
                                            NULL, NULL, &id));
  CHECK_OK(reactor_add_system_event_trigger(r, REACTOR_PHASE_DURING, "startup", startup_now_during,
                                            NULL, NULL, &id));
  CHECK_OK(reactor_call_later(r, 0.01, complete_startup_now_cb, NULL, NULL, NULL));
  CHECK_OK(reactor_call_later(r, 20.0, safety_cb, NULL, NULL, NULL));
  CHECK_OK(reactor_run(r));
  CHECK_EQ(now_completer_ran, 1);
  CHECK_EQ(now_during, 1);
  CHECK_OK(reactor_free(r));
}

static int self_complete_fn(reactor_t *r, uint64_t id, void *ud) {
  (void)ud;
  log_event("self");
  CHECK_OK(reactor_trigger_complete(r, id));
  return REACTOR_PENDING;
}

static void test_self_complete(reactor_t *r) {
  SECTION("a trigger completing its own id before returning PENDING does not hold");
  static trig_t d = {"d", 0, 0, 0, 0, 0};
  uint64_t id;
  reset_order();
  CHECK_OK(reactor_add_system_event_trigger(r, REACTOR_PHASE_BEFORE, "selfc", self_complete_fn,
                                            NULL, NULL, &id));
  add(r, REACTOR_PHASE_DURING, "selfc", &d);
  CHECK_OK(reactor_fire_system_event(r, "selfc"));
  CHECK(strcmp(order, "self d ") == 0);
  CHECK_OK(reactor_fire_system_event(r, "selfc")); /* not BUSY: nothing holds it */
}

/* ---- triggers added during a firing ------------------------------------------ */

static trig_t join_d = {"join_d", 0, 0, 0, 0, 0}, late_b = {"late_b", 0, 0, 0, 0, 0};

static int adder_before(reactor_t *r, uint64_t id, void *ud) {
  (void)id;
  (void)ud;
  log_event("adder_b");
  add(r, REACTOR_PHASE_DURING, "join", &join_d); /* DURING not finished: joins */
  return 0;
}

static int adder_during(reactor_t *r, uint64_t id, void *ud) {
  (void)id;
  (void)ud;
  log_event("adder_d");
  add(r, REACTOR_PHASE_BEFORE, "join", &late_b); /* BEFORE finished: next firing */
  return 0;
}

static void test_join_current_firing(reactor_t *r) {
  SECTION("triggers added during a firing");
  uint64_t id;
  reset_order();
  CHECK_OK(reactor_add_system_event_trigger(r, REACTOR_PHASE_BEFORE, "join", adder_before, NULL,
                                            NULL, &id));
  CHECK_OK(reactor_add_system_event_trigger(r, REACTOR_PHASE_DURING, "join", adder_during, NULL,
                                            NULL, &id));
  CHECK_OK(reactor_fire_system_event(r, "join"));
  printf("   order: %s\n", order);
  CHECK(strcmp(order, "adder_b adder_d join_d ") == 0);
  CHECK_EQ(late_b.ran, 0);
  reset_order();
  CHECK_OK(reactor_fire_system_event(r, "join"));
  CHECK(strcmp(order, "late_b ") == 0);
  CHECK_OK(reactor_iterate(r, 0.0));
  CHECK_EQ(join_d.releases + late_b.releases, 2);
}

/* ---- firing startup / shutdown by hand ------------------------------------------ */

static void fire_builtin_in_run_cb(reactor_t *r, void *ud) {
  (void)ud;
  CHECK_RC(reactor_fire_system_event(r, "startup"), REACTOR_E_BUSY);
  CHECK_RC(reactor_fire_system_event(r, "shutdown"), REACTOR_E_BUSY);
  CHECK_OK(reactor_stop(r));
}

static void test_fire_builtin_by_hand(void) {
  SECTION("startup/shutdown fired by hand");
  reactor_t *r = tu_new_reactor();
  static trig_t hs = {"hs", 0, 0, 0, 0, 0}, hd = {"hd", 0, 0, 0, 0, 0};
  reset_order();
  add(r, REACTOR_PHASE_DURING, "startup", &hs);
  add(r, REACTOR_PHASE_DURING, "shutdown", &hd);
  CHECK_OK(reactor_fire_system_event(r, "startup"));
  CHECK_OK(reactor_fire_system_event(r, "shutdown"));
  CHECK(strcmp(order, "hs hd ") == 0);
  /* still runnable; the hand-fired (one-shot) triggers do not run again */
  CHECK_OK(reactor_call_later(r, 0.0, fire_builtin_in_run_cb, NULL, NULL, NULL));
  CHECK_OK(reactor_run(r));
  CHECK(strcmp(order, "hs hd ") == 0);
  CHECK_EQ(hs.ran, 1);
  CHECK_EQ(hd.ran, 1);
  CHECK_OK(reactor_free(r));
}

/* ---- held startup and shutdown, driven by run --------------------------- */

static uint64_t startup_hold_id, shutdown_hold_id;
static int startup_during, startup_after, shutdown_during, shutdown_after;
static int startup_completer_ran, shutdown_completer_ran;

static void complete_startup_cb(reactor_t *r, void *ud) {
  (void)ud;
  startup_completer_ran++;
  log_event("T1");
  CHECK_EQ(startup_during, 0);
  CHECK_EQ(reactor_is_running(r), 0); /* still in before-startup */
  CHECK_OK(reactor_trigger_complete(r, startup_hold_id));
  CHECK_EQ(startup_during, 0);
}

static void complete_shutdown_cb(reactor_t *r, void *ud) {
  (void)ud;
  shutdown_completer_ran++;
  log_event("T2");
  CHECK_EQ(shutdown_during, 0);
  CHECK_EQ(reactor_is_running(r), 1); /* still in before-shutdown */
  CHECK_OK(reactor_trigger_complete(r, shutdown_hold_id));
  CHECK_EQ(shutdown_during, 0);
}

static int hold_startup(reactor_t *r, uint64_t id, void *ud) {
  (void)r;
  (void)ud;
  startup_hold_id = id;
  log_event("holdS");
  return REACTOR_PENDING;
}

static int hold_shutdown(reactor_t *r, uint64_t id, void *ud) {
  (void)ud;
  shutdown_hold_id = id;
  log_event("holdD");
  /* timers keep running while the phase is held: one of them completes it */
  CHECK_OK(reactor_call_later(r, 0.05, complete_shutdown_cb, NULL, NULL, NULL));
  return REACTOR_PENDING;
}

static int note(reactor_t *r, uint64_t id, void *ud) {
  (void)id;
  int *counter = ud;
  (*counter)++;
  if (counter == &startup_during) log_event("sD");
  if (counter == &startup_after) {
    log_event("sA");
    CHECK_OK(reactor_stop(r));
  }
  if (counter == &shutdown_during) log_event("hD");
  if (counter == &shutdown_after) log_event("hA");
  return 0;
}

static void safety_cb(reactor_t *r, void *ud) {
  (void)ud;
  fprintf(stderr, "   safety timer fired: held phase never released\n");
  atomic_fetch_add(&tu_failures, 1);
  reactor_crash(r);
}

static void test_held_startup_shutdown(void) {
  SECTION("PENDING before-startup and before-shutdown triggers hold until completed by timers");
  reactor_t *r = tu_new_reactor();
  uint64_t id;
  reset_order();
  CHECK_OK(reactor_add_system_event_trigger(r, REACTOR_PHASE_BEFORE, "startup", hold_startup, NULL,
                                            NULL, &id));
  CHECK_OK(reactor_add_system_event_trigger(r, REACTOR_PHASE_DURING, "startup", note,
                                            &startup_during, NULL, &id));
  CHECK_OK(reactor_add_system_event_trigger(r, REACTOR_PHASE_AFTER, "startup", note, &startup_after,
                                            NULL, &id));
  CHECK_OK(reactor_add_system_event_trigger(r, REACTOR_PHASE_BEFORE, "shutdown", hold_shutdown,
                                            NULL, NULL, &id));
  CHECK_OK(reactor_add_system_event_trigger(r, REACTOR_PHASE_DURING, "shutdown", note,
                                            &shutdown_during, NULL, &id));
  CHECK_OK(reactor_add_system_event_trigger(r, REACTOR_PHASE_AFTER, "shutdown", note,
                                            &shutdown_after, NULL, &id));
  CHECK_OK(reactor_call_later(r, 0.05, complete_startup_cb, NULL, NULL, NULL));
  CHECK_OK(reactor_call_later(r, 20.0, safety_cb, NULL, NULL, NULL));
  CHECK_OK(reactor_run(r));
  printf("   order: %s\n", order);
  CHECK(strcmp(order, "holdS T1 sD sA holdD T2 hD hA ") == 0);
  CHECK_EQ(startup_completer_ran, 1);
  CHECK_EQ(shutdown_completer_ran, 1);
  CHECK_EQ(startup_during + startup_after + shutdown_during + shutdown_after, 4);
  CHECK_OK(reactor_free(r));
}

/* ---- releases are not deferred to the end of an enclosing callback ------- */

static trig_t in_cb_before = {"icb", 0, 0, 0, 0, 0}, in_cb_after = {"ica", 0, 0, 0, 0, 0};
static int fired_in_cb;

static void fire_from_callback(reactor_t *r, void *ud) {
  (void)ud;
  add(r, REACTOR_PHASE_BEFORE, "in-cb", &in_cb_before);
  add(r, REACTOR_PHASE_AFTER, "in-cb", &in_cb_after);
  CHECK_OK(reactor_fire_system_event(r, "in-cb"));
  /* still inside this timer callback: the triggers ran and were released already */
  CHECK_EQ(in_cb_before.ran, 1);
  CHECK_EQ(in_cb_after.ran, 1);
  CHECK_EQ(in_cb_before.releases, 1);
  CHECK_EQ(in_cb_after.releases, 1);
  fired_in_cb = 1;
}

static void test_release_inside_callback(reactor_t *r) {
  SECTION("fired from inside a callback: releases run before fire returns");
  CHECK_OK(reactor_call_later(r, 0.0, fire_from_callback, NULL, NULL, NULL));
  CHECK_OK(reactor_iterate(r, 0.0));
  CHECK_EQ(fired_in_cb, 1);
}

int main(void) {
  tu_watchdog(30);
  reactor_t *r = tu_new_reactor();
  tu_banner(PROG, r);
  test_fire_and_one_shot(r);
  test_remove(r);
  test_failing_trigger(r);
  test_complete_unknown(r);
  test_held_custom(r);
  test_complete_now(r);
  test_self_complete(r);
  test_join_current_firing(r);
  test_release_inside_callback(r);
  CHECK_OK(reactor_free(r));
  test_held_startup_shutdown();
  test_complete_now_startup();
  test_fire_builtin_by_hand();
  return tu_finish(PROG);
}
