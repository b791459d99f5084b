/*
 * embed_in_poll_loop.c — a host with its own poll() loop that drives libreactor (libuv-style
 * embedding). The host never calls reactor_run. Each turn of its loop it:
 *
 *   1. asks reactor_backend_timeout_ms(r) how long it may sleep (-1: no timer pending, 0: work ready)
 *   2. polls its own fds together with reactor_backend_fd(r), which becomes readable when the reactor
 *      has I/O ready or another thread called reactor_call_from_thread / reactor_wake_up
 *   3. calls reactor_iterate(r, 0): one non-blocking pass (due timers, thread calls, ready I/O)
 *
 * On the poll backend reactor_backend_fd(r) is -1: there is no fd to watch, so the host bounds its
 * sleep (HOST_TICK_MS) to notice thread calls, and otherwise relies on the timeout alone.
 *
 * A timer and a call_from_thread from a pthread both arrive through the reactor, while the same
 * pthread also writes to a pipe the host watches itself. Exit status 0 when all three arrived.
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <reactor.h>

#define HOST_TICK_MS 10     /* bound on the host's sleep when the reactor has no pollable fd */
#define GIVE_UP_SECONDS 10  /* the example fails instead of hanging if something never arrives */

#define CHECK(call)                                                                       \
    do {                                                                                  \
        int check_rc_ = (call);                                                           \
        if (check_rc_ != REACTOR_OK) {                                                    \
            fprintf(stderr, "embed: %s failed: %s (%d)\n", #call,                         \
                    reactor_strerror(check_rc_), check_rc_);                              \
            exit(1);                                                                      \
        }                                                                                 \
    } while (0)

struct host {
    reactor_t *r;
    int host_pipe[2];   /* the host's own event source, not known to the reactor */
    int timer_fired;
    int thread_call_arrived;
    int host_msgs;
};

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double t0;

static void say(const char *fmt, ...) {
    char line[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    printf("[%6.1f ms] %s\n", (now_s() - t0) * 1e3, line);
}

static void on_timer(reactor_t *r, void *ud) {
    (void)r;
    struct host *h = ud;
    h->timer_fired = 1;
    say("reactor: timer fired");
}

static void on_thread_call(reactor_t *r, void *ud) {
    struct host *h = ud;
    h->thread_call_arrived = 1;
    say("reactor: call_from_thread arrived (is_in_io_thread=%d)", reactor_is_in_io_thread(r));
}

static void *worker(void *arg) {
    struct host *h = arg;
    struct timespec pause = {0, 120 * 1000 * 1000};

    nanosleep(&pause, NULL);
    say("worker: writing to the host's own pipe");
    if (write(h->host_pipe[1], "x", 1) != 1) perror("embed: write");

    nanosleep(&pause, NULL);
    say("worker: reactor_call_from_thread");
    int rc = reactor_call_from_thread(h->r, on_thread_call, h, NULL);
    if (rc != REACTOR_OK) fprintf(stderr, "embed: call_from_thread: %s\n", reactor_strerror(rc));
    return NULL;
}

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    t0 = now_s();

    struct host h;
    memset(&h, 0, sizeof h);
    CHECK(reactor_new(NULL, &h.r));
    if (pipe(h.host_pipe) != 0) {
        perror("embed: pipe");
        return 1;
    }

    int reactor_fd = reactor_backend_fd(h.r);
    say("backend \"%s\", reactor_backend_fd = %d%s", reactor_backend_name(h.r), reactor_fd,
        reactor_fd < 0 ? " (not pollable: the host bounds its sleep instead)" : "");

    CHECK(reactor_call_later(h.r, 0.05, on_timer, &h, NULL, NULL));

    pthread_t thread;
    if (pthread_create(&thread, NULL, worker, &h) != 0) {
        fprintf(stderr, "embed: pthread_create failed\n");
        return 1;
    }

    unsigned turns = 0, reactor_fd_wakeups = 0;
    while (!(h.timer_fired && h.thread_call_arrived && h.host_msgs)) {
        /* 1. how long may the host sleep? */
        int timeout = reactor_backend_timeout_ms(h.r);
        if (reactor_fd < 0 && (timeout < 0 || timeout > HOST_TICK_MS)) timeout = HOST_TICK_MS;

        /* 2. wait for the host's fds and the reactor's fd */
        struct pollfd pfds[2];
        nfds_t nfds = 0;
        pfds[nfds++] = (struct pollfd){.fd = h.host_pipe[0], .events = POLLIN};
        if (reactor_fd >= 0) pfds[nfds++] = (struct pollfd){.fd = reactor_fd, .events = POLLIN};
        int n = poll(pfds, nfds, timeout);
        if (n < 0 && errno != EINTR) {
            perror("embed: poll");
            return 1;
        }
        turns++;

        if (n > 0 && (pfds[0].revents & POLLIN)) {
            char buf[16];
            ssize_t got = read(h.host_pipe[0], buf, sizeof buf);
            if (got > 0) {
                h.host_msgs++;
                say("host: its own pipe is readable (%zd byte)", got);
            }
        }
        if (n > 0 && reactor_fd >= 0 && pfds[1].revents) reactor_fd_wakeups++;

        /* 3. let the reactor dispatch whatever is ready, without blocking */
        CHECK(reactor_iterate(h.r, 0));

        if (now_s() - t0 > GIVE_UP_SECONDS) {
            fprintf(stderr, "embed: gave up after %d s (timer=%d thread_call=%d host=%d)\n",
                    GIVE_UP_SECONDS, h.timer_fired, h.thread_call_arrived, h.host_msgs);
            return 1;
        }
    }
    say("done: %u host loop turns, %u of them woken by the reactor's fd", turns, reactor_fd_wakeups);

    pthread_join(thread, NULL);
    CHECK(reactor_free(h.r));
    close(h.host_pipe[0]);
    close(h.host_pipe[1]);
    return 0;
}
