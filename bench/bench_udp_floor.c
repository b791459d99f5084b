/* "floor" UDP benchmarks (see udp_common.h): the same work on raw Linux syscalls with no library, as
 * a lower bound. One level-triggered epoll instance; per readiness event recvmmsg batches of up to
 * 64 datagrams, repeated while a batch comes back full (a short batch means the queue is empty:
 * no extra call to see EAGAIN). The echo server answers a whole batch with one sendmmsg; the
 * client sends the datagrams a batch of echoes allows with one sendmmsg. */
#define BENCH_LIB "floor"
#include "udp_common.h"

#include <sys/epoll.h>

#define VLEN 64
#define SLOT 2048 /* per datagram; longer ones are reported as truncated (ours are 64 bytes) */

static int epfd, stop_flag;
static uint8_t slots[VLEN][SLOT];
static struct iovec iov[VLEN];
static struct sockaddr_in from[VLEN];
static struct mmsghdr msgs[VLEN];

/* what a socket does with a batch of n datagrams in msgs/slots/from; may set stop_flag */
typedef void (*batch_fn)(int fd, int n);
static batch_fn handler[2];
static int handler_fd[2];

static void add_fd(int idx, int fd, batch_fn fn) {
  handler[idx] = fn;
  handler_fd[idx] = fd;
  struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)idx};
  if (epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) != 0) die("epoll_ctl", errno);
}

static void read_batches(int idx) {
  int fd = handler_fd[idx];
  for (;;) {
    for (int i = 0; i < VLEN; i++) {
      msgs[i].msg_hdr.msg_name = &from[i];
      msgs[i].msg_hdr.msg_namelen = sizeof from[i];
      msgs[i].msg_hdr.msg_iov = &iov[i];
      msgs[i].msg_hdr.msg_iovlen = 1;
      msgs[i].msg_hdr.msg_control = NULL;
      msgs[i].msg_hdr.msg_controllen = 0;
      msgs[i].msg_hdr.msg_flags = 0;
    }
    int n = recvmmsg(fd, msgs, VLEN, MSG_DONTWAIT, NULL);
    if (n < 0) {
      if (errno == EAGAIN || errno == EINTR) return;
      die("recvmmsg", errno);
    }
    for (int i = 0; i < n; i++)
      if (msgs[i].msg_hdr.msg_flags & MSG_TRUNC) die("datagram truncated", (long)msgs[i].msg_len);
    handler[idx](fd, n);
    if (n < VLEN || stop_flag) return;
  }
}

static void loop_run(void) {
  struct epoll_event evs[4];
  while (!stop_flag) {
    int n = epoll_wait(epfd, evs, 4, -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      die("epoll_wait", errno);
    }
    for (int i = 0; i < n && !stop_flag; i++) read_batches((int)evs[i].data.u32);
  }
}

static void loop_init(void) {
  for (int i = 0; i < VLEN; i++) {
    iov[i].iov_base = slots[i];
    iov[i].iov_len = SLOT;
  }
  stop_flag = 0;
  epfd = epoll_create1(EPOLL_CLOEXEC);
  if (epfd < 0) die("epoll_create1", errno);
}

/* sends out[0..n) completely (a short count means the socket is full: a failure here) */
static void send_all(int fd, struct mmsghdr *out, int n) {
  for (int done = 0; done < n;) {
    int w = sendmmsg(fd, out + done, (unsigned)(n - done), 0);
    if (w < 0) {
      if (errno == EINTR) continue;
      die("sendmmsg", errno);
    }
    if (w == 0) die("sendmmsg sent nothing", 0);
    done += w;
  }
}

/* ---------------------------------------------------------------- echo */

static int client_fd;
static struct sockaddr_in server_addr;
static struct mmsghdr out[VLEN];
static struct iovec out_iov[VLEN];

/* echo the batch: each datagram back to its sender, same bytes */
static void server_batch(int fd, int n) {
  for (int i = 0; i < n; i++) {
    out_iov[i].iov_base = slots[i];
    out_iov[i].iov_len = msgs[i].msg_len;
    memset(&out[i], 0, sizeof out[i]);
    out[i].msg_hdr.msg_name = &from[i];
    out[i].msg_hdr.msg_namelen = msgs[i].msg_hdr.msg_namelen;
    out[i].msg_hdr.msg_iov = &out_iov[i];
    out[i].msg_hdr.msg_iovlen = 1;
  }
  send_all(fd, out, n);
}

/* send what the window allows, in batches of up to VLEN */
static void client_send(void) {
  for (;;) {
    int k = 0;
    while (k < VLEN && echo_may_send()) {
      out_iov[k].iov_base = udp_msg;
      out_iov[k].iov_len = UDP_MSG;
      memset(&out[k], 0, sizeof out[k]);
      out[k].msg_hdr.msg_name = &server_addr;
      out[k].msg_hdr.msg_namelen = sizeof server_addr;
      out[k].msg_hdr.msg_iov = &out_iov[k];
      out[k].msg_hdr.msg_iovlen = 1;
      k++;
    }
    if (k == 0) return;
    send_all(client_fd, out, k);
  }
}

static void client_batch(int fd, int n) {
  (void)fd;
  for (int i = 0; i < n; i++)
    if (echo_reply(msgs[i].msg_len)) {
      stop_flag = 1;
      return;
    }
  client_send();
}

static void udp_echo(long n, int inflight) {
  (void)n;
  (void)inflight;
  loop_init();
  uint16_t port;
  int server_fd = udp_bind_loopback(1, &port);
  server_addr = udp_loopback(port);
  client_fd = udp_bind_loopback(1, &port);
  add_fd(0, server_fd, server_batch);
  add_fd(1, client_fd, client_batch);
  client_send();
  loop_run();
  close(client_fd);
  close(server_fd);
  close(epfd);
}

/* ---------------------------------------------------------------- flood */

static void flood_batch(int fd, int n) {
  (void)fd;
  for (int i = 0; i < n; i++)
    if (flood_datagram(msgs[i].msg_len)) stop_flag = 1;
}

static void udp_flood(long n) {
  (void)n;
  loop_init();
  uint16_t port;
  int fd = udp_bind_loopback(1, &port);
  udp_set_rcvbuf(fd);
  add_fd(0, fd, flood_batch);
  flood_start(port);
  loop_run();
  close(fd);
  close(epfd);
}
