/*
 * test_race_net_foreign.c - another thread calling datagram-port and listening-port functions on
 * handles while the reactor thread opens, stops and frees them (and frees the reactor).
 *
 * Round after round the owner opens a UDP port and a TCP port, publishes their handles, then stops
 * or frees in a varying order, while a second thread calls functions on the same handles. The
 * foreign calls must answer REACTOR_E_WRONG_THREAD while the objects live and REACTOR_E_INVALID once
 * they are dead, never touch the objects (no write goes out from the wrong thread), and `*_fileno`
 * gives -1; every release runs exactly once, on the owner's thread. Sound because a handle's slot
 * keeps its owning reactor in the state word (one atomic load checks liveness and finds the reactor)
 * and the reactor's claim refuses other threads before any object is reached. Run under TSan too.
 */
#include "test_util.h"

static const char *PROG = "test_race_net_foreign";

static atomic_int releases, releases_off_owner, foreign_bad;
static pthread_t owner;
static reactor_udp_t *volatile shared_udp;
static reactor_port_t *volatile shared_port;
static atomic_long go, done_round;

static void on_release(void *ud) {
  (void)ud;
  atomic_fetch_add(&releases, 1);
  if (!pthread_equal(pthread_self(), owner)) atomic_fetch_add(&releases_off_owner, 1);
}

static void expect_foreign(int rc) {
  if (rc != REACTOR_E_WRONG_THREAD && rc != REACTOR_E_INVALID) atomic_fetch_add(&foreign_bad, 1);
}

static void *foreigner(void *arg) {
  long rounds = (long)(intptr_t)arg;
  for (long i = 0; i < rounds; i++) {
    while (atomic_load(&go) != i + 1) sched_yield();
    reactor_udp_t *u = shared_udp;
    reactor_port_t *p = shared_port;
    for (int k = 0; k < 20; k++) {
      reactor_address_t a;
      int on = 0;
      expect_foreign(reactor_udp_write(u, "x", 1, "127.0.0.1", 9));
      expect_foreign(reactor_udp_get_host(u, &a));
      expect_foreign(reactor_udp_get_ttl(u, &on));
      expect_foreign(reactor_udp_stop_listening(u));
      if (reactor_udp_fileno(u) != -1) atomic_fetch_add(&foreign_bad, 1);
      expect_foreign(reactor_port_get_host(p, &a));
      expect_foreign(reactor_port_stop_listening(p));
      if (reactor_port_fileno(p) != -1) atomic_fetch_add(&foreign_bad, 1);
    }
    atomic_store(&done_round, i + 1);
  }
  return NULL;
}

int main(void) {
  tu_watchdog(120);
  tu_banner_probe(PROG);
  owner = pthread_self();
  long rounds = tu_scale(2000, 200);
  reactor_datagram_protocol_t dp;
  reactor_datagram_protocol_init(&dp);
  reactor_protocol_t sp;
  reactor_protocol_init(&sp);
  pthread_t th;
  REQUIRE(pthread_create(&th, NULL, foreigner, (void *)(intptr_t)rounds) == 0);
  SECTION("foreign calls on datagram and listening ports racing stop and reactor_free");
  for (long i = 0; i < rounds; i++) {
    reactor_t *r = tu_new_reactor();
    reactor_udp_t *u = NULL;
    reactor_port_t *p = NULL;
    CHECK_OK(reactor_listen_udp(r, 0, "127.0.0.1", NULL, &dp, NULL, on_release, &u));
    CHECK_OK(reactor_listen_tcp(r, 0, "127.0.0.1", NULL, &sp, NULL, NULL, on_release, &p));
    shared_udp = u;
    shared_port = p;
    atomic_store(&go, i + 1);
    switch (i % 4) {
      case 0: break; /* freed with both live */
      case 1:
        CHECK_OK(reactor_udp_stop_listening(u));
        CHECK_OK(reactor_iterate(r, 0.0)); /* stop_protocol: the handle dies */
        break;
      case 2:
        CHECK_OK(reactor_port_stop_listening(p));
        CHECK_OK(reactor_udp_stop_listening(u)); /* stop_protocol still queued at the free */
        break;
      default:
        for (int k = 0; k < 3; k++) CHECK_OK(reactor_iterate(r, 0.0));
        break;
    }
    CHECK_OK(reactor_free(r));
    while (atomic_load(&done_round) != i + 1) sched_yield();
    CHECK_EQ(atomic_load(&releases), 2 * (i + 1));
  }
  pthread_join(th, NULL);
  CHECK_EQ(atomic_load(&foreign_bad), 0);
  CHECK_EQ(atomic_load(&releases_off_owner), 0);
  return tu_finish(PROG);
}
