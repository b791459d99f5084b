/*
 * test_stream_limits.c - stream transports at their limits (API.md §6.1, §6.3).
 *
 * Checks:
 *   - 500 concurrent connections made by the library's own connectors to its own port, all open
 *     at once, each echoing a message: 500 connection_made and connection_lost on each side;
 *   - out of fds (RLIMIT_NOFILE lowered below the next free fd): the pending peers are accepted with
 *     the reserved fd and closed (they see the connection end), a warning is logged, and the loop does
 *     not spin (it sleeps in its poll); with the limit restored the port accepts again;
 *   - shutdown with live connections and a BEFORE trigger that holds the event, closes them with
 *     lose_connection and completes once they are gone: they end cleanly (REACTOR_OK), not with
 *     CONNECTION_LOST.
 */
#include "test_util.h"

#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>

static const char *PROG = "test_stream_limits";

/* ---- 500 at once ------------------------------------------------------------------------------- */

#define MANY 500
static int srv_made, srv_lost, cl_made, cl_lost, cl_failed, cl_echoed, open_now, max_open;
static reactor_transport_t *clients[MANY];

static void srv_made_cb(reactor_transport_t *t, void *ud) {
  (void)t;
  (void)ud;
  srv_made++;
}
static void srv_data(reactor_transport_t *t, const uint8_t *data, size_t len, void *ud) {
  (void)ud;
  CHECK_OK(reactor_transport_write(t, data, len));
}
static void srv_lost_cb(reactor_transport_t *t, int reason, void *ud) {
  (void)t;
  (void)ud;
  CHECK_EQ(reason, REACTOR_OK);
  srv_lost++;
}

static void cl_made_cb(reactor_transport_t *t, void *ud) {
  (void)ud;
  clients[cl_made++] = t;
  if (++open_now > max_open) max_open = open_now;
  /* nobody writes until all are connected: then they are surely open at the same time */
  if (cl_made == MANY)
    for (int i = 0; i < MANY; i++) CHECK_OK(reactor_transport_write(clients[i], "12345678", 8));
}
static void cl_data(reactor_transport_t *t, const uint8_t *data, size_t len, void *ud) {
  (void)data;
  (void)ud;
  cl_echoed += (int)len;
  CHECK_OK(reactor_transport_lose_connection(t));
}
static void cl_lost_cb(reactor_transport_t *t, int reason, void *ud) {
  (void)t;
  (void)ud;
  CHECK_EQ(reason, REACTOR_OK);
  open_now--;
  cl_lost++;
}
static void cl_failed_cb(reactor_connector_t *c, int reason, void *ud) {
  (void)c;
  (void)ud;
  fprintf(stderr, "   a connect failed: %s\n", reactor_strerror(reason));
  cl_failed++;
}

static void raise_nofile(rlim_t want) {
  struct rlimit rl;
  REQUIRE(getrlimit(RLIMIT_NOFILE, &rl) == 0);
  if (rl.rlim_cur < want) {
    rl.rlim_cur = want < rl.rlim_max ? want : rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
}

static void test_many(void) {
  SECTION("500 concurrent connections");
  raise_nofile(4096);
  reactor_t *r = tu_new_reactor();
  reactor_protocol_t sp, cp;
  reactor_protocol_init(&sp);
  sp.connection_made = srv_made_cb;
  sp.data_received = srv_data;
  sp.connection_lost = srv_lost_cb;
  reactor_protocol_init(&cp);
  cp.connection_made = cl_made_cb;
  cp.data_received = cl_data;
  cp.connection_lost = cl_lost_cb;
  cp.connection_failed = cl_failed_cb;
  reactor_port_t *port = NULL;
  reactor_listen_options_t o;
  reactor_listen_options_init(&o);
  o.backlog = 1024;
  CHECK_OK(reactor_listen_tcp(r, 0, "127.0.0.1", &o, &sp, NULL, NULL, NULL, &port));
  reactor_address_t host;
  CHECK_OK(reactor_port_get_host(port, &host));
  for (int i = 0; i < MANY; i++)
    CHECK_OK(reactor_connect_tcp(r, "127.0.0.1", host.port, NULL, &cp, NULL, NULL, NULL));
  double deadline = tu_now() + 60;
  while ((cl_lost + cl_failed < MANY || srv_lost < srv_made) && tu_now() < deadline)
    CHECK_OK(reactor_iterate(r, 0.01));
  CHECK_EQ(cl_failed, 0);
  CHECK_EQ(cl_made, MANY);
  CHECK_EQ(max_open, MANY);
  CHECK_EQ(cl_echoed, 8 * MANY);
  CHECK_EQ(cl_lost, MANY);
  CHECK_EQ(srv_made, MANY);
  CHECK_EQ(srv_lost, MANY);
  CHECK_OK(reactor_free(r));
}

/* ---- out of fds --------------------------------------------------------------------------------- */

static int warnings;
static void on_log(void *ud, int level, const char *message) {
  (void)ud;
  if (level == REACTOR_LOG_WARN && strstr(message, "file descriptors")) warnings++;
}

static int connect_raw(uint16_t port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in sin = {0};
  sin.sin_family = AF_INET;
  sin.sin_port = htons(port);
  sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(connect(fd, (struct sockaddr *)&sin, sizeof sin) == 0);
  return fd;
}

static int srv2_made;
static void srv2_made_cb(reactor_transport_t *t, void *ud) {
  (void)ud;
  srv2_made++;
  CHECK_OK(reactor_transport_lose_connection(t));
}

static void test_emfile(void) {
  SECTION("out of fds: pending peers are closed, a warning, no spin");
  reactor_t *r = tu_new_reactor();
  reactor_set_log_fn(r, on_log, NULL);
  reactor_protocol_t sp;
  reactor_protocol_init(&sp);
  sp.connection_made = srv2_made_cb;
  reactor_port_t *port = NULL;
  CHECK_OK(reactor_listen_tcp(r, 0, "127.0.0.1", NULL, &sp, NULL, NULL, NULL, &port));
  reactor_address_t host;
  CHECK_OK(reactor_port_get_host(port, &host));
  int peers[3];
  for (int i = 0; i < 3; i++) peers[i] = connect_raw(host.port);

  /* no new fd can be made now: the next free number is at the limit */
  int probe = dup(0);
  REQUIRE(probe >= 0);
  close(probe);
  struct rlimit saved, low;
  REQUIRE(getrlimit(RLIMIT_NOFILE, &saved) == 0);
  low = saved;
  low.rlim_cur = (rlim_t)probe;
  REQUIRE(setrlimit(RLIMIT_NOFILE, &low) == 0);
  REQUIRE(dup(0) < 0 && errno == EMFILE);

  reactor_stats_t before = tu_stats(r);
  for (int i = 0; i < 30; i++) CHECK_OK(reactor_iterate(r, 0.01));
  reactor_stats_t after = tu_stats(r);
  REQUIRE(setrlimit(RLIMIT_NOFILE, &saved) == 0);

  CHECK_EQ(srv2_made, 0);
  CHECK(warnings >= 1);
  /* the loop slept in its poll (once the peers were shed nothing was ready): no spin */
  CHECK(after.idle_seconds - before.idle_seconds > 0.1);
  /* the peers saw their connection closed */
  for (int i = 0; i < 3; i++) {
    char c;
    ssize_t n = recv(peers[i], &c, 1, 0);
    CHECK(n == 0 || (n < 0 && errno == ECONNRESET));
    close(peers[i]);
  }

  /* with fds again, the port accepts */
  int again = connect_raw(host.port);
  double deadline = tu_now() + 10;
  while (srv2_made == 0 && tu_now() < deadline) CHECK_OK(reactor_iterate(r, 0.01));
  CHECK_EQ(srv2_made, 1);
  close(again);
  CHECK_OK(reactor_free(r));
}

/* ---- a draining BEFORE-shutdown trigger ------------------------------------------------------ */

#define DRAIN 5
static reactor_transport_t *live[DRAIN];
static int live_count, drained_ok, drained_other, drain_cl_lost;
static uint64_t drain_trigger_id;
static int drained_made;

static void d_srv_made(reactor_transport_t *t, void *ud) {
  (void)ud;
  live[live_count++] = t;
}
static void d_srv_lost(reactor_transport_t *t, int reason, void *ud) {
  (void)t;
  reactor_t *r = ud;
  if (reason == REACTOR_OK)
    drained_ok++;
  else
    drained_other++;
  if (drained_ok + drained_other == DRAIN) CHECK_OK(reactor_trigger_complete(r, drain_trigger_id));
}
static int drain_before(reactor_t *r, uint64_t id, void *ud) {
  (void)r;
  (void)ud;
  drain_trigger_id = id;
  for (int i = 0; i < live_count; i++) CHECK_OK(reactor_transport_write(live[i], "bye", 3));
  for (int i = 0; i < live_count; i++) CHECK_OK(reactor_transport_lose_connection(live[i]));
  return REACTOR_PENDING;
}
static void d_cl_made(reactor_transport_t *t, void *ud) {
  (void)t;
  (void)ud;
  drained_made++;
}
static void d_cl_lost(reactor_transport_t *t, int reason, void *ud) {
  (void)t;
  (void)reason;
  (void)ud;
  drain_cl_lost++;
}
static void stop_when_all_made(reactor_t *r, void *ud) {
  (void)ud;
  if (live_count == DRAIN && drained_made == DRAIN) {
    CHECK_OK(reactor_stop(r));
    return;
  }
  CHECK_OK(reactor_call_later(r, 0.002, stop_when_all_made, NULL, NULL, NULL));
}

static void test_draining_shutdown(void) {
  SECTION("shutdown: a BEFORE trigger drains the connections cleanly");
  reactor_t *r = tu_new_reactor();
  reactor_protocol_t sp, cp;
  reactor_protocol_init(&sp);
  sp.connection_made = d_srv_made;
  sp.connection_lost = d_srv_lost;
  reactor_protocol_init(&cp);
  cp.connection_made = d_cl_made;
  cp.connection_lost = d_cl_lost;
  reactor_port_t *port = NULL;
  CHECK_OK(reactor_listen_tcp(r, 0, "127.0.0.1", NULL, &sp, NULL, r, NULL, &port));
  reactor_address_t host;
  CHECK_OK(reactor_port_get_host(port, &host));
  for (int i = 0; i < DRAIN; i++)
    CHECK_OK(reactor_connect_tcp(r, "127.0.0.1", host.port, NULL, &cp, NULL, NULL, NULL));
  CHECK_OK(reactor_add_system_event_trigger(r, REACTOR_PHASE_BEFORE, "shutdown", drain_before, NULL,
                                            NULL, NULL));
  CHECK_OK(reactor_call_later(r, 0.002, stop_when_all_made, NULL, NULL, NULL));
  CHECK_OK(reactor_call_later(r, 30.0, tu_stop_cb, NULL, NULL, NULL));
  CHECK_OK(reactor_run(r));
  CHECK_EQ(drained_ok, DRAIN);
  CHECK_EQ(drained_other, 0);
  CHECK_EQ(drain_cl_lost, DRAIN);
  CHECK_OK(reactor_free(r));
}

int main(void) {
  tu_watchdog(120);
  signal(SIGPIPE, SIG_DFL);
  tu_banner_probe(PROG);
  test_many();
  test_emfile();
  test_draining_shutdown();
  return tu_finish(PROG);
}
