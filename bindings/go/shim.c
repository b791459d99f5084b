/* See shim.h. Compiled by cgo as part of the package. */
#include <pthread.h>
#include "shim.h"

/* The exported Go trampolines (exports.go); prototypes as cgo writes them into _cgo_export.h. */
extern void goReactorRelease(void *ud);
extern void goReactorCallback(reactor_t *r, void *ud);
extern void goReactorFd(reactor_t *r, int fd, uint32_t events, void *ud);
extern int goReactorTrigger(reactor_t *r, uint64_t id, void *ud);
extern void goReactorLog(void *ud, int level, char *msg);
extern void goReactorTimer(reactor_t *r, void *ud);
extern void goReactorTimerRelease(void *ud);
extern void goReactorWork(void *ud);
extern void goReactorWorkResult(void *ud);
extern void goReactorDone(reactor_t *r, void *ud);

static void log_shim(void *ud, int level, const char *msg) { goReactorLog(ud, level, (char *)msg); }

static int trigger_shim(reactor_t *r, uint64_t id, void *ud) { return goReactorTrigger(r, id, ud); }

void goreactor_set_log(reactor_t *r, uintptr_t h) { reactor_set_log_fn(r, log_shim, (void *)h); }

int goreactor_call_when_running(reactor_t *r, uintptr_t h) {
    return reactor_call_when_running(r, goReactorCallback, (void *)h, goReactorRelease);
}

/* Schedules a timer and writes the time it is scheduled for to *when (one crossing instead of two). */
int goreactor_call_later(reactor_t *r, double delay, uintptr_t h, reactor_delayed_call_t **out,
                         double *when) {
    int rc = reactor_call_later(r, delay, goReactorTimer, (void *)h, goReactorTimerRelease, out);
    if (rc == REACTOR_OK)
        *when = reactor_delayed_call_get_time(*out);
    return rc;
}

int goreactor_delayed_call_reset(reactor_delayed_call_t *c, double seconds, double *when) {
    int rc = reactor_delayed_call_reset(c, seconds);
    if (rc == REACTOR_OK)
        *when = reactor_delayed_call_get_time(c);
    return rc;
}

int goreactor_delayed_call_delay(reactor_delayed_call_t *c, double seconds, double *when) {
    int rc = reactor_delayed_call_delay(c, seconds);
    if (rc == REACTOR_OK)
        *when = reactor_delayed_call_get_time(c);
    return rc;
}

int goreactor_call_from_thread(reactor_t *r, uintptr_t h) {
    return reactor_call_from_thread(r, goReactorCallback, (void *)h, goReactorRelease);
}

int goreactor_add_trigger(reactor_t *r, int phase, const char *event, uintptr_t h, uint64_t *out) {
    return reactor_add_system_event_trigger(r, phase, event, trigger_shim, (void *)h, goReactorRelease,
                                            out);
}

int goreactor_add_reader(reactor_t *r, int fd, uintptr_t h) {
    return reactor_add_reader(r, fd, goReactorFd, (void *)h, goReactorRelease);
}

int goreactor_add_writer(reactor_t *r, int fd, uintptr_t h) {
    return reactor_add_writer(r, fd, goReactorFd, (void *)h, goReactorRelease);
}

uintptr_t goreactor_thread_self(void) { return (uintptr_t)pthread_self(); }

/* Benchmark support: n C→Go calls of the callback trampoline with the same handle. */
void goreactor_bench_callbacks(uintptr_t h, int n) {
    for (int i = 0; i < n; i++)
        goReactorCallback(NULL, (void *)h);
}

/* Thread pool. The work-with-result job keeps its result on the Go side (in the job's handle value),
 * so the C result pointer is always NULL. */
static void *work_result_shim(void *ud) {
    goReactorWorkResult(ud);
    return NULL;
}

static void done_shim(reactor_t *r, void *result, void *ud) {
    (void)result;
    goReactorDone(r, ud);
}

int goreactor_call_in_thread(reactor_t *r, uintptr_t h) {
    return reactor_call_in_thread(r, goReactorWork, (void *)h, goReactorRelease);
}

int goreactor_call_in_thread_with_callback(reactor_t *r, uintptr_t h) {
    return reactor_call_in_thread_with_callback(r, work_result_shim, done_shim, (void *)h,
                                                goReactorRelease);
}

int goreactor_threadpool_submit(reactor_threadpool_t *p, uintptr_t h) {
    return reactor_threadpool_submit(p, goReactorWork, (void *)h, goReactorRelease);
}
