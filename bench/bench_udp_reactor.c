/* libreactor's UDP benchmarks (see udp_common.h): datagram ports from reactor_listen_udp (API.md
 * §6.6) with default options (max_packet_size 8192), reactor_udp_write for every send. The echo
 * server answers with reactor_udp_write(u, data, len, from->host, from->port); the flood port's
 * SO_RCVBUF is set through reactor_udp_fileno like every other program's. */
#define BENCH_LIB "libreactor"
#include "udp_common.h"

#include <reactor.h>

static reactor_t *r;

static void rcheck(const char *what, int st) {
  if (st != REACTOR_OK) die(what, st);
}

/* a datagram port on 127.0.0.1 port 0; its port into *port */
static reactor_udp_t *open_port(const reactor_datagram_protocol_t *p, uint16_t *port) {
  reactor_udp_t *u = NULL;
  reactor_udp_options_t o;
  reactor_udp_options_init(&o);
  rcheck("listen_udp", reactor_listen_udp(r, 0, "127.0.0.1", &o, p, NULL, NULL, &u));
  reactor_address_t a;
  rcheck("udp_get_host", reactor_udp_get_host(u, &a));
  *port = a.port;
  return u;
}

static void udp_write(reactor_udp_t *u, const void *data, size_t len, const char *host, uint16_t port) {
  rcheck("udp_write", reactor_udp_write(u, data, len, host, port));
}

/* ---------------------------------------------------------------- echo */

static uint16_t server_port;

static void server_dgram(reactor_udp_t *u, const uint8_t *data, size_t len,
                         const reactor_address_t *from, void *ud) {
  (void)ud;
  udp_write(u, data, len, from->host, from->port);
}

static void client_send(reactor_udp_t *u) {
  while (echo_may_send()) udp_write(u, udp_msg, UDP_MSG, "127.0.0.1", server_port);
}

/* the first datagrams go out once the client port has started */
static void client_start(reactor_udp_t *u, void *ud) {
  (void)ud;
  client_send(u);
}

static void client_dgram(reactor_udp_t *u, const uint8_t *data, size_t len,
                         const reactor_address_t *from, void *ud) {
  (void)data;
  (void)from;
  (void)ud;
  if (echo_reply(len)) {
    reactor_stop(r); /* shutdown stops both ports */
    return;
  }
  client_send(u);
}

static void udp_echo(long n, int inflight) {
  (void)n;
  (void)inflight;
  rcheck("reactor_new", reactor_new(NULL, &r));
  reactor_datagram_protocol_t server, client;
  reactor_datagram_protocol_init(&server);
  server.datagram_received = server_dgram;
  reactor_datagram_protocol_init(&client);
  client.start_protocol = client_start;
  client.datagram_received = client_dgram;
  open_port(&server, &server_port);
  uint16_t client_port;
  open_port(&client, &client_port);
  rcheck("run", reactor_run(r));
  rcheck("free", reactor_free(r));
}

/* ---------------------------------------------------------------- flood */

static void flood_dgram(reactor_udp_t *u, const uint8_t *data, size_t len,
                        const reactor_address_t *from, void *ud) {
  (void)data;
  (void)from;
  (void)ud;
  static int stopping;
  if (flood_datagram(len) && !stopping) {
    stopping = 1;
    rcheck("udp_stop_listening", reactor_udp_stop_listening(u)); /* nothing delivered after this */
    rcheck("stop", reactor_stop(r));
  }
}

static void udp_flood(long n) {
  (void)n;
  rcheck("reactor_new", reactor_new(NULL, &r));
  reactor_datagram_protocol_t p;
  reactor_datagram_protocol_init(&p);
  p.datagram_received = flood_dgram;
  uint16_t port;
  reactor_udp_t *u = open_port(&p, &port);
  int fd = reactor_udp_fileno(u);
  if (fd < 0) die("udp_fileno", fd);
  udp_set_rcvbuf(fd);
  flood_start(port);
  rcheck("run", reactor_run(r));
  rcheck("free", reactor_free(r));
}
