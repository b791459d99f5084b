"""cffi builder (API mode) for ``libreactor._native``.

The extension includes the installed ``reactor.h`` and links ``-lreactor``. Where they are comes from,
in this order:

* ``LIBREACTOR_PREFIX``: an install prefix (``$LIBREACTOR_PREFIX/include/reactor.h``,
  ``$LIBREACTOR_PREFIX/lib/libreactor.so``), e.g. the ``build/prefix`` that ``make stage`` fills;
* ``pkg-config reactor`` (set ``PKG_CONFIG_PATH`` for a private prefix);
* the compiler's default paths.

A library outside the default search path is recorded as an rpath, so ``import libreactor`` needs no
``LD_LIBRARY_PATH``.

Only what the binding uses is declared below. Because this is API mode, the C compiler checks each
declaration against the real header: a drifted prototype or struct is a build error, not a crash.
"""

import os
import shlex
import subprocess

from cffi import FFI

CDEF = r"""
typedef struct reactor reactor_t;
typedef struct reactor_delayed_call reactor_delayed_call_t;
typedef struct reactor_threadpool reactor_threadpool_t;

typedef enum reactor_status_t {
    REACTOR_OK, REACTOR_E_INVALID, REACTOR_E_WRONG_THREAD, REACTOR_E_ALREADY_RUNNING,
    REACTOR_E_NOT_RUNNING, REACTOR_E_NOT_RESTARTABLE, REACTOR_E_ALREADY_CALLED,
    REACTOR_E_ALREADY_CANCELLED, REACTOR_E_NOT_FOUND, REACTOR_E_BUSY, REACTOR_E_CLOSED,
    REACTOR_E_UNSUPPORTED, REACTOR_E_TIMEOUT, REACTOR_E_NOMEM, REACTOR_E_CONNECTION_REFUSED,
    REACTOR_E_DNS, REACTOR_E_ADDRESS_IN_USE, REACTOR_E_INVALID_ADDRESS, REACTOR_E_MESSAGE_TOO_LONG,
    REACTOR_E_PROCESS_EXITED, REACTOR_E_INTERNAL, REACTOR_E_CONNECTION_LOST,
    REACTOR_E_CONNECTION_ABORTED, REACTOR_E_CANCELLED, REACTOR_E_PROCESS_TERMINATED, ...
} reactor_status_t;

typedef void (*reactor_cb_fn)(reactor_t *r, void *user_data);
typedef void (*reactor_release_fn)(void *user_data);
typedef void (*reactor_log_fn)(void *user_data, int level, const char *message);
typedef int (*reactor_trigger_fn)(reactor_t *r, uint64_t trigger_id, void *user_data);
typedef void (*reactor_fd_fn)(reactor_t *r, int fd, uint32_t events, void *user_data);
typedef void (*reactor_work_fn)(void *user_data);
typedef void (*reactor_signal_fn)(reactor_t *r, int signum, void *user_data);
typedef void *(*reactor_work_result_fn)(void *user_data);
typedef void (*reactor_done_fn)(reactor_t *r, void *result, void *user_data);

typedef struct reactor_options {
    uint32_t struct_size;
    int backend;
    int install_signal_handlers;
    int manual_clock;
    size_t thread_pool_max;
    ...;
} reactor_options_t;

typedef struct reactor_stats {
    uint32_t struct_size;
    uint64_t iterations;
    uint64_t polls;
    uint64_t wakeups;
    uint64_t callbacks;
    uint64_t timers_fired;
    uint64_t thread_calls;
    uint64_t fds_registered;
    uint64_t timers_pending;
    uint64_t backend_ctl_calls;
    double idle_seconds;
    ...;
} reactor_stats_t;

typedef struct reactor_threadpool_stats {
    uint32_t struct_size;
    uint64_t workers;
    uint64_t idle;
    uint64_t queued;
    uint64_t completed;
    uint64_t stolen;
    ...;
} reactor_threadpool_stats_t;

#define REACTOR_PENDING ...
#define REACTOR_E_OS_BASE ...
#define REACTOR_BACKEND_DEFAULT ...
#define REACTOR_BACKEND_EPOLL ...
#define REACTOR_BACKEND_POLL ...
#define REACTOR_BACKEND_KQUEUE ...
#define REACTOR_PHASE_BEFORE ...
#define REACTOR_PHASE_DURING ...
#define REACTOR_PHASE_AFTER ...
#define REACTOR_READABLE ...
#define REACTOR_WRITABLE ...
#define REACTOR_HANGUP ...
#define REACTOR_ERROR ...
#define REACTOR_SHUTDOWN ...
#define REACTOR_LOG_ERROR ...
#define REACTOR_LOG_WARN ...
#define REACTOR_LOG_INFO ...

const char *reactor_version_string(void);
const char *reactor_strerror(int status);
int reactor_status_errno(int status);

void reactor_options_init(reactor_options_t *o);
int reactor_new(const reactor_options_t *o, reactor_t **out);
int reactor_free(reactor_t *r);
int reactor_run(reactor_t *r);
int reactor_stop(reactor_t *r);
int reactor_crash(reactor_t *r);
int reactor_iterate(reactor_t *r, double timeout_s);
int reactor_is_running(const reactor_t *r);
int reactor_is_in_io_thread(const reactor_t *r);
int reactor_wake_up(reactor_t *r);
const char *reactor_backend_name(const reactor_t *r);
void reactor_set_log_fn(reactor_t *r, reactor_log_fn log_fn, void *ud);
int reactor_stats(const reactor_t *r, reactor_stats_t *out);
int reactor_backend_timeout_ms(reactor_t *r);

int reactor_add_system_event_trigger(reactor_t *r, int phase, const char *event,
                                     reactor_trigger_fn trigger, void *ud,
                                     reactor_release_fn release, uint64_t *out_id);
int reactor_remove_system_event_trigger(reactor_t *r, uint64_t id);
int reactor_fire_system_event(reactor_t *r, const char *event);
int reactor_trigger_complete(reactor_t *r, uint64_t trigger_id);
int reactor_trigger_complete_now(reactor_t *r, uint64_t trigger_id);
int reactor_call_when_running(reactor_t *r, reactor_cb_fn cb, void *ud, reactor_release_fn release);

int reactor_add_signal_handler(reactor_t *r, int signum, reactor_signal_fn cb, void *ud,
                               reactor_release_fn release, uint64_t *out_id);
int reactor_remove_signal_handler(reactor_t *r, uint64_t id);

int reactor_add_reader(reactor_t *r, int fd, reactor_fd_fn cb, void *ud, reactor_release_fn release);
int reactor_add_writer(reactor_t *r, int fd, reactor_fd_fn cb, void *ud, reactor_release_fn release);
int reactor_remove_reader(reactor_t *r, int fd);
int reactor_remove_writer(reactor_t *r, int fd);
int reactor_remove_all(reactor_t *r, int *out_fds, size_t cap, size_t *out_count);
int reactor_get_readers(const reactor_t *r, int *out_fds, size_t cap, size_t *out_count);
int reactor_get_writers(const reactor_t *r, int *out_fds, size_t cap, size_t *out_count);

int reactor_call_later(reactor_t *r, double delay_s, reactor_cb_fn cb, void *ud,
                       reactor_release_fn release, reactor_delayed_call_t **out);
int reactor_delayed_call_cancel(reactor_delayed_call_t *c);
int reactor_delayed_call_reset(reactor_delayed_call_t *c, double seconds_from_now);
int reactor_delayed_call_delay(reactor_delayed_call_t *c, double seconds_later);
int reactor_delayed_call_active(const reactor_delayed_call_t *c);
double reactor_delayed_call_get_time(const reactor_delayed_call_t *c);
void reactor_delayed_call_release(reactor_delayed_call_t *c);
size_t reactor_delayed_call_count(const reactor_t *r);
double reactor_seconds(const reactor_t *r);
int reactor_clock_advance(reactor_t *r, double seconds);

int reactor_call_from_thread(reactor_t *r, reactor_cb_fn cb, void *ud, reactor_release_fn release);
int reactor_call_in_thread(reactor_t *r, reactor_work_fn fn, void *ud, reactor_release_fn release);
int reactor_call_in_thread_with_callback(reactor_t *r, reactor_work_result_fn work,
                                         reactor_done_fn done, void *ud,
                                         reactor_release_fn release);
int reactor_suggest_thread_pool_size(reactor_t *r, size_t max_threads);

int reactor_threadpool_new(size_t min_threads, size_t max_threads, reactor_threadpool_t **out);
int reactor_threadpool_submit(reactor_threadpool_t *p, reactor_work_fn fn, void *ud,
                              reactor_release_fn release);
int reactor_threadpool_resize(reactor_threadpool_t *p, size_t min_threads, size_t max_threads);
int reactor_threadpool_stats(const reactor_threadpool_t *p, reactor_threadpool_stats_t *out);
int reactor_threadpool_stop(reactor_threadpool_t *p);
void reactor_threadpool_free(reactor_threadpool_t *p);

/* The library calls back into Python through these (libreactor/_callbacks.py). */
extern "Python" void _lr_call(reactor_t *, void *);
extern "Python" void _lr_release(void *);
extern "Python" int _lr_trigger(reactor_t *, uint64_t, void *);
extern "Python" void _lr_fd(reactor_t *, int, uint32_t, void *);
extern "Python" void _lr_job(void *);
extern "Python" void *_lr_work(void *);
extern "Python" void _lr_done(reactor_t *, void *, void *);
extern "Python" void _lr_log(void *, int, const char *);
extern "Python" void _lr_signal(reactor_t *, int, void *);
/* user_data is an ffi.new_handle() whose object the caller keeps alive itself for as long as the
   library may call it (libreactor.twisted's delayed calls and fd dispatchers). */
extern "Python" void _lr_fire(reactor_t *, void *);
extern "Python" void _lr_fd_handle(reactor_t *, int, uint32_t, void *);
"""


def _pkg_config(*args):
    try:
        out = subprocess.run(
            ["pkg-config", *args, "reactor"], check=True, capture_output=True, text=True
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    return shlex.split(out)


def _locate():
    """Include dirs, library dirs and extra link arguments for libreactor."""
    prefix = os.environ.get("LIBREACTOR_PREFIX")
    if prefix:
        header = os.path.join(prefix, "include", "reactor.h")
        if not os.path.exists(header):
            raise RuntimeError(f"LIBREACTOR_PREFIX={prefix}: no {header}")
        libdir = os.path.join(prefix, "lib")
        return [os.path.join(prefix, "include")], [libdir], [f"-Wl,-rpath,{libdir}"]
    cflags = _pkg_config("--cflags")
    libs = _pkg_config("--libs")
    if cflags is None or libs is None:
        return [], [], []
    include_dirs = [f[2:] for f in cflags if f.startswith("-I")]
    library_dirs = [f[2:] for f in libs if f.startswith("-L")]
    # The .pc file carries its own -Wl,-rpath; keep every linker flag but the -L/-l ones.
    extra = [f for f in libs if not f.startswith(("-L", "-l"))]
    return include_dirs, library_dirs, extra


ffibuilder = FFI()
ffibuilder.cdef(CDEF)
_include_dirs, _library_dirs, _extra_link_args = _locate()
ffibuilder.set_source(
    "libreactor._native",
    "#include <reactor.h>",
    libraries=["reactor"],
    include_dirs=_include_dirs,
    library_dirs=_library_dirs,
    extra_link_args=_extra_link_args,
)

if __name__ == "__main__":
    ffibuilder.compile(verbose=True)
