/*
 * test_race_connector_release.c - reactor_connector_release (any thread) racing the reactor thread.
 *
 * Round after round, a connector is made (to a closed port, so its attempt fails) and its handle
 * handed to a second thread, which releases it while the owner iterates (the refused attempt's
 * connection_failed) and then frees the reactor. Whatever the interleaving — release before,
 * during or after the failure, before or after reactor_free — the connector's release runs exactly
 * once, on the reactor's thread or inside reactor_free, and nothing crashes (run under TSan too).
 * Sound because the handle's removal is the table slot's state word (CAS; removal waits for pins)
 * and the news reaches the reactor through its call queue (CALLS_LOCK with the generation checked,
 * refused once the reactor is freed).
 */
#include "test_util.h"

#include <netinet/in.h>
#include <sys/socket.h>

static const char *PROG = "test_race_connector_release";

static atomic_int releases, releases_off_owner;
static pthread_t owner;
static reactor_connector_t *volatile shared_handle;
static atomic_int go, released;

static void on_release(void *ud) {
  (void)ud;
  atomic_fetch_add(&releases, 1);
  if (!pthread_equal(pthread_self(), owner)) atomic_fetch_add(&releases_off_owner, 1);
}

static void on_failed(reactor_connector_t *c, int reason, void *ud) {
  (void)c;
  (void)reason;
  (void)ud;
}

static void *releaser(void *arg) {
  long rounds = (long)(intptr_t)arg;
  for (long i = 0; i < rounds; i++) {
    while (atomic_load(&go) != i + 1) sched_yield();
    reactor_connector_release(shared_handle);
    atomic_store(&released, i + 1);
  }
  return NULL;
}

static uint16_t closed_port(void) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in sin = {0};
  sin.sin_family = AF_INET;
  sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(bind(fd, (struct sockaddr *)&sin, sizeof sin) == 0);
  socklen_t len = sizeof sin;
  getsockname(fd, (struct sockaddr *)&sin, &len);
  close(fd);
  return ntohs(sin.sin_port);
}

int main(void) {
  tu_watchdog(120);
  tu_banner_probe(PROG);
  owner = pthread_self();
  long rounds = tu_scale(2000, 200);
  uint16_t port = closed_port();
  reactor_protocol_t p;
  reactor_protocol_init(&p);
  p.connection_failed = on_failed;
  pthread_t th;
  REQUIRE(pthread_create(&th, NULL, releaser, (void *)(intptr_t)rounds) == 0);
  SECTION("release from another thread racing iterate and reactor_free");
  for (long i = 0; i < rounds; i++) {
    reactor_t *r = tu_new_reactor();
    reactor_connector_t *c = NULL;
    CHECK_OK(reactor_connect_tcp(r, "127.0.0.1", port, NULL, &p, NULL, on_release, &c));
    shared_handle = c;
    atomic_store(&go, i + 1);
    /* a varying amount of loop work before the free: the race lands at different points */
    for (long k = 0; k < i % 4; k++) CHECK_OK(reactor_iterate(r, 0.0));
    CHECK_OK(reactor_free(r));
    while (atomic_load(&released) != i + 1) sched_yield();
    /* a release after the free only frees the handle; it ran at the latest inside the free */
    CHECK_EQ(atomic_load(&releases), i + 1);
  }
  pthread_join(th, NULL);
  CHECK_EQ(atomic_load(&releases), rounds);
  CHECK_EQ(atomic_load(&releases_off_owner), 0);
  return tu_finish(PROG);
}
