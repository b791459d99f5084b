/*
 * test_reentrancy.c - callbacks that re-enter the API (API.md §1 "never while the library
 * holds an internal lock", release "after the last callback"; DECISIONS "Threads", "Loop").
 *
 * Checks:
 *   - a timer cancels another timer due in the same batch: the cancelled one never runs;
 *     a timer releases its own handle inside its callback;
 *   - a reader removes itself inside its callback: OK, its release runs exactly once and
 *     not before the callback returned, and it is never called again;
 *   - a reader replaces itself (add_reader on its own fd) inside its callback: the old
 *     registration is released after its callback returned, the new one gets later events;
 *   - two ready readers each remove the other: exactly one of them runs;
 *   - inside a callback dispatched by iterate: iterate and run -> ALREADY_RUNNING,
 *     reactor_free -> BUSY;
 *   - a thread-call callback, a trigger and a timer can all schedule more work
 *     (call_later, call_from_thread, add_reader) without deadlocking.
 */
#include "test_util.h"

static const char *PROG = "test_reentrancy";

/* ---- timers ----------------------------------------------------------------- */

static reactor_delayed_call_t *victim, *selfh;
static int victim_ran, killer_ran, self_ran;

static void victim_cb(reactor_t *r, void *ud) {
  (void)r;
  (void)ud;
  victim_ran++;
}

static void killer_cb(reactor_t *r, void *ud) {
  (void)r;
  (void)ud;
  killer_ran++;
  CHECK_OK(reactor_delayed_call_cancel(victim));
}

static void self_release_cb(reactor_t *r, void *ud) {
  (void)r;
  (void)ud;
  self_ran++;
  reactor_delayed_call_release(selfh);
}

static void test_timers(reactor_t *r) {
  SECTION("a timer cancels another due in the same batch; a timer releases its own handle");
  CHECK_OK(reactor_call_later(r, 1.0, killer_cb, NULL, NULL, NULL));
  CHECK_OK(reactor_call_later(r, 1.0, victim_cb, NULL, NULL, &victim));
  CHECK_OK(reactor_call_later(r, 1.0, self_release_cb, NULL, NULL, &selfh));
  CHECK_OK(reactor_clock_advance(r, 1.0));
  CHECK_EQ(killer_ran, 1);
  CHECK_EQ(victim_ran, 0);
  CHECK_EQ(self_ran, 1);
  CHECK_EQ(reactor_delayed_call_active(victim), 0);
  CHECK_RC(reactor_delayed_call_cancel(victim), REACTOR_E_ALREADY_CANCELLED);
  reactor_delayed_call_release(victim);
  CHECK_EQ(reactor_delayed_call_count(r), 0);
}

/* ---- readers removing / replacing themselves ----------------------------------- */

typedef struct rd {
  int calls;
  int released;
  int in_callback;
  int released_inside; /* release ran while its callback was still running */
} rd_t;

static void rd_release(void *ud) {
  rd_t *x = ud;
  x->released++;
  if (x->in_callback) x->released_inside++;
}

static void remove_self_cb(reactor_t *r, int fd, uint32_t ev, void *ud) {
  (void)ev;
  rd_t *x = ud;
  x->in_callback = 1;
  x->calls++;
  tu_drain(fd);
  CHECK_OK(reactor_remove_reader(r, fd));
  CHECK_RC(reactor_remove_reader(r, fd), REACTOR_E_NOT_FOUND);
  x->in_callback = 0;
}

static rd_t repl_old, repl_new;

static void replacement_cb(reactor_t *r, int fd, uint32_t ev, void *ud) {
  (void)r;
  (void)ev;
  rd_t *x = ud;
  x->calls++;
  tu_drain(fd);
}

static void replace_self_cb(reactor_t *r, int fd, uint32_t ev, void *ud) {
  (void)ev;
  rd_t *x = ud;
  x->in_callback = 1;
  x->calls++;
  tu_drain(fd);
  CHECK_OK(reactor_add_reader(r, fd, replacement_cb, &repl_new, rd_release));
  x->in_callback = 0;
}

static void iterate_n(reactor_t *r, int n) {
  for (int i = 0; i < n; i++) CHECK_OK(reactor_iterate(r, 0.0));
}

static void test_readers(reactor_t *r) {
  SECTION("a reader removes itself inside its callback");
  static rd_t x;
  int p[2];
  tu_pipe(p);
  tu_write_byte(p[1]);
  CHECK_OK(reactor_add_reader(r, p[0], remove_self_cb, &x, rd_release));
  iterate_n(r, 2);
  tu_write_byte(p[1]);
  iterate_n(r, 2);
  CHECK_EQ(x.calls, 1);
  CHECK_EQ(x.released, 1);
  CHECK_EQ(x.released_inside, 0);
  tu_close_pair(p);

  SECTION("a reader replaces itself inside its callback");
  tu_pipe(p);
  tu_write_byte(p[1]);
  CHECK_OK(reactor_add_reader(r, p[0], replace_self_cb, &repl_old, rd_release));
  iterate_n(r, 2);
  CHECK_EQ(repl_old.calls, 1);
  CHECK_EQ(repl_old.released, 1);
  CHECK_EQ(repl_old.released_inside, 0);
  CHECK_EQ(repl_new.calls, 0);
  tu_write_byte(p[1]);
  iterate_n(r, 2);
  CHECK_EQ(repl_old.calls, 1);
  CHECK_EQ(repl_new.calls, 1);
  CHECK_OK(reactor_remove_reader(r, p[0]));
  iterate_n(r, 1);
  CHECK_EQ(repl_new.released, 1);
  tu_close_pair(p);
}

/* ---- two ready readers remove each other ------------------------------------ */

static int fd_a, fd_b, ran_a, ran_b;

static void remove_other_cb(reactor_t *r, int fd, uint32_t ev, void *ud) {
  (void)ev;
  (void)ud;
  tu_drain(fd);
  if (fd == fd_a) {
    ran_a++;
    reactor_remove_reader(r, fd_b);
  } else {
    ran_b++;
    reactor_remove_reader(r, fd_a);
  }
}

static void test_remove_other(reactor_t *r) {
  SECTION("two ready readers remove each other: exactly one runs");
  int p[2], q[2];
  tu_pipe(p);
  tu_pipe(q);
  fd_a = p[0];
  fd_b = q[0];
  tu_write_byte(p[1]);
  tu_write_byte(q[1]);
  CHECK_OK(reactor_add_reader(r, fd_a, remove_other_cb, NULL, NULL));
  CHECK_OK(reactor_add_reader(r, fd_b, remove_other_cb, NULL, NULL));
  iterate_n(r, 3);
  printf("   a ran %d, b ran %d\n", ran_a, ran_b);
  CHECK_EQ(ran_a + ran_b, 1);
  /* whichever ran is still registered */
  if (ran_a) CHECK_OK(reactor_remove_reader(r, fd_a));
  if (ran_b) CHECK_OK(reactor_remove_reader(r, fd_b));
  tu_close_pair(p);
  tu_close_pair(q);
}

/* ---- nested iterate / run / free inside an iterate-dispatched callback ------------ */

static int nested_checked;

static void nested_cb(reactor_t *r, void *ud) {
  (void)ud;
  CHECK_RC(reactor_iterate(r, 0.0), REACTOR_E_ALREADY_RUNNING);
  CHECK_RC(reactor_run(r), REACTOR_E_ALREADY_RUNNING);
  CHECK_RC(reactor_free(r), REACTOR_E_BUSY);
  nested_checked = 1;
}

static void test_nested(reactor_t *r) {
  SECTION("iterate/run/free inside an iterate-dispatched callback");
  CHECK_OK(reactor_call_later(r, 0.0, nested_cb, NULL, NULL, NULL));
  iterate_n(r, 1);
  CHECK_EQ(nested_checked, 1);
}

/* ---- everything schedules more work --------------------------------------------- */

static int chain_steps;
static int chain_pipe[2];

static void chain_fd_cb(reactor_t *r, int fd, uint32_t ev, void *ud) {
  (void)ev;
  (void)ud;
  tu_drain(fd);
  chain_steps++; /* step 4 */
  CHECK_OK(reactor_remove_reader(r, fd));
}

static void chain_thread_cb(reactor_t *r, void *ud) {
  (void)ud;
  chain_steps++; /* step 3 */
  CHECK_OK(reactor_add_reader(r, chain_pipe[0], chain_fd_cb, NULL, NULL));
  tu_write_byte(chain_pipe[1]);
}

static void chain_timer_cb(reactor_t *r, void *ud) {
  (void)ud;
  chain_steps++; /* step 2 */
  CHECK_OK(reactor_call_from_thread(r, chain_thread_cb, NULL, NULL));
}

static int chain_trigger(reactor_t *r, uint64_t id, void *ud) {
  (void)id;
  (void)ud;
  chain_steps++; /* step 1 */
  CHECK_OK(reactor_call_later(r, 0.0, chain_timer_cb, NULL, NULL, NULL));
  return 0;
}

static void test_chain(reactor_t *r) {
  SECTION("trigger -> timer -> thread call -> reader, each scheduling the next");
  tu_pipe(chain_pipe);
  uint64_t id;
  CHECK_OK(reactor_add_system_event_trigger(r, REACTOR_PHASE_DURING, "go", chain_trigger, NULL,
                                            NULL, &id));
  CHECK_OK(reactor_fire_system_event(r, "go"));
  for (int i = 0; i < 10 && chain_steps < 4; i++) CHECK_OK(reactor_iterate(r, 0.1));
  CHECK_EQ(chain_steps, 4);
  tu_close_pair(chain_pipe);
}

int main(void) {
  tu_watchdog(30);
  reactor_t *r = tu_new_manual_reactor();
  tu_banner(PROG, r);
  test_timers(r);
  test_readers(r);
  test_remove_other(r);
  test_nested(r);
  test_chain(r);
  CHECK_OK(reactor_free(r));
  return tu_finish(PROG);
}
