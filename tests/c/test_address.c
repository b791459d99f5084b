/*
 * test_address.c - reactor_address_t and reactor_address_format (API.md §6.2).
 *
 * Checks:
 *   - the text forms API.md shows: "127.0.0.1:80", "[::1]:80", "/run/x.sock", "@name", "" for an
 *     unnamed UNIX socket; IPv6 scope and flow info are not part of the text;
 *   - a buffer too small gets the text cut to fit, NUL-terminated, and REACTOR_E_INVALID; exactly
 *     the right size fits;
 *   - bad input: NULL address, NULL buffer, cap 0, unknown family, a host without its NUL → INVALID,
 *     and the buffer (when there is one) holds "" afterwards;
 *   - the families' values.
 */
#include "test_util.h"

static const char *PROG = "test_address";

static reactor_address_t addr(uint32_t family, const char *host, uint16_t port) {
  reactor_address_t a;
  memset(&a, 0, sizeof a);
  a.family = family;
  a.port = port;
  snprintf(a.host, sizeof a.host, "%s", host);
  return a;
}

static void expect_text(reactor_address_t a, const char *want) {
  char buf[300];
  memset(buf, 'x', sizeof buf);
  CHECK_OK(reactor_address_format(&a, buf, sizeof buf));
  if (strcmp(buf, want) != 0) {
    fprintf(stderr, "   got \"%s\", want \"%s\"\n", buf, want);
    CHECK(0);
  }
}

static void test_forms(void) {
  SECTION("text forms");
  CHECK_EQ(REACTOR_FAMILY_INET, 1);
  CHECK_EQ(REACTOR_FAMILY_INET6, 2);
  CHECK_EQ(REACTOR_FAMILY_UNIX, 3);
  CHECK_EQ(sizeof(((reactor_address_t *)0)->host), 256);
  expect_text(addr(REACTOR_FAMILY_INET, "127.0.0.1", 80), "127.0.0.1:80");
  expect_text(addr(REACTOR_FAMILY_INET, "10.1.2.3", 65535), "10.1.2.3:65535");
  reactor_address_t v6 = addr(REACTOR_FAMILY_INET6, "::1", 80);
  v6.scope_id = 2;
  v6.flow_info = 9;
  expect_text(v6, "[::1]:80");
  expect_text(addr(REACTOR_FAMILY_UNIX, "/run/x.sock", 0), "/run/x.sock");
  expect_text(addr(REACTOR_FAMILY_UNIX, "@name", 0), "@name");
  expect_text(addr(REACTOR_FAMILY_UNIX, "", 0), "");
}

static void test_small_buffers(void) {
  SECTION("a buffer too small: cut, NUL-terminated, INVALID");
  reactor_address_t a = addr(REACTOR_FAMILY_INET, "127.0.0.1", 80); /* 12 characters */
  char buf[16];
  memset(buf, 'x', sizeof buf);
  CHECK_RC(reactor_address_format(&a, buf, 12), REACTOR_E_INVALID);
  CHECK(strcmp(buf, "127.0.0.1:8") == 0);
  CHECK_OK(reactor_address_format(&a, buf, 13));
  CHECK(strcmp(buf, "127.0.0.1:80") == 0);
  memset(buf, 'x', sizeof buf);
  CHECK_RC(reactor_address_format(&a, buf, 1), REACTOR_E_INVALID);
  CHECK_EQ(buf[0], '\0');
}

static void test_bad_input(void) {
  SECTION("bad input");
  reactor_address_t a = addr(REACTOR_FAMILY_INET, "127.0.0.1", 80);
  char buf[64];
  CHECK_RC(reactor_address_format(NULL, buf, sizeof buf), REACTOR_E_INVALID);
  CHECK_EQ(buf[0], '\0');
  CHECK_RC(reactor_address_format(&a, NULL, sizeof buf), REACTOR_E_INVALID);
  CHECK_RC(reactor_address_format(&a, buf, 0), REACTOR_E_INVALID);
  reactor_address_t bad = addr(99, "127.0.0.1", 80);
  memset(buf, 'x', sizeof buf);
  CHECK_RC(reactor_address_format(&bad, buf, sizeof buf), REACTOR_E_INVALID);
  CHECK_EQ(buf[0], '\0');
  bad = addr(0, "127.0.0.1", 80);
  CHECK_RC(reactor_address_format(&bad, buf, sizeof buf), REACTOR_E_INVALID);
  bad = addr(REACTOR_FAMILY_UNIX, "", 0);
  memset(bad.host, 'a', sizeof bad.host); /* no NUL anywhere */
  memset(buf, 'x', sizeof buf);
  CHECK_RC(reactor_address_format(&bad, buf, sizeof buf), REACTOR_E_INVALID);
  CHECK_EQ(buf[0], '\0');
}

int main(void) {
  tu_watchdog(30);
  test_forms();
  test_small_buffers();
  test_bad_input();
  return tu_finish(PROG);
}
