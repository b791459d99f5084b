/*
 * test_producer.c - producers, zero-copy writes and adopted sockets (API.md §6.3, §6.4, §6.7).
 *
 * Checks:
 *   - a push producer: pause_producing (inside a write) above the high mark, resume_producing at the
 *     low mark, the buffer stays bounded, 8 MiB arrive byte-exact, the producer's release runs once
 *     at unregister;
 *   - a pull producer: resume_producing on a later pass (not inside register) and after each drain;
 *   - lose_connection waits for the producer to be unregistered; at the end of the connection the
 *     producer gets stop_producing, then its release, both before connection_lost;
 *   - misuse: a second producer → BUSY, on a closing transport → CLOSED (ud not released),
 *     unregister without one → NOT_FOUND, low > high → INVALID;
 *   - write_zerocopy: 4 MiB sent in place, the release once, never inside the call; len 0; refused
 *     after lose_connection with the buffer left to the caller;
 *   - UNIX fd passing: fds arrive through file_descriptor_received before the bytes they came with,
 *     in order, and work; without the callback they are closed; on TCP → UNSUPPORTED;
 *   - adopt_stream_connection (a socketpair end; the caller's fd stays its own) and
 *     adopt_stream_port (stopping it leaves the caller's listening socket working); non-sockets,
 *     wrong socket states and bad fds are refused.
 */
#include "test_util.h"

#include <netinet/in.h>
#include <sys/socket.h>

static const char *PROG = "test_producer";

static int in_host_call, sequence;

/* ---- a client thread that reads everything until EOF ------------------------------------------ */

typedef struct {
  uint16_t port;
  long got;
  uint32_t checksum;
  int slow;           /* sleep a little between reads, so the server's buffer fills */
  atomic_int *hold;   /* if set: read nothing until it is non-zero (at most 10 s) */
  atomic_int done;
} reader_t;

static void *reader_main(void *arg) {
  reader_t *rd = arg;
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  int rcvbuf = 65536; /* before connect: small kernel buffers make the server's buffer fill */
  setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
  struct sockaddr_in sin = {0};
  sin.sin_family = AF_INET;
  sin.sin_port = htons(rd->port);
  sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(connect(fd, (struct sockaddr *)&sin, sizeof sin) == 0);
  for (int i = 0; rd->hold && !atomic_load(rd->hold) && i < 10000; i++) tu_sleep_ms(1);
  uint8_t buf[65536];
  for (;;) {
    ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    for (ssize_t i = 0; i < n; i++) rd->checksum = rd->checksum * 31 + buf[i];
    rd->got += n;
    if (rd->slow && (rd->got & 0x3ffff) < (long)n) tu_sleep_ms(1);
  }
  close(fd);
  atomic_store(&rd->done, 1);
  return NULL;
}

static uint32_t checksum_of(const uint8_t *data, size_t len, uint32_t start) {
  for (size_t i = 0; i < len; i++) start = start * 31 + data[i];
  return start;
}

/* ---- the server side ----------------------------------------------------------------------------- */

#define TOTAL (8L << 20)
#define CHUNK 65536
static uint8_t chunk[CHUNK];

static atomic_int first_pause;

typedef struct {
  int streaming, paused, pauses, resumes, stops, releases, stop_seq, release_seq, lost_seq;
  int resumes_inside;
  long written;
  size_t max_buffered;
  int lost, lost_reason;
  int mode; /* 0: produce TOTAL then unregister and lose; 1: lose at once, unregister later */
  reactor_transport_t *t;
} prod_t;

static prod_t prod;
static uint32_t sent_checksum;

static void produce(reactor_transport_t *t) {
  while (!prod.paused && prod.written < TOTAL) {
    CHECK_OK(reactor_transport_write(t, chunk, CHUNK));
    sent_checksum = checksum_of(chunk, CHUNK, sent_checksum);
    prod.written += CHUNK;
    size_t buffered = 0;
    CHECK_OK(reactor_transport_get_write_buffer_size(t, &buffered));
    if (buffered > prod.max_buffered) prod.max_buffered = buffered;
    if (!prod.streaming) break; /* pull: one chunk per resume */
  }
  if (prod.written >= TOTAL) {
    CHECK_OK(reactor_transport_unregister_producer(t));
    CHECK_OK(reactor_transport_lose_connection(t));
  }
}

static void p_pause(reactor_transport_t *t, void *ud) {
  (void)t;
  (void)ud;
  prod.pauses++;
  atomic_store(&first_pause, 1);
  CHECK_EQ(prod.paused, 0);
  prod.paused = 1;
}

static void p_resume(reactor_transport_t *t, void *ud) {
  (void)ud;
  if (in_host_call) prod.resumes_inside++;
  prod.resumes++;
  prod.paused = 0;
  produce(t);
}

static void p_stop(reactor_transport_t *t, void *ud) {
  (void)t;
  (void)ud;
  prod.stops++;
  prod.stop_seq = ++sequence;
}

static void p_release(void *ud) {
  (void)ud;
  prod.releases++;
  prod.release_seq = ++sequence;
}

static reactor_producer_t producer_callbacks(void) {
  reactor_producer_t p;
  memset(&p, 0, sizeof p);
  p.struct_size = sizeof p;
  p.pause_producing = p_pause;
  p.resume_producing = p_resume;
  p.stop_producing = p_stop;
  return p;
}

static void s_made(reactor_transport_t *t, void *ud) {
  (void)ud;
  prod.t = t;
  int sndbuf = 65536; /* the host may tune the socket through fileno */
  setsockopt(reactor_transport_fileno(t), SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);
  reactor_producer_t p = producer_callbacks();
  in_host_call = 1;
  CHECK_OK(reactor_transport_register_producer(t, &p, prod.streaming, NULL, p_release));
  in_host_call = 0;
  CHECK_RC(reactor_transport_register_producer(t, &p, prod.streaming, NULL, p_release), REACTOR_E_BUSY);
  CHECK_RC(reactor_transport_set_write_buffer_limits(t, 10, 20), REACTOR_E_INVALID);
  if (prod.mode == 1) {
    CHECK_OK(reactor_transport_write(t, "bye", 3));
    CHECK_OK(reactor_transport_lose_connection(t)); /* waits for the producer */
    return;
  }
  if (prod.mode == 2) return; /* registered only: the test aborts */
  if (prod.streaming) produce(t);
}

static void s_lost(reactor_transport_t *t, int reason, void *ud) {
  (void)t;
  (void)ud;
  prod.lost++;
  prod.lost_reason = reason;
  prod.lost_seq = ++sequence;
}

static reactor_t *new_server(uint16_t *port) {
  reactor_t *r = tu_new_reactor();
  reactor_protocol_t p;
  reactor_protocol_init(&p);
  p.connection_made = s_made;
  p.connection_lost = s_lost;
  reactor_port_t *out = NULL;
  REQUIRE_OK(reactor_listen_tcp(r, 0, "127.0.0.1", NULL, &p, NULL, NULL, NULL, &out));
  reactor_address_t host;
  REQUIRE_OK(reactor_port_get_host(out, &host));
  *port = host.port;
  return r;
}

static void drive_until(reactor_t *r, int *flag, const char *what) {
  double deadline = tu_now() + 30;
  while (!*flag) {
    CHECK_OK(reactor_iterate(r, 0.005));
    if (tu_now() > deadline) {
      fprintf(stderr, "   timed out waiting for %s (written %ld, %d pauses, %d resumes)\n", what,
              prod.written, prod.pauses, prod.resumes);
      CHECK(0);
      return;
    }
  }
}

static void run_producer(int streaming) {
  memset(&prod, 0, sizeof prod);
  prod.streaming = streaming;
  sent_checksum = 0;
  uint16_t port;
  reactor_t *r = new_server(&port);
  atomic_store(&first_pause, 0);
  /* push: the reader waits for the first pause, so the high mark is surely crossed */
  reader_t rd = {.port = port, .slow = 1, .hold = streaming ? &first_pause : NULL};
  pthread_t th;
  REQUIRE(pthread_create(&th, NULL, reader_main, &rd) == 0);
  drive_until(r, &prod.lost, "the producer's connection to end");
  pthread_join(th, NULL);
  CHECK_EQ(rd.got, TOTAL);
  CHECK_EQ(rd.checksum, sent_checksum);
  CHECK_EQ(prod.lost_reason, REACTOR_OK);
  CHECK_EQ(prod.releases, 1);
  CHECK_EQ(prod.stops, 0);
  CHECK_EQ(prod.resumes_inside, 0);
  if (streaming) {
    CHECK(prod.pauses >= 1);
    /* every pause but perhaps the one the last write caused (then it unregistered) was resumed */
    CHECK(prod.resumes == prod.pauses || prod.resumes == prod.pauses - 1);
    CHECK(prod.max_buffered <= 65536 + CHUNK);
  } else {
    CHECK_EQ(prod.pauses, 0);
    CHECK(prod.resumes >= TOTAL / CHUNK);
  }
  CHECK_OK(reactor_free(r));
}

static void test_push_and_pull(void) {
  SECTION("push producer: pause above high, resume at low, bounded buffer");
  run_producer(1);
  SECTION("pull producer: resume on a later pass and after each drain");
  run_producer(0);
}

static void test_waits_and_stop(void) {
  SECTION("lose_connection waits for the producer; abort: stop, release, then connection_lost");
  memset(&prod, 0, sizeof prod);
  prod.streaming = 1;
  prod.mode = 1;
  uint16_t port;
  reactor_t *r = new_server(&port);
  reader_t rd = {.port = port};
  pthread_t th;
  REQUIRE(pthread_create(&th, NULL, reader_main, &rd) == 0);
  double deadline = tu_now() + 10;
  while (prod.t == NULL && tu_now() < deadline) CHECK_OK(reactor_iterate(r, 0.005));
  for (int i = 0; i < 20; i++) CHECK_OK(reactor_iterate(r, 0.005));
  CHECK_EQ(prod.lost, 0); /* held by the producer */
  reactor_producer_t p = producer_callbacks();
  CHECK_RC(reactor_transport_write(prod.t, "x", 1), REACTOR_E_CLOSED);
  CHECK_OK(reactor_transport_unregister_producer(prod.t));
  CHECK_RC(reactor_transport_unregister_producer(prod.t), REACTOR_E_NOT_FOUND);
  int before = prod.releases;
  CHECK_RC(reactor_transport_register_producer(prod.t, &p, 1, NULL, p_release), REACTOR_E_CLOSED);
  CHECK_EQ(prod.releases, before);
  drive_until(r, &prod.lost, "the close after unregister");
  pthread_join(th, NULL);
  CHECK_EQ(rd.got, 3);
  CHECK_EQ(prod.lost_reason, REACTOR_OK);
  CHECK_EQ(prod.stops, 0);
  CHECK_EQ(prod.releases, 1);
  CHECK_OK(reactor_free(r));

  memset(&prod, 0, sizeof prod);
  sequence = 0;
  prod.streaming = 1;
  prod.mode = 2; /* register only */
  r = new_server(&port);
  reader_t rd2 = {.port = port};
  REQUIRE(pthread_create(&th, NULL, reader_main, &rd2) == 0);
  deadline = tu_now() + 10;
  while (prod.t == NULL && tu_now() < deadline) CHECK_OK(reactor_iterate(r, 0.005));
  CHECK_OK(reactor_transport_abort_connection(prod.t));
  drive_until(r, &prod.lost, "the aborted connection");
  pthread_join(th, NULL);
  CHECK_EQ(prod.lost_reason, REACTOR_E_CONNECTION_ABORTED);
  CHECK_EQ(prod.stops, 1);
  CHECK_EQ(prod.releases, 1);
  CHECK(prod.stop_seq < prod.release_seq);
  CHECK(prod.release_seq < prod.lost_seq);
  CHECK_OK(reactor_free(r));
}

/* ---- zero-copy ---------------------------------------------------------------------------------- */

#define ZC_BYTES (4 << 20)
static uint8_t *zc_buf;
static int zc_releases, zc_released_inside, zc_empty_releases, zc_lost;
static void zc_release(void *ud) {
  (void)ud;
  if (in_host_call) zc_released_inside++;
  zc_releases++;
}
static void zc_empty_release(void *ud) {
  (void)ud;
  zc_empty_releases++;
}

static void zc_made(reactor_transport_t *t, void *ud) {
  (void)ud;
  in_host_call = 1;
  CHECK_OK(reactor_transport_write_zerocopy(t, zc_buf, ZC_BYTES, zc_release, NULL));
  CHECK_OK(reactor_transport_write_zerocopy(t, NULL, 0, zc_empty_release, NULL));
  CHECK_RC(reactor_transport_write_zerocopy(t, NULL, 5, zc_release, NULL), REACTOR_E_INVALID);
  CHECK_OK(reactor_transport_write(t, "tail", 4));
  CHECK_OK(reactor_transport_lose_connection(t));
  CHECK_RC(reactor_transport_write_zerocopy(t, zc_buf, 10, zc_release, NULL), REACTOR_E_CLOSED);
  in_host_call = 0;
}

static void zc_lost_cb(reactor_transport_t *t, int reason, void *ud) {
  (void)t;
  (void)ud;
  CHECK_EQ(reason, REACTOR_OK);
  zc_lost++;
}

static void test_zerocopy(void) {
  SECTION("write_zerocopy: sent in place, released once, never inside the call");
  zc_buf = malloc(ZC_BYTES);
  for (size_t i = 0; i < ZC_BYTES; i++) zc_buf[i] = (uint8_t)(i ^ (i >> 9));
  reactor_t *r = tu_new_reactor();
  reactor_protocol_t p;
  reactor_protocol_init(&p);
  p.connection_made = zc_made;
  p.connection_lost = zc_lost_cb;
  reactor_port_t *port = NULL;
  CHECK_OK(reactor_listen_tcp(r, 0, "127.0.0.1", NULL, &p, NULL, NULL, NULL, &port));
  reactor_address_t host;
  CHECK_OK(reactor_port_get_host(port, &host));
  reader_t rd = {.port = host.port, .slow = 1};
  pthread_t th;
  REQUIRE(pthread_create(&th, NULL, reader_main, &rd) == 0);
  drive_until(r, &zc_lost, "the zero-copy connection");
  pthread_join(th, NULL);
  CHECK_EQ(rd.got, ZC_BYTES + 4);
  CHECK_EQ(rd.checksum, checksum_of((const uint8_t *)"tail", 4, checksum_of(zc_buf, ZC_BYTES, 0)));
  CHECK_EQ(zc_releases, 1);
  CHECK_EQ(zc_released_inside, 0);
  CHECK_EQ(zc_empty_releases, 1);
  CHECK_OK(reactor_free(r));
  free(zc_buf);
}

/* ---- adopted sockets ---------------------------------------------------------------------------- */

static int ad_made, ad_lost;
static void ad_made_cb(reactor_transport_t *t, void *ud) {
  (void)ud;
  if (in_host_call) CHECK(0);
  ad_made++;
  reactor_address_t peer;
  if (reactor_transport_get_peer(t, &peer) == REACTOR_OK && peer.family == REACTOR_FAMILY_INET)
    CHECK_RC(reactor_transport_send_file_descriptor(t, 0), REACTOR_E_UNSUPPORTED);
  CHECK_OK(reactor_transport_write(t, "adopted", 7));
}
static void ad_lost_cb(reactor_transport_t *t, int reason, void *ud) {
  (void)t;
  (void)ud;
  (void)reason;
  ad_lost++;
}

static void test_adopt(void) {
  SECTION("adopt_stream_connection and adopt_stream_port");
  reactor_t *r = tu_new_reactor();
  reactor_protocol_t p;
  reactor_protocol_init(&p);
  p.connection_made = ad_made_cb;
  p.connection_lost = ad_lost_cb;

  int sv[2];
  REQUIRE(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
  reactor_transport_t *t = NULL;
  atomic_int released = 0;
  in_host_call = 1;
  CHECK_OK(reactor_adopt_stream_connection(r, sv[0], &p, &released, tu_count_release, &t));
  in_host_call = 0;
  REQUIRE(t != NULL);
  CHECK(reactor_transport_fileno(t) != sv[0]);
  close(sv[0]); /* the library has its own copy */
  int got = 0;
  drive_until(r, &ad_made, "connection_made of the adopted socket");
  char buf[16];
  ssize_t n = recv(sv[1], buf, sizeof buf, 0);
  CHECK_EQ(n, 7);
  close(sv[1]);
  drive_until(r, &ad_lost, "the adopted connection's end");
  CHECK_EQ(atomic_load(&released), 1);
  (void)got;

  int pipefd[2];
  REQUIRE(pipe(pipefd) == 0);
  CHECK_RC(reactor_adopt_stream_connection(r, pipefd[0], &p, NULL, NULL, &t), REACTOR_E_UNSUPPORTED);
  CHECK_RC(reactor_adopt_stream_port(r, pipefd[0], NULL, NULL, NULL, NULL, NULL), REACTOR_E_INVALID);
  reactor_port_t *port = NULL;
  CHECK_RC(reactor_adopt_stream_port(r, pipefd[0], &p, NULL, NULL, NULL, &port), REACTOR_E_UNSUPPORTED);
  close(pipefd[0]);
  close(pipefd[1]);
  CHECK_RC(reactor_adopt_stream_connection(r, -1, &p, NULL, NULL, &t), REACTOR_E_INVALID);
  int udp = socket(AF_INET, SOCK_DGRAM, 0);
  CHECK_RC(reactor_adopt_stream_connection(r, udp, &p, NULL, NULL, &t), REACTOR_E_UNSUPPORTED);
  close(udp);

  /* a listening socket of the host's: adopted as a port, not as a connection */
  int lfd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in sin = {0};
  sin.sin_family = AF_INET;
  sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(bind(lfd, (struct sockaddr *)&sin, sizeof sin) == 0);
  REQUIRE(listen(lfd, 16) == 0);
  socklen_t len = sizeof sin;
  getsockname(lfd, (struct sockaddr *)&sin, &len);
  CHECK_RC(reactor_adopt_stream_connection(r, lfd, &p, NULL, NULL, &t), REACTOR_E_UNSUPPORTED);
  CHECK_OK(reactor_adopt_stream_port(r, lfd, &p, NULL, NULL, NULL, &port));
  CHECK(reactor_port_fileno(port) != lfd);
  ad_made = ad_lost = 0;
  int c = socket(AF_INET, SOCK_STREAM, 0);
  REQUIRE(connect(c, (struct sockaddr *)&sin, sizeof sin) == 0);
  drive_until(r, &ad_made, "a connection through the adopted port");
  CHECK_OK(reactor_port_stop_listening(port));
  /* the caller's socket still listens (only the library's copy was closed) */
  int c2 = socket(AF_INET, SOCK_STREAM, 0);
  REQUIRE(connect(c2, (struct sockaddr *)&sin, sizeof sin) == 0);
  int accepted = accept(lfd, NULL, NULL);
  CHECK(accepted >= 0);
  close(accepted);
  close(c2);
  close(c);
  close(lfd);
  CHECK_OK(reactor_free(r));
}

/* ---- UNIX fd passing --------------------------------------------------------------------------- */

static int fp_pipe[2];
static int fp_fds[8], fp_nfds, fp_bytes, fp_fds_at_first_byte = -1, fp_lost;

static void fp_sender_made(reactor_transport_t *t, void *ud) {
  (void)ud;
  CHECK_RC(reactor_transport_send_file_descriptor(t, -1), REACTOR_E_INVALID);
  CHECK_OK(reactor_transport_send_file_descriptor(t, fp_pipe[1]));
  CHECK_OK(reactor_transport_write(t, "a", 1));
  CHECK_OK(reactor_transport_send_file_descriptor(t, fp_pipe[1]));
  CHECK_OK(reactor_transport_send_file_descriptor(t, fp_pipe[0]));
  CHECK_OK(reactor_transport_write(t, "bc", 2));
  CHECK_OK(reactor_transport_lose_connection(t));
}

static void fp_received_fd(reactor_transport_t *t, int fd, void *ud) {
  (void)t;
  (void)ud;
  if (fp_nfds < 8) fp_fds[fp_nfds++] = fd;
}

static void fp_data(reactor_transport_t *t, const uint8_t *data, size_t len, void *ud) {
  (void)t;
  (void)data;
  (void)ud;
  if (fp_bytes == 0) fp_fds_at_first_byte = fp_nfds;
  fp_bytes += (int)len;
}

static void fp_lost_cb(reactor_transport_t *t, int reason, void *ud) {
  (void)t;
  (void)reason;
  (void)ud;
  fp_lost++;
}

static void test_fd_passing(void) {
  SECTION("UNIX fd passing");
  reactor_t *r = tu_new_reactor();
  REQUIRE(pipe(fp_pipe) == 0);
  reactor_protocol_t sender, receiver;
  reactor_protocol_init(&sender);
  sender.connection_made = fp_sender_made;
  sender.connection_lost = fp_lost_cb;
  reactor_protocol_init(&receiver);
  receiver.file_descriptor_received = fp_received_fd;
  receiver.data_received = fp_data;
  receiver.connection_lost = fp_lost_cb;
  int sv[2];
  REQUIRE(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
  CHECK_OK(reactor_adopt_stream_connection(r, sv[0], &sender, NULL, NULL, NULL));
  CHECK_OK(reactor_adopt_stream_connection(r, sv[1], &receiver, NULL, NULL, NULL));
  close(sv[0]);
  close(sv[1]);
  fp_lost = 0;
  double deadline = tu_now() + 10;
  while (fp_lost < 2 && tu_now() < deadline) CHECK_OK(reactor_iterate(r, 0.005));
  CHECK_EQ(fp_bytes, 3);
  CHECK_EQ(fp_nfds, 3);
  CHECK(fp_fds_at_first_byte >= 1); /* the first fd came before the byte it went with */
  /* the fds work: the first is the pipe's write end */
  CHECK_EQ(write(fp_fds[0], "!", 1), 1);
  char c = 0;
  CHECK_EQ(read(fp_pipe[0], &c, 1), 1);
  CHECK_EQ(c, '!');
  for (int i = 0; i < fp_nfds; i++) close(fp_fds[i]);

  /* without file_descriptor_received the library closes what arrives */
  receiver.file_descriptor_received = NULL;
  fp_nfds = 0;
  fp_bytes = 0;
  fp_lost = 0;
  REQUIRE(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
  CHECK_OK(reactor_adopt_stream_connection(r, sv[0], &sender, NULL, NULL, NULL));
  CHECK_OK(reactor_adopt_stream_connection(r, sv[1], &receiver, NULL, NULL, NULL));
  close(sv[0]);
  close(sv[1]);
  deadline = tu_now() + 10;
  while (fp_lost < 2 && tu_now() < deadline) CHECK_OK(reactor_iterate(r, 0.005));
  CHECK_EQ(fp_bytes, 3);
  CHECK_EQ(fp_nfds, 0);
  close(fp_pipe[1]);
  /* every copy of the write end is closed now (ours, the library's, the receiver's): EOF */
  CHECK_EQ(read(fp_pipe[0], &c, 1), 0);
  close(fp_pipe[0]);
  CHECK_OK(reactor_free(r));
}

int main(void) {
  tu_watchdog(120);
  signal(SIGPIPE, SIG_DFL);
  memset(chunk, 'p', sizeof chunk);
  for (size_t i = 0; i < sizeof chunk; i++) chunk[i] = (uint8_t)(i * 13);
  tu_banner_probe(PROG);
  test_push_and_pull();
  test_waits_and_stop();
  test_zerocopy();
  test_fd_passing();
  test_adopt();
  return tu_finish(PROG);
}
