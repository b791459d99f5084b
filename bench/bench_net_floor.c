/* "floor" networking benchmarks (see net_common.h): the same work written directly on raw Linux
 * syscalls with no library, as a lower bound for the libraries. One level-triggered epoll instance
 * holds both ends of every connection; non-blocking sockets (accept4, non-blocking connect), send
 * with MSG_NOSIGNAL, one static 64 KiB read buffer, one read per readiness event. Per-connection
 * state is a small struct in a table indexed by fd (epoll carries the fd); an fd is only ever closed
 * while handling its own event (or after the loop), so a reused fd never sees a stale event. */
#define BENCH_LIB "floor"
#include "net_common.h"
#include <sys/epoll.h>
#include <sys/un.h>

enum { K_FREE, K_LISTEN, K_SERVER, K_CLIENT };         /* conn_t.kind */
enum { M_PINGPONG, M_PUMP, M_CHURN, M_IDLE };          /* what the loop is running */

typedef struct {
  uint8_t kind;
  uint8_t connecting; /* client: non-blocking connect in progress */
  uint32_t events;    /* current epoll interest (0: not registered) */
  uint32_t out;       /* client: bytes of net_msg sent / offset into pump_chunk */
  uint32_t got;       /* client: bytes of the echo received */
  uint32_t plen, poff; /* server: echo bytes the socket did not take (rare) ... */
  uint8_t *pend;       /* ... kept here until EPOLLOUT */
} conn_t;

static int epfd, mode, stop_flag;
static conn_t *conns; /* indexed by fd */
static size_t conns_cap;
static uint8_t rbuf[64 * 1024];
static struct sockaddr_storage peer; /* where clients connect */
static socklen_t peer_len;

/* ---------------------------------------------------------------- plumbing */

static conn_t *conn_new(int fd, int kind) {
  if ((size_t)fd >= conns_cap) { /* grow; calloc keeps untouched pages out of RSS */
    size_t cap = conns_cap ? conns_cap : 1024;
    while (cap <= (size_t)fd) cap *= 2;
    conn_t *t = calloc(cap, sizeof *t);
    if (!t) die("calloc", 0);
    if (conns) memcpy(t, conns, conns_cap * sizeof *t);
    free(conns);
    conns = t;
    conns_cap = cap;
  }
  conn_t *c = &conns[fd];
  memset(c, 0, sizeof *c);
  c->kind = (uint8_t)kind;
  return c;
}

/* set the epoll interest of fd (ADD the first time, MOD when it changes) */
static void set_events(int fd, conn_t *c, uint32_t events) {
  if (c->events == events) return;
  struct epoll_event ev = {.events = events, .data.fd = fd};
  if (epoll_ctl(epfd, c->events ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, fd, &ev) != 0)
    die("epoll_ctl", errno);
  c->events = events;
}

/* close() also drops the fd from epoll */
static void conn_close(int fd) {
  conn_t *c = &conns[fd];
  free(c->pend);
  memset(c, 0, sizeof *c);
  close(fd);
}

static void loop_init(int m) {
  mode = m;
  stop_flag = 0;
  epfd = epoll_create1(EPOLL_CLOEXEC);
  if (epfd < 0) die("epoll_create1", errno);
}

/* closes every connection left, the listener and the epoll instance */
static void loop_free(void) {
  for (size_t fd = 0; fd < conns_cap; fd++)
    if (conns[fd].kind != K_FREE) conn_close((int)fd);
  free(conns);
  conns = NULL;
  conns_cap = 0;
  close(epfd);
}

/* listening socket on 127.0.0.1 port 0 or net_unix_path; fills peer for the clients */
static uint16_t listen_on(int unix_socket) {
  int fd = socket(unix_socket ? AF_UNIX : AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) die("socket", errno);
  memset(&peer, 0, sizeof peer);
  uint16_t port = 0;
  if (unix_socket) {
    struct sockaddr_un *sun = (struct sockaddr_un *)&peer;
    sun->sun_family = AF_UNIX;
    memcpy(sun->sun_path, net_unix_path, sizeof sun->sun_path);
    peer_len = sizeof *sun;
    if (bind(fd, (struct sockaddr *)&peer, peer_len) != 0) die("bind", errno);
  } else {
    int one = 1;
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0) die("setsockopt", errno);
    struct sockaddr_in *sin = (struct sockaddr_in *)&peer;
    sin->sin_family = AF_INET;
    sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    peer_len = sizeof *sin;
    if (bind(fd, (struct sockaddr *)&peer, peer_len) != 0) die("bind", errno);
    if (getsockname(fd, (struct sockaddr *)&peer, &peer_len) != 0) die("getsockname", errno);
    port = ntohs(sin->sin_port);
  }
  if (listen(fd, 4096) != 0) die("listen", errno);
  set_events(fd, conn_new(fd, K_LISTEN), EPOLLIN);
  return port;
}

/* ---------------------------------------------------------------- client side */

static long pp_left;                                  /* pingpong: round trips to go */
static uint64_t pump_total, pump_sent, pump_received; /* pump */
static long churn_n, churn_started, churn_done;       /* churn */

/* send (the rest of) net_msg; wait for the echo, or for EPOLLOUT if the socket took only part */
static void msg_send(int fd, conn_t *c) {
  ssize_t w = send(fd, net_msg + c->out, NET_MSG - c->out, MSG_NOSIGNAL);
  if (w < 0) {
    if (errno != EAGAIN) die("send", errno);
    w = 0;
  }
  c->out += (uint32_t)w;
  set_events(fd, c, c->out < NET_MSG ? EPOLLIN | EPOLLOUT : EPOLLIN);
}

/* pump: 64 KiB chunks while the socket takes them; after a partial send the rest of the chunk
 * (pump_chunk + out, at most one chunk, well under PUMP_MAX_QUEUED) waits for EPOLLOUT, which
 * stays the client's only interest. Once everything is sent: shutdown(SHUT_WR) and close. */
static void pump_write(int fd, conn_t *c) {
  while (pump_sent < pump_total) {
    size_t len = PUMP_CHUNK - c->out;
    if (len > pump_total - pump_sent) len = (size_t)(pump_total - pump_sent);
    ssize_t w = send(fd, pump_chunk + c->out, len, MSG_NOSIGNAL);
    if (w < 0) {
      if (errno == EAGAIN) return;
      die("send", errno);
    }
    pump_sent += (uint64_t)w;
    c->out = (uint32_t)((c->out + (size_t)w) % PUMP_CHUNK);
    if ((size_t)w < len) return; /* socket full: wait for EPOLLOUT */
  }
  if (shutdown(fd, SHUT_WR) != 0) die("shutdown", errno);
  conn_close(fd);
}

static void client_connected(int fd, conn_t *c) {
  c->connecting = 0;
  if (mode == M_PUMP) {
    set_events(fd, c, EPOLLOUT);
    pump_write(fd, c);
  } else {
    msg_send(fd, c);
  }
}

/* a non-blocking connect to peer */
static void client_start(void) {
  int fd = socket(peer.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) die("socket", errno);
  conn_t *c = conn_new(fd, K_CLIENT);
  if (connect(fd, (struct sockaddr *)&peer, peer_len) == 0) {
    client_connected(fd, c); /* UNIX sockets connect at once */
  } else {
    if (errno != EINPROGRESS) die("connect", errno);
    c->connecting = 1;
    set_events(fd, c, EPOLLOUT);
  }
}

static void client_event(int fd, conn_t *c, uint32_t ev) {
  if (c->connecting) {
    int err = 0;
    socklen_t len = sizeof err;
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) die("getsockopt", errno);
    if (err != 0) die("connect", err);
    client_connected(fd, c);
    return;
  }
  if (mode == M_PUMP) {
    if (ev & (EPOLLERR | EPOLLHUP)) die("pump client", (long)ev);
    pump_write(fd, c);
    return;
  }
  if (ev & EPOLLOUT) { /* the rest of a message the socket did not take */
    msg_send(fd, c);
    if (c->out < NET_MSG) return;
  }
  if (!(ev & (EPOLLIN | EPOLLERR | EPOLLHUP))) return;
  ssize_t r = read(fd, rbuf, sizeof rbuf);
  if (r < 0 && errno == EAGAIN) return;
  if (r <= 0) die("client read", r == 0 ? 0 : errno);
  c->got += (uint32_t)r;
  if (c->got < NET_MSG) return;
  if (c->got > NET_MSG) die("echo length", c->got);
  if (mode == M_PINGPONG) { /* round trip done: the next one, or stop */
    if (--pp_left == 0) {
      stop_flag = 1;
      return;
    }
    c->got = c->out = 0;
    msg_send(fd, c);
  } else { /* churn: exchange done, close and start the next connection */
    conn_close(fd);
    if (++churn_done == churn_n) stop_flag = 1;
    else if (churn_started < churn_n) {
      churn_started++;
      client_start();
    }
  }
}

/* ---------------------------------------------------------------- server side */

static long idle_accepted, idle_want;

static void accept_all(int lfd) {
  for (;;) {
    int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EAGAIN) return;
      if (errno == ECONNABORTED || errno == EINTR) continue;
      die("accept4", errno);
    }
    set_events(fd, conn_new(fd, K_SERVER), EPOLLIN);
    if (mode == M_IDLE && ++idle_accepted == idle_want) {
      idle_all_open();
      idle_release_clients();
      stop_flag = 1;
      return;
    }
  }
}

static void server_event(int fd, conn_t *c, uint32_t ev) {
  if (c->pend) { /* flush an echo the socket did not take; reading waits meanwhile */
    if (!(ev & (EPOLLOUT | EPOLLERR | EPOLLHUP))) return;
    ssize_t w = send(fd, c->pend + c->poff, c->plen - c->poff, MSG_NOSIGNAL);
    if (w < 0) {
      if (errno == EAGAIN) return;
      die("send", errno);
    }
    c->poff += (uint32_t)w;
    if (c->poff < c->plen) return;
    free(c->pend);
    c->pend = NULL;
    set_events(fd, c, EPOLLIN);
    return;
  }
  ssize_t r = read(fd, rbuf, sizeof rbuf);
  if (r < 0) {
    if (errno == EAGAIN) return;
    die("server read", errno);
  }
  if (r == 0) { /* EOF: the client is done */
    conn_close(fd);
    if (mode == M_PUMP) stop_flag = 1;
    return;
  }
  if (mode == M_PUMP) {
    pump_received += (uint64_t)r;
    return;
  }
  ssize_t w = send(fd, rbuf, (size_t)r, MSG_NOSIGNAL); /* echo */
  if (w < 0) {
    if (errno != EAGAIN) die("send", errno);
    w = 0;
  }
  if (w < r) { /* keep the rest, stop reading until it is out */
    c->plen = (uint32_t)(r - w);
    c->poff = 0;
    c->pend = malloc(c->plen);
    if (!c->pend) die("malloc", 0);
    memcpy(c->pend, rbuf + w, c->plen);
    set_events(fd, c, EPOLLOUT);
  }
}

/* ---------------------------------------------------------------- the loop */

static void loop_run(void) {
  struct epoll_event evs[256];
  while (!stop_flag) {
    int n = epoll_wait(epfd, evs, 256, -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      die("epoll_wait", errno);
    }
    for (int i = 0; i < n && !stop_flag; i++) {
      int fd = evs[i].data.fd;
      conn_t *c = &conns[fd];
      switch (c->kind) {
      case K_LISTEN: accept_all(fd); break;
      case K_SERVER: server_event(fd, c, evs[i].events); break;
      case K_CLIENT: client_event(fd, c, evs[i].events); break;
      default: die("event for a closed fd", fd);
      }
    }
  }
}

/* ---------------------------------------------------------------- the shapes */

static void net_pingpong(int unix_socket, long n) {
  loop_init(M_PINGPONG);
  listen_on(unix_socket);
  pp_left = n;
  client_start();
  loop_run();
  if (pp_left != 0) die("pingpong incomplete", pp_left);
  loop_free();
}

static void net_pump(int unix_socket, uint64_t total) {
  loop_init(M_PUMP);
  listen_on(unix_socket);
  pump_total = total;
  client_start();
  loop_run();
  if (pump_received != total) die("pump byte count", (long)(pump_received >> 10));
  loop_free();
}

static void net_churn(long n, int concurrency) {
  loop_init(M_CHURN);
  listen_on(0);
  churn_n = n;
  for (int i = 0; i < concurrency && churn_started < n; i++) {
    churn_started++;
    client_start();
  }
  loop_run();
  if (churn_done != n) die("churn incomplete", churn_done);
  loop_free();
}

static void net_idle(long n) {
  loop_init(M_IDLE);
  uint16_t port = listen_on(0);
  idle_want = n;
  idle_spawn_clients(port, n);
  loop_run();
  loop_free();
}
