/* libreactor version of the process shapes (see spawn_common.h): reactor_spawn_process with a
 * child-fd map of /dev/null (REACTOR_CHILD_FD_INHERIT) for 0 and 2, and for 1 either /dev/null
 * (spawn_true) or a READ pipe (spawn_capture); the next child is spawned from process_ended (the
 * child reaped and its pipe closed). The library spawns with posix_spawn when it can, else with
 * fork + exec; REACTOR_SPAWN_FORK=1 in the environment forces fork. */
#define BENCH_LIB "libreactor"
#include "spawn_common.h"
#include <reactor.h>

static reactor_t *r;
static reactor_spawn_options_t opts;
static reactor_process_protocol_t proto;
static reactor_child_fd_t fds[3];

static void data(reactor_process_t *p, int child_fd, const uint8_t *bytes, size_t len, void *ud) {
  (void)p;
  (void)child_fd;
  (void)ud;
  sp_output(bytes, len);
}

static void spawn_next(void) {
  sp_spawning();
  CHECK(reactor_spawn_process(r, sp_argv[0], sp_argv, &opts, &proto, NULL, NULL, NULL));
}

static void ended(reactor_process_t *p, int reason, int exit_code, int term_signal, void *ud) {
  (void)p;
  (void)ud;
  if (sp_child_ended(reason == REACTOR_OK && exit_code == 0 && term_signal == 0)) {
    CHECK(reactor_stop(r));
    return;
  }
  spawn_next();
}

static void start(reactor_t *rr, void *ud) {
  (void)rr;
  (void)ud;
  sp_begin();
  spawn_next();
}

int main(int argc, char **argv) {
  sp_init(argc, argv);
  CHECK(reactor_new(NULL, &r));
  const char *forced = getenv("REACTOR_SPAWN_FORK");
  printf("INFO lib=libreactor version=%s backend=%s spawn=%s\n", reactor_version_string(),
         reactor_backend_name(r), forced ? "fork (REACTOR_SPAWN_FORK set)" : "default");
  reactor_spawn_options_init(&opts); /* env NULL: an empty environment */
  for (int fd = 0; fd < 3; fd++) { /* /dev/null as 0, 1 and 2 ... */
    fds[fd].child_fd = fd;
    fds[fd].kind = REACTOR_CHILD_FD_INHERIT;
    fds[fd].parent_fd = sp_devnull;
  }
  if (sp_capture) fds[1].kind = REACTOR_CHILD_FD_READ; /* ... except a pipe as 1 */
  opts.child_fds = fds;
  opts.child_fd_count = 3;
  reactor_process_protocol_init(&proto);
  proto.child_data_received = data;
  proto.process_ended = ended;
  CHECK(reactor_call_when_running(r, start, NULL, NULL));
  CHECK(reactor_run(r));
  sp_report();
  reactor_stats_t ls;
  memset(&ls, 0, sizeof ls);
  ls.struct_size = sizeof ls;
  if (reactor_stats(r, &ls) == REACTOR_OK)
    printf("INFO shape=%s lib=libreactor iterations=%llu polls=%llu wakeups=%llu callbacks=%llu\n",
           g_shape, (unsigned long long)ls.iterations, (unsigned long long)ls.polls,
           (unsigned long long)ls.wakeups, (unsigned long long)ls.callbacks);
  CHECK(reactor_free(r));
  return 0;
}
