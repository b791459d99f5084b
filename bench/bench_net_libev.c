#define BENCH_LIB "libev"
#include "net_common.h"
#include <ev.h>

/* libev 4.x networking benchmarks (see net_common.h). libev has no transports, so this is the raw
 * socket code a libev user writes: non-blocking sockets (accept4, non-blocking connect), an ev_io
 * read and write watcher per connection, one read of up to 64 KiB per readiness event into a
 * static buffer, send(MSG_NOSIGNAL) straight away and a per-connection output buffer only for what
 * a partial send left over (the write watcher runs only while it holds something). One epoll loop
 * (ev_loop_new) per shape holds both ends of every connection. */

#include <sys/un.h>

static struct ev_loop *loop;
static uint8_t rbuf[64 * 1024]; /* every read goes here */

/* ---------------------------------------------------------------- connections */

typedef struct conn conn_t;

/* what a connection does with its events; any of them may close the connection */
typedef struct {
  void (*connected)(conn_t *c);                               /* client: connect completed */
  void (*data)(conn_t *c, const uint8_t *data, size_t len);   /* bytes read */
  void (*eof)(conn_t *c);                                     /* peer closed */
  void (*drained)(conn_t *c);                                 /* output buffer flushed */
} proto_t;

struct conn {
  ev_io rd, wr;            /* readable; writable (connect completion, then output buffer) */
  const proto_t *proto;
  int connecting;
  size_t got;              /* bytes of the current echo received (pingpong, churn) */
  uint8_t *out;            /* unsent bytes after a partial send: out[out_off .. out_len) */
  size_t out_off, out_len, out_cap;
  conn_t *prev, *next;     /* every open connection, to close them all at the end */
};

static conn_t *conns;
static size_t out_limit = PUMP_MAX_QUEUED; /* bound on any connection's output buffer */

static void conn_read_cb(struct ev_loop *l, ev_io *w, int revents);
static void conn_write_cb(struct ev_loop *l, ev_io *w, int revents);

static conn_t *conn_new(int fd, const proto_t *p) {
  conn_t *c = calloc(1, sizeof *c);
  if (!c) die("calloc", errno);
  c->proto = p;
  ev_io_init(&c->rd, conn_read_cb, fd, EV_READ);
  ev_io_init(&c->wr, conn_write_cb, fd, EV_WRITE);
  c->rd.data = c->wr.data = c;
  c->next = conns;
  if (conns) conns->prev = c;
  conns = c;
  return c;
}

static void conn_close(conn_t *c) {
  ev_io_stop(loop, &c->rd);
  ev_io_stop(loop, &c->wr);
  close(c->rd.fd);
  if (c->prev) c->prev->next = c->next;
  else conns = c->next;
  if (c->next) c->next->prev = c->prev;
  free(c->out);
  free(c);
}

static void close_all(void) {
  while (conns) conn_close(conns);
}

/* writes now what the socket takes; the rest goes to the output buffer and the write watcher */
static void conn_send(conn_t *c, const uint8_t *data, size_t len) {
  if (c->out_len == 0) {
    ssize_t n = send(c->rd.fd, data, len, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno != EAGAIN && errno != EINTR) die("send", errno);
      n = 0;
    }
    if ((size_t)n == len) return;
    data += n;
    len -= (size_t)n;
    c->out_off = 0;
    ev_io_start(loop, &c->wr);
  }
  /* append to the output buffer (compacting it first) */
  if (c->out_off > 0) {
    memmove(c->out, c->out + c->out_off, c->out_len - c->out_off);
    c->out_len -= c->out_off;
    c->out_off = 0;
  }
  if (c->out_len + len > out_limit) die("output buffer limit", (long)(c->out_len + len));
  if (c->out_len + len > c->out_cap) {
    size_t cap = c->out_cap ? c->out_cap : 256;
    while (cap < c->out_len + len) cap *= 2;
    c->out = realloc(c->out, cap);
    if (!c->out) die("realloc", errno);
    c->out_cap = cap;
  }
  memcpy(c->out + c->out_len, data, len);
  c->out_len += len;
}

static void conn_read_cb(struct ev_loop *l, ev_io *w, int revents) {
  (void)l;
  (void)revents;
  conn_t *c = w->data;
  ssize_t n = recv(w->fd, rbuf, sizeof rbuf, 0);
  if (n > 0) {
    if (c->proto->data) c->proto->data(c, rbuf, (size_t)n);
  } else if (n == 0) {
    if (c->proto->eof) c->proto->eof(c);
    else conn_close(c);
  } else if (errno != EAGAIN && errno != EINTR) {
    die("recv", errno);
  }
}

static void conn_write_cb(struct ev_loop *l, ev_io *w, int revents) {
  (void)l;
  (void)revents;
  conn_t *c = w->data;
  if (c->connecting) { /* non-blocking connect finished */
    int err = 0;
    socklen_t len = sizeof err;
    if (getsockopt(w->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) die("getsockopt", errno);
    if (err != 0) die("connect", err);
    c->connecting = 0;
    ev_io_stop(loop, &c->wr);
    ev_io_start(loop, &c->rd);
    if (c->proto->connected) c->proto->connected(c);
    return;
  }
  ssize_t n = send(w->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);
  if (n < 0) {
    if (errno == EAGAIN || errno == EINTR) return;
    die("send", errno);
  }
  c->out_off += (size_t)n;
  if (c->out_off < c->out_len) return;
  c->out_off = c->out_len = 0;
  ev_io_stop(loop, &c->wr);
  if (c->proto->drained) c->proto->drained(c);
}

/* ---------------------------------------------------------------- listen / connect */

static ev_io listener;
static const proto_t *server_proto;
static void (*on_accepted)(conn_t *c); /* optional, after the read watcher started */

static void accept_cb(struct ev_loop *l, ev_io *w, int revents) {
  (void)l;
  (void)revents;
  for (;;) {
    int fd = accept4(w->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) return;
      if (errno == EINTR || errno == ECONNABORTED) continue;
      die("accept4", errno);
    }
    conn_t *c = conn_new(fd, server_proto);
    ev_io_start(loop, &c->rd);
    if (on_accepted) on_accepted(c);
  }
}

static void new_loop(void) {
  loop = ev_loop_new(EVBACKEND_EPOLL);
  if (!loop) die("ev_loop_new", 0);
  conns = NULL;
  on_accepted = NULL;
}

static void end_loop(void) {
  close_all();
  ev_io_stop(loop, &listener);
  close(listener.fd);
  ev_loop_destroy(loop);
  loop = NULL;
}

static void tcp_addr(struct sockaddr_in *sin, uint16_t port) {
  memset(sin, 0, sizeof *sin);
  sin->sin_family = AF_INET;
  sin->sin_port = htons(port);
  sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
}

static void unix_addr(struct sockaddr_un *sun) {
  memset(sun, 0, sizeof *sun);
  sun->sun_family = AF_UNIX;
  memcpy(sun->sun_path, net_unix_path, sizeof sun->sun_path);
}

/* listens on 127.0.0.1 port 0 (the port chosen goes to *port) or at net_unix_path, backlog 4096 */
static void listen_on(int unix_socket, const proto_t *p, uint16_t *port) {
  int fd = socket(unix_socket ? AF_UNIX : AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) die("socket", errno);
  if (unix_socket) {
    struct sockaddr_un sun;
    unix_addr(&sun);
    if (bind(fd, (struct sockaddr *)&sun, sizeof sun) != 0) die("bind", errno);
  } else {
    struct sockaddr_in sin;
    tcp_addr(&sin, 0);
    if (bind(fd, (struct sockaddr *)&sin, sizeof sin) != 0) die("bind", errno);
    socklen_t len = sizeof sin;
    if (getsockname(fd, (struct sockaddr *)&sin, &len) != 0) die("getsockname", errno);
    *port = ntohs(sin.sin_port);
  }
  if (listen(fd, 4096) != 0) die("listen", errno);
  server_proto = p;
  ev_io_init(&listener, accept_cb, fd, EV_READ);
  ev_io_start(loop, &listener);
}

/* a non-blocking connect; p->connected runs once it completes */
static void connect_to(int unix_socket, uint16_t port, const proto_t *p) {
  int fd = socket(unix_socket ? AF_UNIX : AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) die("socket", errno);
  int rc;
  if (unix_socket) {
    struct sockaddr_un sun;
    unix_addr(&sun);
    rc = connect(fd, (struct sockaddr *)&sun, sizeof sun);
  } else {
    struct sockaddr_in sin;
    tcp_addr(&sin, port);
    rc = connect(fd, (struct sockaddr *)&sin, sizeof sin);
  }
  conn_t *c = conn_new(fd, p);
  if (rc == 0) { /* done at once (usual for UNIX sockets) */
    ev_io_start(loop, &c->rd);
    if (p->connected) p->connected(c);
  } else if (errno == EINPROGRESS) {
    c->connecting = 1;
    ev_io_start(loop, &c->wr);
  } else {
    die("connect", errno);
  }
}

/* the server side of pingpong and churn: echo, close on EOF */
static void echo_data(conn_t *c, const uint8_t *data, size_t len) { conn_send(c, data, len); }

static const proto_t echo_server = {.data = echo_data};

/* ---------------------------------------------------------------- pingpong */

static long pp_left;

static void pp_made(conn_t *c) { conn_send(c, net_msg, NET_MSG); }

static void pp_data(conn_t *c, const uint8_t *data, size_t len) {
  (void)data;
  c->got += len;
  if (c->got < NET_MSG) return;
  c->got = 0;
  if (--pp_left == 0) {
    ev_break(loop, EVBREAK_ALL);
    return;
  }
  conn_send(c, net_msg, NET_MSG);
}

static const proto_t pp_client = {.connected = pp_made, .data = pp_data};

static void net_pingpong(int unix_socket, long n) {
  new_loop();
  uint16_t port = 0;
  listen_on(unix_socket, &echo_server, &port);
  pp_left = n;
  connect_to(unix_socket, port, &pp_client);
  ev_run(loop, 0);
  if (pp_left != 0) die("pingpong incomplete", pp_left);
  end_loop();
}

/* ---------------------------------------------------------------- pump */

static uint64_t pump_total, pump_sent, pump_received;

/* sends chunks while the socket takes them whole; a partial send leaves the rest (< 64 KiB, within
 * PUMP_MAX_QUEUED) in the output buffer and we continue from `drained` */
static void pump_fill(conn_t *c) {
  while (c->out_len == 0 && pump_sent < pump_total) {
    conn_send(c, pump_chunk, PUMP_CHUNK);
    pump_sent += PUMP_CHUNK;
  }
  if (pump_sent >= pump_total && c->out_len == 0) conn_close(c); /* all flushed: FIN */
}

static void pump_data(conn_t *c, const uint8_t *data, size_t len) {
  (void)c;
  (void)data;
  pump_received += len;
}

static void pump_eof(conn_t *c) {
  conn_close(c);
  ev_break(loop, EVBREAK_ALL);
}

static const proto_t pump_client = {.connected = pump_fill, .drained = pump_fill};
static const proto_t pump_server = {.data = pump_data, .eof = pump_eof};

static void net_pump(int unix_socket, uint64_t total) {
  new_loop();
  uint16_t port = 0;
  listen_on(unix_socket, &pump_server, &port);
  pump_total = total;
  connect_to(unix_socket, port, &pump_client);
  ev_run(loop, 0);
  if (pump_received != total) die("pump byte count", (long)(pump_received >> 10));
  end_loop();
}

/* ---------------------------------------------------------------- churn */

static long churn_started, churn_done, churn_n;
static uint16_t churn_port;
static const proto_t churn_client;

static void churn_start_one(void) {
  churn_started++;
  connect_to(0, churn_port, &churn_client);
}

static void churn_made(conn_t *c) { conn_send(c, net_msg, NET_MSG); }

static void churn_data(conn_t *c, const uint8_t *data, size_t len) {
  (void)data;
  c->got += len;
  if (c->got < NET_MSG) return;
  conn_close(c); /* one exchange done */
  if (++churn_done == churn_n) {
    ev_break(loop, EVBREAK_ALL);
    return;
  }
  if (churn_started < churn_n) churn_start_one();
}

static const proto_t churn_client = {.connected = churn_made, .data = churn_data};

static void net_churn(long n, int concurrency) {
  new_loop();
  listen_on(0, &echo_server, &churn_port);
  churn_n = n;
  for (int i = 0; i < concurrency && churn_started < n; i++) churn_start_one();
  ev_run(loop, 0);
  if (churn_done != n) die("churn incomplete", churn_done);
  end_loop();
}

/* ---------------------------------------------------------------- idle */

static long idle_accepted, idle_want;

/* each accepted connection is a conn_t with its read watcher started (EOF closes it) */
static void idle_srv_made(conn_t *c) {
  (void)c;
  if (++idle_accepted == idle_want) {
    idle_all_open();
    idle_release_clients();
    ev_break(loop, EVBREAK_ALL); /* end_loop closes every connection */
  }
}

static const proto_t idle_server = {0};

static void net_idle(long n) {
  new_loop();
  uint16_t port = 0;
  listen_on(0, &idle_server, &port);
  on_accepted = idle_srv_made;
  idle_want = n;
  idle_spawn_clients(port, n);
  ev_run(loop, 0);
  end_loop();
}
