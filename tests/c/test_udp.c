/*
 * test_udp.c - datagram ports (API.md §6.6, and the datagram points of §6.1 and §6.7).
 *
 * Both ends are usually the library's own ports in one reactor, driven with reactor_iterate
 * (reactor_run for the shutdown rule); plain sockets check what the wire sees.
 *
 * Checks:
 *   - init functions and defaults; the versioned-struct rules for reactor_datagram_protocol_t and
 *     reactor_udp_options_t (too small → INVALID, larger with a zero tail → OK, with a non-zero
 *     tail → UNSUPPORTED);
 *   - IPv4 echo: start_protocol once, on a later pass (never inside listen); get_host; `from` numeric;
 *     write and writev (one datagram); the socket is non-blocking, close-on-exec and an internal fd;
 *     zero-length datagrams are sent and received (write "", write NULL/0, writev with 0 iovecs);
 *   - reading pace: a port reading one datagram at a time, then a burst of 100 queued at once:
 *     every datagram delivered, in order, cut at max_packet_size alike;
 *   - fairness: 600 queued 2 KiB datagrams are read at most 256 KiB per pass, in order, and a
 *     delayed call made from the first delivery runs before the queue is drained;
 *   - max_packet_size truncates (100 and the default 8192); 65507 bytes go, 65508 →
 *     MESSAGE_TOO_LONG (write and writev); writev with more iovecs than IOV_MAX is one datagram;
 *   - address validation: a name, the other family, "" or NULL host (unconnected), port 0 →
 *     INVALID_ADDRESS; udp_connect: NULL host → INVALID, a name / the other family / port 0 →
 *     INVALID_ADDRESS; groups: NULL → INVALID, not multicast / other family / bad interface →
 *     INVALID_ADDRESS; TTL outside 0–255 → INVALID;
 *   - senders interleaved in one queue (IPv4; UNIX bound, unnamed, bound): each datagram arrives
 *     with its own `from`;
 *   - the remembered last destination: a host that extends, cuts or breaks (invalid UTF-8) the
 *     remembered one, or the same host with port 0, is still INVALID_ADDRESS; the same host with
 *     another port reaches that port; refusals change nothing (every datagram reaches its port);
 *   - connected mode: NULL host writes, another destination → INVALID_ADDRESS, connect twice →
 *     BUSY; ECONNREFUSED: writes return OK and connection_refused runs on a later pass, never
 *     inside a write; an unconnected port ignores it;
 *   - stop_listening: the socket is closed before it returns (the port binds again at once), a
 *     queued datagram is never delivered, writes → CLOSED, a second stop → OK, stop_protocol on a
 *     later pass, then the release once, then every function → INVALID (fileno -1); stop before the
 *     first pass still gives start_protocol first;
 *   - multicast on loopback (join 228.x.y.z on 0.0.0.0 with interface 127.0.0.1, loopback on,
 *     send, receive, leave); TTL, loopback mode, outgoing interface and broadcast get/set against
 *     the socket options (sandboxes that refuse a join or a send must say REACTOR_E_OS(errno));
 *   - REACTOR_UDP_LISTEN_MULTIPLE: two ports on one number (both get a group datagram); without the
 *     flag → ADDRESS_IN_USE;
 *   - IPv6 (skipped with a reason when there is no ::1): echo, family rules, IPV6_V6ONLY set
 *     explicitly both ways, an IPv4 peer of a dual-stack port is "::ffff:127.0.0.1", outgoing
 *     interface by name, index or address ("::" with scope_id), adopt;
 *   - UNIX datagram: mode, ADDRESS_IN_USE on an existing path, bind_path (mode; the server sees it
 *     as `from`), unnamed clients (from ""), echo to a path (port ignored), udp_connect of a UNIX
 *     port, a full receiver → REACTOR_E_OS(EAGAIN) and exactly the accepted datagrams arrive,
 *     synchronous errors (a missing path → REACTOR_E_OS(ENOENT), no bind_path left behind), path
 *     rules, unlink when the port ends; abstract "@name" sockets;
 *   - adopt_datagram_port: a duplicate (the host's fd stays usable, also after the stop, and is
 *     non-blocking), options honoured; TCP socket, pipe, file, UNIX datagram → UNSUPPORTED; a
 *     closed fd or -1 → INVALID;
 *   - shutdown: every port (also one opened right before stop, one without a handle) gets
 *     start_protocol, stop_protocol (before the host's DURING triggers), then its release;
 *     reactor_free with live ports runs only the releases, paths are unlinked, handles are dead;
 *   - bad input for every function: NULL / freed / made-up reactor, NULL proto, struct sizes,
 *     max_packet_size 0, unknown flags, mode > 07777, NULL out pointers, NULL and made-up handles,
 *     another thread (WRONG_THREAD before argument checks, fileno -1, nothing changed), `out` NULL
 *     allowed; no failed call ever runs a release or a callback.
 */
#include "test_util.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <limits.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stddef.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/un.h>

static const char *PROG = "test_udp";

static reactor_udp_t *const SENTINEL = (reactor_udp_t *)(uintptr_t)0x5e5e;

/* ---- a port's protocol: records every event ------------------------------------------------- */

typedef struct {
  int started, stopped, released, refused, received, zero_len;
  int start_seq, stop_seq, release_seq;
  int inside;      /* callbacks or releases that ran inside a host call */
  int bad_order;   /* an event before start_protocol or after stop_protocol, or a second start/stop */
  int stop_called; /* the test called udp_stop_listening */
  int after_stop;  /* datagrams delivered after that */
  int echo;        /* send every datagram back to its sender */
  const char *probe_host; /* a valid destination for this port, used inside stop_protocol */
  uint16_t probe_port;
  void (*first_datagram)(void *port); /* called as the first datagram arrives, if set */
  int numbered;       /* datagrams carry a 4-byte sequence number: count those out of order */
  uint32_t next_number;
  int out_of_order;
  size_t last_len;
  uint32_t last_sum;
  uint8_t last[512];
  reactor_address_t last_from;
  /* if set: byte 0 of every datagram is an index into these, and its `from` must be that sender */
  const char *const *sender_hosts;
  const uint16_t *sender_ports;
  int wrong_sender;
  reactor_udp_t *u; /* the handle the callbacks saw */
} port_t;

static int seq;          /* orders the events of all ports */
static int in_host_call; /* set by the test around its own API calls */
static atomic_int bad_releases;
static port_t never; /* ud of calls that must fail: no callback may ever see it */
static atomic_int accidental; /* calls with `never` that wrongly succeeded (their releases do run) */

/* A call that must fail with `want` and leave the out handle `out` untouched; one that wrongly
 * succeeds is counted (and its port stopped) so the summary at the end stays exact. */
#define FAILS(out, call, want)                                                                   \
  do {                                                                                           \
    int fails_rc_ = (call), fails_want_ = (want);                                                \
    if (fails_rc_ != fails_want_) {                                                              \
      fprintf(stderr, "%s:%d: FAILS failed: %s\n   got %d (%s), want %s = %d (%s)\n", __FILE__,    \
              __LINE__, #call, fails_rc_, tu_status(fails_rc_), #want, fails_want_,              \
              tu_status(fails_want_));                                                           \
      atomic_fetch_add(&tu_failures, 1);                                                         \
    }                                                                                            \
    if (fails_rc_ == REACTOR_OK) {                                                               \
      atomic_fetch_add(&accidental, 1);                                                          \
      if ((out) != SENTINEL) reactor_udp_stop_listening(out);                                    \
      (out) = SENTINEL;                                                                          \
    }                                                                                            \
  } while (0)

static uint32_t fnv(const uint8_t *d, size_t n) {
  uint32_t h = 2166136261u;
  for (size_t i = 0; i < n; i++) {
    h ^= d[i];
    h *= 16777619u;
  }
  return h;
}

static void on_start(reactor_udp_t *u, void *ud) {
  port_t *p = ud;
  if (in_host_call) p->inside++;
  if (p->started || p->stopped || p->released) p->bad_order++;
  p->started++;
  p->start_seq = ++seq;
  p->u = u;
}

static void on_datagram(reactor_udp_t *u, const uint8_t *data, size_t len, const reactor_address_t *from,
                        void *ud) {
  port_t *p = ud;
  if (in_host_call) p->inside++;
  if (!p->started || p->stopped) p->bad_order++;
  if (p->stop_called) p->after_stop++;
  if (p->received == 0 && p->first_datagram) p->first_datagram(p);
  p->received++;
  if (len == 0) p->zero_len++;
  CHECK(len == 0 || data != NULL);
  p->last_len = len;
  p->last_sum = len ? fnv(data, len) : fnv(NULL, 0);
  if (len) memcpy(p->last, data, len < sizeof p->last ? len : sizeof p->last);
  if (p->numbered) {
    uint32_t number = 0;
    if (len >= sizeof number) memcpy(&number, data, sizeof number);
    if (len < sizeof number || number != p->next_number) p->out_of_order++;
    p->next_number = number + 1;
  }
  CHECK(from != NULL);
  if (!from) return;
  p->last_from = *from;
  if (p->sender_hosts) {
    int i = len ? data[0] : -1;
    if (i < 0 || strcmp(from->host, p->sender_hosts[i]) != 0 || from->port != p->sender_ports[i]) {
      if (p->wrong_sender++ == 0)
        fprintf(stderr, "   datagram from sender %d arrived with from %s:%u\n", i, from->host, from->port);
    }
  }
  if (p->echo && from->host[0]) CHECK_OK(reactor_udp_write(u, data, len, from->host, from->port));
}

static void on_refused(reactor_udp_t *u, void *ud) {
  (void)u;
  port_t *p = ud;
  if (in_host_call) p->inside++;
  if (!p->started || p->stopped) p->bad_order++;
  p->refused++;
}

static void on_stop(reactor_udp_t *u, void *ud) {
  port_t *p = ud;
  if (in_host_call) p->inside++;
  if (!p->started || p->stopped || p->released) p->bad_order++;
  p->stopped++;
  p->stop_seq = ++seq;
  /* the handle still answers inside stop_protocol; the port is closed */
  if (p->probe_host) CHECK_RC(reactor_udp_write(u, "x", 1, p->probe_host, p->probe_port), REACTOR_E_CLOSED);
  CHECK_OK(reactor_udp_stop_listening(u));
}

static void on_release(void *ud) {
  port_t *p = ud;
  if (in_host_call) p->inside++;
  p->released++;
  p->release_seq = ++seq;
}

static void bad_release(void *ud) {
  (void)ud;
  atomic_fetch_add(&bad_releases, 1);
}

static reactor_datagram_protocol_t proto(void) {
  reactor_datagram_protocol_t d;
  reactor_datagram_protocol_init(&d);
  d.start_protocol = on_start;
  d.datagram_received = on_datagram;
  d.connection_refused = on_refused;
  d.stop_protocol = on_stop;
  return d;
}

static void reset_port(port_t *p) {
  memset(p, 0, sizeof *p);
  p->probe_host = "127.0.0.1";
  p->probe_port = 9;
}

/* a listening UDP port with this protocol (fatal on failure); start_protocol must not have run */
static reactor_udp_t *open_udp(reactor_t *r, port_t *p, uint16_t port, const char *iface,
                               const reactor_udp_options_t *o) {
  reset_port(p);
  if (iface && strchr(iface, ':')) p->probe_host = "::1";
  reactor_datagram_protocol_t d = proto();
  reactor_udp_t *u = NULL;
  in_host_call = 1;
  int rc = reactor_listen_udp(r, port, iface, o, &d, p, on_release, &u);
  in_host_call = 0;
  if (rc != REACTOR_OK)
    fprintf(stderr, "   listen_udp(%u, %s): %d (%s)\n", port, iface ? iface : "NULL", rc, tu_status(rc));
  REQUIRE_OK(rc);
  REQUIRE(u != NULL);
  CHECK_EQ(p->started, 0);
  return u;
}

static reactor_address_t host_of(reactor_udp_t *u) {
  reactor_address_t a;
  memset(&a, 0, sizeof a);
  CHECK_OK(reactor_udp_get_host(u, &a));
  return a;
}

static uint16_t port_of(reactor_udp_t *u) { return host_of(u).port; }

static void stop_port(reactor_udp_t *u, port_t *p) {
  p->stop_called = 1;
  in_host_call = 1;
  CHECK_OK(reactor_udp_stop_listening(u));
  in_host_call = 0;
}

/* ---- driving ----------------------------------------------------------------------------------- */

static double patience(void) { return tu_valgrind() ? 30.0 : 2.0; }

static int drive_until(reactor_t *r, const int *counter, int want, const char *what) {
  double deadline = tu_now() + patience();
  while (*counter < want) {
    CHECK_OK(reactor_iterate(r, 0.002));
    if (tu_now() > deadline) {
      fprintf(stderr, "   timed out waiting for %s (%d of %d)\n", what, *counter, want);
      CHECK(0);
      return 0;
    }
  }
  return 1;
}

static void drive_for(reactor_t *r, double seconds) {
  double end = tu_now() + seconds;
  while (tu_now() < end) CHECK_OK(reactor_iterate(r, 0.002));
}

/* A status that says "the OS refused": REACTOR_E_OS(errno). */
static int note_refusal(const char *what, int rc) {
  if (reactor_status_errno(rc) == 0) {
    fprintf(stderr, "   %s failed with %d (%s), which is not REACTOR_E_OS(errno)-shaped\n", what, rc,
            tu_status(rc));
    CHECK(reactor_status_errno(rc) != 0);
  } else {
    printf("   note: this machine refused %s: %s (REACTOR_E_OS(%d)); that part is not checked\n", what,
           tu_status(rc), reactor_status_errno(rc));
  }
  return 0;
}

/* ---- plain sockets ----------------------------------------------------------------------------- */

static socklen_t make_sockaddr(const char *ip, uint16_t port, struct sockaddr_storage *ss) {
  memset(ss, 0, sizeof *ss);
  if (strchr(ip, ':')) {
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
    s6->sin6_family = AF_INET6;
    s6->sin6_port = htons(port);
    REQUIRE(inet_pton(AF_INET6, ip, &s6->sin6_addr) == 1);
    return sizeof *s6;
  }
  struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
  s4->sin_family = AF_INET;
  s4->sin_port = htons(port);
  REQUIRE(inet_pton(AF_INET, ip, &s4->sin_addr) == 1);
  return sizeof *s4;
}

static int plain_udp(const char *ip, uint16_t port) {
  struct sockaddr_storage ss;
  socklen_t len = make_sockaddr(ip, port, &ss);
  int fd = socket(ss.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  REQUIRE(fd >= 0);
  REQUIRE(bind(fd, (struct sockaddr *)&ss, len) == 0);
  return fd;
}

static uint16_t plain_port(int fd) {
  struct sockaddr_storage ss;
  socklen_t len = sizeof ss;
  REQUIRE(getsockname(fd, (struct sockaddr *)&ss, &len) == 0);
  if (ss.ss_family == AF_INET6) return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
  return ntohs(((struct sockaddr_in *)&ss)->sin_port);
}

static void plain_send(int fd, const char *ip, uint16_t port, const void *data, size_t len) {
  struct sockaddr_storage ss;
  socklen_t sl = make_sockaddr(ip, port, &ss);
  ssize_t n = sendto(fd, data, len, 0, (struct sockaddr *)&ss, sl);
  if (n != (ssize_t)len) perror("sendto");
  REQUIRE(n == (ssize_t)len);
}

/* One datagram from fd (driving r meanwhile, if given): its length, or -1 on timeout. */
static long plain_recv(reactor_t *r, int fd, void *buf, size_t cap) {
  double deadline = tu_now() + patience();
  for (;;) {
    ssize_t n = recv(fd, buf, cap, MSG_DONTWAIT);
    if (n >= 0) return (long)n;
    if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
      perror("recv");
      return -1;
    }
    if (tu_now() > deadline) return -1;
    if (r)
      CHECK_OK(reactor_iterate(r, 0.002));
    else
      tu_sleep_ms(1);
  }
}

/* A UDP port number on 127.0.0.1 that nobody listens on (bound, read, closed). */
static uint16_t closed_udp_port(void) {
  int fd = plain_udp("127.0.0.1", 0);
  uint16_t port = plain_port(fd);
  close(fd);
  return port;
}

static int sockopt_int(int fd, int level, int name) {
  int v = -12345;
  socklen_t len = sizeof v;
  if (getsockopt(fd, level, name, &v, &len) != 0) return -12345;
  if (len == 1) return (int)*(unsigned char *)&v;
  return v;
}

/* ---- every handle function at once ------------------------------------------------------------- */

/* Calls every function of a datagram handle and expects `want` from each (fileno: -1), with out
 * parameters untouched. Writes go to 127.0.0.1:`port`. */
static void check_all(reactor_udp_t *u, int want, const char *what, uint16_t port) {
  int before = atomic_load(&tu_failures);
  reactor_address_t a;
  memset(&a, 0x5a, sizeof a);
  int v = 77;
  struct iovec iov = {(void *)"x", 1};
  CHECK_RC(reactor_udp_write(u, "x", 1, "127.0.0.1", port), want);
  CHECK_RC(reactor_udp_write(u, NULL, 5, NULL, 0), want);
  CHECK_RC(reactor_udp_writev(u, &iov, 1, "127.0.0.1", port), want);
  CHECK_RC(reactor_udp_connect(u, "127.0.0.1", port), want);
  CHECK_RC(reactor_udp_stop_listening(u), want);
  CHECK_RC(reactor_udp_get_host(u, &a), want);
  CHECK_RC(reactor_udp_set_broadcast_allowed(u, 1), want);
  CHECK_RC(reactor_udp_get_broadcast_allowed(u, &v), want);
  CHECK_RC(reactor_udp_join_group(u, "228.0.0.1", NULL), want);
  CHECK_RC(reactor_udp_leave_group(u, "228.0.0.1", NULL), want);
  CHECK_RC(reactor_udp_set_ttl(u, 1), want);
  CHECK_RC(reactor_udp_get_ttl(u, &v), want);
  CHECK_RC(reactor_udp_set_loopback_mode(u, 1), want);
  CHECK_RC(reactor_udp_get_loopback_mode(u, &v), want);
  CHECK_RC(reactor_udp_set_outgoing_interface(u, "127.0.0.1"), want);
  CHECK_RC(reactor_udp_get_outgoing_interface(u, &a), want);
  CHECK_EQ(reactor_udp_fileno(u), -1);
  CHECK_EQ(v, 77);
  CHECK_EQ(a.family, 0x5a5a5a5a);
  if (atomic_load(&tu_failures) != before) fprintf(stderr, "   (in the checks of %s)\n", what);
}

/* the lifecycle of a port that ended through stop_protocol */
static void check_ended(const port_t *p, const char *what) {
  int before = atomic_load(&tu_failures);
  CHECK_EQ(p->started, 1);
  CHECK_EQ(p->stopped, 1);
  CHECK_EQ(p->released, 1);
  CHECK(p->start_seq < p->stop_seq);
  CHECK(p->stop_seq < p->release_seq);
  CHECK_EQ(p->inside, 0);
  CHECK_EQ(p->bad_order, 0);
  CHECK_EQ(p->after_stop, 0);
  if (atomic_load(&tu_failures) != before) fprintf(stderr, "   (in the lifecycle of %s)\n", what);
}

static void fd_noop(reactor_t *r, int fd, uint32_t events, void *ud) {
  (void)r;
  (void)fd;
  (void)events;
  (void)ud;
}

/* ---- init functions and struct sizes ----------------------------------------------------------- */

static void test_structs(void) {
  SECTION("init functions and defaults; versioned struct rules for the protocol and the options");
  reactor_datagram_protocol_t d;
  memset(&d, 0x5a, sizeof d);
  reactor_datagram_protocol_init(&d);
  CHECK_EQ(d.struct_size, sizeof d);
  CHECK(d.start_protocol == NULL && d.datagram_received == NULL && d.connection_refused == NULL &&
        d.stop_protocol == NULL);
  reactor_udp_options_t o;
  memset(&o, 0x5a, sizeof o);
  reactor_udp_options_init(&o);
  CHECK_EQ(o.struct_size, sizeof o);
  CHECK_EQ(o.max_packet_size, 8192);
  CHECK_EQ(o.flags, 0);
  CHECK_EQ(o.mode, 0666);
  CHECK(o.bind_path == NULL);
  reactor_datagram_protocol_init(NULL);
  reactor_udp_options_init(NULL);
  CHECK_EQ(REACTOR_UDP_LISTEN_MULTIPLE, 4);

  reactor_t *r = tu_new_reactor();
  reactor_udp_t *u = SENTINEL;
  const uint32_t small_proto[] = {0, 4, (uint32_t)offsetof(reactor_datagram_protocol_t, stop_protocol)};
  for (size_t i = 0; i < sizeof small_proto / sizeof small_proto[0]; i++) {
    reactor_datagram_protocol_t s = proto();
    s.struct_size = small_proto[i];
    FAILS(u, reactor_listen_udp(r, 0, "127.0.0.1", NULL, &s, &never, bad_release, &u), REACTOR_E_INVALID);
    CHECK(u == SENTINEL);
  }
  const uint32_t small_opts[] = {0, 4, (uint32_t)offsetof(reactor_udp_options_t, bind_path)};
  for (size_t i = 0; i < sizeof small_opts / sizeof small_opts[0]; i++) {
    reactor_udp_options_t s;
    reactor_udp_options_init(&s);
    s.struct_size = small_opts[i];
    FAILS(u, reactor_listen_udp(r, 0, "127.0.0.1", &s, &d, &never, bad_release, &u), REACTOR_E_INVALID);
    CHECK(u == SENTINEL);
  }

  /* larger than the library knows: a zero tail is accepted (and the struct is read), else UNSUPPORTED */
  struct {
    reactor_datagram_protocol_t d;
    unsigned char tail[32];
  } big_d;
  memset(&big_d, 0, sizeof big_d);
  big_d.d = proto();
  big_d.d.struct_size = sizeof big_d;
  struct {
    reactor_udp_options_t o;
    unsigned char tail[32];
  } big_o;
  memset(&big_o, 0, sizeof big_o);
  reactor_udp_options_init(&big_o.o);
  big_o.o.struct_size = sizeof big_o;
  big_o.o.max_packet_size = 3;
  port_t a;
  reset_port(&a);
  reactor_udp_t *ua = NULL;
  CHECK_OK(reactor_listen_udp(r, 0, "127.0.0.1", &big_o.o, &big_d.d, &a, on_release, &ua));
  REQUIRE(ua != NULL);
  drive_until(r, &a.started, 1, "start_protocol of the big-struct port");
  CHECK_OK(reactor_udp_write(ua, "truncated", 9, "127.0.0.1", port_of(ua)));
  drive_until(r, &a.received, 1, "a datagram to itself");
  CHECK_EQ(a.last_len, 3);
  big_d.tail[5] = 1;
  FAILS(u, reactor_listen_udp(r, 0, "127.0.0.1", NULL, &big_d.d, &never, bad_release, &u),
           REACTOR_E_UNSUPPORTED);
  CHECK(u == SENTINEL);
  big_d.tail[5] = 0;
  big_o.tail[31] = 1;
  FAILS(u, reactor_listen_udp(r, 0, "127.0.0.1", &big_o.o, &big_d.d, &never, bad_release, &u),
           REACTOR_E_UNSUPPORTED);
  CHECK(u == SENTINEL);
  stop_port(ua, &a);
  drive_until(r, &a.released, 1, "the release of the big-struct port");
  check_ended(&a, "the big-struct port");
  CHECK_OK(reactor_free(r));
}

/* ---- IPv4 echo --------------------------------------------------------------------------------- */

static void test_echo_ipv4(void) {
  SECTION("IPv4 echo: later-pass start_protocol, get_host, numeric from, write/writev, internal fd");
  reactor_t *r = tu_new_reactor();
  port_t srv, cli, any;
  reactor_udp_t *s = open_udp(r, &srv, 0, "127.0.0.1", NULL);
  srv.echo = 1;
  reactor_address_t a = host_of(s);
  CHECK_EQ(a.family, REACTOR_FAMILY_INET);
  CHECK(strcmp(a.host, "127.0.0.1") == 0);
  CHECK(a.port != 0);

  int fd = reactor_udp_fileno(s);
  CHECK(fd >= 0);
  CHECK(fcntl(fd, F_GETFL) & O_NONBLOCK);
  CHECK(fcntl(fd, F_GETFD) & FD_CLOEXEC);
  CHECK_EQ(sockopt_int(fd, SOL_SOCKET, SO_TYPE), SOCK_DGRAM);
  /* an internal fd: not the host's to register, list or remove */
  CHECK_RC(reactor_add_reader(r, fd, fd_noop, NULL, NULL), REACTOR_E_INVALID);
  CHECK_RC(reactor_add_writer(r, fd, fd_noop, NULL, NULL), REACTOR_E_INVALID);
  int fds[8];
  size_t count = 99;
  CHECK_OK(reactor_get_readers(r, fds, 8, &count));
  CHECK_EQ(count, 0);
  count = 99;
  CHECK_OK(reactor_get_writers(r, fds, 8, &count));
  CHECK_EQ(count, 0);
  CHECK_OK(reactor_remove_all(r, fds, 8, &count));
  CHECK_EQ(count, 0);

  drive_until(r, &srv.started, 1, "start_protocol");
  CHECK(srv.u == s);

  /* a plain client */
  int c = plain_udp("127.0.0.1", 0);
  char buf[64];
  plain_send(c, "127.0.0.1", a.port, "hello", 5);
  CHECK_EQ(plain_recv(r, c, buf, sizeof buf), 5);
  CHECK(memcmp(buf, "hello", 5) == 0);
  CHECK_EQ(srv.received, 1);
  CHECK_EQ(srv.last_from.family, REACTOR_FAMILY_INET);
  CHECK(strcmp(srv.last_from.host, "127.0.0.1") == 0);
  CHECK_EQ(srv.last_from.port, plain_port(c));
  plain_send(c, "127.0.0.1", a.port, "", 0);
  CHECK_EQ(plain_recv(r, c, buf, sizeof buf), 0); /* the zero-length datagram came back */
  CHECK_EQ(srv.zero_len, 1);

  /* a library client on all addresses */
  reactor_udp_t *cu = open_udp(r, &cli, 0, NULL, NULL);
  reactor_address_t ca = host_of(cu);
  CHECK_EQ(ca.family, REACTOR_FAMILY_INET);
  CHECK(strcmp(ca.host, "0.0.0.0") == 0);
  in_host_call = 1;
  CHECK_OK(reactor_udp_write(cu, "ping", 4, "127.0.0.1", a.port));
  in_host_call = 0;
  drive_until(r, &cli.received, 1, "the echo of ping");
  CHECK_EQ(cli.last_len, 4);
  CHECK(memcmp(cli.last, "ping", 4) == 0);
  CHECK_EQ(cli.last_from.family, REACTOR_FAMILY_INET);
  CHECK(strcmp(cli.last_from.host, "127.0.0.1") == 0);
  CHECK_EQ(cli.last_from.port, a.port);
  CHECK_EQ(srv.last_from.port, ca.port);

  /* writev: one datagram */
  struct iovec iov[3] = {{(void *)"ab", 2}, {(void *)"", 0}, {(void *)"cde", 3}};
  CHECK_OK(reactor_udp_writev(cu, iov, 3, "127.0.0.1", a.port));
  drive_until(r, &cli.received, 2, "the echo of the writev");
  CHECK_EQ(srv.last_len, 5);
  CHECK(memcmp(srv.last, "abcde", 5) == 0);
  CHECK_EQ(cli.last_len, 5);
  CHECK(memcmp(cli.last, "abcde", 5) == 0);

  /* zero-length datagrams are sent (and echoed back) */
  CHECK_OK(reactor_udp_write(cu, "", 0, "127.0.0.1", a.port));
  CHECK_OK(reactor_udp_write(cu, NULL, 0, "127.0.0.1", a.port));
  CHECK_OK(reactor_udp_writev(cu, NULL, 0, "127.0.0.1", a.port));
  drive_until(r, &cli.zero_len, 3, "three zero-length echoes");
  CHECK_EQ(srv.zero_len, 4);
  CHECK_EQ(srv.received, 7); /* hello, "", ping, abcde and three empty ones */

  /* interface "" is all IPv4 addresses too */
  reactor_udp_t *au = open_udp(r, &any, 0, "", NULL);
  reactor_address_t aa = host_of(au);
  CHECK_EQ(aa.family, REACTOR_FAMILY_INET);
  CHECK(strcmp(aa.host, "0.0.0.0") == 0);

  CHECK_EQ(srv.inside + cli.inside + any.inside, 0);
  CHECK_EQ(srv.bad_order + cli.bad_order + any.bad_order, 0);
  CHECK_EQ(srv.started, 1);
  stop_port(s, &srv);
  stop_port(cu, &cli);
  stop_port(au, &any);
  drive_until(r, &any.released, 1, "the releases");
  drive_until(r, &srv.released, 1, "the releases");
  drive_until(r, &cli.released, 1, "the releases");
  check_ended(&srv, "the echo server");
  check_ended(&cli, "the echo client");
  check_ended(&any, "the \"\" port");
  close(c);
  CHECK_OK(reactor_free(r));
}

/* ---- sizes ------------------------------------------------------------------------------------- */

static uint8_t big[1 << 20];

static void test_sizes(void) {
  SECTION("max_packet_size truncates; 65507 bytes go, 65508 → MESSAGE_TOO_LONG; writev over IOV_MAX");
  for (size_t i = 0; i < sizeof big; i++) big[i] = (uint8_t)(i * 31 + (i >> 9));
  reactor_t *r = tu_new_reactor();
  port_t small, dflt, large, cli;
  reactor_udp_options_t o;
  reactor_udp_options_init(&o);
  o.max_packet_size = 100;
  reactor_udp_t *su = open_udp(r, &small, 0, "127.0.0.1", &o);
  reactor_udp_t *du = open_udp(r, &dflt, 0, "127.0.0.1", NULL);
  o.max_packet_size = 65536;
  reactor_udp_t *lu = open_udp(r, &large, 0, "127.0.0.1", &o);
  reactor_udp_t *cu = open_udp(r, &cli, 0, "127.0.0.1", NULL);
  uint16_t sp = port_of(su), dp = port_of(du), lp = port_of(lu);

  CHECK_OK(reactor_udp_write(cu, big, 300, "127.0.0.1", sp));
  drive_until(r, &small.received, 1, "the truncated datagram");
  CHECK_EQ(small.last_len, 100);
  CHECK_EQ(small.last_sum, fnv(big, 100));
  CHECK_OK(reactor_udp_write(cu, big + 1, 100, "127.0.0.1", sp));
  drive_until(r, &small.received, 2, "the 100-byte datagram");
  CHECK_EQ(small.last_len, 100);
  CHECK_EQ(small.last_sum, fnv(big + 1, 100));

  CHECK_OK(reactor_udp_write(cu, big, 9000, "127.0.0.1", dp));
  drive_until(r, &dflt.received, 1, "the datagram cut at the default 8192");
  CHECK_EQ(dflt.last_len, 8192);
  CHECK_EQ(dflt.last_sum, fnv(big, 8192));

  CHECK_OK(reactor_udp_write(cu, big, 65507, "127.0.0.1", lp));
  drive_until(r, &large.received, 1, "the 65507-byte datagram");
  CHECK_EQ(large.last_len, 65507);
  CHECK_EQ(large.last_sum, fnv(big, 65507));
  CHECK_RC(reactor_udp_write(cu, big, 65508, "127.0.0.1", lp), REACTOR_E_MESSAGE_TOO_LONG);
  CHECK_RC(reactor_udp_write(cu, big, sizeof big, "127.0.0.1", lp), REACTOR_E_MESSAGE_TOO_LONG);
  struct iovec two[2] = {{big, 60000}, {big + 60000, 5508}};
  CHECK_RC(reactor_udp_writev(cu, two, 2, "127.0.0.1", lp), REACTOR_E_MESSAGE_TOO_LONG);
  drive_for(r, 0.03);
  CHECK_EQ(large.received, 1);

  /* more iovecs than IOV_MAX (API.md §6.7: allowed) still make one datagram */
  enum { MANY = IOV_MAX + 76 };
  static struct iovec many[MANY];
  for (int i = 0; i < MANY; i++) {
    many[i].iov_base = big + i;
    many[i].iov_len = 1;
  }
  int rc = reactor_udp_writev(cu, many, MANY, "127.0.0.1", lp);
  if (rc != REACTOR_OK)
    fprintf(stderr, "   writev of %d one-byte iovecs (one %d-byte datagram):\n", MANY, MANY);
  CHECK_OK(rc);
  if (rc == REACTOR_OK) {
    drive_until(r, &large.received, 2, "the datagram of many iovecs");
    CHECK_EQ(large.last_len, MANY);
    CHECK_EQ(large.last_sum, fnv(big, MANY));
  }
  CHECK_EQ(small.inside + dflt.inside + large.inside + cli.inside, 0);
  CHECK_OK(reactor_free(r));
  CHECK_EQ(small.released + dflt.released + large.released + cli.released, 4);
  CHECK_EQ(small.stopped + dflt.stopped + large.stopped + cli.stopped, 0);
}

/* ---- reading pace ------------------------------------------------------------------------------ */

static void send_numbered(int fd, uint16_t port, uint32_t number, size_t len) {
  uint8_t d[2048];
  REQUIRE(len >= sizeof number && len <= sizeof d);
  memset(d, 0xa5, sizeof d);
  memcpy(d, &number, sizeof number);
  plain_send(fd, "127.0.0.1", port, d, len);
}

/* a port on 127.0.0.1 cutting datagrams at `max_packet_size`, its start_protocol run */
static reactor_udp_t *open_started_udp(reactor_t *r, port_t *p, size_t max_packet_size) {
  reactor_udp_options_t o;
  reactor_udp_options_init(&o);
  o.max_packet_size = max_packet_size;
  reactor_udp_t *u = open_udp(r, p, 0, "127.0.0.1", &o);
  drive_until(r, &p->started, 1, "start_protocol");
  return u;
}

static void test_read_pace(void) {
  SECTION("reading pace: one datagram at a time, then a burst: every datagram, in order, cut alike");
  /* A port whose reads keep finding one datagram reads one per readiness event (recvmsg); one that
   * finds a queue reads batches again. Whatever the pace, the host must see the same thing. */
  reactor_t *r = tu_new_reactor();
  port_t p;
  uint16_t port = port_of(open_started_udp(r, &p, 100));
  p.numbered = 1;
  int c = plain_udp("127.0.0.1", 0);
  uint32_t sent = 0;
  /* sparse traffic: each datagram alone (the later ones go through the one-at-a-time read) */
  for (int i = 0; i < 5; i++) {
    send_numbered(c, port, sent++, 300);
    drive_until(r, &p.received, (int)sent, "a lone datagram");
    CHECK_EQ(p.last_len, 100); /* cut at max_packet_size on either read */
  }
  /* a burst queued at once, then sparse again, three times */
  for (int round = 0; round < 3; round++) {
    for (int i = 0; i < 100; i++) send_numbered(c, port, sent++, i % 2 ? 300 : 8);
    drive_until(r, &p.received, (int)sent, "the burst");
    CHECK_EQ(p.last_len, 100); /* the last of the burst was a 300-byte one */
    send_numbered(c, port, sent++, 8);
    drive_until(r, &p.received, (int)sent, "a lone datagram after the burst");
    CHECK_EQ(p.last_len, 8);
  }
  drive_for(r, 0.02);
  CHECK_EQ(p.received, (int)sent);
  CHECK_EQ(p.out_of_order, 0);
  CHECK_EQ(p.inside + p.bad_order, 0);
  close(c);
  CHECK_OK(reactor_free(r));
  CHECK_EQ(p.released, 1);
}

/* ---- the read budget --------------------------------------------------------------------------- */

static reactor_t *budget_reactor;
static int budget_timer_ran, budget_received_at_timer;

static void budget_timer(reactor_t *r, void *ud) {
  (void)r;
  budget_timer_ran++;
  budget_received_at_timer = ((port_t *)ud)->received;
}

/* from inside the first delivery: other work (this delayed call) must get its turn before the port
 * has drained its queue */
static void budget_first_datagram(void *port) {
  CHECK_OK(reactor_call_later(budget_reactor, 0, budget_timer, port, NULL, NULL));
}

static void test_read_budget(void) {
  SECTION("fairness: a port reads about 256 KiB per readiness event, then other work runs");
  reactor_t *r = tu_new_reactor();
  port_t p;
  reactor_udp_t *u = open_started_udp(r, &p, 2048);
  uint16_t port = port_of(u);
  /* room for the whole queue (SO_RCVBUFFORCE: CAP_NET_ADMIN; without it the test says so) */
  int want = 16 << 20;
  if (setsockopt(reactor_udp_fileno(u), SOL_SOCKET, SO_RCVBUFFORCE, &want, sizeof want) != 0) {
    printf("   note: cannot raise SO_RCVBUF here (%s); the read budget is not checked\n", strerror(errno));
    CHECK_OK(reactor_free(r));
    return;
  }
  enum { N = 600, SIZE = 2048, BUDGET = 256 * 1024 / SIZE };
  budget_reactor = r;
  budget_timer_ran = 0;
  p.first_datagram = budget_first_datagram;
  p.numbered = 1;
  int c = plain_udp("127.0.0.1", 0);
  /* on loopback, a datagram is queued at the port once sent */
  for (uint32_t i = 0; i < N; i++) send_numbered(c, port, i, SIZE);
  int passes = 0, most = 0;
  double deadline = tu_now() + patience();
  while (p.received < N && tu_now() < deadline) {
    int before = p.received;
    CHECK_OK(reactor_iterate(r, 0.002));
    passes++;
    if (p.received - before > most) most = p.received - before;
  }
  CHECK_EQ(p.received, N);
  CHECK_EQ(p.out_of_order, 0);
  CHECK_EQ(p.last_len, SIZE);
  CHECK(most <= BUDGET); /* 600 datagrams of 2 KiB: at most 128 (256 KiB) per pass */
  CHECK(passes >= N / BUDGET);
  CHECK_EQ(budget_timer_ran, 1);
  CHECK(budget_received_at_timer < N);
  if (most > BUDGET || budget_received_at_timer >= N)
    fprintf(stderr, "   most per pass %d (budget %d), delivered when the delayed call ran %d of %d\n", most,
            BUDGET, budget_received_at_timer, N);
  close(c);
  CHECK_OK(reactor_free(r));
  CHECK_EQ(p.released, 1);
}

/* ---- address validation ------------------------------------------------------------------------ */

static void test_validation(void) {
  SECTION("address validation: names, the other family, NULL/empty host, port 0, groups, TTL");
  reactor_t *r = tu_new_reactor();
  port_t p, rx;
  reactor_udp_t *u = open_udp(r, &p, 0, "127.0.0.1", NULL);
  reactor_udp_t *ru = open_udp(r, &rx, 0, "127.0.0.1", NULL);
  uint16_t rp = port_of(ru);
  struct iovec iov = {(void *)"x", 1};
  const char *bad_hosts[] = {"localhost", "::1", "", "300.1.2.3", "127.0.0.1:80", "example.invalid"};
  for (size_t i = 0; i < sizeof bad_hosts / sizeof bad_hosts[0]; i++) {
    CHECK_RC(reactor_udp_write(u, "x", 1, bad_hosts[i], rp), REACTOR_E_INVALID_ADDRESS);
    CHECK_RC(reactor_udp_writev(u, &iov, 1, bad_hosts[i], rp), REACTOR_E_INVALID_ADDRESS);
    CHECK_RC(reactor_udp_connect(u, bad_hosts[i], rp), REACTOR_E_INVALID_ADDRESS);
  }
  CHECK_RC(reactor_udp_write(u, "x", 1, NULL, rp), REACTOR_E_INVALID_ADDRESS);
  CHECK_RC(reactor_udp_writev(u, &iov, 1, NULL, rp), REACTOR_E_INVALID_ADDRESS);
  CHECK_RC(reactor_udp_write(u, "x", 1, "127.0.0.1", 0), REACTOR_E_INVALID_ADDRESS);
  CHECK_RC(reactor_udp_write(u, "", 0, "127.0.0.1", 0), REACTOR_E_INVALID_ADDRESS);
  CHECK_RC(reactor_udp_writev(u, &iov, 1, "127.0.0.1", 0), REACTOR_E_INVALID_ADDRESS);
  CHECK_RC(reactor_udp_connect(u, "127.0.0.1", 0), REACTOR_E_INVALID_ADDRESS);
  CHECK_RC(reactor_udp_connect(u, NULL, rp), REACTOR_E_INVALID);
  CHECK_RC(reactor_udp_write(u, NULL, 5, "127.0.0.1", rp), REACTOR_E_INVALID);
  CHECK_RC(reactor_udp_writev(u, NULL, 2, "127.0.0.1", rp), REACTOR_E_INVALID);
  CHECK_RC(reactor_udp_writev(u, &iov, -1, "127.0.0.1", rp), REACTOR_E_INVALID);
  /* none of that connected the port or sent anything */
  CHECK_RC(reactor_udp_write(u, "x", 1, NULL, 0), REACTOR_E_INVALID_ADDRESS);
  drive_for(r, 0.03);
  CHECK_EQ(rx.received, 0);

  CHECK_RC(reactor_udp_join_group(u, NULL, NULL), REACTOR_E_INVALID);
  CHECK_RC(reactor_udp_leave_group(u, NULL, "127.0.0.1"), REACTOR_E_INVALID);
  const char *bad_groups[] = {"127.0.0.1", "10.1.2.3", "255.255.255.255", "ff02::1", "all-hosts", ""};
  for (size_t i = 0; i < sizeof bad_groups / sizeof bad_groups[0]; i++) {
    CHECK_RC(reactor_udp_join_group(u, bad_groups[i], NULL), REACTOR_E_INVALID_ADDRESS);
    CHECK_RC(reactor_udp_leave_group(u, bad_groups[i], NULL), REACTOR_E_INVALID_ADDRESS);
  }
  CHECK_RC(reactor_udp_join_group(u, "228.0.0.1", "no-such-interface"), REACTOR_E_INVALID_ADDRESS);
  CHECK_RC(reactor_udp_join_group(u, "228.0.0.1", "::1"), REACTOR_E_INVALID_ADDRESS);
  CHECK_RC(reactor_udp_set_outgoing_interface(u, "no-such-interface"), REACTOR_E_INVALID_ADDRESS);
  CHECK_RC(reactor_udp_set_outgoing_interface(u, "::1"), REACTOR_E_INVALID_ADDRESS);
  CHECK_RC(reactor_udp_set_outgoing_interface(u, NULL), REACTOR_E_INVALID);

  int ttl = -7;
  CHECK_OK(reactor_udp_set_ttl(u, 3));
  CHECK_RC(reactor_udp_set_ttl(u, 256), REACTOR_E_INVALID);
  CHECK_RC(reactor_udp_set_ttl(u, -1), REACTOR_E_INVALID);
  CHECK_RC(reactor_udp_set_ttl(u, INT_MIN), REACTOR_E_INVALID);
  CHECK_RC(reactor_udp_set_ttl(u, INT_MAX), REACTOR_E_INVALID);
  CHECK_OK(reactor_udp_get_ttl(u, &ttl));
  CHECK_EQ(ttl, 3);

  reactor_datagram_protocol_t d = proto();
  reactor_udp_t *u2 = SENTINEL;
  FAILS(u2, reactor_listen_udp(r, 0, "localhost", NULL, &d, &never, bad_release, &u2),
        REACTOR_E_INVALID_ADDRESS);
  FAILS(u2, reactor_listen_udp(r, 0, "127.0.0.1:53", NULL, &d, &never, bad_release, &u2),
        REACTOR_E_INVALID_ADDRESS);
  CHECK(u2 == SENTINEL);
  CHECK_EQ(p.inside + rx.inside, 0);
  CHECK_OK(reactor_free(r));
}

/* A port remembers its last destination (the bytes of the host's string, the port number, the
 * parsed address): a write that differs from it in any way is checked again, and one that is refused
 * leaves the remembered destination as it was. */
static void test_destination_cache(void) {
  SECTION("last destination: only the same bytes and port skip the checks; a refusal changes nothing");
  reactor_t *r = tu_new_reactor();
  port_t p, rx, other;
  reactor_udp_t *u = open_udp(r, &p, 0, "127.0.0.1", NULL);
  reactor_udp_t *ru = open_udp(r, &rx, 0, "127.0.0.1", NULL);
  reactor_udp_t *ou = open_udp(r, &other, 0, "127.0.0.1", NULL);
  uint16_t rp = port_of(ru), op = port_of(ou);
  struct iovec iov = {(void *)"v", 1};
  CHECK_OK(reactor_udp_write(u, "a", 1, "127.0.0.1", rp));
  /* the remembered host with something after it, invalid UTF-8, a host that is a prefix of it */
  const char *near_misses[] = {"127.0.0.1 ", "127.0.0.1\xff", "\xff", "127.0.0.", "127.0.0.1%lo"};
  for (size_t i = 0; i < sizeof near_misses / sizeof near_misses[0]; i++) {
    CHECK_RC(reactor_udp_write(u, "x", 1, near_misses[i], rp), REACTOR_E_INVALID_ADDRESS);
    CHECK_RC(reactor_udp_writev(u, &iov, 1, near_misses[i], rp), REACTOR_E_INVALID_ADDRESS);
  }
  /* the remembered host, another port: port 0 is refused, another port is another destination */
  CHECK_RC(reactor_udp_write(u, "x", 1, "127.0.0.1", 0), REACTOR_E_INVALID_ADDRESS);
  CHECK_OK(reactor_udp_write(u, "b", 1, "127.0.0.1", op));
  /* back to the first, then the same again (the remembered path), then through writev */
  CHECK_OK(reactor_udp_write(u, "c", 1, "127.0.0.1", rp));
  CHECK_OK(reactor_udp_write(u, "d", 1, "127.0.0.1", rp));
  CHECK_RC(reactor_udp_write(u, "x", 1, "127.0.0.1\xff", rp), REACTOR_E_INVALID_ADDRESS);
  CHECK_OK(reactor_udp_writev(u, &iov, 1, "127.0.0.1", rp));
  drive_until(r, &rx.received, 4, "the four datagrams to the first destination");
  drive_until(r, &other.received, 1, "the datagram to the second destination");
  drive_for(r, 0.02);
  CHECK_EQ(rx.received, 4);
  CHECK_EQ(rx.last_len, 1);
  CHECK_EQ(rx.last[0], 'v');
  CHECK_EQ(other.received, 1);
  CHECK_EQ(other.last[0], 'b');
  CHECK_EQ(p.received, 0);
  CHECK_OK(reactor_free(r));
}

/* ---- connected mode and ECONNREFUSED ----------------------------------------------------------- */

static void test_connected(void) {
  SECTION("connected mode: NULL host, another destination → INVALID_ADDRESS, connect twice → BUSY");
  reactor_t *r = tu_new_reactor();
  port_t a, b, c;
  reactor_udp_t *au = open_udp(r, &a, 0, "127.0.0.1", NULL);
  reactor_udp_t *bu = open_udp(r, &b, 0, "127.0.0.1", NULL);
  reactor_udp_t *cu = open_udp(r, &c, 0, "127.0.0.1", NULL);
  uint16_t pa = port_of(au), pb = port_of(bu), pc = port_of(cu);
  drive_until(r, &c.started, 1, "start_protocol");
  in_host_call = 1;
  CHECK_OK(reactor_udp_connect(cu, "127.0.0.1", pa));
  in_host_call = 0;
  c.probe_host = NULL; /* connected: only NULL or the peer is a valid destination */
  CHECK_OK(reactor_udp_write(cu, "one", 3, NULL, 0));
  CHECK_OK(reactor_udp_write(cu, "two", 3, "127.0.0.1", pa));
  struct iovec iov[2] = {{(void *)"thr", 3}, {(void *)"ee", 2}};
  CHECK_OK(reactor_udp_writev(cu, iov, 2, NULL, 0));
  CHECK_RC(reactor_udp_write(cu, "x", 1, "127.0.0.1", pb), REACTOR_E_INVALID_ADDRESS);
  CHECK_RC(reactor_udp_write(cu, "x", 1, "127.0.0.2", pa), REACTOR_E_INVALID_ADDRESS);
  CHECK_RC(reactor_udp_writev(cu, iov, 2, "127.0.0.1", pb), REACTOR_E_INVALID_ADDRESS);
  CHECK_RC(reactor_udp_connect(cu, "127.0.0.1", pb), REACTOR_E_BUSY);
  CHECK_RC(reactor_udp_connect(cu, "127.0.0.1", pa), REACTOR_E_BUSY);
  drive_until(r, &a.received, 3, "three connected datagrams");
  CHECK_EQ(a.last_len, 5);
  CHECK(memcmp(a.last, "three", 5) == 0);
  CHECK_EQ(a.last_from.port, pc);
  drive_for(r, 0.02);
  CHECK_EQ(a.received, 3);
  CHECK_EQ(b.received, 0);
  CHECK_EQ(port_of(cu), pc);
  /* the peer's replies come in */
  CHECK_OK(reactor_udp_write(au, "back", 4, "127.0.0.1", pc));
  drive_until(r, &c.received, 1, "the reply");
  CHECK_EQ(c.last_from.port, pa);
  CHECK_EQ(c.refused, 0);

  SECTION("ECONNREFUSED: writes return OK, connection_refused on a later pass; unconnected ignores it");
  port_t d, e;
  reactor_udp_t *du = open_udp(r, &d, 0, "127.0.0.1", NULL);
  reactor_udp_t *eu = open_udp(r, &e, 0, "127.0.0.1", NULL);
  drive_until(r, &d.started, 1, "start_protocol");
  drive_until(r, &e.started, 1, "start_protocol");
  uint16_t closed = closed_udp_port();
  CHECK_OK(reactor_udp_connect(du, "127.0.0.1", closed));
  d.probe_host = NULL;
  /* on loopback the ICMP error is back before sendto returns, so the second and third writes meet
   * ECONNREFUSED in the kernel: still OK, and nothing is called inside them */
  in_host_call = 1;
  CHECK_OK(reactor_udp_write(du, "a", 1, NULL, 0));
  CHECK_OK(reactor_udp_write(du, "b", 1, NULL, 0));
  CHECK_OK(reactor_udp_writev(du, iov, 2, NULL, 0));
  CHECK_OK(reactor_udp_write(du, "c", 1, "127.0.0.1", closed));
  in_host_call = 0;
  CHECK_EQ(d.refused, 0);
  drive_until(r, &d.refused, 1, "connection_refused");
  drive_for(r, 0.02);
  CHECK(d.refused >= 1 && d.refused <= 4);
  CHECK_EQ(d.inside, 0);
  CHECK_EQ(d.bad_order, 0);
  CHECK_EQ(d.stopped, 0);
  /* the port goes on after connection_refused: writes are still accepted */
  CHECK_OK(reactor_udp_write(du, "d", 1, NULL, 0));

  in_host_call = 1;
  for (int i = 0; i < 3; i++) CHECK_OK(reactor_udp_write(eu, "x", 1, "127.0.0.1", closed));
  in_host_call = 0;
  drive_for(r, 0.05);
  CHECK_EQ(e.refused, 0);
  CHECK_OK(reactor_udp_write(au, "still", 5, "127.0.0.1", port_of(eu)));
  drive_until(r, &e.received, 1, "a datagram to the unconnected port");
  CHECK_EQ(e.inside + a.inside + b.inside + c.inside, 0);
  drive_for(r, 0.01);
  CHECK_OK(reactor_free(r));
  CHECK_EQ(a.released + b.released + c.released + d.released + e.released, 5);
}

/* ---- stop timing ------------------------------------------------------------------------------- */

static void test_stop(void) {
  SECTION("stop_listening: closed before it returns, nothing delivered after, CLOSED writes, second "
          "stop OK, stop_protocol later, release once, then a dead handle");
  reactor_t *r = tu_new_reactor();
  port_t a;
  reactor_udp_t *au = open_udp(r, &a, 0, "127.0.0.1", NULL);
  drive_until(r, &a.started, 1, "start_protocol");
  uint16_t pa = port_of(au);
  int c = plain_udp("127.0.0.1", 0);
  plain_send(c, "127.0.0.1", pa, "late", 4); /* waits in the socket, unread */
  stop_port(au, &a);
  CHECK_EQ(a.stopped, 0);
  CHECK_EQ(a.released, 0);
  struct iovec iov = {(void *)"x", 1};
  CHECK_RC(reactor_udp_write(au, "x", 1, "127.0.0.1", pa), REACTOR_E_CLOSED);
  CHECK_RC(reactor_udp_write(au, "", 0, "127.0.0.1", pa), REACTOR_E_CLOSED);
  CHECK_RC(reactor_udp_writev(au, &iov, 1, "127.0.0.1", pa), REACTOR_E_CLOSED);
  in_host_call = 1;
  CHECK_OK(reactor_udp_stop_listening(au));
  in_host_call = 0;
  CHECK_EQ(a.stopped, 0);
  /* the socket is closed: its port binds again at once, without SO_REUSEADDR */
  int again = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  struct sockaddr_storage ss;
  socklen_t sl = make_sockaddr("127.0.0.1", pa, &ss);
  int bound = bind(again, (struct sockaddr *)&ss, sl);
  if (bound != 0) perror("   bind to the stopped port");
  CHECK_EQ(bound, 0);
  close(again);
  CHECK_EQ(reactor_udp_fileno(au), -1); /* the socket is closed (reactor.h: -1 for a stopped port) */
  drive_until(r, &a.released, 1, "stop_protocol and the release");
  drive_for(r, 0.02);
  check_ended(&a, "the stopped port");
  CHECK_EQ(a.received, 0);
  check_all(au, REACTOR_E_INVALID, "a stopped port", 9);
  close(c);

  SECTION("stop before the first pass: start_protocol still runs first, once");
  port_t b;
  reactor_udp_t *bu = open_udp(r, &b, 0, "127.0.0.1", NULL);
  stop_port(bu, &b);
  CHECK_EQ(b.started, 0);
  CHECK_EQ(b.stopped, 0);
  drive_until(r, &b.released, 1, "the release of the port stopped at once");
  drive_for(r, 0.02);
  check_ended(&b, "the port stopped before its first pass");
  check_all(bu, REACTOR_E_INVALID, "a port stopped before its first pass", 9);
  CHECK_OK(reactor_free(r));
  CHECK_EQ(a.released + b.released, 2);
}

/* ---- multicast --------------------------------------------------------------------------------- */

static void test_multicast(void) {
  SECTION("multicast options: TTL, loopback mode, outgoing interface, broadcast (vs. the socket)");
  reactor_t *r = tu_new_reactor();
  port_t rx, tx, m1, m2; /* (m1, m2: used below, released in reactor_free) */
  reactor_udp_t *ru = open_udp(r, &rx, 0, NULL, NULL);
  reactor_udp_t *tu = open_udp(r, &tx, 0, NULL, NULL);
  uint16_t prx = port_of(ru), ptx = port_of(tu);
  int fd = reactor_udp_fileno(tu);
  REQUIRE(fd >= 0);

  int v = -1;
  CHECK_OK(reactor_udp_get_ttl(tu, &v));
  CHECK_EQ(v, sockopt_int(fd, IPPROTO_IP, IP_MULTICAST_TTL)); /* the OS default */
  CHECK_OK(reactor_udp_set_ttl(tu, 0));
  CHECK_OK(reactor_udp_get_ttl(tu, &v));
  CHECK_EQ(v, 0);
  CHECK_OK(reactor_udp_set_ttl(tu, 255));
  CHECK_OK(reactor_udp_get_ttl(tu, &v));
  CHECK_EQ(v, 255);
  CHECK_EQ(sockopt_int(fd, IPPROTO_IP, IP_MULTICAST_TTL), 255);
  CHECK_RC(reactor_udp_set_ttl(tu, 256), REACTOR_E_INVALID);
  CHECK_RC(reactor_udp_set_ttl(tu, -1), REACTOR_E_INVALID);
  CHECK_OK(reactor_udp_get_ttl(tu, &v));
  CHECK_EQ(v, 255);
  CHECK_OK(reactor_udp_set_ttl(tu, 1));

  CHECK_OK(reactor_udp_get_loopback_mode(tu, &v));
  CHECK_EQ(v, sockopt_int(fd, IPPROTO_IP, IP_MULTICAST_LOOP));
  CHECK_OK(reactor_udp_set_loopback_mode(tu, 0));
  CHECK_OK(reactor_udp_get_loopback_mode(tu, &v));
  CHECK_EQ(v, 0);
  CHECK_EQ(sockopt_int(fd, IPPROTO_IP, IP_MULTICAST_LOOP), 0);
  CHECK_OK(reactor_udp_set_loopback_mode(tu, 1));
  CHECK_OK(reactor_udp_get_loopback_mode(tu, &v));
  CHECK_EQ(v, 1);
  CHECK_EQ(sockopt_int(fd, IPPROTO_IP, IP_MULTICAST_LOOP), 1);

  CHECK_OK(reactor_udp_get_broadcast_allowed(tu, &v));
  CHECK_EQ(v, 0); /* the OS default */
  CHECK_OK(reactor_udp_set_broadcast_allowed(tu, 1));
  CHECK_OK(reactor_udp_get_broadcast_allowed(tu, &v));
  CHECK_EQ(v, 1);
  CHECK_EQ(sockopt_int(fd, SOL_SOCKET, SO_BROADCAST), 1);
  CHECK_OK(reactor_udp_set_broadcast_allowed(tu, 0));
  CHECK_OK(reactor_udp_get_broadcast_allowed(tu, &v));
  CHECK_EQ(v, 0);
  CHECK_EQ(sockopt_int(fd, SOL_SOCKET, SO_BROADCAST), 0);

  reactor_address_t oi;
  memset(&oi, 0, sizeof oi);
  CHECK_OK(reactor_udp_get_outgoing_interface(tu, &oi));
  CHECK_EQ(oi.family, REACTOR_FAMILY_INET);
  CHECK(strcmp(oi.host, "0.0.0.0") == 0);
  CHECK_OK(reactor_udp_set_outgoing_interface(tu, "127.0.0.1"));
  memset(&oi, 0, sizeof oi);
  CHECK_OK(reactor_udp_get_outgoing_interface(tu, &oi));
  CHECK_EQ(oi.family, REACTOR_FAMILY_INET);
  CHECK(strcmp(oi.host, "127.0.0.1") == 0);

  SECTION("multicast on loopback: join 228.x.y.z via 127.0.0.1, send, receive, leave");
  /* a group of this process (228.x.y.z from the pid): Linux delivers a group's datagrams to every
   * socket bound to the wildcard address and the port while any socket has joined it, so a group
   * shared with a concurrent run of this test could leak into the "after leave" check */
  char group[32];
  unsigned pid = (unsigned)getpid();
  snprintf(group, sizeof group, "228.%u.%u.%u", (pid >> 16) & 255, (pid >> 8) & 255, pid & 255);
  drive_until(r, &rx.started, 1, "start_protocol");
  int rc = reactor_udp_join_group(ru, group, "127.0.0.1");
  if (rc != REACTOR_OK) {
    note_refusal("joining a multicast group on 127.0.0.1", rc);
  } else {
    in_host_call = 1;
    rc = reactor_udp_write(tu, "mcast", 5, group, prx);
    in_host_call = 0;
    if (rc != REACTOR_OK) {
      note_refusal("sending to a multicast group", rc);
    } else {
      drive_until(r, &rx.received, 1, "the multicast datagram");
      CHECK_EQ(rx.last_len, 5);
      CHECK(memcmp(rx.last, "mcast", 5) == 0);
      CHECK_EQ(rx.last_from.family, REACTOR_FAMILY_INET);
      CHECK_EQ(rx.last_from.port, ptx);
      CHECK(strcmp(rx.last_from.host, "127.0.0.1") == 0);

      SECTION("REACTOR_UDP_LISTEN_MULTIPLE + multicast: both ports on one number get the datagram");
      reactor_udp_options_t o;
      reactor_udp_options_init(&o);
      o.flags = REACTOR_UDP_LISTEN_MULTIPLE;
      reactor_udp_t *m1u = open_udp(r, &m1, 0, NULL, &o);
      uint16_t pm = port_of(m1u);
      reactor_udp_t *m2u = open_udp(r, &m2, pm, NULL, &o);
      CHECK_EQ(port_of(m2u), pm);
      CHECK_OK(reactor_udp_join_group(m1u, group, "127.0.0.1"));
      CHECK_OK(reactor_udp_join_group(m2u, group, "127.0.0.1"));
      CHECK_OK(reactor_udp_write(tu, "both", 4, group, pm));
      drive_until(r, &m1.received, 1, "the group datagram on the first shared port");
      drive_until(r, &m2.received, 1, "the group datagram on the second shared port");
      CHECK(memcmp(m1.last, "both", 4) == 0 && memcmp(m2.last, "both", 4) == 0);
      CHECK_OK(reactor_udp_leave_group(m1u, group, "127.0.0.1"));
      CHECK_OK(reactor_udp_leave_group(m2u, group, "127.0.0.1"));
    }
    CHECK_OK(reactor_udp_leave_group(ru, group, "127.0.0.1"));
    if (rc == REACTOR_OK) {
      int before = rx.received;
      CHECK_OK(reactor_udp_write(tu, "after", 5, group, prx));
      drive_for(r, 0.05);
      CHECK_EQ(rx.received, before);
    }
  }
  /* the default interface: OK, or the OS says why not */
  snprintf(group, sizeof group, "229.%u.%u.%u", (pid >> 16) & 255, (pid >> 8) & 255, pid & 255);
  rc = reactor_udp_join_group(ru, group, NULL);
  if (rc == REACTOR_OK)
    CHECK_OK(reactor_udp_leave_group(ru, group, NULL));
  else
    note_refusal("joining a group on the default interface", rc);
  CHECK_EQ(rx.inside + tx.inside, 0);
  CHECK_OK(reactor_free(r));
}

/* ---- REACTOR_UDP_LISTEN_MULTIPLE --------------------------------------------------------------- */

static void test_listen_multiple(void) {
  SECTION("REACTOR_UDP_LISTEN_MULTIPLE: two ports on one number; without it → ADDRESS_IN_USE");
  reactor_t *r = tu_new_reactor();
  reactor_udp_options_t multi;
  reactor_udp_options_init(&multi);
  multi.flags = REACTOR_UDP_LISTEN_MULTIPLE;
  port_t p1, p2, q1;
  reactor_udp_t *p1u = open_udp(r, &p1, 0, "127.0.0.1", &multi);
  uint16_t pn = port_of(p1u);
  reactor_udp_t *p2u = open_udp(r, &p2, pn, "127.0.0.1", &multi);
  CHECK_EQ(port_of(p2u), pn);
  reactor_datagram_protocol_t d = proto();
  reactor_udp_t *u = SENTINEL;
  FAILS(u, reactor_listen_udp(r, pn, "127.0.0.1", NULL, &d, &never, bad_release, &u),
           REACTOR_E_ADDRESS_IN_USE);
  CHECK(u == SENTINEL);

  reactor_udp_t *q1u = open_udp(r, &q1, 0, "127.0.0.1", NULL);
  uint16_t qn = port_of(q1u);
  FAILS(u, reactor_listen_udp(r, qn, "127.0.0.1", NULL, &d, &never, bad_release, &u),
           REACTOR_E_ADDRESS_IN_USE);
  FAILS(u, reactor_listen_udp(r, qn, "127.0.0.1", &multi, &d, &never, bad_release, &u),
           REACTOR_E_ADDRESS_IN_USE);
  CHECK(u == SENTINEL);

  /* a unicast datagram to the shared number reaches exactly one of them */
  int c = plain_udp("127.0.0.1", 0);
  plain_send(c, "127.0.0.1", pn, "uni", 3);
  double deadline = tu_now() + patience();
  while (p1.received + p2.received == 0 && tu_now() < deadline) CHECK_OK(reactor_iterate(r, 0.002));
  drive_for(r, 0.02);
  CHECK_EQ(p1.received + p2.received, 1);
  close(c);
  CHECK_OK(reactor_free(r));
  CHECK_EQ(p1.released + p2.released + q1.released, 3);
}

/* ---- IPv6 -------------------------------------------------------------------------------------- */

static int have_ipv6_loopback(char *why, size_t cap) {
  int fd = socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    snprintf(why, cap, "socket(AF_INET6): %s", strerror(errno));
    return 0;
  }
  struct sockaddr_in6 s6;
  memset(&s6, 0, sizeof s6);
  s6.sin6_family = AF_INET6;
  s6.sin6_addr = in6addr_loopback;
  int ok = bind(fd, (struct sockaddr *)&s6, sizeof s6) == 0;
  if (!ok) snprintf(why, cap, "bind([::1]:0): %s", strerror(errno));
  close(fd);
  return ok;
}

static void test_ipv6(void) {
  SECTION("IPv6: ::1 echo, family rules, V6ONLY both ways, dual-stack peers, outgoing interface, adopt");
  char why[128];
  if (!have_ipv6_loopback(why, sizeof why)) {
    printf("   skipped: this machine has no IPv6 loopback (%s)\n", why);
    return;
  }
  reactor_t *r = tu_new_reactor();
  port_t srv, cli;
  reactor_udp_t *s = open_udp(r, &srv, 0, "::1", NULL);
  srv.echo = 1;
  reactor_udp_t *cu = open_udp(r, &cli, 0, "::1", NULL);
  reactor_address_t a = host_of(s);
  CHECK_EQ(a.family, REACTOR_FAMILY_INET6);
  CHECK(strcmp(a.host, "::1") == 0);
  uint16_t ps = a.port, pc = port_of(cu);
  CHECK_OK(reactor_udp_write(cu, "six", 3, "::1", ps));
  drive_until(r, &cli.received, 1, "the IPv6 echo");
  CHECK_EQ(cli.last_len, 3);
  CHECK(memcmp(cli.last, "six", 3) == 0);
  CHECK_EQ(cli.last_from.family, REACTOR_FAMILY_INET6);
  CHECK(strcmp(cli.last_from.host, "::1") == 0);
  CHECK_EQ(cli.last_from.port, ps);
  CHECK_EQ(srv.last_from.family, REACTOR_FAMILY_INET6);
  CHECK(strcmp(srv.last_from.host, "::1") == 0);
  CHECK_EQ(srv.last_from.port, pc);

  CHECK_RC(reactor_udp_write(cu, "x", 1, "127.0.0.1", ps), REACTOR_E_INVALID_ADDRESS);
  CHECK_RC(reactor_udp_write(cu, "x", 1, "localhost", ps), REACTOR_E_INVALID_ADDRESS);
  CHECK_RC(reactor_udp_write(cu, "x", 1, "::1", 0), REACTOR_E_INVALID_ADDRESS);
  CHECK_RC(reactor_udp_write(cu, "x", 1, NULL, ps), REACTOR_E_INVALID_ADDRESS);
  CHECK_RC(reactor_udp_connect(cu, "127.0.0.1", ps), REACTOR_E_INVALID_ADDRESS);
  CHECK_RC(reactor_udp_connect(cu, "localhost", ps), REACTOR_E_INVALID_ADDRESS);
  CHECK_RC(reactor_udp_connect(cu, NULL, ps), REACTOR_E_INVALID);
  CHECK_RC(reactor_udp_join_group(cu, "228.0.0.1", NULL), REACTOR_E_INVALID_ADDRESS);
  CHECK_RC(reactor_udp_join_group(cu, "::1", NULL), REACTOR_E_INVALID_ADDRESS);
  CHECK_RC(reactor_udp_join_group(cu, "ff02::1:3", "no-such-interface"), REACTOR_E_INVALID_ADDRESS);
  CHECK_RC(reactor_udp_write(cu, big, 70000, "::1", ps), REACTOR_E_MESSAGE_TOO_LONG);
  CHECK_RC(reactor_udp_set_ttl(cu, 256), REACTOR_E_INVALID);

  CHECK_OK(reactor_udp_connect(cu, "::1", ps));
  cli.probe_host = NULL;
  CHECK_OK(reactor_udp_write(cu, "conn", 4, NULL, 0));
  drive_until(r, &cli.received, 2, "the connected IPv6 echo");
  CHECK_RC(reactor_udp_write(cu, "x", 1, "::1", (uint16_t)(ps == 65535 ? 1 : ps + 1)),
           REACTOR_E_INVALID_ADDRESS);
  CHECK_RC(reactor_udp_connect(cu, "::1", ps), REACTOR_E_BUSY);

  SECTION("IPv6 multicast options");
  int fd = reactor_udp_fileno(s);
  int v = -1;
  CHECK_OK(reactor_udp_set_ttl(s, 7));
  CHECK_OK(reactor_udp_get_ttl(s, &v));
  CHECK_EQ(v, 7);
  CHECK_EQ(sockopt_int(fd, IPPROTO_IPV6, IPV6_MULTICAST_HOPS), 7);
  CHECK_OK(reactor_udp_set_loopback_mode(s, 0));
  CHECK_OK(reactor_udp_get_loopback_mode(s, &v));
  CHECK_EQ(v, 0);
  CHECK_EQ(sockopt_int(fd, IPPROTO_IPV6, IPV6_MULTICAST_LOOP), 0);
  CHECK_OK(reactor_udp_set_loopback_mode(s, 1));
  unsigned lo = if_nametoindex("lo");
  if (lo == 0) {
    printf("   skipped: no interface named \"lo\" for the IPv6 outgoing-interface checks\n");
  } else {
    reactor_address_t oi;
    char index[16];
    snprintf(index, sizeof index, "%u", lo);
    const char *forms[] = {"lo", index, "::1"};
    for (size_t i = 0; i < 3; i++) {
      int rc = reactor_udp_set_outgoing_interface(s, forms[i]);
      if (rc != REACTOR_OK) fprintf(stderr, "   set_outgoing_interface(\"%s\")\n", forms[i]);
      CHECK_OK(rc);
      memset(&oi, 0x5a, sizeof oi);
      CHECK_OK(reactor_udp_get_outgoing_interface(s, &oi));
      CHECK_EQ(oi.family, REACTOR_FAMILY_INET6);
      CHECK(strcmp(oi.host, "::") == 0);
      CHECK_EQ(oi.scope_id, lo);
      CHECK_EQ(sockopt_int(fd, IPPROTO_IPV6, IPV6_MULTICAST_IF), (int)lo);
    }
    CHECK_RC(reactor_udp_set_outgoing_interface(s, "no-such-interface"), REACTOR_E_INVALID_ADDRESS);
    CHECK_RC(reactor_udp_set_outgoing_interface(s, "127.0.0.1"), REACTOR_E_INVALID_ADDRESS);
    /* join by interface name, index or address (§6.7) */
    for (size_t i = 0; i < 3; i++) {
      int rc = reactor_udp_join_group(s, "ff02::1:3", forms[i]);
      if (rc == REACTOR_OK) {
        CHECK_OK(reactor_udp_leave_group(s, "ff02::1:3", forms[i]));
      } else {
        fprintf(stderr, "   join ff02::1:3 on \"%s\":\n", forms[i]);
        note_refusal("joining ff02::1:3 on lo", rc);
      }
    }
  }

  SECTION("IPv6 dual stack: IPV6_V6ONLY set explicitly; an IPv4 peer is ::ffff:127.0.0.1");
  port_t ds, v6;
  reactor_udp_t *dsu = open_udp(r, &ds, 0, "::", NULL);
  CHECK_EQ(sockopt_int(reactor_udp_fileno(dsu), IPPROTO_IPV6, IPV6_V6ONLY), 0);
  reactor_udp_options_t o;
  reactor_udp_options_init(&o);
  o.flags = REACTOR_LISTEN_IPV6_ONLY;
  reactor_udp_t *v6u = open_udp(r, &v6, 0, "::", &o);
  CHECK_EQ(sockopt_int(reactor_udp_fileno(v6u), IPPROTO_IPV6, IPV6_V6ONLY), 1);
  int c4 = plain_udp("127.0.0.1", 0);
  plain_send(c4, "127.0.0.1", port_of(dsu), "mapped", 6);
  drive_until(r, &ds.received, 1, "the IPv4 datagram on the dual-stack port");
  CHECK_EQ(ds.last_from.family, REACTOR_FAMILY_INET6);
  CHECK(strcmp(ds.last_from.host, "::ffff:127.0.0.1") == 0);
  CHECK_EQ(ds.last_from.port, plain_port(c4));
  close(c4);

  SECTION("adopt an IPv6 datagram socket");
  int h6 = plain_udp("::1", 0);
  port_t ad;
  reset_port(&ad);
  ad.probe_host = "::1";
  reactor_datagram_protocol_t d = proto();
  reactor_udp_t *adu = NULL;
  CHECK_OK(reactor_adopt_datagram_port(r, h6, NULL, &d, &ad, on_release, &adu));
  if (adu) {
    reactor_address_t ah = host_of(adu);
    CHECK_EQ(ah.family, REACTOR_FAMILY_INET6);
    CHECK(strcmp(ah.host, "::1") == 0);
    CHECK_EQ(ah.port, plain_port(h6));
    plain_send(h6, "::1", ps, "from-host", 9);
    drive_until(r, &ad.received, 1, "the echo to the adopted IPv6 socket");
    CHECK_EQ(ad.last_len, 9);
  }
  close(h6);
  CHECK_EQ(srv.inside + cli.inside + ds.inside + v6.inside + ad.inside, 0);
  CHECK_OK(reactor_free(r));
  CHECK_EQ(srv.released + cli.released + ds.released + v6.released + ad.released, 5);
}

/* ---- UNIX datagram ----------------------------------------------------------------------------- */

static char tmpdir[64];

static void upath(char *buf, size_t cap, const char *name) { snprintf(buf, cap, "%s/%s", tmpdir, name); }

static int exists(const char *path) {
  struct stat st;
  return lstat(path, &st) == 0;
}

static unsigned file_mode(const char *path) {
  struct stat st;
  if (stat(path, &st) != 0) return 0xFFFFFFFFu;
  CHECK(S_ISSOCK(st.st_mode));
  return (unsigned)(st.st_mode & 07777);
}

static reactor_udp_t *open_unix(reactor_t *r, port_t *p, const char *path, const reactor_udp_options_t *o) {
  reset_port(p);
  p->probe_host = path;
  reactor_datagram_protocol_t d = proto();
  reactor_udp_t *u = NULL;
  in_host_call = 1;
  int rc = reactor_listen_unix_datagram(r, path, o, &d, p, on_release, &u);
  in_host_call = 0;
  if (rc != REACTOR_OK) fprintf(stderr, "   listen_unix_datagram(%s): %d (%s)\n", path, rc, tu_status(rc));
  REQUIRE_OK(rc);
  REQUIRE(u != NULL);
  CHECK_EQ(p->started, 0);
  return u;
}

static reactor_udp_t *connect_unix(reactor_t *r, port_t *p, const char *path, const reactor_udp_options_t *o) {
  reset_port(p);
  p->probe_host = NULL;
  reactor_datagram_protocol_t d = proto();
  reactor_udp_t *u = NULL;
  in_host_call = 1;
  int rc = reactor_connect_unix_datagram(r, path, o, &d, p, on_release, &u);
  in_host_call = 0;
  if (rc != REACTOR_OK) fprintf(stderr, "   connect_unix_datagram(%s): %d (%s)\n", path, rc, tu_status(rc));
  REQUIRE_OK(rc);
  REQUIRE(u != NULL);
  CHECK_EQ(p->started, 0);
  return u;
}

static void test_unix_datagram(void) {
  SECTION("UNIX datagram: mode, ADDRESS_IN_USE, bind_path as `from`, unnamed from \"\", echo, unlink");
  reactor_t *r = tu_new_reactor();
  char sp[128], cp[128], file[128], s3p[128], s4p[128], other[128];
  upath(sp, sizeof sp, "srv.sock");
  upath(cp, sizeof cp, "cli.sock");
  upath(file, sizeof file, "plain-file");
  upath(s3p, sizeof s3p, "s3.sock");
  upath(s4p, sizeof s4p, "s4.sock");
  upath(other, sizeof other, "other.sock");
  int ffd = open(file, O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
  REQUIRE(ffd >= 0);
  close(ffd);

  reactor_udp_options_t o;
  reactor_udp_options_init(&o);
  o.mode = 0600;
  port_t srv;
  reactor_udp_t *s = open_unix(r, &srv, sp, &o);
  srv.echo = 1;
  CHECK_EQ(file_mode(sp), 0600);
  reactor_address_t a = host_of(s);
  CHECK_EQ(a.family, REACTOR_FAMILY_UNIX);
  CHECK(strcmp(a.host, sp) == 0);
  CHECK_EQ(a.port, 0);
  int sfd = reactor_udp_fileno(s);
  CHECK(sfd >= 0);
  CHECK_EQ(sockopt_int(sfd, SOL_SOCKET, SO_TYPE), SOCK_DGRAM);
  CHECK_EQ(sockopt_int(sfd, SOL_SOCKET, SO_DOMAIN), AF_UNIX);
  CHECK(fcntl(sfd, F_GETFL) & O_NONBLOCK);
  CHECK(fcntl(sfd, F_GETFD) & FD_CLOEXEC);

  reactor_datagram_protocol_t d = proto();
  reactor_udp_t *u = SENTINEL;
  FAILS(u, reactor_listen_unix_datagram(r, sp, NULL, &d, &never, bad_release, &u), REACTOR_E_ADDRESS_IN_USE);
  FAILS(u, reactor_listen_unix_datagram(r, file, NULL, &d, &never, bad_release, &u),
           REACTOR_E_ADDRESS_IN_USE);
  CHECK(u == SENTINEL);
  CHECK(exists(file)); /* never unlinked by listen */
  CHECK(exists(sp));
  /* the default mode */
  port_t dm;
  reactor_udp_t *dmu = open_unix(r, &dm, other, NULL);
  CHECK_EQ(file_mode(other), 0666);

  /* a client with a bind_path */
  reactor_udp_options_t co;
  reactor_udp_options_init(&co);
  co.bind_path = cp;
  co.mode = 0640;
  port_t cli;
  reactor_udp_t *c = connect_unix(r, &cli, sp, &co);
  CHECK_EQ(file_mode(cp), 0640);
  reactor_address_t ca = host_of(c);
  CHECK_EQ(ca.family, REACTOR_FAMILY_UNIX);
  CHECK(strcmp(ca.host, cp) == 0);
  drive_until(r, &cli.started, 1, "start_protocol of the UNIX client");
  CHECK_OK(reactor_udp_write(c, "ping", 4, NULL, 0));
  drive_until(r, &cli.received, 1, "the UNIX echo");
  CHECK_EQ(srv.last_from.family, REACTOR_FAMILY_UNIX);
  CHECK(strcmp(srv.last_from.host, cp) == 0);
  CHECK_EQ(srv.last_from.port, 0);
  CHECK_EQ(cli.last_from.family, REACTOR_FAMILY_UNIX);
  CHECK(strcmp(cli.last_from.host, sp) == 0);
  CHECK_EQ(cli.last_len, 4);
  CHECK(memcmp(cli.last, "ping", 4) == 0);
  /* the connected destination by name (the port is ignored), another one → INVALID_ADDRESS */
  CHECK_OK(reactor_udp_write(c, "named", 5, sp, 1234));
  drive_until(r, &cli.received, 2, "the echo of a write to the connected path");
  CHECK_RC(reactor_udp_write(c, "x", 1, other, 0), REACTOR_E_INVALID_ADDRESS);
  CHECK_RC(reactor_udp_connect(c, sp, 0), REACTOR_E_BUSY);
  CHECK_RC(reactor_udp_connect(c, other, 0), REACTOR_E_BUSY);
  /* zero-length */
  CHECK_OK(reactor_udp_write(c, NULL, 0, NULL, 0));
  drive_until(r, &cli.zero_len, 1, "the zero-length UNIX echo");
  CHECK_EQ(srv.zero_len, 1);
  /* too long for the socket buffer */
  CHECK_RC(reactor_udp_write(c, big, sizeof big, NULL, 0), REACTOR_E_MESSAGE_TOO_LONG);
  /* the unconnected server: NULL host → INVALID_ADDRESS; port ignored on UNIX */
  CHECK_RC(reactor_udp_write(s, "x", 1, NULL, 0), REACTOR_E_INVALID_ADDRESS);
  CHECK_OK(reactor_udp_write(s, "direct", 6, cp, 0));
  drive_until(r, &cli.received, 4, "a write from the server to the bind path");
  CHECK(memcmp(cli.last, "direct", 6) == 0);

  SECTION("UNIX datagram: an unnamed client is seen as \"\"");
  port_t anon;
  reactor_udp_t *an = connect_unix(r, &anon, sp, NULL);
  reactor_address_t aa = host_of(an);
  CHECK_EQ(aa.family, REACTOR_FAMILY_UNIX);
  CHECK(strcmp(aa.host, "") == 0);
  int before = srv.received;
  CHECK_OK(reactor_udp_write(an, "anon", 4, NULL, 0));
  drive_until(r, &srv.received, before + 1, "the unnamed client's datagram");
  CHECK_EQ(srv.last_from.family, REACTOR_FAMILY_UNIX);
  CHECK(strcmp(srv.last_from.host, "") == 0);
  CHECK(memcmp(srv.last, "anon", 4) == 0);

  SECTION("UNIX datagram: udp_connect of a UNIX port to a path");
  /* (to the unconnected port at `other`: Linux refuses a connect to a socket connected elsewhere) */
  port_t s3;
  reactor_udp_t *s3u = open_unix(r, &s3, s3p, NULL);
  CHECK_OK(reactor_udp_connect(s3u, other, 0));
  s3.probe_host = NULL;
  CHECK_OK(reactor_udp_write(s3u, "s3", 2, NULL, 0));
  drive_until(r, &dm.received, 1, "the datagram of the connected UNIX port");
  CHECK(strcmp(dm.last_from.host, s3p) == 0);
  CHECK_EQ(dm.last_len, 2);
  CHECK_RC(reactor_udp_connect(s3u, sp, 0), REACTOR_E_BUSY);
  CHECK_RC(reactor_udp_write(s3u, "x", 1, sp, 0), REACTOR_E_INVALID_ADDRESS);

  SECTION("UNIX datagram: a full receiver → REACTOR_E_OS(EAGAIN); exactly the accepted ones arrive");
  port_t s4, w4;
  open_unix(r, &s4, s4p, NULL);
  reactor_udp_t *w4u = connect_unix(r, &w4, s4p, NULL);
  int ok = 0, rc = REACTOR_OK;
  for (int i = 0; i < 100000; i++) {
    rc = reactor_udp_write(w4u, big, 64, NULL, 0);
    if (rc != REACTOR_OK) break;
    ok++;
  }
  CHECK_RC(rc, REACTOR_E_OS(EAGAIN));
  CHECK(ok > 0);
  drive_until(r, &s4.received, ok, "the accepted datagrams");
  drive_for(r, 0.02);
  CHECK_EQ(s4.received, ok);
  CHECK_OK(reactor_udp_write(w4u, big, 64, NULL, 0)); /* room again */

  SECTION("UNIX datagram: stopping unlinks the path (and the bind_path)");
  stop_port(s, &srv);
  stop_port(c, &cli);
  /* as listen_unix's stop_listening (§6.3; reactor.h says so for datagram ports too) */
  CHECK(!exists(sp));
  CHECK(!exists(cp));
  drive_until(r, &srv.released, 1, "the server's release");
  drive_until(r, &cli.released, 1, "the client's release");
  check_ended(&srv, "the UNIX server");
  check_ended(&cli, "the UNIX client");
  CHECK(!exists(sp));
  CHECK(!exists(cp));
  check_all(s, REACTOR_E_INVALID, "a stopped UNIX port", 9);

  SECTION("UNIX datagram: synchronous errors and path rules");
  char missing[128], cp2[128], longp[300], exact[200];
  upath(missing, sizeof missing, "missing.sock");
  upath(cp2, sizeof cp2, "cli2.sock");
  u = SENTINEL;
  FAILS(u, reactor_connect_unix_datagram(r, missing, NULL, &d, &never, bad_release, &u),
           REACTOR_E_OS(ENOENT));
  reactor_udp_options_init(&co);
  co.bind_path = cp2;
  FAILS(u, reactor_connect_unix_datagram(r, missing, &co, &d, &never, bad_release, &u),
           REACTOR_E_OS(ENOENT));
  CHECK(!exists(cp2)); /* nothing left behind by the failed attempt */
  CHECK(u == SENTINEL);
  /* bind_path rules follow listen's */
  co.bind_path = file;
  FAILS(u, reactor_connect_unix_datagram(r, other, &co, &d, &never, bad_release, &u),
           REACTOR_E_ADDRESS_IN_USE);
  CHECK(exists(file));
  memset(longp, 'a', sizeof longp - 1);
  longp[0] = '/';
  longp[sizeof longp - 1] = '\0';
  size_t sun_len = sizeof(((struct sockaddr_un *)0)->sun_path);
  /* a path exactly as long as sun_path (no room for the NUL) and one a byte shorter */
  size_t tl = strlen(tmpdir);
  REQUIRE(tl + 2 < sun_len);
  snprintf(exact, sizeof exact, "%s/", tmpdir);
  memset(exact + tl + 1, 'e', sun_len - tl - 1);
  exact[sun_len] = '\0';
  CHECK_EQ(strlen(exact), sun_len);
  const char *bad_paths[] = {"", "@", longp, exact};
  for (size_t i = 0; i < 4; i++) {
    int b4 = atomic_load(&tu_failures);
    FAILS(u, reactor_listen_unix_datagram(r, bad_paths[i], NULL, &d, &never, bad_release, &u),
             REACTOR_E_INVALID_ADDRESS);
    FAILS(u, reactor_connect_unix_datagram(r, bad_paths[i], NULL, &d, &never, bad_release, &u),
             REACTOR_E_INVALID_ADDRESS);
    co.bind_path = bad_paths[i];
    FAILS(u, reactor_connect_unix_datagram(r, other, &co, &d, &never, bad_release, &u),
             REACTOR_E_INVALID_ADDRESS);
    CHECK_RC(reactor_udp_write(dmu, "x", 1, bad_paths[i], 0), REACTOR_E_INVALID_ADDRESS);
    if (atomic_load(&tu_failures) != b4) fprintf(stderr, "   (bad path #%zu)\n", i);
  }
  CHECK(u == SENTINEL);
  CHECK(!exists(exact));
  exact[sun_len - 1] = '\0'; /* one byte shorter: fits */
  port_t fits;
  reactor_udp_t *fu = open_unix(r, &fits, exact, NULL);
  CHECK(strcmp(host_of(fu).host, exact) == 0);
  stop_port(fu, &fits);
  FAILS(u, reactor_listen_unix_datagram(r, NULL, NULL, &d, &never, bad_release, &u), REACTOR_E_INVALID);
  FAILS(u, reactor_connect_unix_datagram(r, NULL, NULL, &d, &never, bad_release, &u), REACTOR_E_INVALID);
  reactor_udp_options_init(&o);
  o.mode = 010000;
  FAILS(u, reactor_listen_unix_datagram(r, cp2, &o, &d, &never, bad_release, &u), REACTOR_E_INVALID);
  FAILS(u, reactor_connect_unix_datagram(r, other, &o, &d, &never, bad_release, &u), REACTOR_E_INVALID);
  CHECK(!exists(cp2));
  CHECK(u == SENTINEL);

  drive_until(r, &fits.released, 1, "the release of the long-path port");
  CHECK(!exists(exact));
  CHECK_EQ(srv.inside + cli.inside + anon.inside + s3.inside + s4.inside + w4.inside + dm.inside, 0);
  CHECK_OK(reactor_free(r));
  CHECK(!exists(other));
  CHECK(!exists(s3p));
  CHECK(!exists(s4p));
  CHECK_EQ(anon.released + s3.released + s4.released + w4.released + dm.released, 5);
  unlink(file);
}

static void test_abstract(void) {
  SECTION("abstract UNIX datagram sockets (@name)");
  reactor_t *r = tu_new_reactor();
  char sn[64], cn[64];
  snprintf(sn, sizeof sn, "@libreactor-udp-%d-srv", (int)getpid());
  snprintf(cn, sizeof cn, "@libreactor-udp-%d-cli", (int)getpid());
  port_t srv, cli;
  reactor_udp_t *s = open_unix(r, &srv, sn, NULL);
  srv.echo = 1;
  CHECK(strcmp(host_of(s).host, sn) == 0);
  reactor_datagram_protocol_t d = proto();
  reactor_udp_t *u = SENTINEL;
  FAILS(u, reactor_listen_unix_datagram(r, sn, NULL, &d, &never, bad_release, &u), REACTOR_E_ADDRESS_IN_USE);
  CHECK(u == SENTINEL);
  reactor_udp_options_t co;
  reactor_udp_options_init(&co);
  co.bind_path = cn;
  reactor_udp_t *c = connect_unix(r, &cli, sn, &co);
  CHECK(strcmp(host_of(c).host, cn) == 0);
  CHECK_OK(reactor_udp_write(c, "abstract", 8, NULL, 0));
  drive_until(r, &cli.received, 1, "the abstract echo");
  CHECK(strcmp(srv.last_from.host, cn) == 0);
  CHECK(strcmp(cli.last_from.host, sn) == 0);
  CHECK_EQ(cli.last_len, 8);
  stop_port(s, &srv);
  drive_until(r, &srv.released, 1, "the release");
  check_ended(&srv, "the abstract server");
  /* the name is free again */
  port_t again;
  reactor_udp_t *au = open_unix(r, &again, sn, NULL);
  (void)au;
  CHECK_OK(reactor_free(r));
  CHECK_EQ(cli.released + again.released, 2);
}

/* ---- adopt ------------------------------------------------------------------------------------- */

static void test_adopt(void) {
  SECTION("adopt_datagram_port: a duplicate; the host's fd stays usable (also after the stop)");
  reactor_t *r = tu_new_reactor();
  int hfd = plain_udp("127.0.0.1", 0);
  uint16_t hp = plain_port(hfd);
  int c = plain_udp("127.0.0.1", 0);
  uint16_t pc = plain_port(c);
  reactor_udp_options_t o;
  reactor_udp_options_init(&o);
  o.max_packet_size = 4;
  port_t ad;
  reset_port(&ad);
  reactor_datagram_protocol_t d = proto();
  reactor_udp_t *u = NULL;
  in_host_call = 1;
  CHECK_OK(reactor_adopt_datagram_port(r, hfd, &o, &d, &ad, on_release, &u));
  in_host_call = 0;
  REQUIRE(u != NULL);
  CHECK_EQ(ad.started, 0);
  int lf = reactor_udp_fileno(u);
  CHECK(lf >= 0);
  CHECK(lf != hfd);
  CHECK(fcntl(hfd, F_GETFL) & O_NONBLOCK); /* the open file description is shared (§6.7) */
  CHECK(fcntl(lf, F_GETFD) & FD_CLOEXEC);
  reactor_address_t a = host_of(u);
  CHECK_EQ(a.family, REACTOR_FAMILY_INET);
  CHECK(strcmp(a.host, "127.0.0.1") == 0);
  CHECK_EQ(a.port, hp);
  drive_until(r, &ad.started, 1, "start_protocol of the adopted port");
  plain_send(c, "127.0.0.1", hp, "adopted", 7);
  drive_until(r, &ad.received, 1, "a datagram on the adopted port");
  CHECK_EQ(ad.last_len, 4); /* the options apply */
  CHECK(memcmp(ad.last, "adop", 4) == 0);
  CHECK_EQ(ad.last_from.port, pc);
  char buf[32];
  CHECK_OK(reactor_udp_write(u, "lib", 3, "127.0.0.1", pc));
  CHECK_EQ(plain_recv(r, c, buf, sizeof buf), 3);
  plain_send(hfd, "127.0.0.1", pc, "host", 4); /* the host's own fd still sends */
  CHECK_EQ(plain_recv(r, c, buf, sizeof buf), 4);
  CHECK(memcmp(buf, "host", 4) == 0);

  stop_port(u, &ad);
  drive_until(r, &ad.released, 1, "the adopted port's release");
  check_ended(&ad, "the adopted port");
  check_all(u, REACTOR_E_INVALID, "a stopped adopted port", 9);
  /* no shutdown(): the host's socket still receives and sends */
  plain_send(c, "127.0.0.1", hp, "still", 5);
  CHECK_EQ(plain_recv(NULL, hfd, buf, sizeof buf), 5);
  CHECK(memcmp(buf, "still", 5) == 0);
  plain_send(hfd, "127.0.0.1", pc, "too", 3);
  CHECK_EQ(plain_recv(NULL, c, buf, sizeof buf), 3);
  close(hfd);
  close(c);

  SECTION("adopt: TCP socket, pipe, file, UNIX datagram → UNSUPPORTED; closed fd, -1 → INVALID");
  int tcp = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int ud = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  int pfd[2];
  tu_pipe(pfd);
  int file = open("/dev/null", O_RDONLY | O_CLOEXEC);
  REQUIRE(tcp >= 0 && ud >= 0 && file >= 0);
  u = SENTINEL;
  FAILS(u, reactor_adopt_datagram_port(r, tcp, NULL, &d, &never, bad_release, &u), REACTOR_E_UNSUPPORTED);
  FAILS(u, reactor_adopt_datagram_port(r, pfd[0], NULL, &d, &never, bad_release, &u), REACTOR_E_UNSUPPORTED);
  FAILS(u, reactor_adopt_datagram_port(r, pfd[1], NULL, &d, &never, bad_release, &u), REACTOR_E_UNSUPPORTED);
  FAILS(u, reactor_adopt_datagram_port(r, file, NULL, &d, &never, bad_release, &u), REACTOR_E_UNSUPPORTED);
  FAILS(u, reactor_adopt_datagram_port(r, ud, NULL, &d, &never, bad_release, &u), REACTOR_E_UNSUPPORTED);
  int closed = dup(file);
  close(closed);
  FAILS(u, reactor_adopt_datagram_port(r, closed, NULL, &d, &never, bad_release, &u), REACTOR_E_INVALID);
  FAILS(u, reactor_adopt_datagram_port(r, -1, NULL, &d, &never, bad_release, &u), REACTOR_E_INVALID);
  CHECK(u == SENTINEL);
  /* the rejected fds are untouched */
  CHECK(fcntl(tcp, F_GETFD) >= 0 && fcntl(pfd[0], F_GETFD) >= 0 && fcntl(ud, F_GETFD) >= 0);
  close(tcp);
  close(ud);
  close(file);
  tu_close_pair(pfd);
  CHECK_OK(reactor_free(r));
}

/* ---- shutdown and free ------------------------------------------------------------------------- */

static int trigger_seq;
static int during_shutdown(reactor_t *r, uint64_t id, void *ud) {
  (void)r;
  (void)id;
  (void)ud;
  trigger_seq = ++seq;
  return REACTOR_OK;
}

static port_t late;
static reactor_udp_t *late_u;
static void open_late_and_stop(reactor_t *r, void *ud) {
  (void)ud;
  /* opened right before stop: its start_protocol has not run when shutdown begins */
  reset_port(&late);
  reactor_datagram_protocol_t d = proto();
  CHECK_OK(reactor_listen_udp(r, 0, "127.0.0.1", NULL, &d, &late, on_release, &late_u));
  CHECK_OK(reactor_stop(r));
}

static void test_shutdown(void) {
  SECTION("shutdown: every datagram port gets start_protocol, stop_protocol (before the host's "
          "DURING triggers), then its release");
  reactor_t *r = tu_new_reactor();
  port_t a, anon, un;
  reactor_udp_t *au = open_udp(r, &a, 0, "127.0.0.1", NULL);
  reset_port(&anon);
  reactor_datagram_protocol_t d = proto();
  CHECK_OK(reactor_listen_udp(r, 0, "127.0.0.1", NULL, &d, &anon, on_release, NULL));
  char up[128];
  upath(up, sizeof up, "shutdown.sock");
  reactor_udp_t *uu = open_unix(r, &un, up, NULL);
  CHECK_OK(reactor_add_system_event_trigger(r, REACTOR_PHASE_DURING, "shutdown", during_shutdown, NULL,
                                            NULL, NULL));
  trigger_seq = 0;
  late_u = NULL;
  CHECK_OK(reactor_call_later(r, 0.01, open_late_and_stop, NULL, NULL, NULL));
  CHECK_OK(reactor_call_later(r, 30.0, tu_stop_cb, NULL, NULL, NULL));
  CHECK_OK(reactor_run(r));
  check_ended(&a, "a port at shutdown");
  check_ended(&anon, "a port without a handle at shutdown");
  check_ended(&un, "a UNIX port at shutdown");
  check_ended(&late, "a port opened right before stop");
  CHECK(trigger_seq > 0);
  CHECK(a.stop_seq < trigger_seq && anon.stop_seq < trigger_seq && un.stop_seq < trigger_seq &&
        late.stop_seq < trigger_seq);
  CHECK(!exists(up));
  check_all(au, REACTOR_E_INVALID, "a port after shutdown", 9);
  check_all(uu, REACTOR_E_INVALID, "a UNIX port after shutdown", 9);
  if (late_u) check_all(late_u, REACTOR_E_INVALID, "the late port after shutdown", 9);
  CHECK_OK(reactor_free(r));
  CHECK_EQ(a.released + anon.released + un.released + late.released, 4);
}

static void test_free_live(void) {
  SECTION("reactor_free with live ports: only the releases; paths unlinked; handles dead");
  reactor_t *r = tu_new_reactor();
  port_t a, b, anon, un, cl;
  reactor_udp_t *au = open_udp(r, &a, 0, "127.0.0.1", NULL);
  char up[128], cp[128];
  upath(up, sizeof up, "free.sock");
  upath(cp, sizeof cp, "free-cli.sock");
  reactor_udp_t *uu = open_unix(r, &un, up, NULL);
  reactor_udp_options_t co;
  reactor_udp_options_init(&co);
  co.bind_path = cp;
  reactor_udp_t *cu = connect_unix(r, &cl, up, &co);
  drive_until(r, &a.started, 1, "start_protocol");
  drive_until(r, &cl.started, 1, "start_protocol");
  reactor_udp_t *bu = open_udp(r, &b, 0, "127.0.0.1", NULL); /* never started */
  reset_port(&anon);
  reactor_datagram_protocol_t d = proto();
  CHECK_OK(reactor_listen_udp(r, 0, "127.0.0.1", NULL, &d, &anon, on_release, NULL));
  CHECK(exists(up) && exists(cp));
  CHECK_OK(reactor_free(r));
  CHECK_EQ(a.stopped + b.stopped + anon.stopped + un.stopped + cl.stopped, 0);
  CHECK_EQ(b.started + anon.started, 0);
  CHECK_EQ(a.released, 1);
  CHECK_EQ(b.released, 1);
  CHECK_EQ(anon.released, 1);
  CHECK_EQ(un.released, 1);
  CHECK_EQ(cl.released, 1);
  CHECK(!exists(up));
  CHECK(!exists(cp));
  check_all(au, REACTOR_E_INVALID, "a port after reactor_free", 9);
  check_all(bu, REACTOR_E_INVALID, "an unstarted port after reactor_free", 9);
  check_all(uu, REACTOR_E_INVALID, "a UNIX port after reactor_free", 9);
  check_all(cu, REACTOR_E_INVALID, "a UNIX client after reactor_free", 9);
  /* the freed reactor itself */
  reactor_udp_t *u = SENTINEL;
  FAILS(u, reactor_listen_udp(r, 0, "127.0.0.1", NULL, &d, &never, bad_release, &u), REACTOR_E_INVALID);
  FAILS(u, reactor_listen_unix_datagram(r, up, NULL, &d, &never, bad_release, &u), REACTOR_E_INVALID);
  CHECK(u == SENTINEL);
  CHECK(!exists(up));
}

/* ---- bad input --------------------------------------------------------------------------------- */

typedef struct {
  reactor_t *r;
  reactor_udp_t *live, *dead;
  uint16_t rx_port;
  const char *listening_path, *new_path;
  int udp_fd;
} foreign_t;

static void *foreign_main(void *arg) {
  foreign_t *f = arg;
  reactor_datagram_protocol_t d = proto();
  reactor_udp_t *u = SENTINEL;
  int want = REACTOR_E_WRONG_THREAD;
  FAILS(u, reactor_listen_udp(f->r, 0, "127.0.0.1", NULL, &d, &never, bad_release, &u), want);
  FAILS(u, reactor_listen_udp(f->r, 0, "localhost", NULL, NULL, &never, bad_release, &u), want);
  FAILS(u, reactor_listen_unix_datagram(f->r, f->new_path, NULL, &d, &never, bad_release, &u), want);
  FAILS(u, reactor_listen_unix_datagram(f->r, NULL, NULL, NULL, &never, bad_release, &u), want);
  FAILS(u, reactor_connect_unix_datagram(f->r, f->listening_path, NULL, &d, &never, bad_release, &u), want);
  FAILS(u, reactor_connect_unix_datagram(f->r, NULL, NULL, NULL, &never, bad_release, &u), want);
  FAILS(u, reactor_adopt_datagram_port(f->r, f->udp_fd, NULL, &d, &never, bad_release, &u), want);
  FAILS(u, reactor_adopt_datagram_port(f->r, -1, NULL, NULL, &never, bad_release, &u), want);
  CHECK(u == SENTINEL);
  check_all(f->live, want, "a live port from another thread", f->rx_port);
  check_all(f->dead, REACTOR_E_INVALID, "a dead port from another thread", 9);
  return NULL;
}

static void test_bad_input(void) {
  SECTION("bad input for every function: statuses, out untouched, nothing released or called");
  reactor_t *r = tu_new_reactor();
  reactor_datagram_protocol_t d = proto();
  reactor_udp_t *u = SENTINEL;
  static char fake_mem[256];
  reactor_t *fake_r = (reactor_t *)(void *)fake_mem;
  char sp[128], np[128];
  upath(sp, sizeof sp, "bad.sock");
  upath(np, sizeof np, "never.sock");
  port_t srv;
  reactor_udp_t *s = open_unix(r, &srv, sp, NULL);
  int ufd = plain_udp("127.0.0.1", 0);

  reactor_t *reactors[] = {NULL, fake_r};
  for (int i = 0; i < 2; i++) {
    FAILS(u, reactor_listen_udp(reactors[i], 0, "127.0.0.1", NULL, &d, &never, bad_release, &u),
             REACTOR_E_INVALID);
    FAILS(u, reactor_listen_unix_datagram(reactors[i], np, NULL, &d, &never, bad_release, &u),
             REACTOR_E_INVALID);
    FAILS(u, reactor_connect_unix_datagram(reactors[i], sp, NULL, &d, &never, bad_release, &u),
             REACTOR_E_INVALID);
    FAILS(u, reactor_adopt_datagram_port(reactors[i], ufd, NULL, &d, &never, bad_release, &u),
             REACTOR_E_INVALID);
  }
  FAILS(u, reactor_listen_udp(r, 0, "127.0.0.1", NULL, NULL, &never, bad_release, &u), REACTOR_E_INVALID);
  FAILS(u, reactor_listen_unix_datagram(r, np, NULL, NULL, &never, bad_release, &u), REACTOR_E_INVALID);
  FAILS(u, reactor_connect_unix_datagram(r, sp, NULL, NULL, &never, bad_release, &u), REACTOR_E_INVALID);
  FAILS(u, reactor_adopt_datagram_port(r, ufd, NULL, NULL, &never, bad_release, &u), REACTOR_E_INVALID);
  reactor_datagram_protocol_t small = d;
  small.struct_size = 4;
  FAILS(u, reactor_listen_unix_datagram(r, np, NULL, &small, &never, bad_release, &u), REACTOR_E_INVALID);
  FAILS(u, reactor_connect_unix_datagram(r, sp, NULL, &small, &never, bad_release, &u), REACTOR_E_INVALID);
  FAILS(u, reactor_adopt_datagram_port(r, ufd, NULL, &small, &never, bad_release, &u), REACTOR_E_INVALID);

  /* option values: the same rules for all four functions */
  for (int k = 0; k < 6; k++) {
    reactor_udp_options_t o;
    reactor_udp_options_init(&o);
    const char *what = "";
    switch (k) {
      case 0: o.max_packet_size = 0; what = "max_packet_size 0"; break;
      case 1: o.flags = 0x100; what = "flag 0x100"; break;
      case 2: o.flags = 0x80000000u | REACTOR_UDP_LISTEN_MULTIPLE; what = "flag 0x80000000"; break;
      case 3: o.mode = 010000; what = "mode 010000"; break;
      case 4: o.mode = 0xFFFFFFFFu; what = "mode 0xFFFFFFFF"; break;
      default: o.struct_size = 4; what = "struct_size 4"; break;
    }
    int b4 = atomic_load(&tu_failures);
    FAILS(u, reactor_listen_udp(r, 0, "127.0.0.1", &o, &d, &never, bad_release, &u), REACTOR_E_INVALID);
    FAILS(u, reactor_listen_unix_datagram(r, np, &o, &d, &never, bad_release, &u), REACTOR_E_INVALID);
    FAILS(u, reactor_connect_unix_datagram(r, sp, &o, &d, &never, bad_release, &u), REACTOR_E_INVALID);
    FAILS(u, reactor_adopt_datagram_port(r, ufd, &o, &d, &never, bad_release, &u), REACTOR_E_INVALID);
    if (atomic_load(&tu_failures) != b4) fprintf(stderr, "   (options with %s)\n", what);
  }
  CHECK(u == SENTINEL);
  CHECK(!exists(np));

  /* a live port: NULL out pointers, TTL range */
  port_t p, rx;
  reactor_udp_t *pu = open_udp(r, &p, 0, "127.0.0.1", NULL);
  reactor_udp_t *ru = open_udp(r, &rx, 0, "127.0.0.1", NULL);
  CHECK_RC(reactor_udp_get_host(pu, NULL), REACTOR_E_INVALID);
  CHECK_RC(reactor_udp_get_broadcast_allowed(pu, NULL), REACTOR_E_INVALID);
  CHECK_RC(reactor_udp_get_ttl(pu, NULL), REACTOR_E_INVALID);
  CHECK_RC(reactor_udp_get_loopback_mode(pu, NULL), REACTOR_E_INVALID);
  CHECK_RC(reactor_udp_get_outgoing_interface(pu, NULL), REACTOR_E_INVALID);
  CHECK_RC(reactor_udp_set_ttl(pu, 256), REACTOR_E_INVALID);
  CHECK_RC(reactor_udp_set_ttl(pu, -1), REACTOR_E_INVALID);
  CHECK_OK(reactor_udp_set_ttl(pu, 3));
  CHECK_OK(reactor_udp_set_loopback_mode(pu, 0));

  /* NULL and made-up handles */
  check_all(NULL, REACTOR_E_INVALID, "a NULL handle", 9);
  check_all((reactor_udp_t *)(uintptr_t)0x1234, REACTOR_E_INVALID, "a made-up handle (0x1234)", 9);
  check_all((reactor_udp_t *)(void *)fake_mem, REACTOR_E_INVALID, "a made-up handle (static memory)", 9);

  /* `out` NULL: no handle, the port lives until reactor_free */
  port_t anon;
  reset_port(&anon);
  CHECK_OK(reactor_listen_udp(r, 0, "127.0.0.1", NULL, &d, &anon, on_release, NULL));
  drive_until(r, &anon.started, 1, "start_protocol of the port without a handle");

  /* a dead handle */
  port_t gone;
  reactor_udp_t *gu = open_udp(r, &gone, 0, "127.0.0.1", NULL);
  stop_port(gu, &gone);
  drive_until(r, &gone.released, 1, "the release of the stopped port");

  SECTION("bad input: another thread → WRONG_THREAD (before argument checks), fileno -1, no change");
  foreign_t f = {r, pu, gu, port_of(ru), sp, np, ufd};
  pthread_t th;
  REQUIRE(pthread_create(&th, NULL, foreign_main, &f) == 0);
  pthread_join(th, NULL);
  CHECK(!exists(np));
  /* nothing changed */
  int v = -1;
  CHECK_OK(reactor_udp_get_ttl(pu, &v));
  CHECK_EQ(v, 3);
  CHECK_OK(reactor_udp_get_loopback_mode(pu, &v));
  CHECK_EQ(v, 0);
  CHECK_OK(reactor_udp_get_broadcast_allowed(pu, &v));
  CHECK_EQ(v, 0);
  reactor_address_t oi;
  CHECK_OK(reactor_udp_get_outgoing_interface(pu, &oi));
  CHECK(strcmp(oi.host, "0.0.0.0") == 0);
  CHECK_RC(reactor_udp_write(pu, "x", 1, NULL, 0), REACTOR_E_INVALID_ADDRESS); /* not connected */
  CHECK(reactor_udp_fileno(pu) >= 0);
  drive_for(r, 0.03);
  CHECK_EQ(rx.received, 0); /* the foreign writes sent nothing */
  CHECK_EQ(p.stopped, 0);
  CHECK_OK(reactor_udp_write(pu, "ok", 2, "127.0.0.1", port_of(ru)));
  drive_until(r, &rx.received, 1, "a datagram from the port the other thread could not touch");

  close(ufd);
  (void)s;
  CHECK_EQ(p.inside + rx.inside + anon.inside + gone.inside + srv.inside, 0);
  CHECK_OK(reactor_free(r));
  CHECK_EQ(anon.released, 1);
  CHECK_EQ(anon.stopped, 0);
  CHECK_EQ(p.released + rx.released + srv.released, 3);
  CHECK(!exists(sp));
}

/* atexit: whatever is left in the temporary directory (after a failed REQUIRE, say) goes */
static void remove_tmpdir(void) {
  DIR *dir = opendir(tmpdir);
  if (!dir) return;
  struct dirent *e;
  char path[400];
  while ((e = readdir(dir)) != NULL) {
    if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
    snprintf(path, sizeof path, "%s/%s", tmpdir, e->d_name);
    unlink(path);
  }
  closedir(dir);
  rmdir(tmpdir);
}

/* `path` as a UNIX socket address (0 if it does not fit). */
static int unix_sockaddr(const char *path, struct sockaddr_un *sa) {
  memset(sa, 0, sizeof *sa);
  sa->sun_family = AF_UNIX;
  size_t n = strlen(path);
  if (n >= sizeof sa->sun_path) return 0;
  memcpy(sa->sun_path, path, n + 1);
  return 1;
}

/* Senders interleaved in one queue (so a batch holds runs from several peers): every datagram is
 * delivered with its own `from`, also across named and unnamed UNIX senders. */
static const char *const run_pattern = "0001201122200010221";

static void test_senders(void) {
  SECTION("interleaved senders in one queue: each datagram has its own `from` (IPv4, UNIX named/unnamed)");
  reactor_t *r = tu_new_reactor();
  port_t rx;
  uint16_t rp = port_of(open_started_udp(r, &rx, 8192));
  int fds[3];
  const char *hosts[3] = {"127.0.0.1", "127.0.0.1", "127.0.0.1"};
  uint16_t ports[3];
  for (int i = 0; i < 3; i++) {
    fds[i] = plain_udp("127.0.0.1", 0);
    ports[i] = plain_port(fds[i]);
  }
  rx.sender_hosts = hosts;
  rx.sender_ports = ports;
  int n = 0;
  for (int round = 0; round < 3; round++) {
    for (const char *c = run_pattern; *c; c++, n++) {
      uint8_t who = (uint8_t)(*c - '0');
      plain_send(fds[who], "127.0.0.1", rp, &who, 1);
    }
  }
  drive_until(r, &rx.received, n, "the interleaved datagrams");
  CHECK_EQ(rx.wrong_sender, 0);
  for (int i = 0; i < 3; i++) close(fds[i]);

  /* UNIX: a bound sender, an unnamed one (from ""), another bound one */
  char sp[128], ap[128], bp[128];
  upath(sp, sizeof sp, "senders.sock");
  upath(ap, sizeof ap, "sender-a.sock");
  upath(bp, sizeof bp, "sender-b.sock");
  port_t ux;
  open_unix(r, &ux, sp, NULL);
  const char *uhosts[3] = {ap, "", bp};
  const uint16_t uports[3] = {0, 0, 0};
  ux.sender_hosts = uhosts;
  ux.sender_ports = uports;
  int ufds[3];
  for (int i = 0; i < 3; i++) {
    ufds[i] = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    REQUIRE(ufds[i] >= 0);
    if (uhosts[i][0]) {
      struct sockaddr_un sa;
      REQUIRE(unix_sockaddr(uhosts[i], &sa));
      REQUIRE(bind(ufds[i], (struct sockaddr *)&sa, sizeof sa) == 0);
    }
  }
  struct sockaddr_un to;
  REQUIRE(unix_sockaddr(sp, &to));
  drive_until(r, &ux.started, 1, "start_protocol of the UNIX port");
  /* a UNIX datagram queue holds few datagrams (net.unix.max_dgram_qlen, 10 by default) and a full
   * one blocks the sender: 8 at a time */
  int un = 0;
  for (const char *c = run_pattern; *c; c++) {
    uint8_t who = (uint8_t)(*c - '0');
    REQUIRE(sendto(ufds[who], &who, 1, 0, (struct sockaddr *)&to, sizeof to) == 1);
    if (++un % 8 == 0 || !c[1]) drive_until(r, &ux.received, un, "the interleaved UNIX datagrams");
  }
  CHECK_EQ(ux.wrong_sender, 0);
  for (int i = 0; i < 3; i++) close(ufds[i]);
  unlink(ap);
  unlink(bp);
  CHECK_OK(reactor_free(r));
  CHECK_EQ(rx.released + ux.released, 2);
}

int main(void) {
  tu_watchdog(60);
  signal(SIGPIPE, SIG_DFL); /* the library must never raise it */
  tu_banner_probe(PROG);
  reset_port(&never);
  never.probe_host = NULL;
  snprintf(tmpdir, sizeof tmpdir, "/tmp/lr-udp-XXXXXX");
  REQUIRE(mkdtemp(tmpdir) != NULL);
  atexit(remove_tmpdir);

  test_structs();
  test_echo_ipv4();
  test_sizes();
  test_read_pace();
  test_read_budget();
  test_validation();
  test_destination_cache();
  test_senders();
  test_connected();
  test_stop();
  test_multicast();
  test_listen_multiple();
  test_ipv6();
  test_unix_datagram();
  test_abstract();
  test_adopt();
  test_shutdown();
  test_free_live();
  test_bad_input();

  SECTION("no failed call released or called anything");
  int acc = atomic_load(&accidental);
  if (acc) printf("   %d call(s) that had to fail succeeded (reported above); their releases ran\n", acc);
  CHECK_EQ(atomic_load(&bad_releases), acc);
  CHECK_EQ(never.received + never.refused + never.released, 0);
  CHECK(never.started <= acc && never.stopped <= acc);
  if (rmdir(tmpdir) != 0) {
    fprintf(stderr, "   %s is not empty after the test (%s)\n", tmpdir, strerror(errno));
    CHECK(0);
  }
  return tu_finish(PROG);
}
