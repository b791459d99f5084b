/* Shared part of the queuework benchmarks (bench_queuework_reactor.c, bench_queuework_libuv.c):
 * thread-pool jobs with a completion callback on the loop thread (libuv's uv_queue_work,
 * libreactor's reactor_call_in_thread_with_callback).
 *
 *   bench_queuework_<lib> <shape> [n=N] [window=W] [threads=T] [timeout=S]
 *
 * Shapes (the job is trivial: it returns its argument + 1; the completion checks it):
 *   queuework         n jobs (default 1 000 000) all queued up front from the loop thread
 *   queuework_window  n jobs (default 1 000 000), `window` (default 64) in flight: each
 *                     completion queues the next job
 *   queuework_serial  n jobs (default 100 000), one in flight: serial round trips
 * Both pools have `threads` workers (default 4: libuv's default pool, UV_THREADPOOL_SIZE=4).
 *
 * Output, parsed by bench/run.py:
 *   RESULT shape=<shape> lib=<lib> metric=rate value=<jobs per second, first submit to last completion>
 *   RESULT ... metric=cpu_per_job value=<process CPU microseconds per job>
 *   RESULT ... metric=failures value=<completions with a wrong result or on the wrong thread>
 *   RESULT ... metric=missing value=<jobs whose completion never ran>  (only if nonzero)
 */
#ifndef QUEUEWORK_COMMON_H
#define QUEUEWORK_COMMON_H

#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "bench_util.h"

/* ---- shared state (loop thread only, except qw_work) ---- */

static size_t qw_n;           /* jobs in total */
static size_t qw_window;      /* jobs in flight (0 = all queued up front) */
static int qw_threads;        /* pool size */
static size_t qw_submitted;   /* jobs queued so far */
static size_t qw_completed;   /* completions seen */
static size_t qw_failures;    /* bad result or wrong thread */
static uint64_t qw_t0, qw_t1, qw_c0, qw_c1;
static pthread_t qw_loop_thread;

/* The job: trivial, returns its argument + 1. */
static inline uintptr_t qw_work(uintptr_t arg) { return arg + 1; }

/* A completion: returns 1 when it was the last (stop the loop). */
static inline int qw_completion(uintptr_t arg, uintptr_t result) {
  if (result != arg + 1 || !pthread_equal(pthread_self(), qw_loop_thread)) qw_failures++;
  if (++qw_completed == qw_n) {
    qw_t1 = now_ns();
    qw_c1 = cpu_ns();
    return 1;
  }
  return 0;
}

static void qw_init(int argc, char **argv) {
  g_argc = argc;
  g_argv = argv;
  if (argc < 2) {
    fprintf(stderr, "usage: %s queuework|queuework_window|queuework_serial [n=N] [window=W] [threads=T]\n",
            argv[0]);
    exit(2);
  }
  g_shape = argv[1];
  watchdog((unsigned)arg_num("timeout", 30));
  qw_threads = (int)arg_num("threads", 4);
  if (!strcmp(g_shape, "queuework")) {
    qw_n = (size_t)arg_num("n", 1000000);
    qw_window = 0;
  } else if (!strcmp(g_shape, "queuework_window")) {
    qw_n = (size_t)arg_num("n", 1000000);
    qw_window = (size_t)arg_num("window", 64);
  } else if (!strcmp(g_shape, "queuework_serial")) {
    qw_n = (size_t)arg_num("n", 100000);
    qw_window = 1;
  } else {
    fprintf(stderr, "unknown shape %s\n", g_shape);
    exit(2);
  }
  if (qw_window > qw_n) qw_window = qw_n;
  qw_loop_thread = pthread_self();
}

static void qw_report(void) {
  result("rate", (double)qw_n / ((double)(qw_t1 - qw_t0) / 1e9), "jobs_per_s");
  result("cpu_per_job", (double)(qw_c1 - qw_c0) / 1000.0 / (double)qw_n, "us");
  result("failures", (double)qw_failures, "count");
  if (qw_completed != qw_n) result("missing", (double)(qw_n - qw_completed), "count");
}

#endif
