/*
 * test_stats.c - reactor_stats (API.md §2, §7).
 *
 * Checks:
 *   - a fresh reactor reads all zeros (struct_size echoes the caller's size);
 *   - each iterate is exactly one iteration and one poll;
 *   - timers_fired, thread_calls and callbacks move when timers / thread calls run;
 *   - timers_pending equals reactor_delayed_call_count (also after cancel and run);
 *   - fds_registered goes up with registrations and back down on removal;
 *   - counters (and idle_seconds) never decrease across a sequence of operations;
 *   - a larger caller struct: OK, the bytes past the library's layout are zeroed (reactor.h);
 *   - struct_size smaller than the first released layout -> INVALID and nothing written;
 *     NULL reactor / NULL out -> INVALID.
 */
#include <stddef.h>

#include "test_util.h"

static const char *PROG = "test_stats";

static void check_monotonic(const reactor_stats_t *a, const reactor_stats_t *b, const char *when) {
#define MONO(f)                                                                          \
  if (b->f < a->f) {                                                                     \
    fprintf(stderr, "   %s: counter %s decreased\n", when, #f);                          \
    atomic_fetch_add(&tu_failures, 1);                                                   \
  }
  MONO(iterations)
  MONO(polls)
  MONO(wakeups)
  MONO(callbacks)
  MONO(timers_fired)
  MONO(thread_calls)
  MONO(backend_ctl_calls)
  MONO(idle_seconds)
#undef MONO
}

static void fd_noop(reactor_t *r, int fd, uint32_t ev, void *ud) {
  (void)r;
  (void)fd;
  (void)ev;
  (void)ud;
}

int main(void) {
  tu_watchdog(30);
  reactor_t *r = tu_new_reactor();
  tu_banner(PROG, r);

  SECTION("fresh reactor: all zeros");
  reactor_stats_t s0;
  memset(&s0, 0xAB, sizeof s0);
  s0.struct_size = sizeof s0;
  CHECK_OK(reactor_stats(r, &s0));
  CHECK_EQ(s0.struct_size, sizeof s0);
  CHECK_EQ(s0.iterations, 0);
  CHECK_EQ(s0.polls, 0);
  CHECK_EQ(s0.wakeups, 0);
  CHECK_EQ(s0.callbacks, 0);
  CHECK_EQ(s0.timers_fired, 0);
  CHECK_EQ(s0.thread_calls, 0);
  CHECK_EQ(s0.fds_registered, 0);
  CHECK_EQ(s0.timers_pending, 0);
  CHECK_EQ(s0.backend_ctl_calls, 0);
  CHECK(s0.idle_seconds == 0.0);

  SECTION("each iterate is one iteration and one poll");
  reactor_stats_t prev = s0, cur;
  for (int i = 0; i < 5; i++) CHECK_OK(reactor_iterate(r, 0.0));
  cur = tu_stats(r);
  CHECK_EQ(cur.iterations - prev.iterations, 5);
  CHECK_EQ(cur.polls - prev.polls, 5);
  check_monotonic(&prev, &cur, "after 5 iterates");
  prev = cur;

  SECTION("timers: timers_fired, callbacks, timers_pending == delayed_call_count");
  atomic_int ran = 0;
  reactor_delayed_call_t *c = NULL;
  CHECK_OK(reactor_call_later(r, 0.0, tu_count_cb, &ran, NULL, NULL));
  CHECK_OK(reactor_call_later(r, 0.0, tu_count_cb, &ran, NULL, NULL));
  CHECK_OK(reactor_call_later(r, 100.0, tu_count_cb, &ran, NULL, &c));
  CHECK_OK(reactor_call_later(r, 200.0, tu_count_cb, &ran, NULL, NULL));
  cur = tu_stats(r);
  CHECK_EQ(cur.timers_pending, reactor_delayed_call_count(r));
  CHECK_EQ(cur.timers_pending, 4);
  CHECK_OK(reactor_delayed_call_cancel(c));
  reactor_delayed_call_release(c);
  cur = tu_stats(r);
  CHECK_EQ(cur.timers_pending, reactor_delayed_call_count(r));
  CHECK_EQ(cur.timers_pending, 3);
  check_monotonic(&prev, &cur, "after scheduling");
  prev = cur;
  CHECK_OK(reactor_iterate(r, 0.0));
  CHECK_EQ(atomic_load(&ran), 2);
  cur = tu_stats(r);
  CHECK_EQ(cur.timers_fired - prev.timers_fired, 2);
  CHECK(cur.callbacks - prev.callbacks >= 2);
  CHECK_EQ(cur.iterations - prev.iterations, 1);
  CHECK_EQ(cur.polls - prev.polls, 1);
  CHECK_EQ(cur.timers_pending, reactor_delayed_call_count(r));
  CHECK_EQ(cur.timers_pending, 1);
  check_monotonic(&prev, &cur, "after timers ran");
  prev = cur;

  SECTION("thread calls: thread_calls, callbacks");
  CHECK_OK(reactor_call_from_thread(r, tu_count_cb, &ran, NULL));
  CHECK_OK(reactor_call_from_thread(r, tu_count_cb, &ran, NULL));
  CHECK_OK(reactor_call_from_thread(r, tu_count_cb, &ran, NULL));
  CHECK_OK(reactor_iterate(r, 0.0));
  CHECK_EQ(atomic_load(&ran), 5);
  cur = tu_stats(r);
  CHECK_EQ(cur.thread_calls - prev.thread_calls, 3);
  CHECK(cur.callbacks - prev.callbacks >= 3);
  check_monotonic(&prev, &cur, "after thread calls");
  prev = cur;

  SECTION("fds_registered");
  int p[2];
  tu_pipe(p);
  uint64_t base = prev.fds_registered;
  CHECK_OK(reactor_add_reader(r, p[0], fd_noop, NULL, NULL));
  CHECK_OK(reactor_add_writer(r, p[1], fd_noop, NULL, NULL));
  cur = tu_stats(r);
  CHECK_EQ(cur.fds_registered, base + 2);
  CHECK_OK(reactor_iterate(r, 0.0)); /* the writer fires */
  cur = tu_stats(r);
  CHECK(cur.callbacks - prev.callbacks >= 1);
  check_monotonic(&prev, &cur, "after fd registration");
  prev = cur;
  CHECK_OK(reactor_remove_reader(r, p[0]));
  CHECK_OK(reactor_remove_writer(r, p[1]));
  cur = tu_stats(r);
  CHECK_EQ(cur.fds_registered, base);
  check_monotonic(&prev, &cur, "after fd removal");
  prev = cur;
  tu_close_pair(p);

  SECTION("idle time accumulates while blocked, never decreases");
  CHECK_OK(reactor_iterate(r, 0.05));
  cur = tu_stats(r);
  CHECK(cur.idle_seconds >= prev.idle_seconds);
  CHECK(cur.idle_seconds < 60.0);
  check_monotonic(&prev, &cur, "after blocking iterate");
  prev = cur;

  SECTION("larger caller struct: unknown tail must be zero (else UNSUPPORTED, nothing written)");
  struct {
    reactor_stats_t s;
    unsigned char tail[24];
  } big;
  memset(&big, 0xAB, sizeof big);
  big.s.struct_size = (uint32_t)sizeof big;
  CHECK_RC(reactor_stats(r, &big.s), REACTOR_E_UNSUPPORTED);
  CHECK_EQ(big.s.iterations, 0xABABABABABABABABULL); /* nothing written */
  CHECK_EQ(big.tail[0], 0xAB);
  memset(&big, 0, sizeof big);
  big.s.struct_size = (uint32_t)sizeof big;
  CHECK_OK(reactor_stats(r, &big.s));
  CHECK_EQ(big.s.struct_size, sizeof big);
  CHECK_EQ(big.s.iterations, tu_stats(r).iterations);
  int tail_zero = 1;
  for (size_t i = 0; i < sizeof big.tail; i++)
    if (big.tail[i] != 0) tail_zero = 0;
  CHECK(tail_zero);

  SECTION("struct_size too small -> INVALID, nothing written; NULL -> INVALID");
  reactor_stats_t small;
  memset(&small, 0xAB, sizeof small);
  uint32_t sizes[] = {0, 4, (uint32_t)offsetof(reactor_stats_t, idle_seconds)};
  for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
    small.struct_size = sizes[i];
    CHECK_RC(reactor_stats(r, &small), REACTOR_E_INVALID);
    CHECK(small.iterations == 0xABABABABABABABABULL);
  }
  CHECK_RC(reactor_stats(r, NULL), REACTOR_E_INVALID);
  CHECK_RC(reactor_stats(NULL, &cur), REACTOR_E_INVALID);

  CHECK_OK(reactor_free(r));
  return tu_finish(PROG);
}
