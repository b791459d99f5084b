/*
 * test_options_version.c - versioned options struct, backend selection, version info
 * (API.md §1, §2, §7; DECISIONS "Constants").
 *
 * Checks:
 *   - reactor_options_init fills struct_size = sizeof and the documented defaults
 *     (backend DEFAULT, install_signal_handlers 1, manual_clock 0, thread_pool_max 10);
 *   - struct_size smaller than the first released layout -> INVALID (out untouched);
 *     larger with a zero tail -> OK; larger with a non-zero tail -> UNSUPPORTED;
 *   - out-of-range backend -> INVALID; thread_pool_max 0 -> INVALID;
 *   - REACTOR_BACKEND from the harness is honoured by reactor_new(NULL);
 *     explicit REACTOR_BACKEND_POLL / _EPOLL give "poll" / "epoll" whatever the env says;
 *   - an unknown REACTOR_BACKEND value makes reactor_new INVALID for NULL options and for
 *     REACTOR_BACKEND_DEFAULT, but not for an explicit backend (setenv in this program);
 *   - manual_clock = 1 starts reactor_seconds at 0.0;
 *   - REACTOR_VERSION_HEX == reactor_version(); reactor_version_string contains
 *     "MAJOR.MINOR.PATCH" built from the header macros;
 *   - API.md's struct tags name the same types as the typedefs (`struct reactor` is `reactor_t`,
 *     `struct reactor_options` is `reactor_options_t`, ...): checked at compile time (-Werror turns
 *     an incompatible pointer assignment into an error) and by a call through the tag.
 */
#include <stddef.h>

#include "test_util.h"

static const char *PROG = "test_options_version";

static reactor_t *const SENTINEL = (reactor_t *)(uintptr_t)0x5e5e;

/* Each pair must be the same type, or the initialisations below do not compile. */
static struct reactor *const tag_reactor = (reactor_t *)0;
static struct reactor_delayed_call *const tag_delayed = (reactor_delayed_call_t *)0;
static struct reactor_threadpool *const tag_pool = (reactor_threadpool_t *)0;
static struct reactor_async *const tag_async = (reactor_async_t *)0;
static struct reactor_remote *const tag_remote = (reactor_remote_t *)0;
static struct reactor_stats *const tag_stats = (reactor_stats_t *)0;
static struct reactor_threadpool_stats *const tag_pool_stats = (reactor_threadpool_stats_t *)0;

static void test_api_struct_tags(void) {
  SECTION("API.md struct tags");
  CHECK(tag_reactor == NULL && tag_delayed == NULL && tag_pool == NULL && tag_async == NULL &&
        tag_remote == NULL && tag_stats == NULL && tag_pool_stats == NULL);
  struct reactor_options o; /* declared through the tag, used through the typedef's functions */
  reactor_options_init(&o);
  CHECK(o.struct_size == sizeof(reactor_options_t));
  struct reactor *r = NULL;
  CHECK_RC(reactor_new(&o, &r), REACTOR_OK);
  CHECK_RC(reactor_free(r), REACTOR_OK);
}

static void test_init_defaults(void) {
  SECTION("reactor_options_init defaults");
  reactor_options_t o;
  memset(&o, 0x5A, sizeof o);
  reactor_options_init(&o);
  CHECK_EQ(o.struct_size, sizeof o);
  CHECK_EQ(o.backend, REACTOR_BACKEND_DEFAULT);
  CHECK_EQ(o.install_signal_handlers, 1);
  CHECK_EQ(o.manual_clock, 0);
  CHECK_EQ(o.thread_pool_max, 10);
  reactor_t *r = NULL;
  CHECK_OK(reactor_new(&o, &r));
  CHECK_OK(reactor_free(r));
}

static void test_struct_size(void) {
  SECTION("struct_size rules");
  reactor_options_t o;
  reactor_t *r = SENTINEL;
  uint32_t too_small[] = {0, 4, (uint32_t)offsetof(reactor_options_t, thread_pool_max)};
  for (size_t i = 0; i < sizeof too_small / sizeof too_small[0]; i++) {
    reactor_options_init(&o);
    o.struct_size = too_small[i];
    CHECK_RC(reactor_new(&o, &r), REACTOR_E_INVALID);
    CHECK(r == SENTINEL);
  }

  struct {
    reactor_options_t o;
    unsigned char tail[32];
  } big;
  memset(&big, 0, sizeof big);
  reactor_options_init(&big.o);
  big.o.struct_size = (uint32_t)sizeof big;
  r = NULL;
  CHECK_OK(reactor_new(&big.o, &r));
  CHECK(r != NULL);
  CHECK_OK(reactor_free(r));

  big.tail[17] = 1;
  r = SENTINEL;
  CHECK_RC(reactor_new(&big.o, &r), REACTOR_E_UNSUPPORTED);
  CHECK(r == SENTINEL);
}

static void test_bad_fields(void) {
  SECTION("out-of-range fields");
  reactor_options_t o;
  reactor_t *r = SENTINEL;
  reactor_options_init(&o);
  o.backend = (reactor_backend_t)99;
  CHECK_RC(reactor_new(&o, &r), REACTOR_E_INVALID);
  o.backend = (reactor_backend_t)-1;
  CHECK_RC(reactor_new(&o, &r), REACTOR_E_INVALID);
  reactor_options_init(&o);
  o.thread_pool_max = 0;
  CHECK_RC(reactor_new(&o, &r), REACTOR_E_INVALID);
  CHECK(r == SENTINEL);
}

static const char *name_of(reactor_backend_t b) {
  reactor_options_t o;
  reactor_options_init(&o);
  o.backend = b;
  reactor_t *r = NULL;
  int rc = reactor_new(&o, &r);
  if (rc != REACTOR_OK) {
    printf("   reactor_new(backend %d) -> %d (%s)\n", (int)b, rc, tu_status(rc));
    return NULL;
  }
  const char *n = reactor_backend_name(r);
  static char buf[32];
  snprintf(buf, sizeof buf, "%s", n ? n : "(null)");
  CHECK_OK(reactor_free(r));
  return buf;
}

static void test_backends(void) {
  SECTION("backend selection");
  const char *env = getenv("REACTOR_BACKEND");
  reactor_t *r = tu_new_reactor();
  tu_banner(PROG, r);
  const char *n = reactor_backend_name(r);
  CHECK(n != NULL);
  if (env && *env && n) CHECK(strcmp(n, env) == 0);
  CHECK_OK(reactor_free(r));

  const char *p = name_of(REACTOR_BACKEND_POLL);
  CHECK(p && strcmp(p, "poll") == 0);
#ifdef __linux__
  const char *e = name_of(REACTOR_BACKEND_EPOLL);
  CHECK(e && strcmp(e, "epoll") == 0);
#endif

  SECTION("REACTOR_BACKEND=bogus");
  char *saved = env ? strdup(env) : NULL;
  setenv("REACTOR_BACKEND", "bogus", 1);
  r = SENTINEL;
  CHECK_RC(reactor_new(NULL, &r), REACTOR_E_INVALID);
  CHECK(r == SENTINEL);
  reactor_options_t o;
  reactor_options_init(&o);
  CHECK_RC(reactor_new(&o, &r), REACTOR_E_INVALID);
  CHECK(r == SENTINEL);
  o.backend = REACTOR_BACKEND_POLL; /* the variable overrides only DEFAULT */
  r = NULL;
  CHECK_OK(reactor_new(&o, &r));
  CHECK(r && strcmp(reactor_backend_name(r), "poll") == 0);
  CHECK_OK(reactor_free(r));

  SECTION("REACTOR_BACKEND=poll / epoll");
  setenv("REACTOR_BACKEND", "poll", 1);
  r = tu_new_reactor();
  CHECK(strcmp(reactor_backend_name(r), "poll") == 0);
  CHECK_OK(reactor_free(r));
#ifdef __linux__
  setenv("REACTOR_BACKEND", "epoll", 1);
  r = tu_new_reactor();
  CHECK(strcmp(reactor_backend_name(r), "epoll") == 0);
  CHECK_OK(reactor_free(r));
#endif
  if (saved) {
    setenv("REACTOR_BACKEND", saved, 1);
    free(saved);
  } else {
    unsetenv("REACTOR_BACKEND");
  }
}

static void test_manual_clock_start(void) {
  SECTION("manual clock starts at 0");
  reactor_t *r = tu_new_manual_reactor();
  CHECK(reactor_seconds(r) == 0.0);
  CHECK_OK(reactor_clock_advance(r, 2.5));
  CHECK(reactor_seconds(r) == 2.5);
  CHECK_OK(reactor_free(r));
}

static void test_version(void) {
  SECTION("version macros and run-time version");
  char want[64];
  snprintf(want, sizeof want, "%d.%d.%d", (int)REACTOR_VERSION_MAJOR, (int)REACTOR_VERSION_MINOR,
           (int)REACTOR_VERSION_PATCH);
  const char *vs = reactor_version_string();
  printf("   header %s, hex 0x%06x, library \"%s\", 0x%06x\n", want, (unsigned)REACTOR_VERSION_HEX,
         vs ? vs : "(null)", reactor_version());
  CHECK(vs != NULL && strstr(vs, want) != NULL);
  CHECK_EQ(reactor_version(), (unsigned)REACTOR_VERSION_HEX);
}

int main(void) {
  tu_watchdog(30);
  test_api_struct_tags();
  test_init_defaults();
  test_struct_size();
  test_bad_fields();
  test_backends();
  test_manual_clock_start();
  test_version();
  return tu_finish(PROG);
}
