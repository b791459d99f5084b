/* libreactor's networking benchmarks (see net_common.h): its transports, ports, connectors and a push
 * producer (feeding write_zerocopy), default options. */
#define BENCH_LIB "libreactor"
#include "net_common.h"

#include <reactor.h>

static reactor_t *r;

static void rcheck(const char *what, int st) {
  if (st != REACTOR_OK) die(what, st);
}

static reactor_port_t *listen_on(int unix_socket, const reactor_protocol_t *p, uint16_t *port) {
  reactor_port_t *out = NULL;
  reactor_listen_options_t o;
  reactor_listen_options_init(&o);
  o.backlog = 4096;
  if (unix_socket) {
    rcheck("listen_unix", reactor_listen_unix(r, net_unix_path, &o, p, NULL, NULL, NULL, &out));
  } else {
    rcheck("listen_tcp", reactor_listen_tcp(r, 0, "127.0.0.1", &o, p, NULL, NULL, NULL, &out));
    reactor_address_t a;
    rcheck("get_host", reactor_port_get_host(out, &a));
    *port = a.port;
  }
  return out;
}

static void connect_to(int unix_socket, uint16_t port, const reactor_protocol_t *p, void *ud) {
  if (unix_socket)
    rcheck("connect_unix", reactor_connect_unix(r, net_unix_path, NULL, p, ud, NULL, NULL));
  else
    rcheck("connect_tcp", reactor_connect_tcp(r, "127.0.0.1", port, NULL, p, ud, NULL, NULL));
}

static void failed(reactor_connector_t *c, int reason, void *ud) {
  (void)c;
  (void)ud;
  die("connect", reason);
}

static void echo(reactor_transport_t *t, const uint8_t *data, size_t len, void *ud) {
  (void)ud;
  reactor_transport_write(t, data, len);
}

/* ---------------------------------------------------------------- pingpong */

static long pp_left;
static size_t pp_got;

static void pp_made(reactor_transport_t *t, void *ud) {
  (void)ud;
  reactor_transport_write(t, net_msg, NET_MSG);
}

static void pp_data(reactor_transport_t *t, const uint8_t *data, size_t len, void *ud) {
  (void)data;
  (void)ud;
  pp_got += len;
  if (pp_got < NET_MSG) return;
  pp_got = 0;
  if (--pp_left == 0) {
    reactor_stop(r);
    return;
  }
  reactor_transport_write(t, net_msg, NET_MSG);
}

static void net_pingpong(int unix_socket, long n) {
  rcheck("reactor_new", reactor_new(NULL, &r));
  reactor_protocol_t server, client;
  reactor_protocol_init(&server);
  server.data_received = echo;
  reactor_protocol_init(&client);
  client.connection_made = pp_made;
  client.data_received = pp_data;
  client.connection_failed = failed;
  uint16_t port = 0;
  listen_on(unix_socket, &server, &port);
  pp_left = n;
  connect_to(unix_socket, port, &client, NULL);
  rcheck("run", reactor_run(r));
  if (pp_left != 0) die("pingpong incomplete", pp_left);
  rcheck("free", reactor_free(r));
}

/* ---------------------------------------------------------------- pump */

static uint64_t pump_total, pump_sent, pump_received;
static int pump_paused;
static reactor_transport_t *pump_t;

/* the chunk is static and never changes: sent in place with write_zerocopy (no copy, no release
 * needed), as libuv's uv_write and the raw programs' offsets into it do */
static void pump_fill(void) {
  while (!pump_paused && pump_sent < pump_total) {
    reactor_transport_write_zerocopy(pump_t, pump_chunk, PUMP_CHUNK, NULL, NULL);
    pump_sent += PUMP_CHUNK;
  }
  if (pump_sent >= pump_total) {
    reactor_transport_unregister_producer(pump_t);
    reactor_transport_lose_connection(pump_t);
  }
}

static void pump_pause(reactor_transport_t *t, void *ud) {
  (void)t;
  (void)ud;
  pump_paused = 1;
}

static void pump_resume(reactor_transport_t *t, void *ud) {
  (void)t;
  (void)ud;
  pump_paused = 0;
  pump_fill();
}

static void pump_made(reactor_transport_t *t, void *ud) {
  (void)ud;
  pump_t = t;
  reactor_producer_t p;
  memset(&p, 0, sizeof p);
  p.struct_size = sizeof p;
  p.pause_producing = pump_pause;
  p.resume_producing = pump_resume;
  rcheck("set_write_buffer_limits",
         reactor_transport_set_write_buffer_limits(t, PUMP_MAX_QUEUED - PUMP_CHUNK, 0));
  rcheck("register_producer", reactor_transport_register_producer(t, &p, 1, NULL, NULL));
  pump_fill();
}

static void pump_data(reactor_transport_t *t, const uint8_t *data, size_t len, void *ud) {
  (void)t;
  (void)data;
  (void)ud;
  pump_received += len;
}

static void pump_lost(reactor_transport_t *t, int reason, void *ud) {
  (void)t;
  (void)reason;
  (void)ud;
  reactor_stop(r);
}

static void net_pump(int unix_socket, uint64_t total) {
  rcheck("reactor_new", reactor_new(NULL, &r));
  reactor_protocol_t server, client;
  reactor_protocol_init(&server);
  server.data_received = pump_data;
  server.connection_lost = pump_lost;
  reactor_protocol_init(&client);
  client.connection_made = pump_made;
  client.connection_failed = failed;
  uint16_t port = 0;
  listen_on(unix_socket, &server, &port);
  pump_total = total;
  connect_to(unix_socket, port, &client, NULL);
  rcheck("run", reactor_run(r));
  if (pump_received != total) die("pump byte count", (long)(pump_received >> 10));
  rcheck("free", reactor_free(r));
}

/* ---------------------------------------------------------------- churn */

static long churn_started, churn_done, churn_n;
static int churn_unix;
static uint16_t churn_port;
static reactor_protocol_t churn_client;

static void churn_start_one(void) {
  churn_started++;
  connect_to(churn_unix, churn_port, &churn_client, NULL);
}

static void churn_made(reactor_transport_t *t, void *ud) {
  (void)ud;
  reactor_transport_write(t, net_msg, NET_MSG);
}

static void churn_data(reactor_transport_t *t, const uint8_t *data, size_t len, void *ud) {
  (void)data;
  (void)ud;
  /* one exchange: the echo of 64 bytes comes back in one piece on loopback in practice; count it
   * by length to be exact */
  static size_t got;
  got += len;
  if (got >= NET_MSG) {
    got -= NET_MSG;
    reactor_transport_lose_connection(t);
  }
}

static void churn_lost(reactor_transport_t *t, int reason, void *ud) {
  (void)t;
  (void)reason;
  (void)ud;
  if (++churn_done == churn_n) {
    reactor_stop(r);
    return;
  }
  if (churn_started < churn_n) churn_start_one();
}

static void net_churn(long n, int concurrency) {
  rcheck("reactor_new", reactor_new(NULL, &r));
  reactor_protocol_t server;
  reactor_protocol_init(&server);
  server.data_received = echo;
  reactor_protocol_init(&churn_client);
  churn_client.connection_made = churn_made;
  churn_client.data_received = churn_data;
  churn_client.connection_lost = churn_lost;
  churn_client.connection_failed = failed;
  churn_unix = 0;
  listen_on(0, &server, &churn_port);
  churn_n = n;
  for (int i = 0; i < concurrency && churn_started < n; i++) churn_start_one();
  rcheck("run", reactor_run(r));
  if (churn_done != n) die("churn incomplete", churn_done);
  rcheck("free", reactor_free(r));
}

/* ---------------------------------------------------------------- idle */

static long idle_server_made, idle_want;

static void idle_srv_made(reactor_transport_t *t, void *ud) {
  (void)t;
  (void)ud;
  if (++idle_server_made == idle_want) {
    idle_all_open();
    idle_release_clients();
    reactor_stop(r); /* shutdown closes every connection */
  }
}

static void net_idle(long n) {
  rcheck("reactor_new", reactor_new(NULL, &r));
  reactor_protocol_t server;
  reactor_protocol_init(&server);
  server.connection_made = idle_srv_made;
  uint16_t port = 0;
  listen_on(0, &server, &port);
  idle_want = n;
  idle_spawn_clients(port, n);
  rcheck("run", reactor_run(r));
  rcheck("free", reactor_free(r));
}
