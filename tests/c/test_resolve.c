/*
 * test_resolve.c - reactor_resolve (API.md §6.5, §6.1 shutdown rule).
 *
 * Checks:
 *   - IP literals resolve without a run (one iterate): one numeric address, the port, the family;
 *     "fe80::1%1" keeps its scope id out of the host text; the callback never runs inside the call
 *     and the release runs once, right after it;
 *   - the family filter: a literal of the other family → REACTOR_E_DNS, count 0, addrs NULL;
 *   - "localhost" through the thread pool (reactor_run): REACTOR_OK, 127.0.0.1 among the answers,
 *     no address twice; a name that cannot exist → REACTOR_E_DNS;
 *   - shutdown: a resolve still waiting for the pool gets REACTOR_E_CANCELLED in the DURING phase,
 *     before the host's DURING triggers, then its release;
 *   - reactor_free with resolves pending (a literal and a name): only the releases run;
 *   - bad input: NULL host, NULL cb, "", family UNIX or unknown → INVALID, wrong thread →
 *     WRONG_THREAD, after a run that ended with stop → CLOSED; a refused ud is not released.
 */
#include "test_util.h"

static const char *PROG = "test_resolve";

/* what one callback saw */
typedef struct {
  int calls, releases, status;
  size_t count;
  reactor_address_t first;
  int saw_127, repeats, released_before_cb;
  int order; /* sequence number of the callback (shutdown ordering) */
} result_t;

static int in_call; /* set while reactor_resolve runs */
static int sequence;
static int callback_inside_call;

static void on_resolved(reactor_t *r, int status, const reactor_address_t *addrs, size_t count,
                        void *ud) {
  (void)r;
  result_t *res = ud;
  if (in_call) callback_inside_call++;
  if (res->releases) res->released_before_cb++;
  res->calls++;
  res->status = status;
  res->count = count;
  res->order = ++sequence;
  if (count > 0 && addrs == NULL) CHECK(0);
  if (count == 0 && addrs != NULL) CHECK(0);
  if (count > 0) res->first = addrs[0];
  for (size_t i = 0; i < count; i++) {
    if (addrs[i].family == REACTOR_FAMILY_INET && strcmp(addrs[i].host, "127.0.0.1") == 0)
      res->saw_127 = 1;
    for (size_t j = 0; j < i; j++)
      if (addrs[i].family == addrs[j].family && addrs[i].port == addrs[j].port &&
          strcmp(addrs[i].host, addrs[j].host) == 0)
        res->repeats++;
  }
}

static void on_release(void *ud) { ((result_t *)ud)->releases++; }

static int resolve(reactor_t *r, const char *host, uint16_t port, uint32_t family, result_t *res) {
  in_call = 1;
  int st = reactor_resolve(r, host, port, family, on_resolved, res, on_release);
  in_call = 0;
  return st;
}

static void test_literals(void) {
  SECTION("literals: one pass, no pool, never inside the call");
  reactor_t *r = tu_new_reactor();
  result_t v4 = {0}, v6 = {0}, scoped = {0}, wrong_family = {0}, wrong_family6 = {0};
  CHECK_OK(resolve(r, "127.0.0.1", 8080, 0, &v4));
  CHECK_OK(resolve(r, "::1", 443, REACTOR_FAMILY_INET6, &v6));
  CHECK_OK(resolve(r, "fe80::1%1", 22, 0, &scoped));
  CHECK_OK(resolve(r, "::1", 443, REACTOR_FAMILY_INET, &wrong_family));
  CHECK_OK(resolve(r, "10.0.0.1", 1, REACTOR_FAMILY_INET6, &wrong_family6));
  CHECK_EQ(v4.calls, 0);
  CHECK_OK(reactor_iterate(r, 0.0));
  CHECK_EQ(callback_inside_call, 0);

  CHECK_EQ(v4.calls, 1);
  CHECK_EQ(v4.releases, 1);
  CHECK_EQ(v4.released_before_cb, 0);
  CHECK_EQ(v4.status, REACTOR_OK);
  CHECK_EQ(v4.count, 1);
  CHECK_EQ(v4.first.family, REACTOR_FAMILY_INET);
  CHECK_EQ(v4.first.port, 8080);
  CHECK(strcmp(v4.first.host, "127.0.0.1") == 0);

  CHECK_EQ(v6.status, REACTOR_OK);
  CHECK_EQ(v6.first.family, REACTOR_FAMILY_INET6);
  CHECK(strcmp(v6.first.host, "::1") == 0);
  char text[64];
  CHECK_OK(reactor_address_format(&v6.first, text, sizeof text));
  CHECK(strcmp(text, "[::1]:443") == 0);

  CHECK_EQ(scoped.status, REACTOR_OK);
  CHECK(strcmp(scoped.first.host, "fe80::1") == 0);
  CHECK_EQ(scoped.first.scope_id, 1);

  CHECK_EQ(wrong_family.status, REACTOR_E_DNS);
  CHECK_EQ(wrong_family.count, 0);
  CHECK_EQ(wrong_family.releases, 1);
  CHECK_EQ(wrong_family6.status, REACTOR_E_DNS);
  CHECK_OK(reactor_free(r));
}

/* ---- names, through the pool -------------------------------------------- */

static int names_left;
static void on_name(reactor_t *r, int status, const reactor_address_t *addrs, size_t count,
                    void *ud) {
  on_resolved(r, status, addrs, count, ud);
  if (--names_left == 0) CHECK_OK(reactor_stop(r));
}

static void safety_cb(reactor_t *r, void *ud) {
  fprintf(stderr, "   safety timer: %s\n", (const char *)ud);
  CHECK(0);
  reactor_stop(r);
}

/* a label longer than 63 bytes: no resolver can answer it, and glibc refuses it without a query */
static const char *IMPOSSIBLE =
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.example";

static void test_names(void) {
  SECTION("names on the pool: localhost, and a name that cannot exist");
  reactor_t *r = tu_new_reactor();
  result_t local = {0}, any = {0}, none = {0};
  names_left = 3;
  CHECK_OK(reactor_resolve(r, "localhost", 80, REACTOR_FAMILY_INET, on_name, &local, on_release));
  CHECK_OK(reactor_resolve(r, "localhost", 80, 0, on_name, &any, on_release));
  CHECK_OK(reactor_resolve(r, IMPOSSIBLE, 80, 0, on_name, &none, on_release));
  CHECK_OK(reactor_call_later(r, 20.0, safety_cb, "names never resolved", NULL, NULL));
  CHECK_OK(reactor_run(r));
  CHECK_EQ(local.status, REACTOR_OK);
  CHECK(local.count >= 1);
  CHECK_EQ(local.saw_127, 1);
  CHECK_EQ(local.first.family, REACTOR_FAMILY_INET);
  CHECK_EQ(local.first.port, 80);
  CHECK_EQ(local.repeats, 0);
  CHECK_EQ(any.status, REACTOR_OK);
  CHECK_EQ(any.repeats, 0);
  CHECK_EQ(none.status, REACTOR_E_DNS);
  CHECK_EQ(none.count, 0);
  CHECK_EQ(local.releases + any.releases + none.releases, 3);
  CHECK_OK(reactor_free(r));
}

/* ---- shutdown cancels what is pending ----------------------------------- */

static atomic_int cancelled_seen;
static int during_trigger_order;
static result_t blocked_resolve;

static void block_pool(void *ud) {
  (void)ud;
  /* holds the pool's only worker until the resolve behind it is cancelled (at most 10 s) */
  for (int i = 0; i < 1000 && !atomic_load(&cancelled_seen); i++) tu_sleep_ms(10);
}

static void on_cancelled(reactor_t *r, int status, const reactor_address_t *addrs, size_t count,
                         void *ud) {
  on_resolved(r, status, addrs, count, ud);
  atomic_store(&cancelled_seen, 1);
}

static int during_trigger(reactor_t *r, uint64_t id, void *ud) {
  (void)r;
  (void)id;
  (void)ud;
  during_trigger_order = ++sequence;
  return REACTOR_OK;
}

static void start_then_stop(reactor_t *r, void *ud) {
  (void)ud;
  CHECK_OK(reactor_call_in_thread(r, block_pool, NULL, NULL));
  CHECK_OK(reactor_resolve(r, "localhost", 80, 0, on_cancelled, &blocked_resolve, on_release));
  CHECK_OK(reactor_stop(r));
}

static void test_shutdown_cancels(void) {
  SECTION("shutdown: a pending resolve gets CANCELLED before DURING triggers");
  reactor_t *r = tu_new_reactor();
  sequence = 0;
  CHECK_OK(reactor_suggest_thread_pool_size(r, 1));
  CHECK_OK(reactor_add_system_event_trigger(r, REACTOR_PHASE_DURING, "shutdown", during_trigger,
                                            NULL, NULL, NULL));
  CHECK_OK(reactor_call_when_running(r, start_then_stop, NULL, NULL));
  CHECK_OK(reactor_call_later(r, 20.0, safety_cb, "shutdown never came", NULL, NULL));
  CHECK_OK(reactor_run(r));
  CHECK_EQ(blocked_resolve.calls, 1);
  CHECK_EQ(blocked_resolve.status, REACTOR_E_CANCELLED);
  CHECK_EQ(blocked_resolve.count, 0);
  CHECK_EQ(blocked_resolve.releases, 1);
  CHECK(blocked_resolve.order < during_trigger_order);
  CHECK_OK(reactor_free(r));
  CHECK_EQ(blocked_resolve.calls, 1);
}

/* ---- free with resolves pending, and bad input -------------------------- */

static void test_free_pending(void) {
  SECTION("reactor_free with resolves pending: releases only");
  reactor_t *r = tu_new_reactor();
  result_t literal = {0}, name = {0};
  CHECK_OK(resolve(r, "127.0.0.1", 1, 0, &literal));
  CHECK_OK(resolve(r, "localhost", 1, 0, &name));
  CHECK_OK(reactor_free(r));
  CHECK_EQ(literal.calls + name.calls, 0);
  CHECK_EQ(literal.releases, 1);
  CHECK_EQ(name.releases, 1);
}

static reactor_t *g_r;
static int wrong_thread_rc;
static void *foreign(void *arg) {
  (void)arg;
  wrong_thread_rc = reactor_resolve(g_r, "127.0.0.1", 1, 0, on_resolved, NULL, NULL);
  return NULL;
}

static void test_bad_input(void) {
  SECTION("bad input: a clear status, nothing released");
  reactor_t *r = tu_new_reactor();
  result_t res = {0};
  CHECK_RC(reactor_resolve(r, NULL, 1, 0, on_resolved, &res, on_release), REACTOR_E_INVALID);
  CHECK_RC(reactor_resolve(r, "127.0.0.1", 1, 0, NULL, &res, on_release), REACTOR_E_INVALID);
  CHECK_RC(reactor_resolve(r, "", 1, 0, on_resolved, &res, on_release), REACTOR_E_INVALID);
  CHECK_RC(reactor_resolve(r, "127.0.0.1", 1, REACTOR_FAMILY_UNIX, on_resolved, &res, on_release),
           REACTOR_E_INVALID);
  CHECK_RC(reactor_resolve(r, "127.0.0.1", 1, 77, on_resolved, &res, on_release),
           REACTOR_E_INVALID);
  CHECK_RC(reactor_resolve(NULL, "127.0.0.1", 1, 0, on_resolved, &res, on_release),
           REACTOR_E_INVALID);
  g_r = r;
  pthread_t th;
  REQUIRE(pthread_create(&th, NULL, foreign, NULL) == 0);
  pthread_join(th, NULL);
  CHECK_EQ(wrong_thread_rc, REACTOR_E_WRONG_THREAD);
  /* after a run that ended with stop */
  CHECK_OK(reactor_call_when_running(r, tu_stop_cb, NULL, NULL));
  CHECK_OK(reactor_run(r));
  CHECK_RC(reactor_resolve(r, "127.0.0.1", 1, 0, on_resolved, &res, on_release), REACTOR_E_CLOSED);
  CHECK_RC(reactor_resolve(r, "localhost", 1, 0, on_resolved, &res, on_release), REACTOR_E_CLOSED);
  CHECK_OK(reactor_free(r));
  CHECK_EQ(res.calls, 0);
  CHECK_EQ(res.releases, 0);
}

int main(void) {
  tu_watchdog(60);
  tu_banner_probe(PROG);
  test_literals();
  test_names();
  test_shutdown_cancels();
  test_free_pending();
  test_bad_input();
  return tu_finish(PROG);
}
