/*
 * test_stream.c - stream ports and transports, server side (API.md §6.1, §6.3, §6.4).
 *
 * The clients are plain blocking sockets on a helper thread; the reactor is driven with
 * reactor_iterate on the main thread (and with reactor_run for the shutdown rule).
 *
 * Checks:
 *   - TCP on 127.0.0.1 port 0: get_host reports the real port; build_protocol sees the peer;
 *     a 16 MiB echo comes back byte-exact through write, writev and write_zerocopy in turn; connection_made and
 *     connection_lost(OK) exactly once each, never inside a host call; the connection's release
 *     (from build_protocol) once, after connection_lost; the handle is dead afterwards;
 *   - lose_connection flushes 1 MiB before the close; writes after it → CLOSED;
 *   - abort_connection: the peer gets a reset, connection_lost(CONNECTION_ABORTED);
 *   - a peer's reset → connection_lost(REACTOR_E_OS(ECONNRESET));
 *   - half-close: read_connection_lost on the peer's FIN, writes still go out,
 *     lose_write_connection → write_connection_lost, then connection_lost(OK);
 *   - build_protocol refusing closes the peer, no connection_made;
 *   - pause_reading holds data (and the FIN) until resume_reading;
 *   - a readable event reads on while each read fills the 64 KiB buffer, at most 4 times (256 KiB),
 *     and stops at once when data_received pauses reading or loses the connection;
 *   - pause/resume accepting; stop_listening closes at once (the port binds again), its release
 *     comes on a later pass, a second stop → INVALID;
 *   - UNIX: a path socket (mode applied, unlinked on stop, an existing path → ADDRESS_IN_USE, too
 *     long → INVALID_ADDRESS) and an abstract "@name" socket echo; TCP options → UNSUPPORTED;
 *   - shutdown (reactor_run + stop): every port stops, every connection gets
 *     connection_lost(CONNECTION_LOST); reactor_free with live objects runs only the releases;
 *   - bad input and misuse: NULL proto/out, small struct_size, interface not an IP literal, a port
 *     in use, wrong thread, dead handles, add_reader on a library fd.
 */
#include "test_util.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

static const char *PROG = "test_stream";

/* ---- the server's protocol: counts everything, echoes unless told otherwise ------------------- */

enum { ECHO = 0, SILENT = 1 };

typedef struct {
  int mode;
  int made, lost, lost_reason, read_lost, write_lost, releases, inside_host_call;
  long received;
  int calls;            /* data_received calls */
  const uint8_t *expect; /* when set: the bytes data_received must see, in order */
  reactor_transport_t *t;
  int lost_before_release_ok;
  /* what to do in connection_made */
  void (*on_made)(reactor_transport_t *t);
  void (*on_read_lost)(reactor_transport_t *t);
  /* called at each data_received, before the echo */
  void (*on_data)(reactor_transport_t *t);
} conn_t;

static conn_t conns[8];
static int next_conn;
static int in_host_call; /* the test sets it around its own API calls */
static int builds, refuse_next;
static reactor_address_t last_peer;

static void made(reactor_transport_t *t, void *ud) {
  conn_t *c = ud;
  if (in_host_call) c->inside_host_call++;
  c->made++;
  c->t = t;
  if (c->on_made) c->on_made(t);
}

/* echoes through the three write paths in turn: write, writev (split in two), write_zerocopy (of a
 * copy: `data` is valid only during this call) */
static void received(reactor_transport_t *t, const uint8_t *data, size_t len, void *ud) {
  conn_t *c = ud;
  static unsigned turn;
  if (c->expect) CHECK(memcmp(data, c->expect + c->received, len) == 0);
  c->received += (long)len;
  c->calls++;
  if (c->on_data) c->on_data(t);
  if (c->mode != ECHO) return;
  switch (turn++ % 3) {
    case 0:
      CHECK_OK(reactor_transport_write(t, data, len));
      break;
    case 1: {
      struct iovec iov[2] = {{(void *)data, len / 2}, {(void *)(data + len / 2), len - len / 2}};
      CHECK_OK(reactor_transport_writev(t, iov, 2));
      break;
    }
    default: {
      void *copy = malloc(len);
      REQUIRE(copy != NULL);
      memcpy(copy, data, len);
      CHECK_OK(reactor_transport_write_zerocopy(t, copy, len, free, copy));
    }
  }
}

static void read_lost(reactor_transport_t *t, void *ud) {
  conn_t *c = ud;
  c->read_lost++;
  if (c->on_read_lost) c->on_read_lost(t);
}

static void write_lost(reactor_transport_t *t, void *ud) {
  (void)t;
  ((conn_t *)ud)->write_lost++;
}

static void lost(reactor_transport_t *t, int reason, void *ud) {
  conn_t *c = ud;
  if (in_host_call) c->inside_host_call++;
  c->lost++;
  c->lost_reason = reason;
  if (c->releases == 0) c->lost_before_release_ok = 1;
  /* the handle still works inside connection_lost: writes are refused */
  CHECK_RC(reactor_transport_write(t, "x", 1), REACTOR_E_CLOSED);
  CHECK_OK(reactor_transport_lose_connection(t));
}

static void conn_release(void *ud) { ((conn_t *)ud)->releases++; }

static int build(reactor_port_t *port, const reactor_address_t *peer, void *port_ud, void **conn_ud,
                 reactor_release_fn *release) {
  (void)port;
  CHECK(*conn_ud == port_ud);
  CHECK(*release == NULL);
  builds++;
  last_peer = *peer;
  if (refuse_next) {
    refuse_next = 0;
    return REACTOR_E_INVALID;
  }
  conn_t *c = &conns[next_conn++];
  *conn_ud = c;
  *release = conn_release;
  return REACTOR_OK;
}

static reactor_protocol_t protocol(int half_close) {
  reactor_protocol_t p;
  reactor_protocol_init(&p);
  p.connection_made = made;
  p.data_received = received;
  p.connection_lost = lost;
  p.write_connection_lost = write_lost;
  if (half_close) p.read_connection_lost = read_lost;
  return p;
}

static void reset_conns(void) {
  memset(conns, 0, sizeof conns);
  next_conn = 0;
  builds = 0;
}

/* ---- driving the loop and the client thread --------------------------------------------------- */

static void drive_until(reactor_t *r, atomic_int *flag, const char *what) {
  double deadline = tu_now() + 20.0;
  while (!atomic_load(flag)) {
    CHECK_OK(reactor_iterate(r, 0.005));
    if (tu_now() > deadline) {
      fprintf(stderr, "   timed out waiting for %s\n", what);
      CHECK(0);
      return;
    }
  }
}

static void drive_for(reactor_t *r, double seconds) {
  double end = tu_now() + seconds;
  while (tu_now() < end) CHECK_OK(reactor_iterate(r, 0.005));
}

/* drives until a callback counter is set (10 s at most; the caller checks the count) */
static void drive_until_counted(reactor_t *r, const int *count) {
  double deadline = tu_now() + 10;
  while (*count == 0 && tu_now() < deadline) CHECK_OK(reactor_iterate(r, 0.005));
}

/* a TCP port on 127.0.0.1 (port 0) with the counting protocol `p`; returns its real port */
static uint16_t listen_local(reactor_t *r, const reactor_protocol_t *p, reactor_port_t **port) {
  CHECK_OK(reactor_listen_tcp(r, 0, "127.0.0.1", NULL, p, build, NULL, NULL, port));
  reactor_address_t host;
  CHECK_OK(reactor_port_get_host(*port, &host));
  return host.port;
}

typedef struct {
  int family; /* AF_INET or AF_UNIX */
  uint16_t port;
  char path[100];
  void (*script)(int fd);
  atomic_int done;
} client_t;

static void *client_main(void *arg) {
  client_t *c = arg;
  int fd;
  if (c->family == AF_INET) {
    fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sin = {0};
    sin.sin_family = AF_INET;
    sin.sin_port = htons(c->port);
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(connect(fd, (struct sockaddr *)&sin, sizeof sin) == 0);
  } else {
    fd = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un sun = {0};
    sun.sun_family = AF_UNIX;
    socklen_t len = sizeof sun;
    if (c->path[0] == '@') {
      size_t n = strlen(c->path + 1);
      memcpy(sun.sun_path + 1, c->path + 1, n);
      len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + n);
    } else {
      snprintf(sun.sun_path, sizeof sun.sun_path, "%s", c->path);
    }
    REQUIRE(connect(fd, (struct sockaddr *)&sun, len) == 0);
  }
  c->script(fd);
  close(fd);
  atomic_store(&c->done, 1);
  return NULL;
}

static pthread_t start_client(client_t *c) {
  pthread_t th;
  atomic_store(&c->done, 0);
  REQUIRE(pthread_create(&th, NULL, client_main, c) == 0);
  return th;
}

static void send_all(int fd, const uint8_t *data, size_t len) {
  while (len > 0) {
    ssize_t n = send(fd, data, len, MSG_NOSIGNAL);
    REQUIRE(n > 0);
    data += n;
    len -= (size_t)n;
  }
}

/* reads until EOF (or error); returns bytes read, stores errno of a failed read in *err */
static long read_to_end(int fd, uint8_t *into, size_t cap, int *err) {
  long total = 0;
  *err = 0;
  for (;;) {
    uint8_t scratch[65536];
    ssize_t n = recv(fd, scratch, sizeof scratch, 0);
    if (n == 0) return total;
    if (n < 0) {
      *err = errno;
      return total;
    }
    if (into && (size_t)total + (size_t)n <= cap) memcpy(into + total, scratch, (size_t)n);
    total += n;
  }
}

/* ---- echo --------------------------------------------------------------------------------------- */

#define ECHO_BYTES (16 << 20)
static uint8_t *echo_out, *echo_in;
static long echo_got;
static int echo_err;

/* reads exactly the echo (the server closes only after our FIN, which comes after it) */
static void *echo_reader(void *arg) {
  int fd = *(int *)arg;
  echo_got = 0;
  echo_err = 0;
  while (echo_got < ECHO_BYTES) {
    ssize_t n = recv(fd, echo_in + echo_got, (size_t)(ECHO_BYTES - echo_got), 0);
    if (n <= 0) {
      echo_err = n < 0 ? errno : -1;
      break;
    }
    echo_got += n;
  }
  return NULL;
}

static void echo_script(int fd) {
  pthread_t reader;
  REQUIRE(pthread_create(&reader, NULL, echo_reader, &fd) == 0);
  send_all(fd, echo_out, ECHO_BYTES);
  pthread_join(reader, NULL);
  /* the whole echo is back: our FIN now ends the connection (the protocol is not half-close aware) */
  shutdown(fd, SHUT_WR);
  int err;
  CHECK_EQ(read_to_end(fd, NULL, 0, &err), 0);
}

static void check_echo(void) {
  CHECK_EQ(echo_got, ECHO_BYTES);
  CHECK_EQ(echo_err, 0);
  CHECK(memcmp(echo_out, echo_in, ECHO_BYTES) == 0);
}

static void test_tcp_echo(void) {
  SECTION("TCP: port 0, build_protocol, 16 MiB echo, exact callback counts");
  reset_conns();
  reactor_t *r = tu_new_reactor();
  reactor_protocol_t p = protocol(0);
  reactor_port_t *port = NULL;
  atomic_int port_releases = 0;
  in_host_call = 1;
  CHECK_OK(reactor_listen_tcp(r, 0, "127.0.0.1", NULL, &p, build, &port_releases, tu_count_release,
                              &port));
  in_host_call = 0;
  REQUIRE(port != NULL);
  reactor_address_t host;
  CHECK_OK(reactor_port_get_host(port, &host));
  CHECK_EQ(host.family, REACTOR_FAMILY_INET);
  CHECK(host.port != 0);
  CHECK(strcmp(host.host, "127.0.0.1") == 0);
  CHECK(reactor_port_fileno(port) >= 0);
  CHECK_RC(reactor_add_reader(r, reactor_port_fileno(port), NULL, NULL, NULL), REACTOR_E_INVALID);

  echo_out = malloc(ECHO_BYTES);
  echo_in = malloc(ECHO_BYTES);
  for (size_t i = 0; i < ECHO_BYTES; i++) echo_out[i] = (uint8_t)(i * 7 + (i >> 13));
  client_t c = {.family = AF_INET, .port = host.port, .script = echo_script};
  pthread_t th = start_client(&c);
  drive_until(r, &c.done, "the echo client");
  pthread_join(th, NULL);
  drive_until_counted(r, &conns[0].lost);
  check_echo();
  /* the library's own later work (connection_made, the end) is not counted as thread calls */
  reactor_stats_t stats = {.struct_size = sizeof stats};
  CHECK_OK(reactor_stats(r, &stats));
  CHECK_EQ(stats.thread_calls, 0);
  CHECK_EQ(builds, 1);
  CHECK_EQ(last_peer.family, REACTOR_FAMILY_INET);
  CHECK(strcmp(last_peer.host, "127.0.0.1") == 0);
  CHECK_EQ(conns[0].made, 1);
  CHECK_EQ(conns[0].lost, 1);
  CHECK_EQ(conns[0].lost_reason, REACTOR_OK);
  CHECK_EQ(conns[0].releases, 1);
  CHECK_EQ(conns[0].lost_before_release_ok, 1);
  CHECK_EQ(conns[0].inside_host_call, 0);
  CHECK_EQ(conns[0].received, ECHO_BYTES);
  /* the transport handle is dead */
  CHECK_RC(reactor_transport_write(conns[0].t, "x", 1), REACTOR_E_INVALID);
  CHECK_EQ(reactor_transport_fileno(conns[0].t), -1);

  /* stop_listening: closed now, bind again at once, release on a later pass */
  in_host_call = 1;
  CHECK_OK(reactor_port_stop_listening(port));
  in_host_call = 0;
  CHECK_EQ(atomic_load(&port_releases), 0);
  CHECK_RC(reactor_port_stop_listening(port), REACTOR_E_INVALID);
  CHECK_EQ(reactor_port_fileno(port), -1);
  reactor_port_t *again = NULL;
  CHECK_OK(reactor_listen_tcp(r, host.port, "127.0.0.1", NULL, &p, build, NULL, NULL, &again));
  CHECK_OK(reactor_iterate(r, 0.0));
  CHECK_EQ(atomic_load(&port_releases), 1);
  CHECK_OK(reactor_port_stop_listening(again));
  CHECK_OK(reactor_free(r));
  free(echo_out);
  free(echo_in);
}

/* ---- writev, lose_connection flushes, abort, reset -------------------------------------------- */

#define FLUSH_BYTES (1 << 20)
static long client_got;
static int client_err;

static void read_all_script(int fd) { client_got = read_to_end(fd, NULL, 0, &client_err); }

static void writev_then_lose(reactor_transport_t *t) {
  static uint8_t block[FLUSH_BYTES / 4];
  memset(block, 'z', sizeof block);
  struct iovec iov[4];
  for (int i = 0; i < 4; i++) {
    iov[i].iov_base = block;
    iov[i].iov_len = sizeof block;
  }
  CHECK_OK(reactor_transport_writev(t, iov, 4));
  CHECK_OK(reactor_transport_writev(t, iov, 0));
  CHECK_RC(reactor_transport_writev(t, NULL, 1), REACTOR_E_INVALID);
  CHECK_RC(reactor_transport_writev(t, iov, -1), REACTOR_E_INVALID);
  CHECK_RC(reactor_transport_write(t, NULL, 3), REACTOR_E_INVALID);
  CHECK_OK(reactor_transport_write(t, NULL, 0));
  CHECK_OK(reactor_transport_lose_connection(t));
  CHECK_OK(reactor_transport_lose_connection(t));
  CHECK_RC(reactor_transport_write(t, "x", 1), REACTOR_E_CLOSED);
}

static void abort_now(reactor_transport_t *t) {
  CHECK_OK(reactor_transport_write(t, "lost", 4));
  CHECK_OK(reactor_transport_abort_connection(t));
  CHECK_OK(reactor_transport_abort_connection(t));
}

static void reset_script(int fd) {
  char byte;
  REQUIRE(recv(fd, &byte, 1, 0) == 1); /* the server says hello first */
  struct linger lg = {1, 0};
  setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
}

static void say_hello(reactor_transport_t *t) { CHECK_OK(reactor_transport_write(t, "h", 1)); }

static void run_one(reactor_t *r, uint16_t port, void (*script)(int), void (*on_made)(reactor_transport_t *),
                    const char *what) {
  reset_conns();
  for (int i = 0; i < 8; i++) conns[i].on_made = on_made;
  client_t c = {.family = AF_INET, .port = port, .script = script};
  pthread_t th = start_client(&c);
  drive_until(r, &c.done, what);
  pthread_join(th, NULL);
  /* a connection was made of it (not refused): wait for its end */
  double deadline = tu_now() + 10;
  while (next_conn > 0 && conns[0].lost == 0 && tu_now() < deadline)
    CHECK_OK(reactor_iterate(r, 0.005));
}

static void test_closing(void) {
  SECTION("writev + lose_connection flushes; abort resets; a peer's reset is an OS error");
  reactor_t *r = tu_new_reactor();
  reactor_protocol_t p = protocol(0);
  reactor_port_t *port = NULL;
  CHECK_OK(reactor_listen_tcp(r, 0, NULL, NULL, &p, build, NULL, NULL, &port));
  reactor_address_t host;
  CHECK_OK(reactor_port_get_host(port, &host));
  CHECK(strcmp(host.host, "0.0.0.0") == 0);

  run_one(r, host.port, read_all_script, writev_then_lose, "the flushing client");
  CHECK_EQ(client_got, FLUSH_BYTES);
  CHECK_EQ(client_err, 0);
  CHECK_EQ(conns[0].lost, 1);
  CHECK_EQ(conns[0].lost_reason, REACTOR_OK);
  CHECK_EQ(conns[0].releases, 1);

  run_one(r, host.port, read_all_script, abort_now, "the aborted client");
  CHECK_EQ(client_err, ECONNRESET);
  CHECK_EQ(conns[0].lost, 1);
  CHECK_EQ(conns[0].lost_reason, REACTOR_E_CONNECTION_ABORTED);

  run_one(r, host.port, reset_script, say_hello, "the resetting client");
  CHECK_EQ(conns[0].lost, 1);
  CHECK_EQ(conns[0].lost_reason, REACTOR_E_OS(ECONNRESET));
  CHECK_EQ(conns[0].releases, 1);

  CHECK_OK(reactor_free(r));
}

/* ---- half-close, refusal, pause_reading --------------------------------------------------------- */

static char half_reply[64];
static long half_got;

static void half_script(int fd) {
  send_all(fd, (const uint8_t *)"ping", 4);
  shutdown(fd, SHUT_WR);
  int err;
  half_got = read_to_end(fd, (uint8_t *)half_reply, sizeof half_reply - 1, &err);
  CHECK_EQ(err, 0);
}

static void reply_and_half_close(reactor_transport_t *t) {
  CHECK_OK(reactor_transport_write(t, "pong", 4));
  CHECK_OK(reactor_transport_lose_write_connection(t));
  CHECK_RC(reactor_transport_write(t, "late", 4), REACTOR_E_CLOSED);
  CHECK_RC(reactor_transport_lose_write_connection(t), REACTOR_E_CLOSED);
}

/* The peer reads our half-close first, then sends and half-closes its side. */
static void late_fin_script(int fd) {
  int err;
  half_got = read_to_end(fd, (uint8_t *)half_reply, sizeof half_reply - 1, &err);
  CHECK_EQ(err, 0);
  send_all(fd, (const uint8_t *)"ping", 4);
  shutdown(fd, SHUT_WR);
}

static void pause_now(reactor_transport_t *t) { CHECK_OK(reactor_transport_pause_reading(t)); }

static void send_and_close_script(int fd) { send_all(fd, (const uint8_t *)"held data", 9); }

static void test_half_close_refusal_pause(void) {
  SECTION("half-close; build_protocol refusing; pause_reading holds data and FIN");
  reactor_t *r = tu_new_reactor();
  reactor_protocol_t p = protocol(1);
  reactor_port_t *port = NULL;
  uint16_t tcp_port = listen_local(r, &p, &port);

  reset_conns();
  for (int i = 0; i < 8; i++) {
    conns[i].mode = SILENT;
    conns[i].on_read_lost = reply_and_half_close;
  }
  client_t c = {.family = AF_INET, .port = tcp_port, .script = half_script};
  pthread_t th = start_client(&c);
  drive_until(r, &c.done, "the half-closing client");
  pthread_join(th, NULL);
  drive_until_counted(r, &conns[0].lost);
  CHECK_EQ(half_got, 4);
  CHECK(memcmp(half_reply, "pong", 4) == 0);
  CHECK_EQ(conns[0].received, 4);
  CHECK_EQ(conns[0].read_lost, 1);
  CHECK_EQ(conns[0].write_lost, 1);
  CHECK_EQ(conns[0].lost, 1);
  CHECK_EQ(conns[0].lost_reason, REACTOR_OK);

  /* our write side closes first, the peer's FIN comes later: read_connection_lost, then
     connection_lost(OK) (API.md §6.7) */
  reset_conns();
  for (int i = 0; i < 8; i++) {
    conns[i].mode = SILENT;
    conns[i].on_made = reply_and_half_close;
  }
  client_t late = {.family = AF_INET, .port = tcp_port, .script = late_fin_script};
  th = start_client(&late);
  drive_until(r, &late.done, "the client that half-closes last");
  pthread_join(th, NULL);
  drive_until_counted(r, &conns[0].lost);
  CHECK_EQ(half_got, 4);
  CHECK_EQ(conns[0].received, 4);
  CHECK_EQ(conns[0].write_lost, 1);
  CHECK_EQ(conns[0].read_lost, 1);
  CHECK_EQ(conns[0].lost, 1);
  CHECK_EQ(conns[0].lost_reason, REACTOR_OK);

  SECTION("refused by build_protocol");
  reset_conns();
  refuse_next = 1;
  run_one(r, tcp_port, read_all_script, NULL, "the refused client");
  CHECK_EQ(builds, 1);
  CHECK_EQ(client_got, 0);
  CHECK_EQ(conns[0].made, 0);

  SECTION("pause_reading");
  reset_conns();
  for (int i = 0; i < 8; i++) {
    conns[i].mode = SILENT;
    conns[i].on_made = pause_now;
  }
  client_t c2 = {.family = AF_INET, .port = tcp_port, .script = send_and_close_script};
  th = start_client(&c2);
  drive_until(r, &c2.done, "the sending client");
  pthread_join(th, NULL);
  drive_for(r, 0.1);
  CHECK_EQ(conns[0].made, 1);
  CHECK_EQ(conns[0].received, 0);
  CHECK_EQ(conns[0].lost, 0);
  CHECK_EQ(conns[0].read_lost, 0);
  CHECK_OK(reactor_transport_resume_reading(conns[0].t));
  drive_until_counted(r, &conns[0].read_lost);
  CHECK_EQ(conns[0].received, 9);
  CHECK_EQ(conns[0].read_lost, 1); /* half-close aware: the FIN came after the data */
  CHECK_EQ(conns[0].lost, 0);
  CHECK_OK(reactor_transport_lose_connection(conns[0].t));
  drive_until_counted(r, &conns[0].lost);
  CHECK_EQ(conns[0].lost, 1);
  CHECK_EQ(conns[0].lost_reason, REACTOR_OK);

  SECTION("pause/resume accepting");
  reset_conns();
  for (int i = 0; i < 8; i++) conns[i].mode = SILENT;
  CHECK_OK(reactor_port_pause_accepting(port));
  client_t c3 = {.family = AF_INET, .port = tcp_port, .script = send_and_close_script};
  th = start_client(&c3);
  drive_until(r, &c3.done, "the waiting client"); /* connect completes in the backlog */
  pthread_join(th, NULL);
  drive_for(r, 0.05);
  CHECK_EQ(builds, 0);
  CHECK_OK(reactor_port_resume_accepting(port));
  drive_until_counted(r, &conns[0].read_lost);
  CHECK_EQ(builds, 1);
  CHECK_EQ(conns[0].received, 9);
  CHECK_EQ(conns[0].read_lost, 1);
  CHECK_OK(reactor_free(r));
}

/* ---- reads per readable event ------------------------------------------------------------------ */

#define BURST_BYTES (1 << 20)
static uint8_t burst[BURST_BYTES];

/* 1 MiB at once (the server holds it all: its receive buffer is raised first), then the FIN */
static void burst_script(int fd) { send_all(fd, burst, BURST_BYTES); }

static void paused_with_big_buffer(reactor_transport_t *t) {
  int big = 4 << 20;
  CHECK(setsockopt(reactor_transport_fileno(t), SOL_SOCKET, SO_RCVBUF, &big, sizeof big) == 0);
  CHECK_OK(reactor_transport_pause_reading(t));
}

/* connects the burst client and waits until all of it is queued at the (paused) server */
static conn_t *queued_burst(reactor_t *r, uint16_t port, void (*on_data)(reactor_transport_t *)) {
  reset_conns();
  for (int i = 0; i < 8; i++) {
    conns[i].mode = SILENT;
    conns[i].on_made = paused_with_big_buffer;
    conns[i].on_data = on_data;
    conns[i].expect = burst;
  }
  client_t c = {.family = AF_INET, .port = port, .script = burst_script};
  pthread_t th = start_client(&c);
  drive_until(r, &c.done, "the burst client");
  pthread_join(th, NULL);
  /* the client may have finished into its own send buffer before the accept: wait until the
     server's socket holds all of it */
  int queued = 0;
  double deadline = tu_now() + 10;
  while (queued < BURST_BYTES && tu_now() < deadline) {
    CHECK_OK(reactor_iterate(r, 0.002));
    if (conns[0].made) REQUIRE(ioctl(reactor_transport_fileno(conns[0].t), FIONREAD, &queued) == 0);
  }
  CHECK_EQ(conns[0].made, 1);
  CHECK_EQ(queued, BURST_BYTES);
  CHECK_EQ(conns[0].calls, 0);
  return &conns[0];
}

static void lose_in_data(reactor_transport_t *t) { CHECK_OK(reactor_transport_lose_connection(t)); }

static void test_reads_per_event(void) {
  SECTION("reads per readable event: on while the buffer fills, at most 4, stopped by pause/lose");
  reactor_t *r = tu_new_reactor();
  reactor_protocol_t p = protocol(1);
  reactor_port_t *port = NULL;
  uint16_t tcp_port = listen_local(r, &p, &port);
  for (size_t i = 0; i < BURST_BYTES; i++) burst[i] = (uint8_t)(i * 7);

  /* all of it: one pass (one iterate) never reads more than 4 times, and with 1 MiB waiting it
     reads more than once */
  conn_t *c = queued_burst(r, tcp_port, NULL);
  CHECK_OK(reactor_transport_resume_reading(c->t));
  int most = 0, passes = 0;
  double deadline = tu_now() + 10;
  while (c->read_lost == 0 && tu_now() < deadline) {
    int before = c->calls;
    CHECK_OK(reactor_iterate(r, 0.005));
    if (c->calls - before > most) most = c->calls - before;
    passes++;
  }
  CHECK_EQ(c->received, BURST_BYTES);
  CHECK_EQ(c->read_lost, 1);
  CHECK(most >= 2);
  CHECK(most <= 4);
  CHECK(c->calls >= BURST_BYTES / 65536);
  CHECK(passes >= BURST_BYTES / (4 * 65536));
  CHECK_OK(reactor_transport_lose_connection(c->t));
  drive_until_counted(r, &c->lost);
  CHECK_EQ(c->lost, 1);

  /* data_received pauses reading: no further read in that event, nor later until resumed */
  c = queued_burst(r, tcp_port, pause_now);
  CHECK_OK(reactor_transport_resume_reading(c->t));
  drive_for(r, 0.05);
  CHECK_EQ(c->calls, 1);
  CHECK_EQ(c->received, 65536);
  c->on_data = NULL;
  CHECK_OK(reactor_transport_resume_reading(c->t));
  drive_until_counted(r, &c->read_lost);
  CHECK_EQ(c->received, BURST_BYTES);
  CHECK_OK(reactor_transport_lose_connection(c->t));
  drive_until_counted(r, &c->lost);
  CHECK_EQ(c->lost, 1);

  /* data_received loses the connection: nothing more is read, connection_lost(OK) once */
  c = queued_burst(r, tcp_port, lose_in_data);
  CHECK_OK(reactor_transport_resume_reading(c->t));
  drive_until_counted(r, &c->lost);
  drive_for(r, 0.02);
  CHECK_EQ(c->calls, 1);
  CHECK_EQ(c->received, 65536);
  CHECK_EQ(c->lost, 1);
  CHECK_EQ(c->lost_reason, REACTOR_OK);
  CHECK_EQ(c->releases, 1);
  CHECK_OK(reactor_free(r));
}

/* ---- UNIX --------------------------------------------------------------------------------------- */

static void small_echo_script(int fd) {
  send_all(fd, (const uint8_t *)"unix!", 5);
  char buf[5];
  size_t got = 0;
  while (got < 5) {
    ssize_t n = recv(fd, buf + got, 5 - got, 0);
    REQUIRE(n > 0);
    got += (size_t)n;
  }
  CHECK(memcmp(buf, "unix!", 5) == 0);
}

static void unix_checks(reactor_transport_t *t) {
  reactor_address_t peer, host;
  CHECK_OK(reactor_transport_get_peer(t, &peer));
  CHECK_EQ(peer.family, REACTOR_FAMILY_UNIX);
  CHECK(strcmp(peer.host, "") == 0);
  CHECK_OK(reactor_transport_get_host(t, &host));
  CHECK_EQ(host.family, REACTOR_FAMILY_UNIX);
  int on = 5;
  CHECK_RC(reactor_transport_set_tcp_nodelay(t, 1), REACTOR_E_UNSUPPORTED);
  CHECK_RC(reactor_transport_get_tcp_keepalive(t, &on), REACTOR_E_UNSUPPORTED);
  CHECK_EQ(on, 5);
}

static void run_unix(reactor_t *r, const char *path) {
  reset_conns();
  for (int i = 0; i < 8; i++) conns[i].on_made = unix_checks;
  client_t c = {.family = AF_UNIX, .script = small_echo_script};
  snprintf(c.path, sizeof c.path, "%s", path);
  pthread_t th = start_client(&c);
  drive_until(r, &c.done, "the UNIX client");
  pthread_join(th, NULL);
  drive_until_counted(r, &conns[0].lost);
  CHECK_EQ(conns[0].made, 1);
  CHECK_EQ(conns[0].received, 5);
  CHECK_EQ(conns[0].lost, 1);
  CHECK_EQ(conns[0].lost_reason, REACTOR_OK);
}

static void test_unix(void) {
  SECTION("UNIX: path (mode, unlink, in use, too long) and abstract name");
  reactor_t *r = tu_new_reactor();
  reactor_protocol_t p = protocol(0);
  char path[128];
  snprintf(path, sizeof path, "/tmp/libreactor-test-%d.sock", (int)getpid());
  unlink(path);
  reactor_listen_options_t o;
  reactor_listen_options_init(&o);
  CHECK_EQ(o.mode, 0666);
  CHECK(o.backlog > 0);
  o.mode = 0600;
  reactor_port_t *port = NULL;
  CHECK_OK(reactor_listen_unix(r, path, &o, &p, build, NULL, NULL, &port));
  struct stat st;
  REQUIRE(stat(path, &st) == 0);
  CHECK_EQ(st.st_mode & 0777, 0600);
  reactor_address_t host;
  CHECK_OK(reactor_port_get_host(port, &host));
  CHECK_EQ(host.family, REACTOR_FAMILY_UNIX);
  CHECK(strcmp(host.host, path) == 0);
  run_unix(r, path);

  reactor_port_t *dup = NULL;
  CHECK_RC(reactor_listen_unix(r, path, NULL, &p, build, NULL, NULL, &dup), REACTOR_E_ADDRESS_IN_USE);
  CHECK(dup == NULL);
  CHECK_OK(reactor_port_stop_listening(port));
  CHECK(stat(path, &st) != 0);

  char longpath[300];
  memset(longpath, 'a', sizeof longpath - 1);
  longpath[0] = '/';
  longpath[sizeof longpath - 1] = '\0';
  CHECK_RC(reactor_listen_unix(r, longpath, NULL, &p, build, NULL, NULL, &dup),
           REACTOR_E_INVALID_ADDRESS);
  /* "" and "@" (an abstract name of no bytes) name nothing (API.md §6.7) */
  CHECK_RC(reactor_listen_unix(r, "", NULL, &p, build, NULL, NULL, &dup), REACTOR_E_INVALID_ADDRESS);
  CHECK_RC(reactor_listen_unix(r, "@", NULL, &p, build, NULL, NULL, &dup), REACTOR_E_INVALID_ADDRESS);
  CHECK(dup == NULL);

  char abstract[64];
  snprintf(abstract, sizeof abstract, "@libreactor-test-%d", (int)getpid());
  CHECK_OK(reactor_listen_unix(r, abstract, NULL, &p, build, NULL, NULL, &port));
  CHECK_OK(reactor_port_get_host(port, &host));
  CHECK(strcmp(host.host, abstract) == 0);
  run_unix(r, abstract);
  CHECK_OK(reactor_free(r));
}

/* ---- shutdown and free with live objects ------------------------------------------------------ */

static atomic_int client_may_close;
static void hold_script(int fd) {
  send_all(fd, (const uint8_t *)"hi", 2);
  while (!atomic_load(&client_may_close)) tu_sleep_ms(1);
}

static reactor_t *shutdown_r;
static void stop_when_connected(reactor_t *r, void *ud) {
  (void)ud;
  if (conns[0].received == 2) {
    CHECK_OK(reactor_stop(r));
    return;
  }
  CHECK_OK(reactor_call_later(r, 0.005, stop_when_connected, NULL, NULL, NULL));
}

static void test_shutdown_and_free(void) {
  SECTION("shutdown: ports stop, connections get CONNECTION_LOST; free: releases only");
  reset_conns();
  reactor_t *r = tu_new_reactor();
  shutdown_r = r;
  reactor_protocol_t p = protocol(0);
  for (int i = 0; i < 8; i++) conns[i].mode = SILENT;
  reactor_port_t *port = NULL;
  atomic_int port_releases = 0;
  CHECK_OK(reactor_listen_tcp(r, 0, "127.0.0.1", NULL, &p, build, &port_releases, tu_count_release,
                              &port));
  reactor_address_t host;
  CHECK_OK(reactor_port_get_host(port, &host));
  atomic_store(&client_may_close, 0);
  client_t c = {.family = AF_INET, .port = host.port, .script = hold_script};
  pthread_t th = start_client(&c);
  CHECK_OK(reactor_call_later(r, 0.005, stop_when_connected, NULL, NULL, NULL));
  CHECK_OK(reactor_call_later(r, 20.0, tu_stop_cb, NULL, NULL, NULL));
  CHECK_OK(reactor_run(r));
  CHECK_EQ(conns[0].lost, 1);
  CHECK_EQ(conns[0].lost_reason, REACTOR_E_CONNECTION_LOST);
  CHECK_EQ(conns[0].releases, 1);
  CHECK_EQ(atomic_load(&port_releases), 1);
  CHECK_EQ(reactor_port_fileno(port), -1);
  atomic_store(&client_may_close, 1);
  pthread_join(th, NULL);
  CHECK_OK(reactor_free(r));

  /* free with a live port and connection: releases only */
  reset_conns();
  r = tu_new_reactor();
  port_releases = 0;
  CHECK_OK(reactor_listen_tcp(r, 0, "127.0.0.1", NULL, &p, build, &port_releases, tu_count_release,
                              &port));
  CHECK_OK(reactor_port_get_host(port, &host));
  atomic_store(&client_may_close, 0);
  client_t c2 = {.family = AF_INET, .port = host.port, .script = hold_script};
  th = start_client(&c2);
  double deadline = tu_now() + 10;
  while (conns[0].received < 2 && tu_now() < deadline) CHECK_OK(reactor_iterate(r, 0.005));
  CHECK_EQ(conns[0].made, 1);
  CHECK_OK(reactor_free(r));
  CHECK_EQ(conns[0].lost, 0);
  CHECK_EQ(conns[0].releases, 1);
  CHECK_EQ(atomic_load(&port_releases), 1);
  atomic_store(&client_may_close, 1);
  pthread_join(th, NULL);
}

/* ---- bad input --------------------------------------------------------------------------------- */

static reactor_t *g_r;
static reactor_port_t *g_port;
static int foreign_rc[3];
static void *foreign(void *arg) {
  (void)arg;
  reactor_protocol_t p = protocol(0);
  reactor_port_t *out = NULL;
  foreign_rc[0] = reactor_listen_tcp(g_r, 0, NULL, NULL, &p, NULL, NULL, NULL, &out);
  foreign_rc[1] = reactor_port_stop_listening(g_port);
  foreign_rc[2] = reactor_port_fileno(g_port);
  return NULL;
}

static void test_bad_input(void) {
  SECTION("bad input: clear statuses, nothing released");
  reactor_t *r = tu_new_reactor();
  reactor_protocol_t p = protocol(0);
  reactor_port_t *port = NULL;
  atomic_int releases = 0;
  CHECK_RC(reactor_listen_tcp(r, 0, NULL, NULL, NULL, NULL, &releases, tu_count_release, &port),
           REACTOR_E_INVALID);
  /* `out` NULL is allowed (API.md §6.7): no handle, the port lives until shutdown or reactor_free */
  atomic_int anonymous_releases = 0;
  CHECK_OK(reactor_listen_tcp(r, 0, "127.0.0.1", NULL, &p, NULL, &anonymous_releases, tu_count_release,
                              NULL));
  reactor_protocol_t small = p;
  small.struct_size = 4;
  CHECK_RC(reactor_listen_tcp(r, 0, NULL, NULL, &small, NULL, &releases, tu_count_release, &port),
           REACTOR_E_INVALID);
  reactor_listen_options_t o;
  reactor_listen_options_init(&o);
  o.struct_size = 2;
  CHECK_RC(reactor_listen_tcp(r, 0, NULL, &o, &p, NULL, &releases, tu_count_release, &port),
           REACTOR_E_INVALID);
  CHECK_RC(reactor_listen_tcp(r, 0, "localhost", NULL, &p, NULL, &releases, tu_count_release, &port),
           REACTOR_E_INVALID_ADDRESS);
  CHECK_RC(reactor_listen_unix(r, NULL, NULL, &p, NULL, &releases, tu_count_release, &port),
           REACTOR_E_INVALID);
  CHECK_OK(reactor_listen_tcp(r, 0, "127.0.0.1", NULL, &p, NULL, NULL, NULL, &port));
  reactor_address_t host;
  CHECK_OK(reactor_port_get_host(port, &host));
  reactor_port_t *taken = NULL;
  CHECK_RC(reactor_listen_tcp(r, host.port, "127.0.0.1", NULL, &p, NULL, &releases, tu_count_release,
                              &taken),
           REACTOR_E_ADDRESS_IN_USE);
  CHECK(taken == NULL);
  CHECK_RC(reactor_port_get_host(port, NULL), REACTOR_E_INVALID);

  g_r = r;
  g_port = port;
  pthread_t th;
  REQUIRE(pthread_create(&th, NULL, foreign, NULL) == 0);
  pthread_join(th, NULL);
  CHECK_EQ(foreign_rc[0], REACTOR_E_WRONG_THREAD);
  CHECK_EQ(foreign_rc[1], REACTOR_E_WRONG_THREAD);
  CHECK_EQ(foreign_rc[2], -1);

  /* made-up and NULL handles */
  reactor_transport_t *fake = (reactor_transport_t *)(uintptr_t)0x1234;
  size_t size = 9;
  CHECK_RC(reactor_transport_write(fake, "x", 1), REACTOR_E_INVALID);
  CHECK_RC(reactor_transport_get_write_buffer_size(NULL, &size), REACTOR_E_INVALID);
  CHECK_EQ(size, 9);
  CHECK_RC(reactor_transport_lose_connection(NULL), REACTOR_E_INVALID);
  CHECK_RC(reactor_port_stop_listening(NULL), REACTOR_E_INVALID);
  CHECK_EQ(reactor_port_fileno((reactor_port_t *)fake), -1);
  reactor_protocol_init(NULL);
  reactor_listen_options_init(NULL);

  CHECK_OK(reactor_free(r));
  CHECK_EQ(atomic_load(&releases), 0);
  CHECK_EQ(atomic_load(&anonymous_releases), 1);
}

int main(void) {
  tu_watchdog(120);
  signal(SIGPIPE, SIG_DFL); /* the library must never raise it */
  tu_banner_probe(PROG);
  test_tcp_echo();
  test_closing();
  test_half_close_refusal_pause();
  test_reads_per_event();
  test_unix();
  test_shutdown_and_free();
  test_bad_input();
  return tu_finish(PROG);
}
