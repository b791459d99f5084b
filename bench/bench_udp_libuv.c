/* libuv's UDP benchmarks (see udp_common.h): uv_udp_t handles created with
 * uv_udp_init_ex(loop, h, AF_INET | UV_UDP_RECVMMSG), so libuv reads with recvmmsg. libuv cuts the
 * buffer alloc_cb gives into 64 KiB slots, one datagram each, at most 20 per recvmmsg call
 * (UV__MMSG_MAXWIDTH), so the buffer here is 20 * 64 KiB: with a single 64 KiB buffer every
 * recvmmsg would read one datagram. The buffer is static: each recv_cb consumes its datagram at
 * once, and the closing call of a batch (nread 0, addr NULL, UV_UDP_MMSG_FREE) has nothing to free.
 * Sends use uv_udp_try_send: the datagram goes out at once or the call fails (as libreactor's
 * reactor_udp_write; uv_udp_send would add a request and a deferred callback per datagram). */
#define BENCH_LIB "libuv"
#include "udp_common.h"

#include <uv.h>

#define UV_DGRAM_SLOT (64 * 1024)
#define UV_MMSG_WIDTH 20

static uv_loop_t loop_s, *loop = &loop_s;
static char rbuf[UV_MMSG_WIDTH * UV_DGRAM_SLOT];

static void ucheck(const char *what, int rc) {
  if (rc != 0) die(what, rc);
}

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  (void)h;
  (void)suggested; /* 64 KiB: one datagram */
  buf->base = rbuf;
  buf->len = sizeof rbuf;
}

/* a handle on 127.0.0.1 port 0 reading with recvmmsg into rbuf; returns its port */
static uint16_t open_port(uv_udp_t *h, uv_udp_recv_cb cb) {
  struct sockaddr_in sin;
  int len = sizeof sin;
  ucheck("uv_udp_init_ex", uv_udp_init_ex(loop, h, AF_INET | UV_UDP_RECVMMSG));
  ucheck("uv_ip4_addr", uv_ip4_addr("127.0.0.1", 0, &sin));
  ucheck("uv_udp_bind", uv_udp_bind(h, (const struct sockaddr *)&sin, 0));
  ucheck("uv_udp_getsockname", uv_udp_getsockname(h, (struct sockaddr *)&sin, &len));
  ucheck("uv_udp_recv_start", uv_udp_recv_start(h, alloc_cb, cb));
  if (!uv_udp_using_recvmmsg(h)) die("uv_udp_using_recvmmsg", 0);
  return ntohs(sin.sin_port);
}

/* 1 if this recv_cb call carries a datagram; 0 for the calls that carry none: the end of a
 * recvmmsg batch (UV_UDP_MMSG_FREE: the static buffer needs no free) and "nothing more to read"
 * (nread 0, addr NULL). A zero-length datagram has nread 0 and an address. */
static int is_datagram(ssize_t nread, const struct sockaddr *addr, unsigned flags) {
  if (flags & UV_UDP_MMSG_FREE) return 0;
  if (nread < 0) die("udp recv", (long)nread);
  if (flags & UV_UDP_PARTIAL) die("datagram truncated", (long)nread);
  return addr != NULL;
}

static void try_send(uv_udp_t *h, const void *data, size_t len, const struct sockaddr *to) {
  uv_buf_t b = uv_buf_init((char *)data, (unsigned)len);
  int rc = uv_udp_try_send(h, &b, 1, to);
  if (rc != (int)len) die("uv_udp_try_send", rc);
}

static void close_walk(uv_handle_t *h, void *arg) {
  (void)arg;
  if (!uv_is_closing(h)) uv_close(h, NULL);
}

static void loop_teardown(void) {
  uv_walk(loop, close_walk, NULL);
  ucheck("uv_run (teardown)", uv_run(loop, UV_RUN_DEFAULT));
  ucheck("uv_loop_close", uv_loop_close(loop));
}

/* ---------------------------------------------------------------- echo */

static uv_udp_t echo_server, echo_client;
static struct sockaddr_in server_addr;

static void server_recv(uv_udp_t *h, ssize_t nread, const uv_buf_t *buf, const struct sockaddr *addr,
                        unsigned flags) {
  if (!is_datagram(nread, addr, flags)) return;
  try_send(h, buf->base, (size_t)nread, addr);
}

static void client_send(void) {
  while (echo_may_send()) try_send(&echo_client, udp_msg, UDP_MSG, (const struct sockaddr *)&server_addr);
}

static void client_recv(uv_udp_t *h, ssize_t nread, const uv_buf_t *buf, const struct sockaddr *addr,
                        unsigned flags) {
  (void)buf;
  if (!is_datagram(nread, addr, flags)) return;
  if (echo_reply((size_t)nread)) {
    uv_udp_recv_stop(h);
    uv_stop(loop);
    return;
  }
  client_send();
}

static void udp_echo(long n, int inflight) {
  (void)n;
  (void)inflight;
  ucheck("uv_loop_init", uv_loop_init(loop));
  server_addr = udp_loopback(open_port(&echo_server, server_recv));
  open_port(&echo_client, client_recv);
  client_send();
  uv_run(loop, UV_RUN_DEFAULT);
  loop_teardown();
}

/* ---------------------------------------------------------------- flood */

static uv_udp_t flood_h;

static void flood_recv(uv_udp_t *h, ssize_t nread, const uv_buf_t *buf, const struct sockaddr *addr,
                       unsigned flags) {
  (void)buf;
  if (!is_datagram(nread, addr, flags)) return;
  if (flood_datagram((size_t)nread)) {
    uv_udp_recv_stop(h); /* the rest of the batch is skipped */
    uv_stop(loop);
  }
}

static void udp_flood(long n) {
  (void)n;
  ucheck("uv_loop_init", uv_loop_init(loop));
  uint16_t port = open_port(&flood_h, flood_recv);
  uv_os_fd_t fd;
  ucheck("uv_fileno", uv_fileno((uv_handle_t *)&flood_h, &fd));
  udp_set_rcvbuf(fd);
  flood_start(port);
  uv_run(loop, UV_RUN_DEFAULT);
  loop_teardown();
}
