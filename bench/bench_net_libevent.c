/* libevent 2.1's networking benchmarks (see net_common.h): socket bufferevents, evconnlisteners, a
 * write low watermark as the pump's flow control, default options (epoll; libevent 2.1 reads at most
 * 4 KiB per read call, not configurable before 2.2, and writes at most 16 KiB per call). */
#define BENCH_LIB "libevent"
#include "net_common.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <event2/util.h>

#include <sys/un.h>

static struct event_base *base;
static struct evconnlistener *lst;

/* ---------------------------------------------------------------- common */

/* The server ends of the connections, so that everything still open can be freed at the end. */
typedef struct srv {
  struct bufferevent *bev;
  struct srv *prev, *next;
} srv_t;

static srv_t *srv_head;

static srv_t *srv_new(evutil_socket_t fd) {
  srv_t *s = malloc(sizeof *s);
  if (!s) die("malloc", 0);
  s->bev = bufferevent_socket_new(base, fd, BEV_OPT_CLOSE_ON_FREE);
  if (!s->bev) die("bufferevent_socket_new", fd);
  s->prev = NULL;
  s->next = srv_head;
  if (srv_head) srv_head->prev = s;
  srv_head = s;
  return s;
}

static void srv_free(srv_t *s) {
  if (s->prev) s->prev->next = s->next;
  else srv_head = s->next;
  if (s->next) s->next->prev = s->prev;
  bufferevent_free(s->bev);
  free(s);
}

static void new_base(void) {
  base = event_base_new();
  if (!base) die("event_base_new", 0);
}

/* after the loop: every server end, the listener, the base */
static void free_all(void) {
  while (srv_head) srv_free(srv_head);
  evconnlistener_free(lst);
  lst = NULL;
  event_base_free(base);
  base = NULL;
}

static void accept_error(struct evconnlistener *l, void *ud) {
  (void)l;
  (void)ud;
  die("accept", EVUTIL_SOCKET_ERROR());
}

/* listens on 127.0.0.1 port 0 (the chosen port into *port) or on net_unix_path; backlog 4096 */
static void listen_on(int unix_socket, evconnlistener_cb cb, uint16_t *port) {
  const unsigned flags = LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE;
  if (unix_socket) {
    struct sockaddr_un sun;
    memset(&sun, 0, sizeof sun);
    sun.sun_family = AF_UNIX;
    strcpy(sun.sun_path, net_unix_path);
    lst = evconnlistener_new_bind(base, cb, NULL, flags, 4096, (struct sockaddr *)&sun, sizeof sun);
    if (!lst) die("listen_unix", errno);
  } else {
    struct sockaddr_in sin;
    memset(&sin, 0, sizeof sin);
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    lst = evconnlistener_new_bind(base, cb, NULL, flags, 4096, (struct sockaddr *)&sin, sizeof sin);
    if (!lst) die("listen_tcp", errno);
    socklen_t len = sizeof sin;
    if (getsockname(evconnlistener_get_fd(lst), (struct sockaddr *)&sin, &len) != 0)
      die("getsockname", errno);
    *port = ntohs(sin.sin_port);
  }
  evconnlistener_set_error_cb(lst, accept_error);
}

/* a client bufferevent connecting to the listener; its callbacks get ud */
static struct bufferevent *connect_to(int unix_socket, uint16_t port, bufferevent_data_cb rd,
                                      bufferevent_data_cb wr, bufferevent_event_cb ev, void *ud) {
  struct bufferevent *bev = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
  if (!bev) die("bufferevent_socket_new", 0);
  bufferevent_setcb(bev, rd, wr, ev, ud);
  if (bufferevent_enable(bev, EV_READ | EV_WRITE) != 0) die("bufferevent_enable", 0);
  int rc;
  if (unix_socket) {
    struct sockaddr_un sun;
    memset(&sun, 0, sizeof sun);
    sun.sun_family = AF_UNIX;
    strcpy(sun.sun_path, net_unix_path);
    rc = bufferevent_socket_connect(bev, (struct sockaddr *)&sun, sizeof sun);
  } else {
    struct sockaddr_in sin;
    memset(&sin, 0, sizeof sin);
    sin.sin_family = AF_INET;
    sin.sin_port = htons(port);
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    rc = bufferevent_socket_connect(bev, (struct sockaddr *)&sin, sizeof sin);
  }
  if (rc != 0) die("bufferevent_socket_connect", EVUTIL_SOCKET_ERROR());
  return bev;
}

/* a server end: reads, with the given data callback; frees itself on EOF, dies on an error */
static void srv_event(struct bufferevent *bev, short what, void *ud) {
  (void)bev;
  if (what & BEV_EVENT_ERROR) die("server socket", EVUTIL_SOCKET_ERROR());
  if (what & BEV_EVENT_EOF) srv_free((srv_t *)ud);
}

static srv_t *srv_accept(evutil_socket_t fd, bufferevent_data_cb rd, bufferevent_event_cb ev) {
  srv_t *s = srv_new(fd);
  bufferevent_setcb(s->bev, rd, NULL, ev, s);
  if (bufferevent_enable(s->bev, EV_READ | EV_WRITE) != 0) die("bufferevent_enable", 0);
  return s;
}

/* the echo server: everything read goes back out */
static void echo_read(struct bufferevent *bev, void *ud) {
  (void)ud;
  if (evbuffer_add_buffer(bufferevent_get_output(bev), bufferevent_get_input(bev)) != 0)
    die("evbuffer_add_buffer", 0);
}

static void echo_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int len,
                        void *ud) {
  (void)l;
  (void)sa;
  (void)len;
  (void)ud;
  srv_accept(fd, echo_read, srv_event);
}

/* a client's events: connected → on_connected(bev), an error → die */
static void (*on_connected)(struct bufferevent *bev);

static void client_event(struct bufferevent *bev, short what, void *ud) {
  (void)ud;
  if (what & BEV_EVENT_CONNECTED) {
    on_connected(bev);
    return;
  }
  if (what & BEV_EVENT_ERROR) die("client socket", EVUTIL_SOCKET_ERROR());
  if (what & BEV_EVENT_EOF) die("client: unexpected EOF", 0);
}

static void send_msg(struct bufferevent *bev) {
  if (bufferevent_write(bev, net_msg, NET_MSG) != 0) die("bufferevent_write", 0);
}

/* ---------------------------------------------------------------- pingpong */

static long pp_left;
static size_t pp_got;

static void pp_read(struct bufferevent *bev, void *ud) {
  (void)ud;
  struct evbuffer *in = bufferevent_get_input(bev);
  size_t len = evbuffer_get_length(in);
  evbuffer_drain(in, len);
  pp_got += len;
  if (pp_got < NET_MSG) return;
  pp_got = 0;
  if (--pp_left == 0) {
    event_base_loopbreak(base);
    return;
  }
  send_msg(bev);
}

static void net_pingpong(int unix_socket, long n) {
  new_base();
  uint16_t port = 0;
  listen_on(unix_socket, echo_accept, &port);
  pp_left = n;
  on_connected = send_msg;
  struct bufferevent *client = connect_to(unix_socket, port, pp_read, NULL, client_event, NULL);
  if (event_base_dispatch(base) < 0) die("event_base_dispatch", 0);
  if (pp_left != 0) die("pingpong incomplete", pp_left);
  bufferevent_free(client);
  free_all();
}

/* ---------------------------------------------------------------- pump */
/* The sender adds 64 KiB chunks while that keeps at most 256 KiB in the output buffer (the
 * reference's high mark: pause above 192 KiB); the write low watermark calls it back to refill. */

#define PUMP_LOW (PUMP_MAX_QUEUED - PUMP_CHUNK)

static uint64_t pump_total, pump_sent, pump_received;

static void pump_fill(struct bufferevent *bev) {
  struct evbuffer *out = bufferevent_get_output(bev);
  while (pump_sent < pump_total && evbuffer_get_length(out) + PUMP_CHUNK <= PUMP_MAX_QUEUED) {
    if (bufferevent_write(bev, pump_chunk, PUMP_CHUNK) != 0) die("bufferevent_write", 0);
    pump_sent += PUMP_CHUNK;
  }
  if (pump_sent >= pump_total) {
    if (evbuffer_get_length(out) == 0)
      bufferevent_free(bev); /* all written: close */
    else
      bufferevent_setwatermark(bev, EV_WRITE, 0, 0); /* called back once empty */
  }
}

static void pump_write(struct bufferevent *bev, void *ud) {
  (void)ud;
  pump_fill(bev);
}

static void pump_connected(struct bufferevent *bev) {
  bufferevent_setwatermark(bev, EV_WRITE, PUMP_LOW, 0);
  pump_fill(bev);
}

static void pump_srv_read(struct bufferevent *bev, void *ud) {
  (void)ud;
  struct evbuffer *in = bufferevent_get_input(bev);
  size_t len = evbuffer_get_length(in);
  evbuffer_drain(in, len);
  pump_received += len;
}

static void pump_srv_event(struct bufferevent *bev, short what, void *ud) {
  (void)bev;
  (void)ud;
  if (what & BEV_EVENT_ERROR) die("server socket", EVUTIL_SOCKET_ERROR());
  if (what & BEV_EVENT_EOF) event_base_loopbreak(base); /* the server end is freed by free_all */
}

static void pump_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int len,
                        void *ud) {
  (void)l;
  (void)sa;
  (void)len;
  (void)ud;
  srv_accept(fd, pump_srv_read, pump_srv_event);
}

static void net_pump(int unix_socket, uint64_t total) {
  new_base();
  uint16_t port = 0;
  listen_on(unix_socket, pump_accept, &port);
  pump_total = total;
  on_connected = pump_connected;
  connect_to(unix_socket, port, NULL, pump_write, client_event, NULL);
  if (event_base_dispatch(base) < 0) die("event_base_dispatch", 0);
  if (pump_received != total) die("pump byte count", (long)(pump_received >> 10));
  free_all();
}

/* ---------------------------------------------------------------- churn */

static long churn_started, churn_done, churn_n;
static uint16_t churn_port;

static void churn_read(struct bufferevent *bev, void *ud);

static void churn_start_one(void) {
  churn_started++;
  connect_to(0, churn_port, churn_read, NULL, client_event, NULL);
}

static void churn_read(struct bufferevent *bev, void *ud) {
  (void)ud;
  /* one exchange: close once the whole 64-byte echo is back */
  if (evbuffer_get_length(bufferevent_get_input(bev)) < NET_MSG) return;
  bufferevent_free(bev);
  if (++churn_done == churn_n) {
    event_base_loopbreak(base);
    return;
  }
  if (churn_started < churn_n) churn_start_one();
}

static void net_churn(long n, int concurrency) {
  new_base();
  listen_on(0, echo_accept, &churn_port);
  churn_n = n;
  on_connected = send_msg;
  for (int i = 0; i < concurrency && churn_started < n; i++) churn_start_one();
  if (event_base_dispatch(base) < 0) die("event_base_dispatch", 0);
  if (churn_done != n) die("churn incomplete", churn_done);
  free_all(); /* server ends whose EOF is not in yet */
}

/* ---------------------------------------------------------------- idle */

static long idle_accepted, idle_want;

/* a real server reads its connections: drop what comes */
static void idle_read(struct bufferevent *bev, void *ud) {
  (void)ud;
  struct evbuffer *in = bufferevent_get_input(bev);
  evbuffer_drain(in, evbuffer_get_length(in));
}

static void idle_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int len,
                        void *ud) {
  (void)l;
  (void)sa;
  (void)len;
  (void)ud;
  srv_accept(fd, idle_read, srv_event);
  if (++idle_accepted == idle_want) {
    idle_all_open();
    idle_release_clients();
    event_base_loopbreak(base);
  }
}

static void net_idle(long n) {
  new_base();
  uint16_t port = 0;
  listen_on(0, idle_accept, &port);
  idle_want = n;
  idle_spawn_clients(port, n);
  if (event_base_dispatch(base) < 0) die("event_base_dispatch", 0);
  free_all(); /* closes every connection */
}
