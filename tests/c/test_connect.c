/*
 * test_connect.c - client connectors (API.md §6.3 "Connecting", §6.1 shutdown rule).
 *
 * The servers are the library's own listening ports in the same reactor; the loop is driven with
 * reactor_iterate (reactor_run for the shutdown rule).
 *
 * Checks:
 *   - connect_tcp to an IP literal: CONNECTING after the call, connection_made on a later pass (never
 *     inside a host call), CONNECTED, an echo, lose_connection → connection_lost(OK), DISCONNECTED;
 *     the release waits for reactor_connector_release and runs inside it (reactor thread);
 *   - without a handle (out NULL) the release runs right after connection_lost / connection_failed;
 *   - a refused port → connection_failed(CONNECTION_REFUSED); a name that cannot exist →
 *     connection_failed(DNS); "localhost" connects; bind_host/bind_port bind the local end;
 *   - stop_connecting → connection_failed(CANCELLED) on a later pass, again → ALREADY_CALLED;
 *     connect while an attempt runs → BUSY; reconnecting from inside connection_failed;
 *   - the timeout covers name resolution (a pool kept busy) → connection_failed(TIMEOUT);
 *   - get_destination keeps a name a name; UNIX: connect_unix to a port and to a missing path;
 *   - shutdown: an attempt in progress → connection_failed(CANCELLED), a connection →
 *     connection_lost(CONNECTION_LOST); reactor_free runs only releases, and a handle kept past it
 *     answers INVALID and can still be released;
 *   - reactor_connector_release from another thread: the release runs on a later pass;
 *   - bad input: NULL host/path/proto, port 0, a bad bind_host, a bad timeout, bad handles.
 */
#include "test_util.h"

#include <netinet/in.h>
#include <sys/socket.h>

static const char *PROG = "test_connect";

static int in_host_call;

/* ---- the server: echo ------------------------------------------------------------------------ */

static void srv_data(reactor_transport_t *t, const uint8_t *data, size_t len, void *ud) {
  (void)ud;
  CHECK_OK(reactor_transport_write(t, data, len));
}

static reactor_port_t *listen_echo(reactor_t *r, uint16_t *port) {
  reactor_protocol_t p;
  reactor_protocol_init(&p);
  p.data_received = srv_data;
  reactor_port_t *out = NULL;
  REQUIRE_OK(reactor_listen_tcp(r, 0, "127.0.0.1", NULL, &p, NULL, NULL, NULL, &out));
  reactor_address_t host;
  REQUIRE_OK(reactor_port_get_host(out, &host));
  *port = host.port;
  return out;
}

/* ---- the client ------------------------------------------------------------------------------- */

typedef struct {
  int made, lost, lost_reason, failed, failed_reason, releases, inside, echoed;
  int reconnects_left, lose_on_echo;
  int state_in_failed; /* reactor_connector_state inside connection_failed */
  reactor_transport_t *t;
  reactor_connector_t *c_seen;
  reactor_address_t peer_seen;
} client_t;

static void cl_made(reactor_transport_t *t, void *ud) {
  client_t *c = ud;
  if (in_host_call) c->inside++;
  c->made++;
  c->t = t;
  CHECK_OK(reactor_transport_get_host(t, &c->peer_seen));
  CHECK_OK(reactor_transport_write(t, "ping", 4));
}

static void cl_data(reactor_transport_t *t, const uint8_t *data, size_t len, void *ud) {
  client_t *c = ud;
  c->echoed += (int)len;
  (void)data;
  if (c->lose_on_echo && c->echoed >= 4) CHECK_OK(reactor_transport_lose_connection(t));
}

static void cl_lost(reactor_transport_t *t, int reason, void *ud) {
  (void)t;
  client_t *c = ud;
  if (in_host_call) c->inside++;
  c->lost++;
  c->lost_reason = reason;
}

static void cl_failed(reactor_connector_t *conn, int reason, void *ud) {
  client_t *c = ud;
  if (in_host_call) c->inside++;
  c->failed++;
  c->failed_reason = reason;
  c->c_seen = conn;
  c->state_in_failed = conn ? reactor_connector_state(conn) : -1;
  if (c->reconnects_left > 0 && conn) {
    c->reconnects_left--;
    CHECK_EQ(reactor_connector_state(conn), REACTOR_CONNECTOR_DISCONNECTED);
    CHECK_OK(reactor_connector_connect(conn));
  }
}

static void cl_release(void *ud) { ((client_t *)ud)->releases++; }

static reactor_protocol_t client_protocol(void) {
  reactor_protocol_t p;
  reactor_protocol_init(&p);
  p.connection_made = cl_made;
  p.data_received = cl_data;
  p.connection_lost = cl_lost;
  p.connection_failed = cl_failed;
  return p;
}

static void drive(reactor_t *r, int *flag, int want, const char *what) {
  double deadline = tu_now() + 20.0;
  while (*flag < want) {
    CHECK_OK(reactor_iterate(r, 0.005));
    if (tu_now() > deadline) {
      fprintf(stderr, "   timed out waiting for %s\n", what);
      CHECK(0);
      return;
    }
  }
}

static uint16_t closed_port(void) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in sin = {0};
  sin.sin_family = AF_INET;
  sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(bind(fd, (struct sockaddr *)&sin, sizeof sin) == 0);
  socklen_t len = sizeof sin;
  getsockname(fd, (struct sockaddr *)&sin, &len);
  close(fd);
  return ntohs(sin.sin_port);
}

static const char *IMPOSSIBLE =
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.example";

static void test_connect_and_release(void) {
  SECTION("connect_tcp: later-pass callbacks, echo, release waits for the handle");
  reactor_t *r = tu_new_reactor();
  uint16_t port;
  listen_echo(r, &port);
  reactor_protocol_t p = client_protocol();
  client_t c = {0};
  c.lose_on_echo = 1;
  reactor_connector_t *conn = NULL;
  in_host_call = 1;
  CHECK_OK(reactor_connect_tcp(r, "127.0.0.1", port, NULL, &p, &c, cl_release, &conn));
  in_host_call = 0;
  REQUIRE(conn != NULL);
  CHECK_EQ(c.made, 0);
  int st = reactor_connector_state(conn);
  CHECK(st == REACTOR_CONNECTOR_CONNECTING || st == REACTOR_CONNECTOR_CONNECTED);
  CHECK_RC(reactor_connector_connect(conn), REACTOR_E_BUSY);
  drive(r, &c.made, 1, "connection_made");
  CHECK_EQ(reactor_connector_state(conn), REACTOR_CONNECTOR_CONNECTED);
  drive(r, &c.lost, 1, "connection_lost");
  CHECK_EQ(c.echoed, 4);
  CHECK_EQ(c.lost_reason, REACTOR_OK);
  CHECK_EQ(c.inside, 0);
  CHECK_EQ(reactor_connector_state(conn), REACTOR_CONNECTOR_DISCONNECTED);
  CHECK_EQ(c.releases, 0);
  reactor_address_t dest;
  CHECK_OK(reactor_connector_get_destination(conn, &dest));
  CHECK(strcmp(dest.host, "127.0.0.1") == 0);
  CHECK_EQ(dest.port, port);
  CHECK_RC(reactor_connector_stop_connecting(conn), REACTOR_E_ALREADY_CALLED);
  CHECK_OK(reactor_connector_disconnect(conn));

  SECTION("connect again with the same connector, then release inside the call");
  c.made = c.lost = c.echoed = 0;
  CHECK_OK(reactor_connector_connect(conn));
  drive(r, &c.lost, 1, "the second connection");
  CHECK_EQ(c.made, 1);
  reactor_connector_release(conn);
  CHECK_EQ(c.releases, 1);
  CHECK_EQ(reactor_connector_state(conn), REACTOR_E_INVALID);
  reactor_connector_release(conn); /* stale: ignored */

  SECTION("no handle: the release follows connection_lost");
  client_t d = {0};
  d.lose_on_echo = 1;
  CHECK_OK(reactor_connect_tcp(r, "127.0.0.1", port, NULL, &p, &d, cl_release, NULL));
  drive(r, &d.lost, 1, "the handle-less connection");
  CHECK_EQ(d.releases, 1);

  SECTION("refused, DNS failure, localhost, bind_host");
  client_t refused = {0}, dns = {0}, local = {0}, bound = {0}, again = {0};
  CHECK_OK(reactor_connect_tcp(r, "127.0.0.1", closed_port(), NULL, &p, &refused, cl_release, NULL));
  /* no handle asked for, yet the connector in connection_failed is usable there (API.md §6.7) */
  again.reconnects_left = 1;
  CHECK_OK(reactor_connect_tcp(r, "127.0.0.1", closed_port(), NULL, &p, &again, cl_release, NULL));
  CHECK_OK(reactor_connect_tcp(r, IMPOSSIBLE, 80, NULL, &p, &dns, cl_release, NULL));
  local.lose_on_echo = 1;
  CHECK_OK(reactor_connect_tcp(r, "localhost", port, NULL, &p, &local, cl_release, NULL));
  reactor_connect_options_t o;
  reactor_connect_options_init(&o);
  CHECK_NEAR(o.timeout_s, 30.0, 1e-9);
  o.bind_host = "127.0.0.1";
  bound.lose_on_echo = 1;
  CHECK_OK(reactor_connect_tcp(r, "127.0.0.1", port, &o, &p, &bound, cl_release, NULL));
  drive(r, &refused.failed, 1, "the refused attempt");
  drive(r, &again.failed, 2, "the refused attempt and its reconnect");
  drive(r, &dns.failed, 1, "the DNS failure");
  drive(r, &local.lost, 1, "the localhost connection");
  drive(r, &bound.lost, 1, "the bound connection");
  CHECK_EQ(refused.failed_reason, REACTOR_E_CONNECTION_REFUSED);
  CHECK_EQ(refused.releases, 1);
  CHECK(refused.c_seen != NULL);
  CHECK_EQ(refused.state_in_failed, REACTOR_CONNECTOR_DISCONNECTED);
  CHECK_RC(reactor_connector_connect(refused.c_seen), REACTOR_E_INVALID); /* dead after it */
  CHECK_EQ(again.failed, 2);
  CHECK_EQ(again.releases, 1);
  CHECK_EQ(again.reconnects_left, 0);
  CHECK_EQ(dns.failed_reason, REACTOR_E_DNS);
  CHECK_EQ(local.made, 1);
  CHECK_EQ(bound.made, 1);
  CHECK(strcmp(bound.peer_seen.host, "127.0.0.1") == 0);
  CHECK_OK(reactor_free(r));
}

/* ---- stop, reconnect, timeout ----------------------------------------------------------------- */

static atomic_int pool_may_go;
static void block_pool(void *ud) {
  (void)ud;
  for (int i = 0; i < 2000 && !atomic_load(&pool_may_go); i++) tu_sleep_ms(5);
}

static void test_stop_reconnect_timeout(void) {
  SECTION("stop_connecting, reconnect from connection_failed, timeout during resolution");
  reactor_t *r = tu_new_reactor();
  reactor_protocol_t p = client_protocol();

  client_t stopped = {0};
  reactor_connector_t *conn = NULL;
  CHECK_OK(reactor_connect_tcp(r, "localhost", closed_port(), NULL, &p, &stopped, cl_release, &conn));
  CHECK_EQ(reactor_connector_state(conn), REACTOR_CONNECTOR_CONNECTING);
  in_host_call = 1;
  CHECK_OK(reactor_connector_stop_connecting(conn));
  in_host_call = 0;
  CHECK_EQ(stopped.failed, 0);
  CHECK_RC(reactor_connector_stop_connecting(conn), REACTOR_E_ALREADY_CALLED);
  drive(r, &stopped.failed, 1, "the cancelled attempt");
  CHECK_EQ(stopped.failed_reason, REACTOR_E_CANCELLED);
  CHECK(stopped.c_seen == conn);
  CHECK_EQ(stopped.inside, 0);
  CHECK_EQ(stopped.releases, 0);
  reactor_connector_release(conn);
  CHECK_EQ(stopped.releases, 1);

  client_t again = {0};
  again.reconnects_left = 2;
  CHECK_OK(reactor_connect_tcp(r, "127.0.0.1", closed_port(), NULL, &p, &again, cl_release, &conn));
  drive(r, &again.failed, 3, "three refused attempts");
  CHECK_EQ(again.failed_reason, REACTOR_E_CONNECTION_REFUSED);
  CHECK_EQ(again.releases, 0);
  reactor_connector_release(conn);
  CHECK_EQ(again.releases, 1);

  /* the pool's only worker is busy, so the name waits: the timeout covers resolution */
  CHECK_OK(reactor_suggest_thread_pool_size(r, 1));
  atomic_store(&pool_may_go, 0);
  CHECK_OK(reactor_call_in_thread(r, block_pool, NULL, NULL));
  client_t slow = {0};
  reactor_connect_options_t o;
  reactor_connect_options_init(&o);
  o.timeout_s = 0.05;
  CHECK_OK(reactor_connect_tcp(r, "localhost", 80, &o, &p, &slow, cl_release, &conn));
  reactor_address_t dest;
  CHECK_OK(reactor_connector_get_destination(conn, &dest));
  CHECK(strcmp(dest.host, "localhost") == 0);
  CHECK_EQ(dest.port, 80);
  drive(r, &slow.failed, 1, "the timeout");
  CHECK_EQ(slow.failed_reason, REACTOR_E_TIMEOUT);
  atomic_store(&pool_may_go, 1);
  reactor_connector_release(conn);
  CHECK_EQ(slow.releases, 1);
  CHECK_OK(reactor_free(r));
}

/* ---- UNIX --------------------------------------------------------------------------------------- */

static void test_unix(void) {
  SECTION("connect_unix: to a port, to a missing path");
  reactor_t *r = tu_new_reactor();
  reactor_protocol_t sp;
  reactor_protocol_init(&sp);
  sp.data_received = srv_data;
  char path[96];
  snprintf(path, sizeof path, "/tmp/libreactor-connect-%d.sock", (int)getpid());
  unlink(path);
  reactor_port_t *port = NULL;
  CHECK_OK(reactor_listen_unix(r, path, NULL, &sp, NULL, NULL, NULL, &port));
  reactor_protocol_t p = client_protocol();
  client_t c = {0}, missing = {0};
  c.lose_on_echo = 1;
  CHECK_OK(reactor_connect_unix(r, path, NULL, &p, &c, cl_release, NULL));
  CHECK_OK(reactor_connect_unix(r, "/tmp/libreactor-no-such.sock", NULL, &p, &missing, cl_release,
                                NULL));
  drive(r, &c.lost, 1, "the UNIX connection");
  drive(r, &missing.failed, 1, "the missing path");
  CHECK_EQ(c.echoed, 4);
  CHECK_EQ(c.releases, 1);
  CHECK_EQ(missing.failed_reason, REACTOR_E_OS(ENOENT));
  CHECK_OK(reactor_port_stop_listening(port));
  CHECK_OK(reactor_free(r));
}

/* ---- shutdown, free, release from another thread ---------------------------------------------- */

static client_t sd_pending, sd_connected;
static void stop_when_connected(reactor_t *r, void *ud) {
  (void)ud;
  if (sd_connected.made) {
    CHECK_OK(reactor_stop(r));
    return;
  }
  CHECK_OK(reactor_call_later(r, 0.002, stop_when_connected, NULL, NULL, NULL));
}

/* BEFORE shutdown: the blocked pool job may end (the pool is joined in the DURING phase, after the
 * reactor has cancelled the attempt waiting for it) */
static int release_pool(reactor_t *r, uint64_t id, void *ud) {
  (void)r;
  (void)id;
  (void)ud;
  atomic_store(&pool_may_go, 1);
  return REACTOR_OK;
}

static reactor_connector_t *foreign_conn;
static void *release_elsewhere(void *arg) {
  (void)arg;
  reactor_connector_release(foreign_conn);
  return NULL;
}

static void test_shutdown_free(void) {
  SECTION("shutdown: attempts CANCELLED, connections CONNECTION_LOST");
  reactor_t *r = tu_new_reactor();
  uint16_t port;
  listen_echo(r, &port);
  reactor_protocol_t p = client_protocol();
  CHECK_OK(reactor_suggest_thread_pool_size(r, 1));
  atomic_store(&pool_may_go, 0);
  memset(&sd_pending, 0, sizeof sd_pending);
  memset(&sd_connected, 0, sizeof sd_connected);
  CHECK_OK(reactor_connect_tcp(r, "127.0.0.1", port, NULL, &p, &sd_connected, cl_release, NULL));
  CHECK_OK(reactor_call_in_thread(r, block_pool, NULL, NULL));
  CHECK_OK(reactor_connect_tcp(r, "localhost", port, NULL, &p, &sd_pending, cl_release, NULL));
  CHECK_OK(reactor_call_later(r, 0.002, stop_when_connected, NULL, NULL, NULL));
  CHECK_OK(reactor_call_later(r, 20.0, tu_stop_cb, NULL, NULL, NULL));
  CHECK_OK(reactor_add_system_event_trigger(r, REACTOR_PHASE_BEFORE, "shutdown", release_pool, NULL,
                                            NULL, NULL));
  CHECK_OK(reactor_run(r));
  CHECK_EQ(sd_pending.failed, 1);
  CHECK_EQ(sd_pending.failed_reason, REACTOR_E_CANCELLED);
  CHECK_EQ(sd_pending.releases, 1);
  CHECK_EQ(sd_connected.lost, 1);
  CHECK_EQ(sd_connected.lost_reason, REACTOR_E_CONNECTION_LOST);
  CHECK_EQ(sd_connected.releases, 1);
  CHECK_OK(reactor_free(r));

  SECTION("free: releases only; a kept handle answers INVALID and can be released");
  r = tu_new_reactor();
  listen_echo(r, &port);
  client_t held = {0};
  reactor_connector_t *conn = NULL;
  CHECK_OK(reactor_connect_tcp(r, "127.0.0.1", port, NULL, &p, &held, cl_release, &conn));
  drive(r, &held.made, 1, "the held connection");
  CHECK_OK(reactor_free(r));
  CHECK_EQ(held.lost, 0);
  CHECK_EQ(held.releases, 1);
  CHECK_EQ(reactor_connector_state(conn), REACTOR_E_INVALID);
  reactor_connector_release(conn);
  CHECK_EQ(held.releases, 1);

  SECTION("release from another thread: the release runs on a later pass");
  r = tu_new_reactor();
  client_t far = {0};
  CHECK_OK(reactor_connect_tcp(r, "127.0.0.1", closed_port(), NULL, &p, &far, cl_release,
                               &foreign_conn));
  drive(r, &far.failed, 1, "the refused attempt");
  pthread_t th;
  REQUIRE(pthread_create(&th, NULL, release_elsewhere, NULL) == 0);
  pthread_join(th, NULL);
  CHECK_EQ(far.releases, 0);
  CHECK_OK(reactor_iterate(r, 0.0));
  CHECK_EQ(far.releases, 1);
  CHECK_OK(reactor_free(r));
}

/* ---- bad input ---------------------------------------------------------------------------------- */

static void test_bad_input(void) {
  SECTION("bad input: clear statuses, nothing released");
  reactor_t *r = tu_new_reactor();
  reactor_protocol_t p = client_protocol();
  client_t c = {0};
  reactor_connector_t *conn = NULL;
  CHECK_RC(reactor_connect_tcp(r, NULL, 80, NULL, &p, &c, cl_release, &conn), REACTOR_E_INVALID);
  CHECK_RC(reactor_connect_tcp(r, "", 80, NULL, &p, &c, cl_release, &conn),
           REACTOR_E_INVALID_ADDRESS);
  CHECK_RC(reactor_connect_tcp(r, "127.0.0.1", 80, NULL, NULL, &c, cl_release, &conn),
           REACTOR_E_INVALID);
  CHECK_RC(reactor_connect_tcp(r, "127.0.0.1", 0, NULL, &p, &c, cl_release, &conn),
           REACTOR_E_INVALID_ADDRESS);
  reactor_connect_options_t o;
  reactor_connect_options_init(&o);
  o.bind_host = "not-an-ip";
  CHECK_RC(reactor_connect_tcp(r, "127.0.0.1", 80, &o, &p, &c, cl_release, &conn),
           REACTOR_E_INVALID_ADDRESS);
  reactor_connect_options_init(&o);
  o.timeout_s = -1;
  CHECK_RC(reactor_connect_tcp(r, "127.0.0.1", 80, &o, &p, &c, cl_release, &conn), REACTOR_E_INVALID);
  o.timeout_s = 1.0 / 0.0;
  CHECK_RC(reactor_connect_tcp(r, "127.0.0.1", 80, &o, &p, &c, cl_release, &conn), REACTOR_E_INVALID);
  reactor_connect_options_init(&o);
  o.struct_size = 3;
  CHECK_RC(reactor_connect_tcp(r, "127.0.0.1", 80, &o, &p, &c, cl_release, &conn), REACTOR_E_INVALID);
  CHECK_RC(reactor_connect_unix(r, NULL, NULL, &p, &c, cl_release, &conn), REACTOR_E_INVALID);
  char longpath[300];
  memset(longpath, 'b', sizeof longpath - 1);
  longpath[0] = '/';
  longpath[sizeof longpath - 1] = '\0';
  CHECK_RC(reactor_connect_unix(r, longpath, NULL, &p, &c, cl_release, &conn),
           REACTOR_E_INVALID_ADDRESS);
  CHECK(conn == NULL);
  reactor_connector_t *fake = (reactor_connector_t *)(uintptr_t)0x4321;
  CHECK_EQ(reactor_connector_state(fake), REACTOR_E_INVALID);
  CHECK_EQ(reactor_connector_state(NULL), REACTOR_E_INVALID);
  CHECK_RC(reactor_connector_connect(NULL), REACTOR_E_INVALID);
  reactor_address_t dest;
  CHECK_RC(reactor_connector_get_destination(fake, &dest), REACTOR_E_INVALID);
  reactor_connector_release(NULL);
  reactor_connector_release(fake);
  reactor_connect_options_init(NULL);
  CHECK_OK(reactor_free(r));
  CHECK_EQ(c.releases, 0);
  CHECK_EQ(c.failed + c.made, 0);
}

int main(void) {
  tu_watchdog(120);
  signal(SIGPIPE, SIG_DFL);
  tu_banner_probe(PROG);
  test_connect_and_release();
  test_stop_reconnect_timeout();
  test_unix();
  test_shutdown_free();
  test_bad_input();
  return tu_finish(PROG);
}
