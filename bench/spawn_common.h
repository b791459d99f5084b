/* Shared part of the process benchmarks (bench_spawn_reactor.c, bench_spawn_libuv.c): spawn a
 * child, wait until it has ended, spawn the next, n in a row (libreactor's reactor_spawn_process,
 * libuv's uv_spawn).
 *
 *   bench_spawn_<lib> <shape> [n=N] [timeout=S]
 *
 * Shapes (n children, default 1000, one at a time; each the next is spawned from the callback that
 * says the previous one ended):
 *   spawn_true     /bin/true with /dev/null as its fds 0, 1 and 2 (no pipe): ended = reaped
 *   spawn_capture  /bin/echo hi with /dev/null as 0 and 2 and a pipe as its stdout, read until end of
 *                  file: ended = reaped and the pipe closed; the 3 bytes "hi\n" are checked
 * Both: the same argv, an empty environment, the parent's directory. The child's fds come from the
 * one /dev/null the program opened (dup2'ed into the child by each library) or from the pipe.
 *
 * Output, parsed by bench/run.py:
 *   RESULT shape=<shape> lib=<lib> metric=rate value=<children per wall second, first spawn to the
 *          last one's end>  (wall clock: most of the cost is in the kernel, in both processes)
 *   RESULT ... metric=cpu_per_proc value=<CPU microseconds of the spawning process per child>
 *   RESULT ... metric=failures value=<children that did not exit with status 0, or whose output was
 *          not "hi\n" (spawn_capture)>
 *   RESULT ... metric=missing value=<children that did not end>  (only if nonzero)
 */
#ifndef SPAWN_COMMON_H
#define SPAWN_COMMON_H

#define _GNU_SOURCE
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench_util.h"

#define SP_OUTPUT "hi\n"

static size_t sp_n;          /* children in total */
static int sp_capture;       /* 1: spawn_capture */
static size_t sp_started;    /* spawned so far */
static size_t sp_ended;      /* ended so far */
static size_t sp_failures;   /* bad exit status or output */
static int sp_devnull;       /* /dev/null, O_RDWR, close-on-exec: the child's fds 0, 2 (and 1) */
static char sp_out[16];      /* the current child's output (spawn_capture) */
static size_t sp_out_len;
static uint64_t sp_t0, sp_t1, sp_c0, sp_c1;

/* the child's argv and (empty) environment, the same for both libraries */
static const char *const sp_true_argv[] = {"/bin/true", NULL};
static const char *const sp_echo_argv[] = {"/bin/echo", "hi", NULL};
static const char *const sp_empty_env[] = {NULL};
static const char *const *sp_argv;

static void sp_init(int argc, char **argv) {
  g_argc = argc;
  g_argv = argv;
  if (argc < 2) {
    fprintf(stderr, "usage: %s spawn_true|spawn_capture [n=N] [timeout=S]\n", argv[0]);
    exit(2);
  }
  g_shape = argv[1];
  watchdog((unsigned)arg_num("timeout", 30));
  sp_n = (size_t)arg_num("n", 1000);
  if (!strcmp(g_shape, "spawn_true")) {
    sp_capture = 0;
    sp_argv = sp_true_argv;
  } else if (!strcmp(g_shape, "spawn_capture")) {
    sp_capture = 1;
    sp_argv = sp_echo_argv;
  } else {
    fprintf(stderr, "unknown shape %s\n", g_shape);
    exit(2);
  }
  sp_devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
  if (sp_devnull < 0) die("open /dev/null", -1);
}

static inline void sp_begin(void) {
  sp_c0 = cpu_ns();
  sp_t0 = now_ns();
}

/* before each spawn */
static inline void sp_spawning(void) {
  sp_started++;
  sp_out_len = 0;
}

/* the current child's output (spawn_capture) */
static inline void sp_output(const void *data, size_t len) {
  size_t room = sizeof sp_out - sp_out_len;
  if (len > room) {
    sp_failures++; /* more than expected: counted, the rest dropped */
    len = room;
  }
  memcpy(sp_out + sp_out_len, data, len);
  sp_out_len += len;
}

/* The current child ended (reaped, and its pipe closed); `exited_ok` = it exited with status 0.
 * Returns 1 when it was the last one. */
static inline int sp_child_ended(int exited_ok) {
  if (!exited_ok) sp_failures++;
  if (sp_capture && (sp_out_len != sizeof SP_OUTPUT - 1 || memcmp(sp_out, SP_OUTPUT, sp_out_len) != 0))
    sp_failures++;
  if (++sp_ended == sp_n) {
    sp_t1 = now_ns();
    sp_c1 = cpu_ns();
    return 1;
  }
  return 0;
}

static void sp_report(void) {
  if (sp_ended != sp_n) {
    result("missing", (double)(sp_n - sp_ended), "count");
    return;
  }
  result("rate", (double)sp_n / ((double)(sp_t1 - sp_t0) / 1e9), "procs_per_s");
  result("cpu_per_proc", (double)(sp_c1 - sp_c0) / 1000.0 / (double)sp_n, "us");
  result("failures", (double)sp_failures, "count");
}

#endif
