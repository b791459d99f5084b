/*
 * demo.c — a short tour of libreactor from C.
 *
 *   make demo        (or: cc demo.c $(pkg-config --cflags --libs reactor) -pthread)
 *
 * What happens, in order:
 *   - a reactor is created; its version and poller backend are printed
 *   - call_when_running announces that the loop is up
 *   - a repeating timer (call_later, re-armed from its own callback) writes "tick N" into a pipe
 *   - a reader registered on the pipe's read end prints what arrives
 *   - a worker pthread hands messages to the reactor thread with reactor_call_from_thread
 *   - once all ticks and messages are in, the demo calls reactor_stop; a BEFORE-shutdown trigger
 *     holds the shutdown (returns REACTOR_PENDING) and completes it 100 ms later from a timer,
 *     the way a server drains its connections; then the DURING and AFTER triggers run
 *   - reactor_run returns, everything is closed and freed, exit status 0
 */
#define _POSIX_C_SOURCE 200809L

#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <reactor.h>

#define TICKS 3          /* the repeating timer fires this many times */
#define TICK_SECONDS 0.1
#define THREAD_CALLS 3   /* messages from the worker thread */
#define DRAIN_SECONDS 0.1

/* Abort the demo with a readable message when a call does not return REACTOR_OK. */
#define CHECK(call)                                                                           \
    do {                                                                                      \
        int check_rc_ = (call);                                                               \
        if (check_rc_ != REACTOR_OK) {                                                        \
            fprintf(stderr, "demo: %s failed: %s (%d)\n", #call, reactor_strerror(check_rc_), \
                    check_rc_);                                                               \
            exit(1);                                                                          \
        }                                                                                     \
    } while (0)

struct demo {
    reactor_t *r;
    int pipe_rd, pipe_wr;
    int ticks;          /* timer callbacks so far */
    int thread_calls;   /* worker messages received so far */
    int stopping;       /* reactor_stop was called */
    uint64_t drain_id;  /* id of the BEFORE-shutdown trigger we hold */
};

/* A message from the worker thread. The reactor owns it once call_from_thread returned REACTOR_OK,
 * and frees it with the release function (free) after the callback ran. */
struct message {
    struct demo *d;
    char text[64];
};

static struct timespec t0;

static void say(const char *fmt, ...) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    double ms = (double)(now.tv_sec - t0.tv_sec) * 1e3 + (double)(now.tv_nsec - t0.tv_nsec) / 1e6;
    char line[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    printf("[%6.1f ms] %s\n", ms, line);
}

static void maybe_stop(struct demo *d) {
    if (d->stopping || d->ticks < TICKS || d->thread_calls < THREAD_CALLS) return;
    d->stopping = 1;
    say("all ticks and messages are in: reactor_stop()");
    CHECK(reactor_stop(d->r));
}

/* ---- call_when_running ------------------------------------------------------------------------ */

static void on_running(reactor_t *r, void *ud) {
    (void)ud;
    say("call_when_running: the reactor is running (is_running=%d)", reactor_is_running(r));
}

/* ---- the repeating timer and the pipe reader -------------------------------------------------- */

static void on_tick(reactor_t *r, void *ud) {
    struct demo *d = ud;
    d->ticks++;
    char msg[32];
    int n = snprintf(msg, sizeof msg, "tick %d", d->ticks);
    say("timer: tick %d of %d, writing \"%s\" into the pipe", d->ticks, TICKS, msg);
    if (write(d->pipe_wr, msg, (size_t)n) != n) {
        perror("demo: write");
        exit(1);
    }
    if (d->ticks < TICKS) CHECK(reactor_call_later(r, TICK_SECONDS, on_tick, d, NULL, NULL));
    maybe_stop(d);
}

static void on_pipe_readable(reactor_t *r, int fd, uint32_t events, void *ud) {
    (void)ud;
    if (events & REACTOR_SHUTDOWN) {
        /* Every registration still present at shutdown gets one REACTOR_SHUTDOWN call. */
        say("reader: REACTOR_SHUTDOWN (the reactor removes the reader now)");
        return;
    }
    char buf[128];
    ssize_t n = read(fd, buf, sizeof buf);
    if (n > 0) {
        say("reader: %zd bytes from the pipe: \"%.*s\"", n, (int)n, buf);
    } else if (n == 0) {
        say("reader: end of file, removing the reader");
        CHECK(reactor_remove_reader(r, fd));
    }
}

/* ---- the worker thread ------------------------------------------------------------------------ */

static void on_message(reactor_t *r, void *ud) {
    struct message *m = ud;   /* freed by the library (release = free) after this returns */
    m->d->thread_calls++;
    say("reactor thread got: \"%s\" (is_in_io_thread=%d)", m->text, reactor_is_in_io_thread(r));
    maybe_stop(m->d);
}

static void *worker(void *arg) {
    struct demo *d = arg;
    for (int i = 1; i <= THREAD_CALLS; i++) {
        struct timespec pause = {0, 70 * 1000 * 1000};
        nanosleep(&pause, NULL);
        struct message *m = malloc(sizeof *m);
        if (m == NULL) return NULL;
        m->d = d;
        snprintf(m->text, sizeof m->text, "hello #%d from the worker thread", i);
        say("worker: reactor_call_from_thread #%d (is_in_io_thread=%d)", i,
            reactor_is_in_io_thread(d->r));
        int rc = reactor_call_from_thread(d->r, on_message, m, free);
        if (rc != REACTOR_OK) {
            /* Not accepted: the message is still ours. */
            fprintf(stderr, "demo: call_from_thread: %s\n", reactor_strerror(rc));
            free(m);
        }
    }
    return NULL;
}

/* ---- shutdown triggers ------------------------------------------------------------------------ */

static void finish_drain(reactor_t *r, void *ud) {
    struct demo *d = ud;
    say("drain finished: reactor_trigger_complete(%" PRIu64 ")", d->drain_id);
    CHECK(reactor_trigger_complete(r, d->drain_id));
}

static int before_shutdown(reactor_t *r, uint64_t trigger_id, void *ud) {
    struct demo *d = ud;
    d->drain_id = trigger_id;
    say("shutdown BEFORE trigger: draining for %.0f ms, returning REACTOR_PENDING", DRAIN_SECONDS * 1e3);
    /* Timers, I/O and thread calls keep running while the shutdown is held. */
    CHECK(reactor_call_later(r, DRAIN_SECONDS, finish_drain, d, NULL, NULL));
    return REACTOR_PENDING;
}

static int during_shutdown(reactor_t *r, uint64_t trigger_id, void *ud) {
    (void)trigger_id;
    (void)ud;
    say("shutdown DURING trigger (is_running=%d)", reactor_is_running(r));
    return REACTOR_OK;
}

static int after_shutdown(reactor_t *r, uint64_t trigger_id, void *ud) {
    (void)r;
    (void)trigger_id;
    (void)ud;
    say("shutdown AFTER trigger: reactor_run is about to return");
    return REACTOR_OK;
}

/* ---- main ------------------------------------------------------------------------------------- */

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    clock_gettime(CLOCK_MONOTONIC, &t0);

    struct demo d = {0};
    CHECK(reactor_new(NULL, &d.r));   /* NULL options = defaults; REACTOR_BACKEND=poll overrides */
    say("libreactor %s (header %d.%d.%d), backend \"%s\"", reactor_version_string(),
        REACTOR_VERSION_MAJOR, REACTOR_VERSION_MINOR, REACTOR_VERSION_PATCH,
        reactor_backend_name(d.r));

    int fds[2];
    if (pipe(fds) != 0) {
        perror("demo: pipe");
        return 1;
    }
    d.pipe_rd = fds[0];
    d.pipe_wr = fds[1];
    fcntl(d.pipe_rd, F_SETFL, fcntl(d.pipe_rd, F_GETFL) | O_NONBLOCK);

    /* user_data here is &d, which outlives the reactor, so no release function is needed. */
    CHECK(reactor_add_reader(d.r, d.pipe_rd, on_pipe_readable, &d, NULL));
    CHECK(reactor_call_later(d.r, TICK_SECONDS, on_tick, &d, NULL, NULL));
    CHECK(reactor_call_when_running(d.r, on_running, &d, NULL));
    CHECK(reactor_add_system_event_trigger(d.r, REACTOR_PHASE_BEFORE, "shutdown", before_shutdown,
                                           &d, NULL, NULL));
    CHECK(reactor_add_system_event_trigger(d.r, REACTOR_PHASE_DURING, "shutdown", during_shutdown,
                                           &d, NULL, NULL));
    CHECK(reactor_add_system_event_trigger(d.r, REACTOR_PHASE_AFTER, "shutdown", after_shutdown,
                                           &d, NULL, NULL));

    pthread_t thread;
    if (pthread_create(&thread, NULL, worker, &d) != 0) {
        fprintf(stderr, "demo: pthread_create failed\n");
        return 1;
    }

    say("reactor_run()");
    CHECK(reactor_run(d.r));
    say("reactor_run() returned");

    pthread_join(thread, NULL);

    reactor_stats_t st;
    memset(&st, 0, sizeof st);
    st.struct_size = sizeof st;
    CHECK(reactor_stats(d.r, &st));
    say("stats: %" PRIu64 " iterations, %" PRIu64 " callbacks, %" PRIu64 " timers fired, %" PRIu64
        " thread calls, %" PRIu64 " wake-ups, %.3f s idle",
        st.iterations, st.callbacks, st.timers_fired, st.thread_calls, st.wakeups, st.idle_seconds);

    close(d.pipe_rd);
    close(d.pipe_wr);
    CHECK(reactor_free(d.r));
    say("done");
    return 0;
}
