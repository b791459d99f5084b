/* A C caller for the Swift binding's benchmarks: the C→Swift crossing measured alone. */
#ifndef REACTOR_BENCH_H
#define REACTOR_BENCH_H
#include <stdint.h>
/* Calls fn(ud) n times. */
void reactor_bench_call_n(void (*fn)(void *ud), void *ud, int64_t n);
#endif
