/*
 * test_stream_limits.c - stream transports at their limits (API.md §6.1, §6.3).
 *
 * Checks:
 *   - 500 concurrent connections made by the library's own connectors to its own port, all open
 *     at once, each echoing a message: 500 connection_made and connection_lost on each side;
 *   - out of fds (RLIMIT_NOFILE lowered below the next free fd): the pending peers are accepted with
 *     the reserved fd and closed (they see the connection end), a warning is logged, and the loop does
 *     not spin (it sleeps in its poll); with the limit restored the port accepts again;
 *   - fd numbers reused at once: 3000 connections, 50 at a time, each client sending its own id in
 *     several writes and checking the echo; every server transport sees only one id (no event or read
 *     of a closed transport reaches the connection that reuses its fd number);
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
#ifdef __linux__
  if (strcmp(reactor_backend_name(r), "kqueue") == 0) {
    /* libkqueue (the emulation on Linux) opens and closes fds of its own behind our back, so the
       fd limit cannot be set to "exactly full" (it failed under valgrind now and then). */
    printf("   skipped on emulated kqueue: libkqueue's own fds make an exact fd limit unreliable\n");
    CHECK_OK(reactor_free(r));
    return;
  }
#endif
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

/* ---- fd numbers reused --------------------------------------------------------------------------- */

#define REUSE_TOTAL 3000
#define REUSE_AT_ONCE 50
typedef struct {
  uint32_t id;
  int mixed;
  size_t got;
} reuse_srv_t;
typedef struct {
  uint32_t id;
  size_t got;
  int wrong;
} reuse_cl_t;
static reuse_srv_t reuse_srv[REUSE_TOTAL];
static reuse_cl_t reuse_cl[REUSE_TOTAL];
static int reuse_built, reuse_started, reuse_done, reuse_mixed, reuse_wrong;
static uint16_t reuse_port;
static reactor_protocol_t reuse_client;
static reactor_t *reuse_r;

static int reuse_build(reactor_port_t *port, const reactor_address_t *peer, void *port_ud,
                       void **conn_ud, reactor_release_fn *release) {
  (void)port;
  (void)peer;
  (void)port_ud;
  (void)release;
  REQUIRE(reuse_built < REUSE_TOTAL);
  *conn_ud = &reuse_srv[reuse_built++];
  return REACTOR_OK;
}

/* the server: learns the id from the first 4 bytes; every later byte must repeat it; echoes */
static void reuse_srv_data(reactor_transport_t *t, const uint8_t *data, size_t len, void *ud) {
  reuse_srv_t *s = ud;
  for (size_t i = 0; i < len; i++) {
    size_t pos = s->got + i;
    if (pos < 4)
      s->id |= (uint32_t)data[i] << (8 * pos);
    else if (data[i] != (uint8_t)(s->id >> (8 * (pos % 4))))
      s->mixed = 1;
  }
  s->got += len;
  CHECK_OK(reactor_transport_write(t, data, len));
}

static void reuse_start(void) {
  reuse_cl_t *c = &reuse_cl[reuse_started];
  c->id = 0x5a000000u | (uint32_t)reuse_started;
  reuse_started++;
  CHECK_OK(reactor_connect_tcp(reuse_r, "127.0.0.1", reuse_port, NULL, &reuse_client, c, NULL, NULL));
}

static void reuse_cl_made(reactor_transport_t *t, void *ud) {
  reuse_cl_t *c = ud;
  uint8_t id[4] = {(uint8_t)c->id, (uint8_t)(c->id >> 8), (uint8_t)(c->id >> 16), (uint8_t)(c->id >> 24)};
  for (int i = 0; i < 8; i++) CHECK_OK(reactor_transport_write(t, id, 4)); /* 8 words */
}

static void reuse_cl_data(reactor_transport_t *t, const uint8_t *data, size_t len, void *ud) {
  reuse_cl_t *c = ud;
  for (size_t i = 0; i < len; i++)
    if (data[i] != (uint8_t)(c->id >> (8 * ((c->got + i) % 4)))) c->wrong = 1;
  c->got += len;
  if (c->got >= 32) CHECK_OK(reactor_transport_lose_connection(t));
}

static void reuse_cl_lost(reactor_transport_t *t, int reason, void *ud) {
  (void)t;
  reuse_cl_t *c = ud;
  CHECK_EQ(reason, REACTOR_OK);
  if (c->wrong || c->got != 32) reuse_wrong++;
  reuse_done++;
  if (reuse_started < REUSE_TOTAL) reuse_start();
}

static void test_fd_reuse(void) {
  SECTION("fd numbers reused at once: no data crosses connections");
  reactor_t *r = tu_new_reactor();
  reuse_r = r;
  reactor_protocol_t sp;
  reactor_protocol_init(&sp);
  sp.data_received = reuse_srv_data;
  reactor_protocol_init(&reuse_client);
  reuse_client.connection_made = reuse_cl_made;
  reuse_client.data_received = reuse_cl_data;
  reuse_client.connection_lost = reuse_cl_lost;
  reuse_client.connection_failed = cl_failed_cb;
  reactor_port_t *port = NULL;
  CHECK_OK(reactor_listen_tcp(r, 0, "127.0.0.1", NULL, &sp, reuse_build, NULL, NULL, &port));
  reactor_address_t host;
  CHECK_OK(reactor_port_get_host(port, &host));
  reuse_port = host.port;
  for (int i = 0; i < REUSE_AT_ONCE; i++) reuse_start();
  double deadline = tu_now() + 60;
  while (reuse_done < REUSE_TOTAL && tu_now() < deadline) CHECK_OK(reactor_iterate(r, 0.01));
  CHECK_EQ(reuse_done, REUSE_TOTAL);
  CHECK_EQ(reuse_wrong, 0);
  for (int i = 0; i < reuse_built; i++)
    if (reuse_srv[i].mixed) reuse_mixed++;
  CHECK_EQ(reuse_mixed, 0);
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
  test_fd_reuse();
  test_draining_shutdown();
  return tu_finish(PROG);
}
