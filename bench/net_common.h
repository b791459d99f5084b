/* Shared part of the networking benchmarks (bench_net_<lib>.c): the shapes, their parameters, the
 * measurements and the output. Each library's program implements four functions (below) with its
 * own event loop; both ends of every connection live in the one loop of the one process, over
 * 127.0.0.1 TCP or a UNIX socket in /tmp.
 *
 *   bench_net_<lib> <shape> [key=value ...]
 *
 * Shapes:
 *   pingpong_tcp, pingpong_unix  n round trips (default 200000) of a 64-byte message, one in flight:
 *                                the client sends 64 bytes, the server echoes them, the client sends
 *                                the next once all 64 are back.
 *                                metric cpu_per_rt: process CPU ns per round trip (lower is better)
 *   pump_tcp, pump_unix          `mb` MiB (default 2048) one way in 64 KiB writes; the sender keeps at
 *                                most 256 KiB queued in the library (a push producer / write-queue
 *                                watermark / own buffer) and the receiver counts the bytes.
 *                                metric mb_per_cpu_s: MB (1e6 bytes) per process CPU second (higher)
 *   churn_1, churn_100           n connections (default 20000) made, one 64-byte exchange (client
 *                                sends, server echoes, client closes once it has the echo), closed;
 *                                1 or 100 in flight at a time.
 *                                metric rate: connections per wall second (higher)
 *   idle                         n connections (default 10000) accepted by the loop and held open; the
 *                                client ends live in a child process (idle_spawn_clients: plain
 *                                blocking sockets), so each process needs only n fds.
 *                                metric rss_per_conn: growth of the loop process's resident memory per
 *                                connection, bytes (lower).
 *
 * Every program must implement:
 *   static void net_pingpong(int unix_socket, long n);
 *   static void net_pump(int unix_socket, uint64_t total_bytes);   (checks the byte count)
 *   static void net_churn(long n, int concurrency);
 *   static void net_idle(long n);        (listens on 127.0.0.1, calls idle_spawn_clients(port, n),
 *                                        calls idle_all_open() once it has accepted all n, then
 *                                        idle_release_clients() and closes everything)
 * and die() on any failure. Output lines as in bench/common.h (RESULT ... / ERROR ...).
 */
#ifndef NET_COMMON_H
#define NET_COMMON_H

#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench_util.h"

#define NET_MSG 64
#define PUMP_CHUNK (64 * 1024)
#define PUMP_MAX_QUEUED (256 * 1024)

static char net_unix_path[108];

static void net_pingpong(int unix_socket, long n);
static void net_pump(int unix_socket, uint64_t total_bytes);
static void net_churn(long n, int concurrency);
static void net_idle(long n);

/* ---- resident memory now (VmRSS) ---- */
static inline uint64_t rss_now_bytes(void) { return proc_status_bytes("VmRSS:"); }

static uint64_t idle_rss_before;
static long idle_n;
static int idle_done;

/* the idle shape's implementation calls this once all its connections are established */
static inline void idle_all_open(void) {
  if (idle_done) return;
  idle_done = 1;
  uint64_t after = rss_now_bytes();
  result("rss_per_conn", ((double)after - (double)idle_rss_before) / (double)idle_n, "bytes");
}

static pid_t idle_child;
static int idle_release_fd = -1;

/* forks a process that connects n plain sockets to 127.0.0.1:port and holds them until
 * idle_release_clients() */
static inline void idle_spawn_clients(uint16_t port, long n) {
  int release[2];
  if (pipe(release) != 0) die("pipe", errno);
  idle_child = fork();
  if (idle_child < 0) die("fork", errno);
  if (idle_child == 0) {
    close(release[1]);
    alarm(0);
    struct sockaddr_in sin;
    memset(&sin, 0, sizeof sin);
    sin.sin_family = AF_INET;
    sin.sin_port = htons(port);
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    for (long i = 0; i < n; i++) {
      int fd = socket(AF_INET, SOCK_STREAM, 0);
      if (fd < 0) _exit(10);
      while (connect(fd, (struct sockaddr *)&sin, sizeof sin) != 0) {
        if (errno != EAGAIN && errno != ECONNREFUSED && errno != EINTR) _exit(11);
        usleep(1000);
      }
    }
    char c;
    ssize_t r = read(release[0], &c, 1); /* EOF when the parent releases us */
    (void)r;
    _exit(0);
  }
  close(release[0]);
  idle_release_fd = release[1];
}

static inline void idle_release_clients(void) {
  if (idle_release_fd >= 0) close(idle_release_fd);
  idle_release_fd = -1;
}

static inline void raise_nofile_to(rlim_t want) {
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < want) {
    rl.rlim_cur = want < rl.rlim_max ? want : rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
}

/* a 64-byte message; the pump's 64 KiB chunk */
static uint8_t net_msg[NET_MSG];
static uint8_t pump_chunk[PUMP_CHUNK];

int main(int argc, char **argv) {
  g_argc = argc;
  g_argv = argv;
  if (argc < 2) {
    fprintf(stderr, "usage: %s pingpong_tcp|pingpong_unix|pump_tcp|pump_unix|churn_1|churn_100|idle "
                    "[key=value ...]\n", argv[0]);
    return 2;
  }
  g_shape = argv[1];
  watchdog((unsigned)arg_num("timeout", 120));
  signal(SIGPIPE, SIG_IGN); /* the peers' raw sockets; libreactor never raises it anyway */
  snprintf(net_unix_path, sizeof net_unix_path, "/tmp/bench-net-%d.sock", (int)getpid());
  unlink(net_unix_path);
  for (int i = 0; i < NET_MSG; i++) net_msg[i] = (uint8_t)('a' + i % 26);
  for (int i = 0; i < PUMP_CHUNK; i++) pump_chunk[i] = (uint8_t)i;

  if (strncmp(g_shape, "pingpong_", 9) == 0) {
    long n = (long)arg_num("n", 200000);
    uint64_t c0 = cpu_ns();
    net_pingpong(strcmp(g_shape, "pingpong_unix") == 0, n);
    result("cpu_per_rt", (double)(cpu_ns() - c0) / (double)n, "ns");
  } else if (strncmp(g_shape, "pump_", 5) == 0) {
    uint64_t total = (uint64_t)arg_num("mb", 2048) * 1024 * 1024;
    uint64_t c0 = cpu_ns();
    net_pump(strcmp(g_shape, "pump_unix") == 0, total);
    double secs = (double)(cpu_ns() - c0) / 1e9;
    result("mb_per_cpu_s", (double)total / 1e6 / secs, "MB_per_cpu_s");
  } else if (strncmp(g_shape, "churn_", 6) == 0) {
    long n = (long)arg_num("n", 20000);
    int c = atoi(g_shape + 6);
    if (c <= 0) c = 1;
    raise_nofile_to((rlim_t)(2 * c + 200));
    uint64_t t0 = now_ns();
    net_churn(n, c);
    result("rate", (double)n / ((double)(now_ns() - t0) / 1e9), "conns_per_s");
  } else if (strcmp(g_shape, "idle") == 0) {
    idle_n = (long)arg_num("n", 10000);
    raise_nofile_to((rlim_t)(idle_n + 200));
    idle_rss_before = rss_now_bytes();
    net_idle(idle_n);
    idle_release_clients();
    if (idle_child > 0) waitpid(idle_child, NULL, 0);
    if (!idle_done) die("idle: all connections open", 0);
  } else {
    fprintf(stderr, "unknown shape %s\n", g_shape);
    return 2;
  }
  unlink(net_unix_path);
  return 0;
}

#endif
