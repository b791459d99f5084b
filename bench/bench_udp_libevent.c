/* libevent 2.1's UDP benchmarks (see udp_common.h). libevent has no datagram layer (bufferevents are
 * streams), so this is the code a libevent user writes: a non-blocking socket bound to 127.0.0.1, a
 * persistent EV_READ event, and per callback a recvfrom loop into one static 64 KiB buffer that
 * ends at EAGAIN or after 32 datagrams (libuv's bound per event); replies go out with sendto at
 * once. Default event_base (epoll) holding both ports. */
#define BENCH_LIB "libevent"
#include "udp_common.h"

#include <event2/event.h>

#define READS_PER_EVENT 32

static struct event_base *base;
static uint8_t rbuf[UDP_MAX_READ];

/* what a port does with each datagram; returns 1 to stop the loop */
typedef int (*dgram_fn)(int fd, const uint8_t *data, size_t len, const struct sockaddr *from,
                        socklen_t fromlen);

typedef struct {
  struct event *ev;
  int fd;
  dgram_fn fn;
} port_t;

static void port_cb(evutil_socket_t fd, short what, void *arg) {
  (void)what;
  port_t *p = arg;
  for (int i = 0; i < READS_PER_EVENT; i++) {
    struct sockaddr_storage from;
    socklen_t fromlen = sizeof from;
    ssize_t r = recvfrom(fd, rbuf, sizeof rbuf, MSG_TRUNC, (struct sockaddr *)&from, &fromlen);
    if (r < 0) {
      if (errno == EAGAIN || errno == EINTR) return;
      die("recvfrom", errno);
    }
    if ((size_t)r > sizeof rbuf) die("datagram truncated", (long)r);
    if (p->fn(fd, rbuf, (size_t)r, (struct sockaddr *)&from, fromlen)) {
      event_del(p->ev);
      event_base_loopbreak(base);
      return;
    }
  }
}

static uint16_t open_port(port_t *p, dgram_fn fn) {
  uint16_t port;
  p->fd = udp_bind_loopback(1, &port);
  p->fn = fn;
  p->ev = event_new(base, p->fd, EV_READ | EV_PERSIST, port_cb, p);
  if (!p->ev) die("event_new", 0);
  if (event_add(p->ev, NULL) != 0) die("event_add", 0);
  return port;
}

static void close_port(port_t *p) {
  event_free(p->ev);
  close(p->fd);
}

static void new_base(void) {
  base = event_base_new();
  if (!base) die("event_base_new", 0);
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
    send_to(echo_client.fd, udp_msg, UDP_MSG, (const struct sockaddr *)&server_addr, sizeof server_addr);
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
  new_base();
  server_addr = udp_loopback(open_port(&echo_server, server_dgram));
  open_port(&echo_client, client_dgram);
  client_send();
  if (event_base_dispatch(base) < 0) die("event_base_dispatch", 0);
  close_port(&echo_client);
  close_port(&echo_server);
  event_base_free(base);
}

/* ---------------------------------------------------------------- flood */

static port_t flood_p;

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
  new_base();
  uint16_t port = open_port(&flood_p, flood_dgram);
  udp_set_rcvbuf(flood_p.fd);
  flood_start(port);
  if (event_base_dispatch(base) < 0) die("event_base_dispatch", 0);
  close_port(&flood_p);
  event_base_free(base);
}
