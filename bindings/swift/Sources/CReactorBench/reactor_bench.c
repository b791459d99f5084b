#include "reactor_bench.h"

void reactor_bench_call_n(void (*fn)(void *ud), void *ud, int64_t n) {
    for (int64_t i = 0; i < n; i++) fn(ud);
}
