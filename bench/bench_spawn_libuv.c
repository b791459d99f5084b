/* libuv version of the process shapes (see spawn_common.h): uv_spawn with stdio 0 and 2 the
 * program's /dev/null (UV_INHERIT_FD), and 1 either /dev/null (spawn_true) or UV_CREATE_PIPE |
 * UV_WRITABLE_PIPE into a uv_pipe_t read until UV_EOF (spawn_capture). A child has ended once
 * exit_cb ran and the process handle (and the pipe) are closed; the next is spawned from the last
 * close callback. libuv 1.44 spawns with fork + exec on Linux and reaps on SIGCHLD. */
#define BENCH_LIB "libuv"
#include "spawn_common.h"
#include <uv.h>

static uv_loop_t *loop;
static uv_process_t proc;
static uv_pipe_t out;
static uv_process_options_t options;
static uv_stdio_container_t stdio[3];
static int exited_ok;
static int open_handles; /* of the current child: the process handle and the pipe */

static void spawn_next(void);

static void closed(uv_handle_t *h) {
  (void)h;
  if (--open_handles > 0) return;
  if (!sp_child_ended(exited_ok)) spawn_next(); /* else nothing is left: uv_run returns */
}

static void exited(uv_process_t *p, int64_t exit_status, int term_signal) {
  exited_ok = exit_status == 0 && term_signal == 0;
  uv_close((uv_handle_t *)p, closed);
}

static void alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  (void)h;
  (void)suggested;
  static char storage[65536];
  *buf = uv_buf_init(storage, sizeof storage);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
  if (nread > 0)
    sp_output(buf->base, (size_t)nread);
  else if (nread == UV_EOF)
    uv_close((uv_handle_t *)s, closed);
  else if (nread < 0)
    die("read", (long)nread);
}

static void spawn_next(void) {
  sp_spawning();
  exited_ok = 0;
  open_handles = 1;
  if (sp_capture) {
    CHECK(uv_pipe_init(loop, &out, 0));
    open_handles = 2;
  }
  CHECK(uv_spawn(loop, &proc, &options));
  if (sp_capture) CHECK(uv_read_start((uv_stream_t *)&out, alloc, on_read));
}

int main(int argc, char **argv) {
  sp_init(argc, argv);
  loop = uv_default_loop();
  printf("INFO lib=libuv version=%s\n", uv_version_string());
  stdio[0].flags = UV_INHERIT_FD;
  stdio[0].data.fd = sp_devnull;
  if (sp_capture) {
    stdio[1].flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE; /* writable by the child */
    stdio[1].data.stream = (uv_stream_t *)&out;
  } else {
    stdio[1].flags = UV_INHERIT_FD;
    stdio[1].data.fd = sp_devnull;
  }
  stdio[2].flags = UV_INHERIT_FD;
  stdio[2].data.fd = sp_devnull;
  options.exit_cb = exited;
  options.file = sp_argv[0];
  options.args = (char **)sp_argv;
  options.env = (char **)sp_empty_env; /* NULL would mean the parent's environment */
  options.stdio = stdio;
  options.stdio_count = 3;
  sp_begin();
  spawn_next();
  CHECK(uv_run(loop, UV_RUN_DEFAULT));
  sp_report();
  return 0;
}
