/*
 * timers.c — delayed calls and their handles (Twisted's IDelayedCall in C).
 *
 * Part 1 uses a manual clock (reactor_options_t.manual_clock = 1): time moves only when
 * reactor_clock_advance is called, so the output is the same on every run. It shows
 * reactor_call_later with and without a handle, cancel, reset, delay, active, get_time, the errors a
 * handle reports once its call is cancelled or has run, FIFO order for equal deadlines, and when the
 * library runs a call's release function.
 *
 * Part 2 uses the real (monotonic) clock with reactor_run: a timeout that heartbeats keep pushing
 * back with reset, Twisted's idiom for idle timeouts.
 */
#define _POSIX_C_SOURCE 200809L

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <reactor.h>

#define CHECK(call)                                                                       \
    do {                                                                                  \
        int check_rc_ = (call);                                                           \
        if (check_rc_ != REACTOR_OK) {                                                    \
            fprintf(stderr, "timers: %s failed: %s (%d)\n", #call,                        \
                    reactor_strerror(check_rc_), check_rc_);                              \
            exit(1);                                                                      \
        }                                                                                 \
    } while (0)

/* Expect a specific status (used to show the errors a handle reports). */
#define EXPECT(call, want)                                                                \
    do {                                                                                  \
        int expect_rc_ = (call);                                                          \
        printf("  %-46s -> %s\n", #call, reactor_strerror(expect_rc_));                   \
        if (expect_rc_ != (want)) {                                                       \
            fprintf(stderr, "timers: %s returned %d, expected %s\n", #call, expect_rc_, #want); \
            exit(1);                                                                      \
        }                                                                                 \
    } while (0)

/* ---- part 1: manual clock ---------------------------------------------------------------------- */

static char fired_order[16];   /* labels of the calls that ran, in order */
static int releases;           /* release functions run so far */

/* Each call's user data is a heap copy of its label. The library owns it from the moment
 * reactor_call_later returns REACTOR_OK and calls release_label exactly once: after the callback
 * ran, when the call is cancelled, or when the reactor is freed. */
static void release_label(void *ud) {
    char *label = ud;
    printf("  (release: \"%s\")\n", label);
    releases++;
    free(label);
}

static void fired(reactor_t *r, void *ud) {
    const char *label = ud;
    printf("  t=%.1f: %s fired\n", reactor_seconds(r), label);
    size_t n = strlen(fired_order);
    if (n + 1 < sizeof fired_order) fired_order[n] = label[0];
}

static char *label(const char *s) {
    char *copy = malloc(strlen(s) + 1);
    if (copy == NULL) exit(1);
    return strcpy(copy, s);
}

static reactor_delayed_call_t *schedule(reactor_t *r, double delay, const char *name, int want_handle) {
    reactor_delayed_call_t *handle = NULL;
    char *ud = label(name);
    int rc = reactor_call_later(r, delay, fired, ud, release_label, want_handle ? &handle : NULL);
    if (rc != REACTOR_OK) {
        free(ud);   /* not accepted: ownership stayed with us */
        fprintf(stderr, "timers: call_later: %s\n", reactor_strerror(rc));
        exit(1);
    }
    printf("  call_later(%.1f, \"%s\")%s\n", delay, name, want_handle ? "" : "   (no handle kept)");
    return handle;
}

static void manual_clock_tour(void) {
    printf("part 1: manual clock\n");
    reactor_options_t opts;
    reactor_options_init(&opts);
    opts.manual_clock = 1;
    reactor_t *r;
    CHECK(reactor_new(&opts, &r));
    printf("  clock starts at %.1f\n", reactor_seconds(r));

    reactor_delayed_call_t *a = schedule(r, 1.0, "A", 1);
    reactor_delayed_call_t *b = schedule(r, 2.0, "B", 1);
    reactor_delayed_call_t *c = schedule(r, 3.0, "C", 1);
    schedule(r, 4.0, "D", 0);
    printf("  pending: %zu\n", reactor_delayed_call_count(r));

    printf("cancel B; a second cancel is an error:\n");
    CHECK(reactor_delayed_call_cancel(b));
    EXPECT(reactor_delayed_call_cancel(b), REACTOR_E_ALREADY_CANCELLED);
    printf("  B active=%d\n", reactor_delayed_call_active(b));

    printf("reset A to 5.0 s from now, delay C by 2.0 s:\n");
    CHECK(reactor_delayed_call_reset(a, 5.0));
    CHECK(reactor_delayed_call_delay(c, 2.0));
    printf("  A at %.1f, C at %.1f, pending: %zu\n", reactor_delayed_call_get_time(a),
           reactor_delayed_call_get_time(c), reactor_delayed_call_count(r));

    printf("advance 1.0 (t=1: nothing is due any more):\n");
    CHECK(reactor_clock_advance(r, 1.0));
    printf("advance 3.0 (t=4: D):\n");
    CHECK(reactor_clock_advance(r, 3.0));
    printf("advance 1.0 (t=5: A and C share a deadline and run in the order they were rescheduled):\n");
    CHECK(reactor_clock_advance(r, 1.0));

    printf("a handle stays valid after its call ran, and reports it:\n");
    printf("  A active=%d, pending: %zu\n", reactor_delayed_call_active(a),
           reactor_delayed_call_count(r));
    EXPECT(reactor_delayed_call_reset(a, 1.0), REACTOR_E_ALREADY_CALLED);
    EXPECT(reactor_delayed_call_cancel(c), REACTOR_E_ALREADY_CALLED);

    /* Handles are the caller's until released (any thread may release them). */
    reactor_delayed_call_release(a);
    reactor_delayed_call_release(b);
    reactor_delayed_call_release(c);
    CHECK(reactor_free(r));

    printf("  order: %s, releases: %d\n", fired_order, releases);
    if (strcmp(fired_order, "DAC") != 0 || releases != 4) {
        fprintf(stderr, "timers: expected order DAC and 4 releases\n");
        exit(1);
    }
}

/* ---- part 2: real clock, a timeout pushed back by heartbeats ------------------------------------ */

#define HEARTBEATS 3
#define HEARTBEAT_S 0.03
#define TIMEOUT_S 0.1

struct watchdog {
    reactor_delayed_call_t *timeout;
    int beats;
    int timed_out;
    double started;
};

static void on_timeout(reactor_t *r, void *ud) {
    struct watchdog *w = ud;
    w->timed_out = 1;
    printf("  timeout after %d heartbeats, %.0f ms after start: reactor_stop()\n", w->beats,
           (reactor_seconds(r) - w->started) * 1e3);
    CHECK(reactor_stop(r));
}

static void on_heartbeat(reactor_t *r, void *ud) {
    struct watchdog *w = ud;
    w->beats++;
    printf("  heartbeat %d at %3.0f ms: reset the timeout to %.0f ms from now\n", w->beats,
           (reactor_seconds(r) - w->started) * 1e3, TIMEOUT_S * 1e3);
    CHECK(reactor_delayed_call_reset(w->timeout, TIMEOUT_S));
    if (w->beats < HEARTBEATS) CHECK(reactor_call_later(r, HEARTBEAT_S, on_heartbeat, w, NULL, NULL));
}

static void real_clock_watchdog(void) {
    printf("part 2: real clock\n");
    reactor_t *r;
    CHECK(reactor_new(NULL, &r));
    struct watchdog w = {.started = reactor_seconds(r)};
    CHECK(reactor_call_later(r, TIMEOUT_S, on_timeout, &w, NULL, &w.timeout));
    CHECK(reactor_call_later(r, HEARTBEAT_S, on_heartbeat, &w, NULL, NULL));
    CHECK(reactor_run(r));
    reactor_delayed_call_release(w.timeout);
    CHECK(reactor_free(r));
    if (!w.timed_out || w.beats != HEARTBEATS) {
        fprintf(stderr, "timers: expected the timeout after %d heartbeats\n", HEARTBEATS);
        exit(1);
    }
}

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    manual_clock_tour();
    real_clock_watchdog();
    return 0;
}
