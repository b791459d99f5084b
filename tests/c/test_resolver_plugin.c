/*
 * test_resolver_plugin.c - a pluggable resolver (API.md §8.3, §8.6).
 *
 * Checks:
 *   - reactor_resolve of a name calls the installed resolver inside the call, with the host, the
 *     requested port and family and the resolver's ud; completing inside `resolve` still calls the
 *     asker back on a later pass; completing later from a timer works;
 *   - the completion's addresses are copied: numeric INET/INET6 entries only (a name and a UNIX entry
 *     are dropped), each with the requested port, no repeats; none left → REACTOR_E_DNS;
 *   - a negative completion status reaches reactor_resolve's cb as it is; `resolve` returning a
 *     negative status fails the request with it, a positive one with INVALID; one that completed and
 *     then returned an error keeps its completion;
 *   - completing twice, a made-up or NULL handle → INVALID; a positive status or NULL addrs with a
 *     count → INVALID and the request stays pending (a later valid completion works); from another
 *     thread → WRONG_THREAD, still pending;
 *   - IP literals never reach the resolver;
 *   - reactor_connect_tcp with a name connects to the address the resolver gives; a resolver failure
 *     makes connection_failed(DNS) whatever its status;
 *   - replacing a resolver: the old ud is released on a later pass when nothing is pending, else once
 *     its last request completes (and that request is still answered); NULL restores getaddrinfo
 *     ("localhost" resolves) and releases its ud on a later pass;
 *   - shutdown: a pending request ends with CANCELLED and its handle becomes stale (INVALID);
 *     after the run that ended with stop reactor_resolve → CLOSED;
 *   - bad input: NULL `resolve`, struct_size too small → INVALID, ud not released; reactor_free
 *     releases the installed resolver's ud and a pending request's asker ud.
 */
#include "test_util.h"

static const char *PROG = "test_resolver_plugin";

/* ---- the asker ---------------------------------------------------------------------------------- */

typedef struct {
  int calls, releases, status, inside;
  size_t count;
  reactor_address_t addrs[8];
} asker_t;

static int in_call;

static void on_resolved(reactor_t *r, int status, const reactor_address_t *addrs, size_t count,
                        void *ud) {
  (void)r;
  asker_t *a = ud;
  if (in_call) a->inside++;
  a->calls++;
  a->status = status;
  a->count = count;
  for (size_t i = 0; i < count && i < 8; i++) a->addrs[i] = addrs[i];
}

static void on_release(void *ud) { ((asker_t *)ud)->releases++; }

static int ask(reactor_t *r, const char *host, uint16_t port, uint32_t family, asker_t *a) {
  in_call = 1;
  int st = reactor_resolve(r, host, port, family, on_resolved, a, on_release);
  in_call = 0;
  return st;
}

static void iterate_until(reactor_t *r, const int *flag, int want) {
  double deadline = tu_now() + 20;
  while (*flag < want && tu_now() < deadline) CHECK_OK(reactor_iterate(r, 0.01));
  CHECK(*flag >= want);
}

/* ---- the resolver ------------------------------------------------------------------------------- */

typedef enum { COMPLETE_NOW, KEEP, FAIL_RETURN, POSITIVE_RETURN, COMPLETE_THEN_FAIL } mode_t_;

typedef struct {
  mode_t_ mode;
  int calls;
  atomic_int releases;
  char host[64];
  uint16_t port;
  uint32_t family;
  reactor_resolution_t *kept;
  reactor_address_t answer[4];
  size_t answer_count;
} resolver_state_t;

static reactor_address_t addr(uint32_t family, const char *host, uint16_t port) {
  reactor_address_t a;
  memset(&a, 0, sizeof a);
  a.family = family;
  a.port = port;
  snprintf(a.host, sizeof a.host, "%s", host);
  return a;
}

static int my_resolve(reactor_t *r, const char *host, uint16_t port, uint32_t family,
                      reactor_resolution_t *res, void *ud) {
  (void)r;
  resolver_state_t *s = ud;
  CHECK(in_call); /* inside reactor_resolve / reactor_connect_tcp */
  s->calls++;
  snprintf(s->host, sizeof s->host, "%s", host);
  s->port = port;
  s->family = family;
  switch (s->mode) {
    case COMPLETE_NOW:
      CHECK_OK(reactor_resolution_complete(res, REACTOR_OK, s->answer, s->answer_count));
      CHECK_RC(reactor_resolution_complete(res, REACTOR_OK, s->answer, s->answer_count),
               REACTOR_E_INVALID);
      return REACTOR_OK;
    case KEEP:
      s->kept = res;
      return REACTOR_OK;
    case FAIL_RETURN:
      return REACTOR_E_OS(ENOENT);
    case POSITIVE_RETURN:
      return 7;
    case COMPLETE_THEN_FAIL:
      CHECK_OK(reactor_resolution_complete(res, REACTOR_OK, s->answer, s->answer_count));
      return REACTOR_E_DNS;
  }
  return REACTOR_OK;
}

static void resolver_release(void *ud) { atomic_fetch_add(&((resolver_state_t *)ud)->releases, 1); }

static reactor_resolver_t resolver_struct(void) {
  reactor_resolver_t rv;
  memset(&rv, 0, sizeof rv);
  rv.struct_size = sizeof rv;
  rv.resolve = my_resolve;
  return rv;
}

static void install(reactor_t *r, resolver_state_t *s) {
  reactor_resolver_t rv = resolver_struct();
  CHECK_OK(reactor_install_resolver(r, &rv, s, resolver_release));
}

/* ---- tests -------------------------------------------------------------------------------------- */

static void test_complete_inside_and_copy_rules(void) {
  SECTION("complete inside resolve: later pass, copied addresses, requested port, no repeats");
  reactor_t *r = tu_new_reactor();
  resolver_state_t s = {.mode = COMPLETE_NOW};
  s.answer[0] = addr(REACTOR_FAMILY_INET, "10.1.2.3", 1);
  s.answer[1] = addr(REACTOR_FAMILY_INET, "example.org", 2); /* a name: dropped */
  s.answer[2] = addr(REACTOR_FAMILY_UNIX, "/tmp/x", 0);     /* UNIX: dropped */
  s.answer[3] = addr(REACTOR_FAMILY_INET, "10.1.2.3", 9);   /* a repeat once the port is set */
  s.answer_count = 4;
  install(r, &s);
  asker_t a = {0};
  CHECK_OK(ask(r, "my.name", 4242, 0, &a));
  CHECK_EQ(s.calls, 1);
  CHECK(strcmp(s.host, "my.name") == 0);
  CHECK_EQ(s.port, 4242);
  CHECK_EQ(a.calls, 0); /* never inside the call */
  iterate_until(r, &a.calls, 1);
  CHECK_EQ(a.inside, 0);
  CHECK_OK(a.status);
  CHECK_EQ(a.count, 1);
  CHECK(strcmp(a.addrs[0].host, "10.1.2.3") == 0);
  CHECK_EQ(a.addrs[0].port, 4242);
  CHECK_EQ(a.releases, 1);

  SECTION("an IP literal never reaches the resolver; family filter on a completion");
  asker_t lit = {0};
  CHECK_OK(ask(r, "127.0.0.1", 80, 0, &lit));
  iterate_until(r, &lit.calls, 1);
  CHECK_EQ(s.calls, 1);
  CHECK_OK(lit.status);
  asker_t v6 = {0};
  CHECK_OK(ask(r, "my.name", 80, REACTOR_FAMILY_INET6, &v6));
  CHECK_EQ(s.family, REACTOR_FAMILY_INET6);
  iterate_until(r, &v6.calls, 1);
  CHECK_RC(v6.status, REACTOR_E_DNS); /* only an INET answer: none left */
  CHECK_EQ(v6.count, 0);
  CHECK_OK(reactor_free(r));
  CHECK_EQ(atomic_load(&s.releases), 1);
}

static void test_statuses(void) {
  SECTION("negative completion, negative and positive returns, complete-then-fail");
  reactor_t *r = tu_new_reactor();
  resolver_state_t s = {.mode = KEEP};
  s.answer[0] = addr(REACTOR_FAMILY_INET6, "::1", 0);
  s.answer_count = 1;
  install(r, &s);

  asker_t a = {0};
  CHECK_OK(ask(r, "later.name", 1, 0, &a));
  reactor_resolution_t *res = s.kept;
  CHECK(res != NULL);
  CHECK_RC(reactor_resolution_complete(res, 5, NULL, 0), REACTOR_E_INVALID);
  CHECK_RC(reactor_resolution_complete(res, REACTOR_OK, NULL, 2), REACTOR_E_INVALID);
  for (int i = 0; i < 3; i++) CHECK_OK(reactor_iterate(r, 0.0));
  CHECK_EQ(a.calls, 0); /* still pending */
  CHECK_OK(reactor_resolution_complete(res, REACTOR_E_OS(EHOSTUNREACH), NULL, 0));
  CHECK_RC(reactor_resolution_complete(res, REACTOR_OK, s.answer, 1), REACTOR_E_INVALID);
  iterate_until(r, &a.calls, 1);
  CHECK_RC(a.status, REACTOR_E_OS(EHOSTUNREACH));

  s.mode = FAIL_RETURN;
  asker_t b = {0};
  CHECK_OK(ask(r, "fail.name", 1, 0, &b));
  iterate_until(r, &b.calls, 1);
  CHECK_RC(b.status, REACTOR_E_OS(ENOENT));

  s.mode = POSITIVE_RETURN;
  asker_t c = {0};
  CHECK_OK(ask(r, "positive.name", 1, 0, &c));
  iterate_until(r, &c.calls, 1);
  CHECK_RC(c.status, REACTOR_E_INVALID);

  s.mode = COMPLETE_THEN_FAIL;
  asker_t d = {0};
  CHECK_OK(ask(r, "both.name", 53, 0, &d));
  iterate_until(r, &d.calls, 1);
  CHECK_OK(d.status);
  CHECK_EQ(d.count, 1);
  CHECK_EQ(d.addrs[0].port, 53);

  CHECK_RC(reactor_resolution_complete(NULL, REACTOR_OK, NULL, 0), REACTOR_E_INVALID);
  CHECK_RC(reactor_resolution_complete((reactor_resolution_t *)(uintptr_t)0x1000, REACTOR_OK, NULL, 0),
           REACTOR_E_INVALID);
  CHECK_OK(reactor_free(r));
  CHECK_EQ(a.releases + b.releases + c.releases + d.releases, 4);
}

typedef struct {
  reactor_resolution_t *res;
  int status;
} from_thread_t;

static void *complete_from_thread(void *arg) {
  from_thread_t *f = arg;
  f->status = reactor_resolution_complete(f->res, REACTOR_OK, NULL, 0);
  return NULL;
}

static void test_wrong_thread_and_timer_completion(void) {
  SECTION("completion from another thread → WRONG_THREAD (still pending); then from a timer");
  reactor_t *r = tu_new_reactor();
  resolver_state_t s = {.mode = KEEP};
  install(r, &s);
  asker_t a = {0};
  CHECK_OK(ask(r, "x.name", 8, 0, &a));
  from_thread_t f = {s.kept, 0};
  pthread_t th;
  REQUIRE(pthread_create(&th, NULL, complete_from_thread, &f) == 0);
  pthread_join(th, NULL);
  CHECK_RC(f.status, REACTOR_E_WRONG_THREAD);
  reactor_address_t one = addr(REACTOR_FAMILY_INET, "192.0.2.1", 0);
  CHECK_OK(reactor_resolution_complete(s.kept, REACTOR_OK, &one, 1));
  iterate_until(r, &a.calls, 1);
  CHECK_OK(a.status);
  CHECK(strcmp(a.addrs[0].host, "192.0.2.1") == 0);
  CHECK_EQ(a.addrs[0].port, 8);
  CHECK_OK(reactor_free(r));
}

/* ---- connect_tcp through the resolver ------------------------------------------------------------ */

static int made, failed, failed_reason;
static void cl_made(reactor_transport_t *t, void *ud) {
  (void)ud;
  made++;
  CHECK_OK(reactor_transport_abort_connection(t));
}
static void cl_failed(reactor_connector_t *c, int reason, void *ud) {
  (void)c;
  (void)ud;
  failed++;
  failed_reason = reason;
}

static void test_connect_tcp(void) {
  SECTION("connect_tcp with a name goes through the resolver; its failure is DNS");
  reactor_t *r = tu_new_reactor();
  reactor_protocol_t sp;
  reactor_protocol_init(&sp);
  reactor_port_t *port = NULL;
  REQUIRE_OK(reactor_listen_tcp(r, 0, "127.0.0.1", NULL, &sp, NULL, NULL, NULL, &port));
  reactor_address_t host;
  REQUIRE_OK(reactor_port_get_host(port, &host));
  resolver_state_t s = {.mode = COMPLETE_NOW};
  s.answer[0] = addr(REACTOR_FAMILY_INET, "127.0.0.1", 0);
  s.answer_count = 1;
  install(r, &s);
  reactor_protocol_t p;
  reactor_protocol_init(&p);
  p.connection_made = cl_made;
  p.connection_failed = cl_failed;
  in_call = 1;
  CHECK_OK(reactor_connect_tcp(r, "service.internal", host.port, NULL, &p, NULL, NULL, NULL));
  in_call = 0;
  CHECK_EQ(s.calls, 1);
  CHECK_EQ(s.port, host.port);
  iterate_until(r, &made, 1);
  s.mode = FAIL_RETURN;
  in_call = 1;
  CHECK_OK(reactor_connect_tcp(r, "broken.internal", host.port, NULL, &p, NULL, NULL, NULL));
  in_call = 0;
  iterate_until(r, &failed, 1);
  CHECK_RC(failed_reason, REACTOR_E_DNS);
  CHECK_OK(reactor_port_stop_listening(port));
  CHECK_OK(reactor_free(r));
}

/* ---- replacing, restoring, shutdown ------------------------------------------------------------ */

static void test_replace_and_restore(void) {
  SECTION("replace: old ud released on a later pass / after its last request; NULL restores");
  reactor_t *r = tu_new_reactor();
  resolver_state_t first = {.mode = KEEP}, second = {.mode = KEEP};
  install(r, &first);
  asker_t a = {0};
  CHECK_OK(ask(r, "held.name", 1, 0, &a));
  install(r, &second);
  for (int i = 0; i < 3; i++) CHECK_OK(reactor_iterate(r, 0.0));
  CHECK_EQ(atomic_load(&first.releases), 0); /* a request is still out */
  reactor_address_t one = addr(REACTOR_FAMILY_INET, "192.0.2.7", 0);
  CHECK_OK(reactor_resolution_complete(first.kept, REACTOR_OK, &one, 1));
  CHECK_EQ(atomic_load(&first.releases), 0); /* on a later pass */
  iterate_until(r, &a.calls, 1);
  CHECK_OK(a.status);
  CHECK_EQ(atomic_load(&first.releases), 1);

  /* nothing pending: released on a later pass, not inside the call */
  resolver_state_t third = {.mode = COMPLETE_NOW};
  install(r, &third);
  CHECK_EQ(atomic_load(&second.releases), 0);
  CHECK_OK(reactor_iterate(r, 0.0));
  CHECK_EQ(atomic_load(&second.releases), 1);

  /* NULL restores getaddrinfo; its ud is released on a later pass */
  static atomic_int null_ud_releases;
  CHECK_OK(reactor_install_resolver(r, NULL, &null_ud_releases, tu_count_release));
  CHECK_EQ(atomic_load(&null_ud_releases), 0);
  CHECK_OK(reactor_iterate(r, 0.0));
  CHECK_EQ(atomic_load(&null_ud_releases), 1);
  CHECK_EQ(atomic_load(&third.releases), 1);
  asker_t local = {0};
  CHECK_OK(ask(r, "localhost", 80, REACTOR_FAMILY_INET, &local));
  iterate_until(r, &local.calls, 1);
  CHECK_OK(local.status);
  CHECK_EQ(third.calls, 0); /* getaddrinfo answered, not the replaced resolver */
  CHECK_OK(reactor_free(r));
}

static resolver_state_t shutdown_state = {.mode = KEEP};
static asker_t shutdown_asker;
static void ask_then_stop(reactor_t *r, void *ud) {
  (void)ud;
  CHECK_OK(ask(r, "never.name", 1, 0, &shutdown_asker));
  CHECK_OK(reactor_stop(r));
}

static void test_shutdown(void) {
  SECTION("shutdown: pending request → CANCELLED, handle stale; after stop → CLOSED");
  reactor_t *r = tu_new_reactor();
  install(r, &shutdown_state);
  CHECK_OK(reactor_call_later(r, 0.0, ask_then_stop, NULL, NULL, NULL));
  CHECK_OK(reactor_run(r));
  CHECK_EQ(shutdown_asker.calls, 1);
  CHECK_RC(shutdown_asker.status, REACTOR_E_CANCELLED);
  CHECK_RC(reactor_resolution_complete(shutdown_state.kept, REACTOR_OK, NULL, 0), REACTOR_E_INVALID);
  asker_t late = {0};
  CHECK_RC(ask(r, "late.name", 1, 0, &late), REACTOR_E_CLOSED);
  CHECK_RC(ask(r, "127.0.0.1", 1, 0, &late), REACTOR_E_CLOSED);
  CHECK_EQ(late.releases, 0);
  CHECK_EQ(shutdown_state.calls, 1);
  CHECK_OK(reactor_free(r));
  CHECK_EQ(atomic_load(&shutdown_state.releases), 1);
}

static void test_bad_input_and_free(void) {
  SECTION("bad input; reactor_free releases the resolver and a pending asker");
  reactor_t *r = tu_new_reactor();
  resolver_state_t s = {.mode = KEEP};
  reactor_resolver_t rv = resolver_struct();
  rv.resolve = NULL;
  CHECK_RC(reactor_install_resolver(r, &rv, &s, resolver_release), REACTOR_E_INVALID);
  rv = resolver_struct();
  rv.struct_size = 2;
  CHECK_RC(reactor_install_resolver(r, &rv, &s, resolver_release), REACTOR_E_INVALID);
  CHECK_RC(reactor_install_resolver(NULL, NULL, &s, resolver_release), REACTOR_E_INVALID);
  CHECK_EQ(atomic_load(&s.releases), 0);
  install(r, &s);
  asker_t a = {0};
  CHECK_OK(ask(r, "pending.name", 1, 0, &a));
  reactor_resolution_t *kept = s.kept;
  CHECK_OK(reactor_free(r));
  CHECK_EQ(a.calls, 0);
  CHECK_EQ(a.releases, 1);
  CHECK_EQ(atomic_load(&s.releases), 1);
  CHECK_RC(reactor_resolution_complete(kept, REACTOR_OK, NULL, 0), REACTOR_E_INVALID);
}

int main(void) {
  tu_watchdog(60);
  tu_banner_probe(PROG);
  test_complete_inside_and_copy_rules();
  test_statuses();
  test_wrong_thread_and_timer_completion();
  test_connect_tcp();
  test_replace_and_restore();
  test_shutdown();
  test_bad_input_and_free();
  return tu_finish(PROG);
}
