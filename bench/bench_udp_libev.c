/* libev 4.x UDP benchmarks (see udp_common.h). libev has no datagram layer, so this is the code a
 * libev user writes: a non-blocking socket bound to 127.0.0.1, an ev_io read watcher, and per
 * readiness event a recvfrom loop into one static 64 KiB buffer that ends at EAGAIN or after 32
 * datagrams (libuv's bound per event, so one busy socket cannot starve the loop); replies go out
 * with sendto at once. One epoll loop (ev_loop_new) holds both ports. */
#define BENCH_LIB "libev"
#include "udp_common.h"

#include <ev.h>

#define READS_PER_EVENT 32

static struct ev_loop *loop;
static uint8_t rbuf[UDP_MAX_READ];

/* what a port does with each datagram; returns 1 to stop the loop */
typedef int (*dgram_fn)(int fd, const uint8_t *data, size_t len, const struct sockaddr *from,
                        socklen_t fromlen);

typedef struct {
  ev_io io;
  dgram_fn fn;
} port_t;

static void port_cb(struct ev_loop *l, ev_io *w, int revents) {
  (void)revents;
  port_t *p = (port_t *)w;
  for (int i = 0; i < READS_PER_EVENT; i++) {
    struct sockaddr_storage from;
    socklen_t fromlen = sizeof from;
    ssize_t r = recvfrom(w->fd, rbuf, sizeof rbuf, MSG_TRUNC, (struct sockaddr *)&from, &fromlen);
    if (r < 0) {
      if (errno == EAGAIN || errno == EINTR) return;
      die("recvfrom", errno);
    }
    if ((size_t)r > sizeof rbuf) die("datagram truncated", (long)r);
    if (p->fn(w->fd, rbuf, (size_t)r, (struct sockaddr *)&from, fromlen)) {
      ev_io_stop(l, w);
      ev_break(l, EVBREAK_ALL);
      return;
    }
  }
}

static uint16_t open_port(port_t *p, dgram_fn fn) {
  uint16_t port;
  int fd = udp_bind_loopback(1, &port);
  p->fn = fn;
  ev_io_init(&p->io, port_cb, fd, EV_READ);
  ev_io_start(loop, &p->io);
  return port;
}

static void close_port(port_t *p) {
  ev_io_stop(loop, &p->io);
  close(p->io.fd);
}

static void new_loop(void) {
  loop = ev_loop_new(EVBACKEND_EPOLL);
  if (!loop) die("ev_loop_new", 0);
}

static void send_to(int fd, const void *data, size_t len, const struct sockaddr *to, socklen_t tolen) {
  ssize_t w = sendto(fd, data, len, 0, to, tolen);
  if (w != (ssize_t)len) die("sendto", w < 0 ? errno : (long)w);
}

/* ---------------------------------------------------------------- echo */

static port_t echo_server, echo_client;
static struct sockaddr_in server_addr;

static int server_dgram(int fd, const uint8_t *data, size_t len, const struct sockaddr *from,
                        socklen_t fromlen) {
  send_to(fd, data, len, from, fromlen);
  return 0;
}

static void client_send(void) {
  while (echo_may_send())
    send_to(echo_client.io.fd, udp_msg, UDP_MSG, (const struct sockaddr *)&server_addr,
            sizeof server_addr);
}

static int client_dgram(int fd, const uint8_t *data, size_t len, const struct sockaddr *from,
                        socklen_t fromlen) {
  (void)fd;
  (void)data;
  (void)from;
  (void)fromlen;
  if (echo_reply(len)) return 1;
  client_send();
  return 0;
}

static void udp_echo(long n, int inflight) {
  (void)n;
  (void)inflight;
  new_loop();
  server_addr = udp_loopback(open_port(&echo_server, server_dgram));
  open_port(&echo_client, client_dgram);
  client_send();
  ev_run(loop, 0);
  close_port(&echo_client);
  close_port(&echo_server);
  ev_loop_destroy(loop);
}

/* ---------------------------------------------------------------- flood */

static port_t flood_port_w;

static int flood_dgram(int fd, const uint8_t *data, size_t len, const struct sockaddr *from,
                       socklen_t fromlen) {
  (void)fd;
  (void)data;
  (void)from;
  (void)fromlen;
  return flood_datagram(len);
}

static void udp_flood(long n) {
  (void)n;
  new_loop();
  uint16_t port = open_port(&flood_port_w, flood_dgram);
  udp_set_rcvbuf(flood_port_w.io.fd);
  flood_start(port);
  ev_run(loop, 0);
  close_port(&flood_port_w);
  ev_loop_destroy(loop);
}
