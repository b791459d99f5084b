/* libuv's networking benchmarks (see net_common.h): uv_tcp_t / uv_pipe_t streams, uv_write and
 * uv_read_start with one static read buffer, default options (no TCP_NODELAY, as in libreactor).
 * Every handle but the listener is malloc'd with the handle at offset 0, so one close callback
 * (free) serves them all. */
#define BENCH_LIB "libuv"
#include "net_common.h"

#include <uv.h>

static uv_loop_t loop_s, *loop = &loop_s;

static void ucheck(const char *what, int rc) {
  if (rc != 0) die(what, rc);
}

/* ---------------------------------------------------------------- shared plumbing */

/* the listening socket: a TCP or a UNIX (pipe) stream, never freed */
static union {
  uv_tcp_t tcp;
  uv_pipe_t pipe;
} listener;
static int net_unix; /* the current shape runs over a UNIX socket */

/* one read buffer for every stream: each read callback consumes (or copies) its data at once */
static char rbuf[64 * 1024];

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  (void)h;
  (void)suggested;
  buf->base = rbuf;
  buf->len = sizeof rbuf;
}

static void free_handle(uv_handle_t *h) { free(h); }

/* a new, initialised TCP or UNIX stream on the heap (freed by free_handle when closed) */
static uv_stream_t *new_stream(size_t size) {
  uv_stream_t *s = malloc(size);
  if (!s) die("malloc", 0);
  if (net_unix)
    ucheck("uv_pipe_init", uv_pipe_init(loop, (uv_pipe_t *)s, 0));
  else
    ucheck("uv_tcp_init", uv_tcp_init(loop, (uv_tcp_t *)s));
  return s;
}

static size_t stream_size(void) { return net_unix ? sizeof(uv_pipe_t) : sizeof(uv_tcp_t); }

/* listens (backlog 4096) on 127.0.0.1 port 0 or on net_unix_path; returns the TCP port */
static uint16_t listen_on(uv_connection_cb on_conn) {
  uint16_t port = 0;
  if (net_unix) {
    ucheck("uv_pipe_init", uv_pipe_init(loop, &listener.pipe, 0));
    ucheck("uv_pipe_bind", uv_pipe_bind(&listener.pipe, net_unix_path));
  } else {
    struct sockaddr_in sin;
    ucheck("uv_tcp_init", uv_tcp_init(loop, &listener.tcp));
    ucheck("uv_ip4_addr", uv_ip4_addr("127.0.0.1", 0, &sin));
    ucheck("uv_tcp_bind", uv_tcp_bind(&listener.tcp, (const struct sockaddr *)&sin, 0));
  }
  ucheck("uv_listen", uv_listen((uv_stream_t *)&listener, 4096, on_conn));
  if (!net_unix) {
    struct sockaddr_in sin;
    int len = sizeof sin;
    ucheck("uv_tcp_getsockname", uv_tcp_getsockname(&listener.tcp, (struct sockaddr *)&sin, &len));
    port = ntohs(sin.sin_port);
  }
  return port;
}

/* starts connecting `s` (from new_stream) to the listener; `req` must live until `cb` runs */
static uint16_t net_port;
static void connect_to(uv_connect_t *req, uv_stream_t *s, uv_connect_cb cb) {
  if (net_unix) {
    uv_pipe_connect(req, (uv_pipe_t *)s, net_unix_path, cb); /* reports errors through cb */
  } else {
    struct sockaddr_in sin;
    ucheck("uv_ip4_addr", uv_ip4_addr("127.0.0.1", net_port, &sin));
    ucheck("uv_tcp_connect", uv_tcp_connect(req, (uv_tcp_t *)s, (const struct sockaddr *)&sin, cb));
  }
}

/* accepts a pending connection into a new stream and starts reading it with `on_read` */
static uv_stream_t *accept_one(uv_stream_t *server, int status, uv_read_cb on_read) {
  if (status < 0) die("listen", status);
  uv_stream_t *s = new_stream(stream_size());
  ucheck("uv_accept", uv_accept(server, s));
  ucheck("uv_read_start", uv_read_start(s, alloc_cb, on_read));
  return s;
}

/* write requests for the clients' sends of static data (net_msg, pump_chunk): a free list, so
 * the steady state makes no malloc per write */
typedef union wreq {
  uv_write_t req;
  union wreq *next;
} wreq_t;
static wreq_t *wreq_free;

static uv_write_t *wreq_get(void) {
  wreq_t *w = wreq_free;
  if (w)
    wreq_free = w->next;
  else if (!(w = malloc(sizeof *w)))
    die("malloc", 0);
  return &w->req;
}

static void wreq_put(uv_write_t *req) {
  wreq_t *w = (wreq_t *)req;
  w->next = wreq_free;
  wreq_free = w;
}

/* writes static bytes (they outlive the write) with a pooled request */
static void write_static(uv_stream_t *s, const uint8_t *data, size_t len, uv_write_cb cb) {
  uv_buf_t b = uv_buf_init((char *)data, (unsigned)len);
  ucheck("uv_write", uv_write(wreq_get(), s, &b, 1, cb));
}

static void static_written(uv_write_t *req, int status) {
  wreq_put(req);
  if (status < 0 && status != UV_ECANCELED) die("write", status);
}

/* the echo server: uv_write keeps the caller's pointer until the write completes, so each echo is
 * copied into one malloc'd block (request + bytes), freed in the write callback */
typedef struct {
  uv_write_t req;
  uint8_t data[];
} echo_wr_t;

static void echo_written(uv_write_t *req, int status) {
  free(req);
  if (status < 0 && status != UV_ECANCELED) die("echo write", status);
}

static void echo_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
  if (nread > 0) {
    echo_wr_t *w = malloc(sizeof *w + (size_t)nread);
    if (!w) die("malloc", 0);
    memcpy(w->data, buf->base, (size_t)nread);
    uv_buf_t b = uv_buf_init((char *)w->data, (unsigned)nread);
    ucheck("uv_write", uv_write(&w->req, s, &b, 1, echo_written));
  } else if (nread == UV_EOF) {
    uv_close((uv_handle_t *)s, free_handle); /* the peer is done: close our end */
  } else if (nread < 0) {
    die("read", nread);
  }
}

static void echo_accept(uv_stream_t *server, int status) { accept_one(server, status, echo_read); }

/* after uv_run returned (uv_stop or no work left): close every handle still open, let the close
 * callbacks run, free the loop and the write-request pool */
static void close_walk(uv_handle_t *h, void *arg) {
  (void)arg;
  if (uv_is_closing(h)) return;
  uv_close(h, h == (uv_handle_t *)&listener ? NULL : free_handle);
}

static void loop_teardown(void) {
  uv_walk(loop, close_walk, NULL);
  ucheck("uv_run (teardown)", uv_run(loop, UV_RUN_DEFAULT));
  ucheck("uv_loop_close", uv_loop_close(loop));
  while (wreq_free) {
    wreq_t *w = wreq_free;
    wreq_free = w->next;
    free(w);
  }
}

/* ---------------------------------------------------------------- pingpong */

static long pp_left;
static size_t pp_got;

static void pp_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
  (void)buf;
  if (nread < 0) die("pingpong read", nread);
  pp_got += (size_t)nread;
  if (pp_got < NET_MSG) return;
  pp_got = 0;
  if (--pp_left == 0) {
    uv_stop(loop);
    return;
  }
  write_static(s, net_msg, NET_MSG, static_written); /* the next round trip */
}

static void pp_connected(uv_connect_t *req, int status) {
  if (status < 0) die("connect", status);
  ucheck("uv_read_start", uv_read_start(req->handle, alloc_cb, pp_read));
  write_static(req->handle, net_msg, NET_MSG, static_written);
}

static void net_pingpong(int unix_socket, long n) {
  static uv_connect_t creq;
  ucheck("uv_loop_init", uv_loop_init(loop));
  net_unix = unix_socket;
  net_port = listen_on(echo_accept);
  pp_left = n;
  connect_to(&creq, new_stream(stream_size()), pp_connected);
  uv_run(loop, UV_RUN_DEFAULT);
  if (pp_left != 0) die("pingpong incomplete", pp_left);
  loop_teardown();
}

/* ---------------------------------------------------------------- pump */

static uint64_t pump_total, pump_sent, pump_received;
static uv_stream_t *pump_client;
static uv_shutdown_t pump_shut;
static int pump_shutting;

static void pump_shut_done(uv_shutdown_t *req, int status) {
  if (status < 0 && status != UV_ECANCELED) die("shutdown", status);
  uv_close((uv_handle_t *)req->handle, free_handle);
}

static void pump_written(uv_write_t *req, int status);

/* writes 64 KiB chunks while at most PUMP_MAX_QUEUED bytes stay queued in libuv (the same bound as
 * libreactor's producer: pause above PUMP_MAX_QUEUED - PUMP_CHUNK); once all are sent, shuts
 * the write side down (after the queue drains) and closes */
static void pump_fill(void) {
  while (pump_sent < pump_total &&
         uv_stream_get_write_queue_size(pump_client) + PUMP_CHUNK <= PUMP_MAX_QUEUED) {
    uint64_t left = pump_total - pump_sent;
    size_t len = left < PUMP_CHUNK ? (size_t)left : PUMP_CHUNK;
    write_static(pump_client, pump_chunk, len, pump_written);
    pump_sent += len;
  }
  if (pump_sent >= pump_total && !pump_shutting) {
    pump_shutting = 1;
    ucheck("uv_shutdown", uv_shutdown(&pump_shut, pump_client, pump_shut_done));
  }
}

/* a chunk left libuv's queue: refill */
static void pump_written(uv_write_t *req, int status) {
  static_written(req, status);
  if (status == 0) pump_fill();
}

static void pump_connected(uv_connect_t *req, int status) {
  if (status < 0) die("connect", status);
  pump_client = req->handle;
  pump_fill();
}

/* the receiver counts bytes; the sender's shutdown (EOF) ends the run */
static void pump_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
  (void)buf;
  if (nread > 0) {
    pump_received += (uint64_t)nread;
  } else if (nread == UV_EOF) {
    uv_close((uv_handle_t *)s, free_handle);
    uv_stop(loop);
  } else if (nread < 0) {
    die("pump read", nread);
  }
}

static void pump_accept(uv_stream_t *server, int status) { accept_one(server, status, pump_read); }

static void net_pump(int unix_socket, uint64_t total) {
  static uv_connect_t creq;
  ucheck("uv_loop_init", uv_loop_init(loop));
  net_unix = unix_socket;
  net_port = listen_on(pump_accept);
  pump_total = total;
  connect_to(&creq, new_stream(stream_size()), pump_connected);
  uv_run(loop, UV_RUN_DEFAULT);
  if (pump_received != total) die("pump byte count", (long)(pump_received >> 10));
  loop_teardown();
}

/* ---------------------------------------------------------------- churn */

/* a churn client: the stream first (freed by free_handle), its connect and write requests and the
 * count of echoed bytes */
typedef struct {
  uv_tcp_t tcp;
  uv_connect_t creq;
  uv_write_t wreq;
  size_t got;
} churn_conn_t;

static long churn_started, churn_done, churn_n;

static void churn_start_one(void);

/* a client is closed: count it, start the next one */
static void churn_closed(uv_handle_t *h) {
  free(h);
  if (++churn_done == churn_n) {
    uv_stop(loop);
    return;
  }
  if (churn_started < churn_n) churn_start_one();
}

static void churn_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
  (void)buf;
  churn_conn_t *c = (churn_conn_t *)s;
  if (nread < 0) die("churn read", nread);
  c->got += (size_t)nread;
  if (c->got >= NET_MSG) uv_close((uv_handle_t *)s, churn_closed); /* got the echo: close */
}

static void churn_written(uv_write_t *req, int status) {
  (void)req;
  if (status < 0 && status != UV_ECANCELED) die("churn write", status);
}

static void churn_connected(uv_connect_t *req, int status) {
  if (status < 0) die("connect", status);
  churn_conn_t *c = (churn_conn_t *)req->handle;
  uv_buf_t b = uv_buf_init((char *)net_msg, NET_MSG);
  ucheck("uv_read_start", uv_read_start(req->handle, alloc_cb, churn_read));
  ucheck("uv_write", uv_write(&c->wreq, req->handle, &b, 1, churn_written));
}

static void churn_start_one(void) {
  churn_started++;
  churn_conn_t *c = (churn_conn_t *)new_stream(sizeof(churn_conn_t));
  c->got = 0;
  connect_to(&c->creq, (uv_stream_t *)&c->tcp, churn_connected);
}

static void net_churn(long n, int concurrency) {
  ucheck("uv_loop_init", uv_loop_init(loop));
  net_unix = 0;
  net_port = listen_on(echo_accept);
  churn_n = n;
  for (int i = 0; i < concurrency && churn_started < n; i++) churn_start_one();
  uv_run(loop, UV_RUN_DEFAULT);
  if (churn_done != n) die("churn incomplete", churn_done);
  loop_teardown();
}

/* ---------------------------------------------------------------- idle */

static long idle_accepted, idle_want;

/* the idle clients never send; their EOF or reset only comes once released, after the stop */
static void idle_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
  (void)buf;
  if (nread < 0) uv_close((uv_handle_t *)s, free_handle);
}

static void idle_accept(uv_stream_t *server, int status) {
  accept_one(server, status, idle_read);
  if (++idle_accepted == idle_want) {
    idle_all_open();
    idle_release_clients();
    uv_stop(loop); /* the teardown closes every connection */
  }
}

static void net_idle(long n) {
  ucheck("uv_loop_init", uv_loop_init(loop));
  net_unix = 0;
  uint16_t port = listen_on(idle_accept);
  idle_want = n;
  idle_spawn_clients(port, n);
  uv_run(loop, UV_RUN_DEFAULT);
  loop_teardown();
}
