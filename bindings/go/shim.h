/* C shims between the Go package and libreactor (definitions in shim.c).
 *
 * Go passes every callback's runtime/cgo.Handle as a uintptr_t; the shims turn it into the library's
 * void *user_data and pair it with the exported Go trampolines (exports.go) and the release hook that
 * deletes the handle. Converting a uintptr to a pointer on the Go side would trip go vet. */
#ifndef GOREACTOR_SHIM_H
#define GOREACTOR_SHIM_H

#include <stdint.h>
#include <reactor.h>

void goreactor_set_log(reactor_t *r, uintptr_t h);
int goreactor_call_when_running(reactor_t *r, uintptr_t h);
int goreactor_call_later(reactor_t *r, double delay, uintptr_t h, reactor_delayed_call_t **out,
                         double *when);
int goreactor_delayed_call_reset(reactor_delayed_call_t *c, double seconds, double *when);
int goreactor_delayed_call_delay(reactor_delayed_call_t *c, double seconds, double *when);
int goreactor_call_from_thread(reactor_t *r, uintptr_t h);
int goreactor_add_trigger(reactor_t *r, int phase, const char *event, uintptr_t h, uint64_t *out);
int goreactor_add_reader(reactor_t *r, int fd, uintptr_t h);
int goreactor_add_writer(reactor_t *r, int fd, uintptr_t h);
uintptr_t goreactor_thread_self(void);

int goreactor_call_in_thread(reactor_t *r, uintptr_t h);
int goreactor_call_in_thread_with_callback(reactor_t *r, uintptr_t h);
int goreactor_threadpool_submit(reactor_threadpool_t *p, uintptr_t h);
void goreactor_bench_callbacks(uintptr_t h, int n);

#endif
