/* Shared part of the UDP benchmarks (bench_udp_<lib>.c): the shapes, their parameters, the
 * measurements and the output. Each library's program implements two functions (below) with its
 * own event loop, over 127.0.0.1.
 *
 *   bench_udp_<lib> <shape> [key=value ...]
 *
 * Shapes:
 *   udp_echo_1, udp_echo_32  n round trips (default 100000) of a 64-byte datagram with 1 or 32 in
 *                            flight. Both ports live in the one loop: a client port sends to a
 *                            server port, the server echoes each datagram to its sender, the client
 *                            sends the next datagram for every echo it gets while fewer than n
 *                            were sent (echo_may_send / echo_reply below keep the count).
 *                            metric cpu_per_rt: process CPU ns (user+sys, getrusage) per round trip
 *                            (lower is better).
 *                            Loss: nothing re-sends. A thread checks every 0.25 s that the number
 *                            of echoes moved; if none arrived for `stall` seconds (default 2) the
 *                            program ends with "ERROR ... what=echo_stalled_datagram_lost" instead
 *                            of waiting for the watchdog. On loopback with at most 32 small
 *                            datagrams queued per socket this does not happen; a send that fails
 *                            (EAGAIN included) is a die() too.
 *   udp_flood                a sender thread with a plain blocking socket (connect + send) sends n
 *                            64-byte datagrams (default 1000000) as fast as it can to the loop's
 *                            port, then an 8-byte end marker every millisecond until the loop has
 *                            seen one (a marker can be dropped like any datagram; since one socket
 *                            sends them all and the receive queue is FIFO, every data datagram is
 *                            received or dropped before the first marker is read). The loop counts
 *                            the 64-byte datagrams and stops at the first marker. The receiving
 *                            socket's SO_RCVBUF is set to 4 MiB (FLOOD_RCVBUF) in every program.
 *                            metric rate: datagrams received per CPU second of the loop thread
 *                            (RUSAGE_THREAD from just before the sender starts to the first
 *                            marker; higher is better); metric loss_pct: 100 * (n - received) / n
 *                            (datagrams the kernel dropped because the loop did not keep up).
 *
 * Every program must implement:
 *   static void udp_echo(long n, int inflight);   (echo_begin(n, inflight) is already done)
 *   static void udp_flood(long n);                (binds, udp_set_rcvbuf(fd), flood_start(port),
 *                                                  runs its loop until flood_datagram() returns 1)
 * and die() on any failure. Output lines as in bench/bench_util.h (RESULT ... / ERROR ...).
 */
#ifndef UDP_COMMON_H
#define UDP_COMMON_H

#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "bench_util.h"

#define UDP_MSG 64                     /* every data datagram */
#define FLOOD_END_LEN 8                /* the flood's end marker */
#define FLOOD_RCVBUF (4 * 1024 * 1024) /* SO_RCVBUF of the flood's receiving socket */
#define UDP_MAX_READ (64 * 1024)       /* a read buffer that holds any UDP datagram */

static void udp_echo(long n, int inflight);
static void udp_flood(long n);

static uint8_t udp_msg[UDP_MSG];
static const uint8_t flood_end_marker[FLOOD_END_LEN] = {'F', 'L', 'O', 'O', 'D', 'E', 'N', 'D'};

/* ---------------------------------------------------------------- sockets (peers, floor, sender) */

static inline struct sockaddr_in udp_loopback(uint16_t port) {
  struct sockaddr_in sin;
  memset(&sin, 0, sizeof sin);
  sin.sin_family = AF_INET;
  sin.sin_port = htons(port);
  sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return sin;
}

/* a UDP socket bound to 127.0.0.1 port 0 (non-blocking and close-on-exec if asked); the chosen
 * port into *port */
static inline int udp_bind_loopback(int nonblock, uint16_t *port) {
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC | (nonblock ? SOCK_NONBLOCK : 0), 0);
  if (fd < 0) die("socket", errno);
  struct sockaddr_in sin = udp_loopback(0);
  socklen_t len = sizeof sin;
  if (bind(fd, (struct sockaddr *)&sin, len) != 0) die("bind", errno);
  if (getsockname(fd, (struct sockaddr *)&sin, &len) != 0) die("getsockname", errno);
  *port = ntohs(sin.sin_port);
  return fd;
}

/* ---------------------------------------------------------------- echo bookkeeping */

static long echo_n, echo_window, echo_sent;
static long echo_received; /* read by the stall thread: __atomic accesses */

static inline void echo_begin(long n, int inflight) {
  echo_n = n;
  echo_window = inflight;
  echo_sent = 0;
  echo_received = 0;
}

/* 1 if the client may send a datagram now (fewer than n sent and fewer than `inflight` without
 * an echo), and counts it as sent; the client calls it in a loop after every echo and at the start */
static inline int echo_may_send(void) {
  if (echo_sent >= echo_n || echo_sent - echo_received >= echo_window) return 0;
  echo_sent++;
  return 1;
}

/* the client got an echo of `len` bytes; 1 when it was the n-th (stop the loop) */
static inline int echo_reply(size_t len) {
  if (len != UDP_MSG) die("echo length", (long)len);
  long got = echo_received + 1;
  if (got > echo_sent) die("more echoes than datagrams sent", got);
  __atomic_store_n(&echo_received, got, __ATOMIC_RELAXED);
  return got == echo_n;
}

static double echo_stall_s = 2;

/* ends the program if no echo arrives for echo_stall_s seconds (a lost datagram would otherwise
 * leave the client waiting until the watchdog) */
static void *echo_stall_thread(void *arg) {
  (void)arg;
  long last = -1;
  uint64_t since = now_ns();
  for (;;) {
    struct timespec ts = {0, 250 * 1000 * 1000};
    nanosleep(&ts, NULL);
    long got = __atomic_load_n(&echo_received, __ATOMIC_RELAXED);
    if (got != last) {
      last = got;
      since = now_ns();
    } else if ((double)(now_ns() - since) / 1e9 >= echo_stall_s) {
      die("echo_stalled_datagram_lost", got);
    }
  }
  return NULL;
}

/* ---------------------------------------------------------------- flood */

static long flood_n, flood_received;
static int flood_end_seen; /* set by the loop thread, read by the sender: __atomic accesses */
static uint64_t flood_cpu0, flood_cpu1, flood_send_ns;
static uint16_t flood_port;
static int flood_rcvbuf_actual;
static pthread_t flood_thread;
static int flood_started;

/* the same receive buffer for every library's flood socket */
static inline void udp_set_rcvbuf(int fd) {
  int v = FLOOD_RCVBUF;
  if (setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &v, sizeof v) != 0) die("setsockopt SO_RCVBUF", errno);
  socklen_t len = sizeof v;
  if (getsockopt(fd, SOL_SOCKET, SO_RCVBUF, &v, &len) != 0) die("getsockopt SO_RCVBUF", errno);
  flood_rcvbuf_actual = v; /* Linux reports twice the value set, capped by net.core.rmem_max */
}

static void *flood_sender(void *arg) {
  (void)arg;
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0); /* blocking */
  if (fd < 0) die("sender socket", errno);
  struct sockaddr_in sin = udp_loopback(flood_port);
  if (connect(fd, (struct sockaddr *)&sin, sizeof sin) != 0) die("sender connect", errno);
  uint64_t t0 = now_ns();
  for (long i = 0; i < flood_n;) {
    if (send(fd, udp_msg, UDP_MSG, 0) == UDP_MSG) {
      i++;
      continue;
    }
    if (errno != EINTR && errno != ENOBUFS && errno != EAGAIN) die("sender send", errno);
  }
  flood_send_ns = now_ns() - t0;
  for (int tries = 0; !__atomic_load_n(&flood_end_seen, __ATOMIC_ACQUIRE); tries++) {
    if (tries == 5000) die("flood end marker never received", flood_n);
    if (send(fd, flood_end_marker, FLOOD_END_LEN, 0) < 0 && errno != ENOBUFS && errno != EINTR &&
        errno != EAGAIN)
      die("sender send marker", errno);
    struct timespec ts = {0, 1000 * 1000};
    nanosleep(&ts, NULL);
  }
  close(fd);
  return NULL;
}

/* called on the loop thread once the receiving socket is bound to `port` (and before the loop
 * runs): the loop thread's CPU clock starts here, then the sender thread */
static inline void flood_start(uint16_t port) {
  flood_port = port;
  flood_cpu0 = thread_cpu_ns();
  if (pthread_create(&flood_thread, NULL, flood_sender, NULL) != 0) die("pthread_create", 0);
  flood_started = 1;
}

/* the loop got a datagram of `len` bytes; 1 for the end marker (stop the loop; later markers
 * give 1 again) */
static inline int flood_datagram(size_t len) {
  if (len == UDP_MSG) {
    if (__atomic_load_n(&flood_end_seen, __ATOMIC_RELAXED)) die("datagram after the end marker", 0);
    flood_received++;
    return 0;
  }
  if (len != FLOOD_END_LEN) die("flood datagram length", (long)len);
  if (!flood_end_seen) {
    flood_cpu1 = thread_cpu_ns();
    __atomic_store_n(&flood_end_seen, 1, __ATOMIC_RELEASE);
  }
  return 1;
}

/* ---------------------------------------------------------------- main */

int main(int argc, char **argv) {
  g_argc = argc;
  g_argv = argv;
  if (argc < 2) {
    fprintf(stderr, "usage: %s udp_echo_1|udp_echo_32|udp_flood [n=N] [timeout=S] [stall=S]\n",
            argv[0]);
    return 2;
  }
  g_shape = argv[1];
  watchdog((unsigned)arg_num("timeout", 120));
  for (int i = 0; i < UDP_MSG; i++) udp_msg[i] = (uint8_t)('a' + i % 26);

  if (strncmp(g_shape, "udp_echo_", 9) == 0) {
    long n = (long)arg_num("n", 100000);
    int inflight = atoi(g_shape + 9);
    if (n <= 0 || inflight <= 0) die("arguments", 0);
    echo_stall_s = arg_num("stall", 2);
    echo_begin(n, inflight);
    pthread_t stall;
    if (pthread_create(&stall, NULL, echo_stall_thread, NULL) != 0) die("pthread_create", 0);
    pthread_detach(stall);
    uint64_t c0 = cpu_ns();
    udp_echo(n, inflight);
    uint64_t c1 = cpu_ns();
    if (echo_received != n) die("echo incomplete", echo_received);
    result("cpu_per_rt", (double)(c1 - c0) / (double)n, "ns");
  } else if (strcmp(g_shape, "udp_flood") == 0) {
    flood_n = (long)arg_num("n", 1000000);
    if (flood_n <= 0) die("arguments", 0);
    udp_flood(flood_n);
    if (!flood_started) die("flood sender never started", 0);
    pthread_join(flood_thread, NULL);
    if (!flood_end_seen) die("flood ended without the end marker", flood_received);
    if (flood_received > flood_n) die("more datagrams than sent", flood_received);
    if (flood_received == 0) die("no datagram received", 0);
    double cpu_s = (double)(flood_cpu1 - flood_cpu0) / 1e9;
    printf("INFO shape=%s lib=%s received=%ld sent=%ld sender_rate=%.0f/s rcvbuf=%d\n", g_shape,
           BENCH_LIB, flood_received, flood_n, (double)flood_n / ((double)flood_send_ns / 1e9),
           flood_rcvbuf_actual);
    result("rate", (double)flood_received / (cpu_s > 0 ? cpu_s : 1e-9), "dgrams_per_cpu_s");
    result("loss_pct", 100.0 * (double)(flood_n - flood_received) / (double)flood_n, "pct");
  } else {
    fprintf(stderr, "unknown shape %s\n", g_shape);
    return 2;
  }
  return 0;
}

#endif
