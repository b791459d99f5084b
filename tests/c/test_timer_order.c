/*
 * test_timer_order.c - ordering of delayed calls (API.md §3; DECISIONS "Loop", "Time").
 *
 * Checks (manual clock):
 *   - 10 000 calls with the same delay run in the order scheduled (FIFO);
 *   - mixed deadlines run by deadline, FIFO among equal ones;
 *   - reset gives a call a fresh place in the FIFO order among equal deadlines;
 *   - a delay-0 call scheduled from inside a timer callback runs on the next pass,
 *     after I/O was polled once: with a ready pipe, iterate #1 runs timer then reader,
 *     iterate #2 runs the new call;
 *   - a callback rescheduling itself with delay 0 forever does not starve I/O.
 */
#include "test_util.h"

static const char *PROG = "test_timer_order";

/* ---- FIFO ---------------------------------------------------------------- */

static int *seen;
static int nseen;

static void record_cb(reactor_t *r, void *ud) {
  (void)r;
  seen[nseen++] = (int)(intptr_t)ud;
}

static void test_fifo(reactor_t *r) {
  SECTION("10000 equal deadlines run FIFO");
  const int N = 10000;
  seen = calloc((size_t)N, sizeof *seen);
  REQUIRE(seen != NULL);
  nseen = 0;
  for (int i = 0; i < N; i++)
    CHECK_OK(reactor_call_later(r, 1.0, record_cb, (void *)(intptr_t)i, NULL, NULL));
  CHECK_EQ(reactor_delayed_call_count(r), N);
  CHECK_OK(reactor_clock_advance(r, 1.0));
  CHECK_EQ(nseen, N);
  int bad = -1;
  for (int i = 0; i < nseen; i++)
    if (seen[i] != i) {
      bad = i;
      break;
    }
  if (bad >= 0) printf("   first out of order at %d: got %d\n", bad, seen[bad]);
  CHECK_EQ(bad, -1);
  free(seen);
  seen = NULL;
}

static void test_mixed(reactor_t *r) {
  SECTION("mixed deadlines; reset takes a fresh FIFO place");
  int buf[16];
  seen = buf;
  nseen = 0;
  reactor_delayed_call_t *h0 = NULL;
  /* ids: 0 @2, 1 @1, 2 @1, 3 @2, 4 @0.5 */
  CHECK_OK(reactor_call_later(r, 2.0, record_cb, (void *)0, NULL, NULL));
  CHECK_OK(reactor_call_later(r, 1.0, record_cb, (void *)1, NULL, NULL));
  CHECK_OK(reactor_call_later(r, 1.0, record_cb, (void *)2, NULL, NULL));
  CHECK_OK(reactor_call_later(r, 2.0, record_cb, (void *)3, NULL, NULL));
  CHECK_OK(reactor_call_later(r, 0.5, record_cb, (void *)4, NULL, NULL));
  CHECK_OK(reactor_clock_advance(r, 5.0));
  CHECK_EQ(nseen, 5);
  int want[] = {4, 1, 2, 0, 3};
  for (int i = 0; i < 5 && i < nseen; i++) CHECK_EQ(seen[i], want[i]);

  nseen = 0;
  CHECK_OK(reactor_call_later(r, 5.0, record_cb, (void *)10, NULL, &h0));
  CHECK_OK(reactor_call_later(r, 5.0, record_cb, (void *)11, NULL, NULL));
  CHECK_OK(reactor_delayed_call_reset(h0, 5.0)); /* same deadline, now after 11 */
  CHECK_OK(reactor_call_later(r, 5.0, record_cb, (void *)12, NULL, NULL));
  CHECK_OK(reactor_clock_advance(r, 5.0));
  CHECK_EQ(nseen, 3);
  if (nseen == 3) {
    CHECK_EQ(seen[0], 11);
    CHECK_EQ(seen[1], 10);
    CHECK_EQ(seen[2], 12);
  }
  reactor_delayed_call_release(h0);
  seen = NULL;
}

/* ---- delay-0 from a timer runs after one poll ---------------------------- */

static char order[256];
static void log_event(const char *s) {
  strncat(order, s, sizeof order - strlen(order) - 1);
  strncat(order, " ", sizeof order - strlen(order) - 1);
}

static void t2_cb(reactor_t *r, void *ud) {
  (void)r;
  (void)ud;
  log_event("T2");
}

static void t1_cb(reactor_t *r, void *ud) {
  (void)ud;
  log_event("T1");
  CHECK_OK(reactor_call_later(r, 0.0, t2_cb, NULL, NULL, NULL));
}

static int reader_calls;
static void reader_cb(reactor_t *r, int fd, uint32_t events, void *ud) {
  (void)r;
  (void)ud;
  CHECK(events & REACTOR_READABLE);
  reader_calls++;
  log_event("R");
  tu_drain(fd);
}

static void test_next_pass(reactor_t *r) {
  SECTION("delay-0 call from a timer runs on the next pass, after one poll");
  int p[2];
  tu_pipe(p);
  tu_write_byte(p[1]);
  order[0] = '\0';
  CHECK_OK(reactor_add_reader(r, p[0], reader_cb, NULL, NULL));
  CHECK_OK(reactor_call_later(r, 0.0, t1_cb, NULL, NULL, NULL));
  CHECK_OK(reactor_iterate(r, 0.0));
  printf("   after iterate #1: %s\n", order);
  CHECK(strcmp(order, "T1 R ") == 0);
  CHECK_OK(reactor_iterate(r, 0.0));
  printf("   after iterate #2: %s\n", order);
  CHECK(strcmp(order, "T1 R T2 ") == 0);
  CHECK_OK(reactor_remove_reader(r, p[0]));
  tu_close_pair(p);
}

static int spin_runs;
static void spin_cb(reactor_t *r, void *ud) {
  (void)ud;
  spin_runs++;
  if (reader_calls == 0 && spin_runs < 1000)
    CHECK_OK(reactor_call_later(r, 0.0, spin_cb, NULL, NULL, NULL));
}

static void test_no_starvation(reactor_t *r) {
  SECTION("self-rescheduling delay-0 call does not starve I/O");
  int p[2];
  tu_pipe(p);
  reader_calls = 0;
  spin_runs = 0;
  CHECK_OK(reactor_add_reader(r, p[0], reader_cb, NULL, NULL));
  CHECK_OK(reactor_call_later(r, 0.0, spin_cb, NULL, NULL, NULL));
  CHECK_OK(reactor_iterate(r, 0.0));
  tu_write_byte(p[1]);
  for (int i = 0; i < 3; i++) CHECK_OK(reactor_iterate(r, 0.0));
  printf("   spin ran %d times before the reader ran\n", spin_runs);
  CHECK_EQ(reader_calls, 1);
  CHECK(spin_runs <= 5);
  CHECK_OK(reactor_remove_reader(r, p[0]));
  /* let the spinner finish (it stops rescheduling once the reader ran) */
  for (int i = 0; i < 3; i++) CHECK_OK(reactor_iterate(r, 0.0));
  CHECK_EQ(reactor_delayed_call_count(r), 0);
  tu_close_pair(p);
}

static void from_thread_timer_cb(reactor_t *r, void *ud) {
  (void)r;
  (void)ud;
  log_event("T");
}

static void schedule_from_thread_call(reactor_t *r, void *ud) {
  (void)ud;
  log_event("C");
  CHECK_OK(reactor_call_later(r, 0.0, from_thread_timer_cb, NULL, NULL, NULL));
  CHECK_OK(reactor_call_from_thread(r, tu_noop_cb, NULL, NULL)); /* a thread call: next pass */
}

static void test_timer_from_thread_call(reactor_t *r) {
  SECTION("delay-0 call scheduled by a thread call runs in the same pass");
  order[0] = '\0';
  CHECK_OK(reactor_call_from_thread(r, schedule_from_thread_call, NULL, NULL));
  CHECK_OK(reactor_iterate(r, 0.0));
  printf("   after iterate #1: %s\n", order);
  CHECK(strcmp(order, "C T ") == 0);
  CHECK_OK(reactor_iterate(r, 0.0));
  CHECK_EQ(reactor_delayed_call_count(r), 0);
}

int main(void) {
  tu_watchdog(30);
  reactor_t *r = tu_new_manual_reactor();
  tu_banner(PROG, r);
  test_fifo(r);
  test_mixed(r);
  test_next_pass(r);
  test_timer_from_thread_call(r);
  test_no_starvation(r);
  CHECK_OK(reactor_free(r));
  return tu_finish(PROG);
}
