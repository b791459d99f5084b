/* libuv version of the queuework shapes (see queuework_common.h): uv_queue_work with the
 * default pool (UV_THREADPOOL_SIZE = threads, 4 by default). */
#define BENCH_LIB "libuv"
#include "queuework_common.h"
#include <uv.h>

static uv_loop_t *loop;
static uv_work_t *reqs; /* one per job in flight (all of them when queued up front) */

static void work(uv_work_t *req) { req->data = (void *)qw_work((uintptr_t)req->data); }

static void after(uv_work_t *req, int status);

static void submit(uv_work_t *req) {
  req->data = (void *)(uintptr_t)qw_submitted++;
  CHECK(uv_queue_work(loop, req, work, after));
}

static void after(uv_work_t *req, int status) {
  if (status != 0) die("after_work status", status);
  uintptr_t result = (uintptr_t)req->data;
  /* libuv hands back the request, not the argument: the argument was result - 1 */
  if (qw_completion(result - 1, result)) return; /* the loop ends when no request is left */
  if (qw_window && qw_submitted < qw_n) submit(req);
}

int main(int argc, char **argv) {
  qw_init(argc, argv);
  char size[16];
  snprintf(size, sizeof size, "%d", qw_threads);
  setenv("UV_THREADPOOL_SIZE", size, 1); /* read when the pool first starts */
  loop = uv_default_loop();
  size_t slots = qw_window ? qw_window : qw_n;
  reqs = calloc(slots, sizeof *reqs);
  if (!reqs) die("calloc", 0);
  qw_c0 = cpu_ns();
  qw_t0 = now_ns();
  for (size_t i = 0; i < slots; i++) submit(&reqs[i]);
  CHECK(uv_run(loop, UV_RUN_DEFAULT));
  qw_report();
  free(reqs);
  return 0;
}
