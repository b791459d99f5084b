/* Helpers every benchmark program shares (bench/common.h and bench/queuework_common.h include it):
 * clocks, peak RSS, the RESULT/ERROR output lines bench/run.py parses, CHECK, a watchdog and
 * key=value arguments. Define BENCH_LIB before including it. */
#ifndef BENCH_UTIL_H
#define BENCH_UTIL_H

#define _GNU_SOURCE
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#ifndef BENCH_LIB
#error "define BENCH_LIB before including bench_util.h"
#endif

/* ---------------------------------------------------------------- clocks */

static inline uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* user+sys CPU time of the whole process (all threads), from getrusage */
static inline uint64_t cpu_ns(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return ((uint64_t)ru.ru_utime.tv_sec + (uint64_t)ru.ru_stime.tv_sec) * 1000000000ull +
         ((uint64_t)ru.ru_utime.tv_usec + (uint64_t)ru.ru_stime.tv_usec) * 1000ull;
}

/* user+sys CPU time of the calling thread */
static inline uint64_t thread_cpu_ns(void) {
  struct rusage ru;
  getrusage(RUSAGE_THREAD, &ru);
  return ((uint64_t)ru.ru_utime.tv_sec + (uint64_t)ru.ru_stime.tv_sec) * 1000000000ull +
         ((uint64_t)ru.ru_utime.tv_usec + (uint64_t)ru.ru_stime.tv_usec) * 1000ull;
}

/* A "Key:  N kB" line of /proc/self/status, in bytes (0 if absent) */
static inline uint64_t proc_status_bytes(const char *key) {
  FILE *f = fopen("/proc/self/status", "r");
  char line[256];
  size_t kl = strlen(key);
  uint64_t kb = 0;
  if (f) {
    while (fgets(line, sizeof line, f))
      if (strncmp(line, key, kl) == 0) {
        kb = strtoull(line + kl, NULL, 10);
        break;
      }
    fclose(f);
  }
  return kb * 1024ull;
}

/* Peak RSS of this process image.  VmHWM from /proc/self/status, not getrusage's ru_maxrss: on
 * Linux ru_maxrss survives exec, so a child of a big parent (python) starts with the parent's peak. */
static inline uint64_t maxrss_bytes(void) {
  uint64_t bytes = proc_status_bytes("VmHWM:");
  if (bytes == 0) { /* no procfs: fall back to getrusage */
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    bytes = (uint64_t)ru.ru_maxrss * 1024ull;
  }
  return bytes;
}

/* ---------------------------------------------------------------- output */

static const char *g_shape = "?";

static inline void result(const char *metric, double value, const char *unit) {
  printf("RESULT shape=%s lib=%s metric=%s value=%.6g unit=%s\n", g_shape, BENCH_LIB, metric, value,
         unit);
  fflush(stdout);
}

static inline void die(const char *what, long code) {
  fprintf(stderr, "%s/%s: %s failed (%ld)\n", BENCH_LIB, g_shape, what, code);
  printf("ERROR shape=%s lib=%s what=%s code=%ld\n", g_shape, BENCH_LIB, what, code);
  fflush(stdout);
  _exit(1);
}
#define CHECK(expr)                                                                                \
  do {                                                                                             \
    long _rc = (long)(expr);                                                                       \
    if (_rc != 0) die(#expr, _rc);                                                                 \
  } while (0)

/* ---------------------------------------------------------------- watchdog */

static inline void on_alarm(int sig) {
  (void)sig;
  static const char msg[] = "TIMEOUT watchdog expired\n";
  ssize_t w = write(1, msg, sizeof msg - 1);
  (void)w;
  _exit(3);
}

static inline void watchdog(unsigned seconds) {
  signal(SIGALRM, on_alarm);
  alarm(seconds);
}

/* ---------------------------------------------------------------- args */

static int g_argc;
static char **g_argv;

static inline double arg_num(const char *key, double dflt) {
  size_t kl = strlen(key);
  for (int i = 2; i < g_argc; i++)
    if (strncmp(g_argv[i], key, kl) == 0 && g_argv[i][kl] == '=') return atof(g_argv[i] + kl + 1);
  return dflt;
}

#endif
