/*
 * test_process.c - child processes (API.md §8.1 and the process rules of §8.6).
 *
 * Every child gets a record (prec_t) as user data; its callbacks check the general rules each time
 * (reactor thread, never inside a library call, connection_made first, nothing after
 * process_ended, child_connection_lost once per fd, no data after a fd's loss) and check_life()
 * checks the whole life once it ended: made/exited/ended exactly once in that order, each expected
 * fd lost exactly once before process_ended, the same (reason, exit_code, term_signal) twice,
 * release exactly once after process_ended, pid > 0 until process_ended and 0 inside it, and a
 * dead handle afterwards (INVALID / pid 0).
 *
 * Checks:
 *   - the exit-watch mode: pidfd (an anon_inode:[pidfd] per child, SIGCHLD untouched) or SIGCHLD
 *     (REACTOR_CHILD_WATCH=sigchld, or no pidfd_open): the library's handler with SA_RESTART,
 *     installed at the first spawn, replacing (not chaining to) a host handler, kept until the last
 *     reactor that spawned is freed, the host's handler back then. main() runs everything, then
 *     (REACTOR_CHILD_WATCH unset) runs itself again with REACTOR_CHILD_WATCH=sigchld;
 *   - echo through `cat`: 1 MiB written before connection_made and close_child_fd(0) at once (the
 *     buffer is flushed first; write → CLOSED while closing), every byte back on fd 1;
 *   - exit codes and signals: exit 0 → OK, exit 3 / 255 → PROCESS_TERMINATED with the code,
 *     reactor_process_signal(SIGTERM / SIGRTMAX) and an outside SIGKILL → exit_code -1 and the
 *     signal; signal numbers 0, -1, 32, 33, NSIG, 1000, INT_MIN → INVALID (also after the exit:
 *     checked before PROCESS_EXITED); signal after process_exited (and inside process_ended) →
 *     PROCESS_EXITED; inside process_ended write_to_child → CLOSED and pid → 0;
 *   - process_exited while a grandchild still holds the pipes, process_ended only after it closes;
 *   - env (empty by default, explicit list, inherit_env, env with inherit_env → INVALID), argv[0]
 *     as given, PATH search in the parent's PATH, cwd (pwd; "./prog" resolved after the chdir);
 *   - custom child-fd maps with fd conflicts (a swap of two inherited fds, an inherited fd that is
 *     another entry's target, one source twice), READ/WRITE pipes at 3, 4 and 7, only the mapped
 *     fds open in the child; once through posix_spawn (the fast path) and once through fork (uid
 *     and gid given, and a target above 64);
 *   - the child's signal state: SigIgn and SigBlk empty although the parent ignores SIGINT/SIGTERM
 *     and blocks SIGUSR1/SIGUSR2 (both spawn paths);
 *   - pty: the child has a controlling terminal on 0, 1, 2 (and its own session), output on fd 1,
 *     write_to_child only fd 0, child_connection_lost(1) once; close_child_fd(2) and
 *     lose_connection close the pty (one child_connection_lost(1)); use_pty with child_fds →
 *     INVALID;
 *   - the library's new fds (pipes, pty master, pidfds) are internal: add_reader/add_writer →
 *     INVALID, never listed, untouched by remove_all; the child's ends are blocking (fdinfo flags
 *     of the default map, a pty and a custom map);
 *   - exec failures: missing program (bare, in PATH, absolute), not executable (file, directory,
 *     bare name in PATH), missing cwd, cwd a file, "./missing" after chdir → REACTOR_E_OS(ENOENT,
 *     EACCES, ENOTDIR),
 *     nothing called, nothing released, out untouched, no zombie (both spawn paths);
 *   - 200 short-lived children (20 under valgrind): no zombie, no fd leaked;
 *   - a child spawned before reactor_run that exits at once is reaped once the loop runs;
 *     reactor_spawn_process after that run (ended with stop) → CLOSED;
 *   - a foreign child (forked by the test) is never reaped by the library;
 *   - SIGCHLD does not make a blocking read() in another thread fail with EINTR;
 *   - write_to_child / close_child_fd / lose_connection: the checks in order, CLOSED after close,
 *     len 0, twice closed → OK and one loss, child_connection_lost on a later pass, lose_connection
 *     closes 0, 2, 1 and keeps other fds; a child closing its stdin → child_connection_lost(0)
 *     while it runs; writing to a child that exits without reading never raises SIGPIPE (SIGPIPE
 *     at its default disposition);
 *   - threads: pid → 0 and every other process call → WRONG_THREAD from another thread (before
 *     the argument checks), nothing changed; a dead handle from another thread → INVALID;
 *   - bad input: NULL reactor/executable/argv/proto, struct_size rules of both structs, opts NULL,
 *     out NULL, callbacks NULL, child_fds NULL with a count, negative/repeated child fd, unknown
 *     kind, INHERIT of a closed fd, uid/gid outside -1..2^32-2, freed reactor, made-up handles;
 *     the _init functions (defaults; NULL ignored);
 *   - spawning from inside callbacks (connection_made and process_ended);
 *   - shutdown: a live child's pipes close during shutdown (not before), no process_ended, its
 *     release in reactor_free (no other callback), its pid left to the host; a reaped child whose
 *     grandchild holds its pipes gets process_ended during shutdown; bytes buffered for a child
 *     are dropped;
 *   - uid/gid (as root): `id -u`, `id -g` give 65534 and `id -G` has no group 0.
 */
#include "test_util.h"

#include <dirent.h>
#include <limits.h>
#include <stddef.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>

static const char *PROG = "test_process";

#define NFD 80 /* child fds the records track (0..NFD-1) */

static pthread_t reactor_thread;
static int in_call;        /* > 0 while the test is inside a library call that must not call back */
static int sigchld_mode;   /* detected by test_mode() */
static char tmpdir[PATH_MAX];

static double scale_s(double s) { return tu_valgrind() ? s * 8 : s; }

/* ---- per-process records --------------------------------------------------------------------- */

typedef struct obuf {
  char *d;
  size_t n, cap;
} obuf_t;

typedef struct prec prec_t;
struct prec {
  const char *name;
  reactor_t *r;
  reactor_process_t *p;
  int pid;
  int wfd; /* the WRITE pipe checked inside process_ended (-1: none) */
  int seq;
  int made, made_seq, made_pid;
  int lost[NFD], lost_seq[NFD], lost_exited[NFD];
  int lost_total;
  int exited, exited_seq, x_reason, x_code, x_sig, pid_in_exited;
  int x_rc_sig, x_rc_sig0;
  int ended, ended_seq, e_reason, e_code, e_sig, pid_in_ended;
  int e_rc_sig, e_rc_sig0, e_rc_write;
  atomic_int releases;
  int release_seq, ended_at_release;
  int violations;
  double t_exited, t_ended;
  char log[512];
  obuf_t out[NFD];
  void (*on_made)(prec_t *);
  void (*on_ended)(prec_t *);
  int arg_int;
};

#define PCHECK(rec, expr)                                                                    \
  do {                                                                                       \
    if (!(expr)) {                                                                           \
      fprintf(stderr, "%s:%d: process %s: CHECK failed: %s (log: %s)\n", __FILE__, __LINE__, \
              (rec)->name, #expr, (rec)->log);                                               \
      (rec)->violations++;                                                                   \
      atomic_fetch_add(&tu_failures, 1);                                                     \
    }                                                                                        \
  } while (0)

static void rec_init(prec_t *rec, const char *name) {
  memset(rec, 0, sizeof *rec);
  rec->name = name;
  rec->wfd = 0;
}

static void rec_free(prec_t *rec) {
  for (int i = 0; i < NFD; i++) free(rec->out[i].d);
  memset(rec->out, 0, sizeof rec->out);
}

static void logtok(prec_t *rec, const char *tok) {
  size_t used = strlen(rec->log);
  if (used + strlen(tok) + 2 < sizeof rec->log) {
    if (used) strcat(rec->log, " ");
    strcat(rec->log, tok);
  }
}

static int out_is(const prec_t *rec, int fd, const char *want) {
  size_t n = strlen(want);
  const obuf_t *o = &rec->out[fd];
  if (o->n == n && (n == 0 || memcmp(o->d, want, n) == 0)) return 1;
  fprintf(stderr, "process %s fd %d: got %zu bytes \"%.*s\", want \"%s\"\n", rec->name, fd, o->n,
          (int)(o->n > 300 ? 300 : o->n), o->d ? o->d : "", want);
  return 0;
}

static int out_has(const prec_t *rec, int fd, const char *want) {
  const obuf_t *o = &rec->out[fd];
  size_t n = strlen(want);
  for (size_t i = 0; o->d && i + n <= o->n; i++)
    if (memcmp(o->d + i, want, n) == 0) return 1;
  fprintf(stderr, "process %s fd %d: \"%.*s\" lacks \"%s\"\n", rec->name, fd,
          (int)(o->n > 300 ? 300 : o->n), o->d ? o->d : "", want);
  return 0;
}

/* Library calls on a process, flagged so a callback inside them is caught. */
static int w_write(reactor_process_t *p, int fd, const void *d, size_t n) {
  in_call++;
  int rc = reactor_process_write_to_child(p, fd, d, n);
  in_call--;
  return rc;
}
static int w_close(reactor_process_t *p, int fd) {
  in_call++;
  int rc = reactor_process_close_child_fd(p, fd);
  in_call--;
  return rc;
}
static int w_lose(reactor_process_t *p) {
  in_call++;
  int rc = reactor_process_lose_connection(p);
  in_call--;
  return rc;
}
static int w_signal(reactor_process_t *p, int sig) {
  in_call++;
  int rc = reactor_process_signal(p, sig);
  in_call--;
  return rc;
}
static int w_pid(const reactor_process_t *p) {
  in_call++;
  int rc = reactor_process_pid(p);
  in_call--;
  return rc;
}

/* The checks every callback makes first. */
static void cb_common(prec_t *rec, reactor_process_t *p, int made_cb) {
  PCHECK(rec, pthread_equal(pthread_self(), reactor_thread));
  PCHECK(rec, in_call == 0);
  PCHECK(rec, rec->ended == 0);
  if (!made_cb) PCHECK(rec, rec->made == 1);
  if (rec->p == NULL) rec->p = p; /* spawned with out NULL */
  PCHECK(rec, p == rec->p);
}

static void cb_made(reactor_process_t *p, void *ud) {
  prec_t *rec = ud;
  cb_common(rec, p, 1);
  PCHECK(rec, rec->made == 0);
  PCHECK(rec, rec->seq == 0);
  rec->made++;
  rec->made_seq = ++rec->seq;
  rec->made_pid = w_pid(p);
  PCHECK(rec, rec->made_pid > 0);
  if (rec->pid == 0) rec->pid = rec->made_pid; /* spawned with out NULL */
  logtok(rec, "M");
  if (rec->on_made) rec->on_made(rec);
}

static void cb_data(reactor_process_t *p, int fd, const uint8_t *data, size_t len, void *ud) {
  prec_t *rec = ud;
  cb_common(rec, p, 0);
  PCHECK(rec, fd >= 0 && fd < NFD);
  PCHECK(rec, data != NULL && len > 0);
  if (fd < 0 || fd >= NFD || data == NULL) return;
  PCHECK(rec, rec->lost[fd] == 0);
  obuf_t *o = &rec->out[fd];
  if (o->n + len > o->cap) {
    size_t cap = o->cap ? o->cap : 256;
    while (cap < o->n + len) cap *= 2;
    char *d = realloc(o->d, cap + 1);
    REQUIRE(d != NULL);
    o->d = d;
    o->cap = cap;
  }
  memcpy(o->d + o->n, data, len);
  o->n += len;
  o->d[o->n] = '\0';
  char tok[16];
  snprintf(tok, sizeof tok, "D%d", fd);
  size_t used = strlen(rec->log), tl = strlen(tok);
  if (!(used >= tl && strcmp(rec->log + used - tl, tok) == 0)) logtok(rec, tok);
}

static void cb_lost(reactor_process_t *p, int fd, void *ud) {
  prec_t *rec = ud;
  cb_common(rec, p, 0);
  PCHECK(rec, fd >= 0 && fd < NFD);
  if (fd < 0 || fd >= NFD) return;
  PCHECK(rec, rec->lost[fd] == 0);
  rec->lost[fd]++;
  rec->lost_total++;
  rec->lost_seq[fd] = ++rec->seq;
  rec->lost_exited[fd] = rec->exited;
  char tok[16];
  snprintf(tok, sizeof tok, "L%d", fd);
  logtok(rec, tok);
}

static void cb_exited(reactor_process_t *p, int reason, int code, int sig, void *ud) {
  prec_t *rec = ud;
  cb_common(rec, p, 0);
  PCHECK(rec, rec->exited == 0);
  rec->exited++;
  rec->exited_seq = ++rec->seq;
  rec->x_reason = reason;
  rec->x_code = code;
  rec->x_sig = sig;
  rec->pid_in_exited = w_pid(p);
  rec->x_rc_sig = w_signal(p, SIGTERM);
  rec->x_rc_sig0 = w_signal(p, 0);
  rec->t_exited = tu_now();
  logtok(rec, "X");
}

static void cb_ended(reactor_process_t *p, int reason, int code, int sig, void *ud) {
  prec_t *rec = ud;
  cb_common(rec, p, 0);
  PCHECK(rec, rec->exited == 1);
  rec->ended++;
  rec->ended_seq = ++rec->seq;
  rec->e_reason = reason;
  rec->e_code = code;
  rec->e_sig = sig;
  rec->pid_in_ended = w_pid(p);
  rec->e_rc_sig = w_signal(p, SIGTERM);
  rec->e_rc_sig0 = w_signal(p, 0);
  rec->e_rc_write = rec->wfd >= 0 ? w_write(p, rec->wfd, "x", 1) : REACTOR_E_CLOSED;
  rec->t_ended = tu_now();
  logtok(rec, "E");
  if (rec->on_ended) rec->on_ended(rec);
}

static void rec_release(void *ud) {
  prec_t *rec = ud;
  PCHECK(rec, pthread_equal(pthread_self(), reactor_thread));
  PCHECK(rec, in_call == 0);
  atomic_fetch_add(&rec->releases, 1);
  rec->release_seq = ++rec->seq;
  rec->ended_at_release = rec->ended;
  logtok(rec, "R");
}

static reactor_process_protocol_t proto;      /* every callback */
static reactor_process_protocol_t null_proto; /* no callback */

static int spawn_with(reactor_t *r, prec_t *rec, const char *exe, const char *const *argv,
                      const reactor_spawn_options_t *o, const reactor_process_protocol_t *pr,
                      int want_out) {
  rec->r = r;
  rec->p = NULL;
  reactor_process_t *out = (reactor_process_t *)(uintptr_t)0x5e5e;
  in_call++;
  int rc = reactor_spawn_process(r, exe, argv, o, pr, rec, rec_release, want_out ? &out : NULL);
  in_call--;
  if (rc == REACTOR_OK) {
    if (want_out) {
      CHECK(out != NULL && out != (reactor_process_t *)(uintptr_t)0x5e5e);
      rec->p = out;
      rec->pid = w_pid(out);
      CHECK(rec->pid > 0);
    }
    CHECK_EQ(rec->made, 0);
  } else if (want_out) {
    CHECK(out == (reactor_process_t *)(uintptr_t)0x5e5e); /* out written only on success */
  }
  return rc;
}

static int spawn(reactor_t *r, prec_t *rec, const char *exe, const char *const *argv,
                 const reactor_spawn_options_t *o) {
  return spawn_with(r, rec, exe, argv, o, &proto, 1);
}

/* A failed spawn: the status, and nothing called, nothing released. */
static void check_refused(reactor_t *r, prec_t *rec, int rc, int want, int line) {
  int f = atomic_load(&tu_failures);
  CHECK_RC(rc, want);
  if (want != REACTOR_E_CLOSED) /* CLOSED: after a run that ended with stop (no iterate either) */
    for (int i = 0; i < 2; i++) CHECK_OK(reactor_iterate(r, 0));
  CHECK_EQ(rec->seq, 0);
  CHECK_EQ(atomic_load(&rec->releases), 0);
  if (atomic_load(&tu_failures) != f) fprintf(stderr, "  (refused spawn at line %d)\n", line);
}

#define WAIT_UNTIL(r, cond, secs)                                                         \
  do {                                                                                    \
    double wu_deadline_ = tu_now() + scale_s(secs);                                       \
    while (!(cond) && tu_now() < wu_deadline_) CHECK_OK(reactor_iterate((r), 0.05));      \
    if (!(cond)) {                                                                        \
      fprintf(stderr, "%s:%d: timed out waiting for %s\n", __FILE__, __LINE__, #cond);    \
      atomic_fetch_add(&tu_failures, 1);                                                  \
    }                                                                                     \
  } while (0)

/* The whole life of an ended process (see the top comment). */
static void check_life(int line, prec_t *rec, int reason, int code, int sig, const int *fds,
                       size_t nfds) {
  int f = atomic_load(&tu_failures);
  CHECK_EQ(rec->made, 1);
  CHECK_EQ(rec->made_seq, 1);
  CHECK_EQ(rec->made_pid, rec->pid);
  CHECK_EQ(rec->exited, 1);
  CHECK_EQ(rec->ended, 1);
  CHECK_EQ(atomic_load(&rec->releases), 1);
  CHECK_EQ(rec->ended_at_release, 1);
  CHECK(rec->release_seq > rec->ended_seq);
  CHECK(rec->exited_seq < rec->ended_seq);
  CHECK_RC(rec->x_reason, reason);
  CHECK_EQ(rec->x_code, code);
  CHECK_EQ(rec->x_sig, sig);
  CHECK_RC(rec->e_reason, reason);
  CHECK_EQ(rec->e_code, code);
  CHECK_EQ(rec->e_sig, sig);
  CHECK_EQ(rec->pid_in_exited, rec->pid);
  CHECK_EQ(rec->pid_in_ended, 0);
  CHECK_RC(rec->x_rc_sig, REACTOR_E_PROCESS_EXITED);
  CHECK_RC(rec->x_rc_sig0, REACTOR_E_INVALID);
  CHECK_RC(rec->e_rc_sig, REACTOR_E_PROCESS_EXITED);
  CHECK_RC(rec->e_rc_sig0, REACTOR_E_INVALID);
  CHECK_RC(rec->e_rc_write, REACTOR_E_CLOSED);
  for (int fd = 0; fd < NFD; fd++) {
    int want = tu_contains(fds, nfds, fd);
    if (rec->lost[fd] != want)
      fprintf(stderr, "  child_connection_lost(%d) came %d times, want %d\n", fd, rec->lost[fd],
              want);
    CHECK_EQ(rec->lost[fd], want);
    if (want) CHECK(rec->lost_seq[fd] < rec->ended_seq);
  }
  CHECK_EQ(rec->violations, 0);
  if (rec->p) {
    CHECK_EQ(w_pid(rec->p), 0);
    CHECK_RC(w_write(rec->p, 0, "x", 1), REACTOR_E_INVALID);
    CHECK_RC(w_close(rec->p, 0), REACTOR_E_INVALID);
    CHECK_RC(w_lose(rec->p), REACTOR_E_INVALID);
    CHECK_RC(w_signal(rec->p, SIGTERM), REACTOR_E_INVALID);
  }
  if (atomic_load(&tu_failures) != f)
    fprintf(stderr, "  ^ in check_life(%s) at line %d, log: %s\n", rec->name, line, rec->log);
}

#define LIFE(rec, reason, code, sig, ...)                                                    \
  check_life(__LINE__, (rec), (reason), (code), (sig), (const int[]){__VA_ARGS__},          \
             sizeof((const int[]){__VA_ARGS__}) / sizeof(int))

#define ARGV(...) ((const char *const[]){__VA_ARGS__, NULL})

static reactor_spawn_options_t opts_default(void) {
  reactor_spawn_options_t o;
  reactor_spawn_options_init(&o);
  return o;
}

/* uid and gid given (unchanged values): the library must take its fork + exec path. */
static void force_fork_path(reactor_spawn_options_t *o) {
  o->uid = (int64_t)getuid();
  o->gid = (int64_t)getgid();
}

/* ---- /proc helpers ------------------------------------------------------------------------- */

static int count_fds(void) {
  DIR *d = opendir("/proc/self/fd");
  REQUIRE(d != NULL);
  int n = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL)
    if (e->d_name[0] != '.') n++;
  closedir(d);
  return n;
}

static int count_pidfds(void) {
  DIR *d = opendir("/proc/self/fd");
  REQUIRE(d != NULL);
  int n = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    if (e->d_name[0] == '.') continue;
    char path[300], link[256];
    snprintf(path, sizeof path, "/proc/self/fd/%s", e->d_name);
    ssize_t len = readlink(path, link, sizeof link - 1);
    if (len <= 0) continue;
    link[len] = '\0';
    if (strcmp(link, "anon_inode:[pidfd]") == 0) n++;
  }
  closedir(d);
  return n;
}

/* A process's state letter from /proc/<pid>/stat and its parent ('\0': none). */
static char proc_state(pid_t pid, pid_t *ppid) {
  char path[64], buf[1024];
  snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
  FILE *f = fopen(path, "r");
  if (!f) return '\0';
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[n] = '\0';
  char *rp = strrchr(buf, ')');
  char st = '\0';
  int pp = 0;
  if (!rp || sscanf(rp + 1, " %c %d", &st, &pp) != 2) return '\0';
  if (ppid) *ppid = pp;
  return st;
}

/* Children of this process (all threads), and how many of them are zombies. */
static int count_children(int *zombies) {
  DIR *d = opendir("/proc");
  REQUIRE(d != NULL);
  int n = 0, z = 0;
  pid_t me = getpid();
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    char *end;
    long pid = strtol(e->d_name, &end, 10);
    if (*end != '\0' || pid <= 0) continue;
    pid_t pp = 0;
    char st = proc_state((pid_t)pid, &pp);
    if (st && pp == me) {
      n++;
      if (st == 'Z') z++;
    }
  }
  closedir(d);
  if (zombies) *zombies = z;
  return n;
}

static void write_file(const char *path, const char *text, mode_t mode) {
  FILE *f = fopen(path, "w");
  REQUIRE(f != NULL);
  fputs(text, f);
  fclose(f);
  REQUIRE(chmod(path, mode) == 0);
}

/* Reads a blocking fd to EOF into buf (NUL-terminated). */
static size_t read_all(int fd, char *buf, size_t cap) {
  size_t n = 0;
  for (;;) {
    ssize_t k = read(fd, buf + n, cap - 1 - n);
    if (k < 0 && errno == EINTR) continue;
    if (k <= 0) break;
    n += (size_t)k;
    if (n == cap - 1) break;
  }
  buf[n] = '\0';
  return n;
}

/* ---- exit-watch mode ---------------------------------------------------------------------- */

static volatile sig_atomic_t host_sigchld_hits;
static void host_sigchld(int sig) {
  (void)sig;
  host_sigchld_hits++;
}

static int host_sigchld_installed(void) {
  struct sigaction cur;
  REQUIRE(sigaction(SIGCHLD, NULL, &cur) == 0);
  return !(cur.sa_flags & SA_SIGINFO) && cur.sa_handler == host_sigchld;
}

static int sigchld_is_default(void) {
  struct sigaction cur;
  REQUIRE(sigaction(SIGCHLD, NULL, &cur) == 0);
  return !(cur.sa_flags & SA_SIGINFO) && cur.sa_handler == SIG_DFL;
}

static void test_mode(void) {
  SECTION("exit-watch mode and the SIGCHLD disposition");
  const char *forced = getenv("REACTOR_CHILD_WATCH");
  int want_sigchld = forced && strcmp(forced, "sigchld") == 0;
  if (!want_sigchld) {
    long fd = syscall(SYS_pidfd_open, (long)getpid(), 0L);
    if (fd < 0)
      want_sigchld = 1;
    else
      close((int)fd);
  }

  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = host_sigchld;
  sigemptyset(&sa.sa_mask);
  REQUIRE(sigaction(SIGCHLD, &sa, NULL) == 0);
  host_sigchld_hits = 0;

  reactor_t *r1 = tu_new_reactor();
  reactor_t *r2 = tu_new_reactor();
  CHECK(host_sigchld_installed()); /* nothing before the first spawn */
  int pidfds_before = count_pidfds();
  prec_t a, b;
  rec_init(&a, "mode-a");
  rec_init(&b, "mode-b");
  REQUIRE_OK(spawn(r1, &a, "cat", ARGV("cat"), NULL));
  int pidfds = count_pidfds() - pidfds_before;
  struct sigaction cur;
  REQUIRE(sigaction(SIGCHLD, NULL, &cur) == 0);
  int replaced = !host_sigchld_installed();
  sigchld_mode = pidfds == 0;
  printf("%s: exit-watch mode: %s (REACTOR_CHILD_WATCH=%s)\n", PROG,
         sigchld_mode ? "SIGCHLD + waitpid(pid)" : "pidfd", forced ? forced : "(unset)");
  CHECK_EQ(sigchld_mode, want_sigchld);
  if (sigchld_mode) {
    CHECK_EQ(pidfds, 0);
    CHECK(replaced);
    CHECK(cur.sa_flags & SA_RESTART);
    CHECK(cur.sa_handler != SIG_DFL && cur.sa_handler != SIG_IGN);
  } else {
    CHECK_EQ(pidfds, 1);
    CHECK(!replaced);
  }
  REQUIRE_OK(spawn(r2, &b, "cat", ARGV("cat"), NULL));
  if (!sigchld_mode) CHECK_EQ(count_pidfds() - pidfds_before, 2);
  CHECK_OK(w_close(a.p, 0));
  CHECK_OK(w_close(b.p, 0));
  WAIT_UNTIL(r1, a.ended, 5);
  WAIT_UNTIL(r2, b.ended, 5);
  LIFE(&a, REACTOR_OK, 0, 0, 0, 1, 2);
  LIFE(&b, REACTOR_OK, 0, 0, 0, 1, 2);
  CHECK_EQ(count_pidfds(), pidfds_before);
  if (sigchld_mode) {
    CHECK_EQ(host_sigchld_hits, 0); /* the library does not chain to the host's handler */
    CHECK_OK(reactor_free(r1));
    CHECK(!host_sigchld_installed()); /* r2 spawned too: still the library's */
    CHECK_OK(reactor_free(r2));
    CHECK(host_sigchld_installed()); /* the last one that spawned is gone: the host's again */
  } else {
    CHECK(host_sigchld_hits > 0);
    CHECK_OK(reactor_free(r1));
    CHECK_OK(reactor_free(r2));
    CHECK(host_sigchld_installed());
  }
  signal(SIGCHLD, SIG_DFL);
  rec_free(&a);
  rec_free(&b);
}

/* ---- echo through cat ----------------------------------------------------------------------- */

static void test_echo(reactor_t *r) {
  SECTION("echo 1 MiB through cat; close_child_fd(0) flushes first");
  size_t n = (size_t)tu_scale(1 << 20, 256 << 10);
  unsigned char *payload = malloc(n);
  REQUIRE(payload != NULL);
  for (size_t i = 0; i < n; i++) payload[i] = (unsigned char)(i * 7 + i / 251);
  prec_t rec;
  rec_init(&rec, "echo");
  REQUIRE_OK(spawn(r, &rec, "cat", ARGV("cat"), NULL));
  CHECK_OK(w_write(rec.p, 0, payload, n));
  CHECK_OK(w_close(rec.p, 0));
  CHECK_EQ(rec.seq, 0); /* nothing inside the calls */
  CHECK_RC(w_write(rec.p, 0, "x", 1), REACTOR_E_CLOSED); /* closing */
  CHECK_OK(w_close(rec.p, 0));                          /* again: no effect */
  WAIT_UNTIL(r, rec.ended, 15);
  CHECK_EQ(rec.out[1].n, n);
  CHECK(rec.out[1].n == n && memcmp(rec.out[1].d, payload, n) == 0);
  CHECK_EQ(rec.out[2].n, 0);
  LIFE(&rec, REACTOR_OK, 0, 0, 0, 1, 2);
  CHECK(strncmp(rec.log, "M D1", 4) == 0);
  rec_free(&rec);
  free(payload);
}

/* ---- exit codes and signals --------------------------------------------------------------- */

static void test_exit_codes(reactor_t *r) {
  SECTION("exit codes and signals");
  prec_t e0, e3, e255, term, killed, rtmax;
  rec_init(&e0, "exit0");
  rec_init(&e3, "exit3");
  rec_init(&e255, "exit255");
  rec_init(&term, "sigterm");
  rec_init(&killed, "sigkill-outside");
  rec_init(&rtmax, "sigrtmax");
  REQUIRE_OK(spawn(r, &e0, "/bin/sh", ARGV("sh", "-c", "exit 0"), NULL));
  REQUIRE_OK(spawn(r, &e3, "sh", ARGV("sh", "-c", "exit 3"), NULL));
  reactor_spawn_options_t fork_opts = opts_default();
  force_fork_path(&fork_opts);
  REQUIRE_OK(spawn(r, &e255, "sh", ARGV("sh", "-c", "exit 255"), &fork_opts));
  REQUIRE_OK(spawn(r, &term, "sleep", ARGV("sleep", "30"), NULL));
  REQUIRE_OK(spawn(r, &killed, "sleep", ARGV("sleep", "30"), NULL));
  REQUIRE_OK(spawn(r, &rtmax, "sleep", ARGV("sleep", "30"), NULL));
  CHECK_OK(w_signal(rtmax.p, SIGCONT)); /* harmless, valid */
  /* NSIG-1: valid, and fatal by default (valgrind keeps the top signal for itself) */
  int top = tu_valgrind() ? SIGKILL : SIGRTMAX;
  CHECK_OK(w_signal(rtmax.p, top));
  int bad[] = {0, -1, 32, 33, NSIG, 1000, INT_MIN};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    CHECK_RC(w_signal(term.p, bad[i]), REACTOR_E_INVALID);
  CHECK_OK(w_signal(term.p, SIGTERM));
  CHECK(kill(killed.pid, SIGKILL) == 0);
  WAIT_UNTIL(r,
             e0.ended && e3.ended && e255.ended && term.ended && killed.ended && rtmax.ended,
             10);
  LIFE(&e0, REACTOR_OK, 0, 0, 0, 1, 2);
  LIFE(&e3, REACTOR_E_PROCESS_TERMINATED, 3, 0, 0, 1, 2);
  LIFE(&e255, REACTOR_E_PROCESS_TERMINATED, 255, 0, 0, 1, 2);
  LIFE(&term, REACTOR_E_PROCESS_TERMINATED, -1, SIGTERM, 0, 1, 2);
  LIFE(&killed, REACTOR_E_PROCESS_TERMINATED, -1, SIGKILL, 0, 1, 2);
  LIFE(&rtmax, REACTOR_E_PROCESS_TERMINATED, -1, top, 0, 1, 2);
  rec_free(&rtmax);
  rec_free(&e0);
  rec_free(&e3);
  rec_free(&e255);
  rec_free(&term);
  rec_free(&killed);
}

/* ---- a grandchild holds the pipes ----------------------------------------------------------- */

static void test_grandchild(reactor_t *r) {
  SECTION("process_exited with pipes still open (grandchild), process_ended after they close");
  prec_t rec;
  rec_init(&rec, "grandchild");
  /* the grandchild outlives the shell by far more than the reactor needs to see the exit */
  REQUIRE_OK(spawn(r, &rec, "sh",
                   ARGV("sh", "-c", tu_valgrind() ? "sleep 2 & exit 0" : "sleep 0.5 & exit 0"),
                   NULL));
  WAIT_UNTIL(r, rec.exited, 5);
  CHECK_EQ(rec.ended, 0);
  CHECK_EQ(rec.lost[1], 0);
  CHECK_EQ(rec.lost[2], 0);
  CHECK(w_pid(rec.p) == rec.pid); /* > 0 until process_ended */
  CHECK_RC(w_signal(rec.p, SIGTERM), REACTOR_E_PROCESS_EXITED);
  CHECK_RC(w_signal(rec.p, 33), REACTOR_E_INVALID);
  WAIT_UNTIL(r, rec.ended, 5);
  CHECK(rec.t_ended - rec.t_exited > 0.25);
  CHECK_EQ(rec.lost_exited[1], 1);
  CHECK_EQ(rec.lost_exited[2], 1);
  LIFE(&rec, REACTOR_OK, 0, 0, 0, 1, 2);
  rec_free(&rec);
}

/* ---- env, argv[0], PATH, cwd ----------------------------------------------------------------- */

static const char *LIST_FDS =
    "f=0; while [ $f -le 75 ]; do [ -e /proc/$$/fd/$f ] && echo $f; f=$((f+1)); done; exit 0";

static void test_env_argv_cwd(reactor_t *r) {
  SECTION("env, argv[0], PATH search, cwd, default fds");
  prec_t d, ex, inh, empty, a0, fds, found, pwd, pwd_fork, rel;
  rec_init(&d, "env-default");
  rec_init(&ex, "env-explicit");
  rec_init(&inh, "env-inherit");
  rec_init(&empty, "env-empty-list");
  rec_init(&a0, "argv0");
  rec_init(&fds, "default-fds");
  rec_init(&found, "path-search");
  rec_init(&pwd, "cwd");
  rec_init(&pwd_fork, "cwd-fork");
  rec_init(&rel, "cwd-relative-program");

  REQUIRE_OK(spawn(r, &d, "env", ARGV("env"), NULL));
  reactor_spawn_options_t o = opts_default();
  const char *const env[] = {"A=1", "B=two words", NULL};
  o.env = env;
  REQUIRE_OK(spawn(r, &ex, "env", ARGV("env"), &o));
  o = opts_default();
  const char *const none[] = {NULL};
  o.env = none;
  REQUIRE_OK(spawn(r, &empty, "/usr/bin/env", ARGV("env"), &o));
  setenv("LIBREACTOR_PROC_TEST", "inherited-42", 1);
  o = opts_default();
  o.inherit_env = 1;
  REQUIRE_OK(spawn(r, &inh, "env", ARGV("env"), &o));
  unsetenv("LIBREACTOR_PROC_TEST");
  o.env = env; /* with inherit_env */
  prec_t bad;
  rec_init(&bad, "env-and-inherit");
  check_refused(r, &bad, spawn(r, &bad, "env", ARGV("env"), &o), REACTOR_E_INVALID, __LINE__);

  REQUIRE_OK(spawn(r, &a0, "/bin/sh", ARGV("my-argv0", "-c", "echo \"$0\""), NULL));
  REQUIRE_OK(spawn(r, &fds, "sh", ARGV("sh", "-c", LIST_FDS), NULL));

  /* PATH search in the parent's PATH (the child's environment is empty) */
  char path[PATH_MAX + 64];
  snprintf(path, sizeof path, "%s/lrtest-found", tmpdir);
  write_file(path, "#!/bin/sh\necho found-it\n", 0755);
  const char *old = getenv("PATH");
  char *saved = old ? strdup(old) : NULL;
  char newpath[PATH_MAX * 2];
  snprintf(newpath, sizeof newpath, "%s:%s", tmpdir, saved ? saved : "/usr/bin:/bin");
  setenv("PATH", newpath, 1);
  REQUIRE_OK(spawn(r, &found, "lrtest-found", ARGV("lrtest-found"), NULL));
  if (saved) {
    setenv("PATH", saved, 1);
    free(saved);
  } else {
    unsetenv("PATH");
  }

  /* cwd (both spawn paths) and a relative program resolved after the chdir */
  o = opts_default();
  o.cwd = tmpdir;
  REQUIRE_OK(spawn(r, &pwd, "/bin/pwd", ARGV("pwd"), &o));
  force_fork_path(&o);
  REQUIRE_OK(spawn(r, &pwd_fork, "pwd", ARGV("pwd"), &o));
  snprintf(path, sizeof path, "%s/rel.sh", tmpdir);
  write_file(path, "#!/bin/sh\necho rel-ok\n", 0755);
  o = opts_default();
  o.cwd = tmpdir;
  REQUIRE_OK(spawn(r, &rel, "./rel.sh", ARGV("rel.sh"), &o));

  prec_t *all[] = {&d, &ex, &inh, &empty, &a0, &fds, &found, &pwd, &pwd_fork, &rel};
  size_t nall = sizeof all / sizeof all[0];
  for (size_t i = 0; i < nall; i++) WAIT_UNTIL(r, all[i]->ended, 10);
  for (size_t i = 0; i < nall; i++) {
    LIFE(all[i], REACTOR_OK, 0, 0, 0, 1, 2);
    CHECK_EQ(all[i]->out[2].n, 0);
  }
  CHECK(out_is(&d, 1, ""));
  CHECK(out_is(&empty, 1, ""));
  CHECK(out_is(&ex, 1, "A=1\nB=two words\n"));
  CHECK(out_has(&inh, 1, "LIBREACTOR_PROC_TEST=inherited-42\n"));
  CHECK(out_is(&a0, 1, "my-argv0\n"));
  CHECK(out_is(&fds, 1, "0\n1\n2\n"));
  CHECK(out_is(&found, 1, "found-it\n"));
  char want[PATH_MAX + 2];
  snprintf(want, sizeof want, "%s\n", tmpdir);
  CHECK(out_is(&pwd, 1, want));
  CHECK(out_is(&pwd_fork, 1, want));
  CHECK(out_is(&rel, 1, "rel-ok\n"));
  for (size_t i = 0; i < nall; i++) rec_free(all[i]);
}

/* ---- child-fd maps -------------------------------------------------------------------------- */

static const char *MAP_SCRIPT =
    "printf to0 >&0; printf to1; printf to5 >&5; printf to3 >&3; read line <&4; "
    "printf \"got:%s\" \"$line\" >&3; printf to8 >&8; "
    "f=0; while [ $f -le 75 ]; do [ -e /proc/$$/fd/$f ] && echo $f >&7; f=$((f+1)); done; "
    "[ /proc/$$/fd/70 -ef /proc/$$/fd/8 ] && echo same >&7; exit 0";

static void send_hello(prec_t *rec) {
  CHECK_OK(w_write(rec->p, 4, "hello\n", 6));
  CHECK_OK(w_close(rec->p, 4));
}

static int fd_open(int fd) { return fcntl(fd, F_GETFD) >= 0; }

/* swap: child 0 <- parent 1, child 1 <- parent 0 (two inherited fds trade places);
 * otherwise: child 0 <- parent 1 and a READ pipe at child 1 (a pipe's target is an inherited
 * fd's source). Both: child 5 <- parent 0 (one source twice), READ 3 and 7, WRITE 4, child 8 <-
 * Z (and child 70 <- Z on the fork path). */
static void run_map(reactor_t *r, int swap, int fork_path) {
  char name[64];
  snprintf(name, sizeof name, "map-%s-%s", swap ? "swap" : "read-collide",
           fork_path ? "fork" : "posix_spawn");
  printf("   %s\n", name);
  int x[2], y[2], z[2];
  REQUIRE(pipe2(x, O_CLOEXEC) == 0);
  REQUIRE(pipe2(y, O_CLOEXEC) == 0);
  REQUIRE(pipe2(z, O_CLOEXEC) == 0);
  reactor_child_fd_t map[9];
  size_t n = 0;
  map[n++] = (reactor_child_fd_t){.child_fd = 0, .kind = REACTOR_CHILD_FD_INHERIT, .parent_fd = 1};
  if (swap)
    map[n++] = (reactor_child_fd_t){.child_fd = 1, .kind = REACTOR_CHILD_FD_INHERIT, .parent_fd = 0};
  else
    map[n++] = (reactor_child_fd_t){.child_fd = 1, .kind = REACTOR_CHILD_FD_READ, .parent_fd = -1};
  map[n++] = (reactor_child_fd_t){.child_fd = 5, .kind = REACTOR_CHILD_FD_INHERIT, .parent_fd = 0};
  map[n++] = (reactor_child_fd_t){.child_fd = 3, .kind = REACTOR_CHILD_FD_READ, .parent_fd = -1};
  map[n++] = (reactor_child_fd_t){.child_fd = 4, .kind = REACTOR_CHILD_FD_WRITE, .parent_fd = -1};
  map[n++] = (reactor_child_fd_t){.child_fd = 7, .kind = REACTOR_CHILD_FD_READ, .parent_fd = -1};
  map[n++] = (reactor_child_fd_t){.child_fd = 8, .kind = REACTOR_CHILD_FD_INHERIT, .parent_fd = z[1]};
  if (fork_path)
    map[n++] =
        (reactor_child_fd_t){.child_fd = 70, .kind = REACTOR_CHILD_FD_INHERIT, .parent_fd = z[1]};
  reactor_spawn_options_t o = opts_default();
  o.child_fds = map;
  o.child_fd_count = n;
  if (fork_path) force_fork_path(&o);

  prec_t rec;
  rec_init(&rec, name);
  rec.wfd = 4;
  rec.on_made = send_hello;
  /* parent fds 0 and 1 become X and Y's write ends for the spawn */
  fflush(stdout);
  int had0 = fd_open(0), had1 = fd_open(1);
  int s0 = had0 ? fcntl(0, F_DUPFD_CLOEXEC, 10) : -1;
  int s1 = had1 ? fcntl(1, F_DUPFD_CLOEXEC, 10) : -1;
  REQUIRE(dup2(x[1], 0) == 0 && dup2(y[1], 1) == 1);
  int rc = spawn(r, &rec, "sh", ARGV("sh", "-c", MAP_SCRIPT), &o);
  if (had0) dup2(s0, 0); else close(0);
  if (had1) dup2(s1, 1); else close(1);
  if (s0 >= 0) close(s0);
  if (s1 >= 0) close(s1);
  close(x[1]);
  close(y[1]);
  close(z[1]);
  CHECK_OK(rc);
  if (rc != REACTOR_OK) {
    close(x[0]);
    close(y[0]);
    close(z[0]);
    return;
  }
  /* only pipes of this child count */
  CHECK_RC(w_write(rec.p, 0, "x", 1), REACTOR_E_INVALID); /* inherited */
  CHECK_RC(w_write(rec.p, 3, "x", 1), REACTOR_E_INVALID); /* READ */
  CHECK_RC(w_write(rec.p, 5, "x", 1), REACTOR_E_INVALID);
  CHECK_RC(w_close(rec.p, 0), REACTOR_E_INVALID);
  CHECK_RC(w_close(rec.p, 5), REACTOR_E_INVALID);
  CHECK_RC(w_close(rec.p, 2), REACTOR_E_INVALID);
  WAIT_UNTIL(r, rec.ended, 10);
  if (swap)
    LIFE(&rec, REACTOR_OK, 0, 0, 3, 4, 7);
  else
    LIFE(&rec, REACTOR_OK, 0, 0, 1, 3, 4, 7);
  char bx[256], by[256], bz[256];
  read_all(x[0], bx, sizeof bx);
  read_all(y[0], by, sizeof by);
  read_all(z[0], bz, sizeof bz);
  close(x[0]);
  close(y[0]);
  close(z[0]);
  CHECK(strcmp(by, "to0") == 0);
  CHECK(strcmp(bx, swap ? "to1to5" : "to5") == 0);
  CHECK(strcmp(bz, "to8") == 0);
  if (strcmp(by, "to0") || strcmp(bx, swap ? "to1to5" : "to5") || strcmp(bz, "to8"))
    fprintf(stderr, "  %s: X \"%s\" Y \"%s\" Z \"%s\"\n", name, bx, by, bz);
  if (!swap) CHECK(out_is(&rec, 1, "to1"));
  CHECK(out_is(&rec, 3, "to3got:hello"));
  CHECK(out_is(&rec, 7, fork_path ? "0\n1\n3\n4\n5\n7\n8\n70\nsame\n" : "0\n1\n3\n4\n5\n7\n8\n"));
  rec_free(&rec);
}

static void test_fd_maps(reactor_t *r) {
  SECTION("child-fd maps with conflicts; only the mapped fds are open in the child");
  for (int fork_path = 0; fork_path < 2; fork_path++)
    for (int swap = 0; swap < 2; swap++) run_map(r, swap, fork_path);
}

/* ---- the child's signal state ----------------------------------------------------------------- */

static unsigned long long status_mask(const prec_t *rec, const char *key) {
  const char *s = rec->out[1].d;
  if (!s) return ~0ULL;
  const char *k = strstr(s, key);
  if (!k) return ~0ULL;
  return strtoull(k + strlen(key), NULL, 16);
}

static void test_signal_state(reactor_t *r) {
  SECTION("the child's signal dispositions are default and its mask empty");
  struct sigaction ign, old_int, old_term;
  memset(&ign, 0, sizeof ign);
  ign.sa_handler = SIG_IGN;
  sigemptyset(&ign.sa_mask);
  REQUIRE(sigaction(SIGINT, &ign, &old_int) == 0);
  REQUIRE(sigaction(SIGTERM, &ign, &old_term) == 0);
  sigset_t block, old_mask;
  sigemptyset(&block);
  sigaddset(&block, SIGUSR1);
  sigaddset(&block, SIGUSR2);
  REQUIRE(pthread_sigmask(SIG_BLOCK, &block, &old_mask) == 0);

  prec_t fast, forked;
  rec_init(&fast, "sigstate-posix_spawn");
  rec_init(&forked, "sigstate-fork");
  REQUIRE_OK(spawn(r, &fast, "cat", ARGV("cat", "/proc/self/status"), NULL));
  reactor_spawn_options_t o = opts_default();
  force_fork_path(&o);
  REQUIRE_OK(spawn(r, &forked, "cat", ARGV("cat", "/proc/self/status"), &o));
  WAIT_UNTIL(r, fast.ended && forked.ended, 10);

  REQUIRE(pthread_sigmask(SIG_SETMASK, &old_mask, NULL) == 0);
  REQUIRE(sigaction(SIGINT, &old_int, NULL) == 0);
  REQUIRE(sigaction(SIGTERM, &old_term, NULL) == 0);

  prec_t *both[] = {&fast, &forked};
  for (int i = 0; i < 2; i++) {
    LIFE(both[i], REACTOR_OK, 0, 0, 0, 1, 2);
    unsigned long long ig = status_mask(both[i], "SigIgn:"), bl = status_mask(both[i], "SigBlk:");
    if (ig || bl) fprintf(stderr, "  %s: SigIgn %llx SigBlk %llx\n", both[i]->name, ig, bl);
    CHECK_EQ(ig, 0);
    CHECK_EQ(bl, 0);
    rec_free(both[i]);
  }
}

/* ---- pty ---------------------------------------------------------------------------------- */

static void test_pty(reactor_t *r) {
  SECTION("pty");
  prec_t t;
  rec_init(&t, "pty");
  reactor_spawn_options_t o = opts_default();
  o.use_pty = 1;
  REQUIRE_OK(spawn(r, &t, "sh",
                   ARGV("sh", "-c",
                        "test -t 0 && test -t 1 && test -t 2 && echo tty; read x; "
                        "echo \"got:$x\"; exit 4"),
                   &o));
  CHECK_EQ(getsid(t.pid), t.pid); /* a session of its own (the pty is its controlling terminal) */
  CHECK_RC(w_write(t.p, 1, "x", 1), REACTOR_E_INVALID);
  CHECK_RC(w_write(t.p, 2, "x", 1), REACTOR_E_INVALID);
  CHECK_RC(w_write(t.p, 3, "x", 1), REACTOR_E_INVALID);
  CHECK_RC(w_close(t.p, 3), REACTOR_E_INVALID);
  CHECK_OK(w_write(t.p, 0, "hi\n", 3));
  WAIT_UNTIL(r, t.ended, 10);
  LIFE(&t, REACTOR_E_PROCESS_TERMINATED, 4, 0, 1);
  CHECK(out_has(&t, 1, "tty"));
  CHECK(out_has(&t, 1, "got:hi"));
  for (int fd = 0; fd < NFD; fd++)
    if (fd != 1) CHECK_EQ(t.out[fd].n, 0);
  rec_free(&t);

  /* close_child_fd(2) closes the pty (like lose_connection) */
  prec_t c;
  rec_init(&c, "pty-close");
  REQUIRE_OK(spawn(r, &c, "sleep", ARGV("sleep", "5"), &o));
  WAIT_UNTIL(r, c.made, 5);
  CHECK_OK(w_close(c.p, 2));
  CHECK_EQ(c.lost[1], 0); /* on a later pass */
  CHECK_RC(w_write(c.p, 0, "x", 1), REACTOR_E_CLOSED);
  CHECK_OK(w_close(c.p, 0)); /* already closed */
  CHECK_OK(w_lose(c.p));
  WAIT_UNTIL(r, c.lost[1], 5);
  double deadline = tu_now() + scale_s(2);
  while (!c.exited && tu_now() < deadline) CHECK_OK(reactor_iterate(r, 0.05));
  int hung_up = c.exited;
  if (!c.exited) CHECK_OK(w_signal(c.p, SIGKILL));
  WAIT_UNTIL(r, c.ended, 5);
  if (hung_up)
    LIFE(&c, REACTOR_E_PROCESS_TERMINATED, -1, SIGHUP, 1);
  else
    LIFE(&c, REACTOR_E_PROCESS_TERMINATED, -1, SIGKILL, 1);
  rec_free(&c);

  /* lose_connection on a pty: one child_connection_lost(1) */
  prec_t l;
  rec_init(&l, "pty-lose-connection");
  REQUIRE_OK(spawn(r, &l, "sleep", ARGV("sleep", "5"), &o));
  CHECK_OK(w_lose(l.p));
  CHECK_EQ(l.seq, 0);
  CHECK_OK(w_close(l.p, 1));
  WAIT_UNTIL(r, l.lost[1], 5);
  deadline = tu_now() + scale_s(2);
  while (!l.exited && tu_now() < deadline) CHECK_OK(reactor_iterate(r, 0.05));
  hung_up = l.exited;
  if (!l.exited) CHECK_OK(w_signal(l.p, SIGKILL));
  WAIT_UNTIL(r, l.ended, 5);
  if (hung_up)
    LIFE(&l, REACTOR_E_PROCESS_TERMINATED, -1, SIGHUP, 1);
  else
    LIFE(&l, REACTOR_E_PROCESS_TERMINATED, -1, SIGKILL, 1);
  rec_free(&l);

  /* use_pty with a child-fd map */
  reactor_child_fd_t map[] = {{.child_fd = 1, .kind = REACTOR_CHILD_FD_READ, .parent_fd = -1}};
  o.child_fds = map;
  o.child_fd_count = 1;
  prec_t bad;
  rec_init(&bad, "pty-with-map");
  check_refused(r, &bad, spawn(r, &bad, "true", ARGV("true"), &o), REACTOR_E_INVALID, __LINE__);
}

/* ---- internal fds; blocking ends in the child ------------------------------------------------ */

/* The "flags:" values (octal) of /proc/<pid>/fdinfo/<n> texts in a child's output. */
static int count_flags(const prec_t *rec, int *nonblocking) {
  const char *s = rec->out[1].d;
  int n = 0;
  *nonblocking = 0;
  while (s && (s = strstr(s, "flags:")) != NULL) {
    s += 6;
    unsigned long flags = strtoul(s, NULL, 8);
    if (flags & O_NONBLOCK) (*nonblocking)++;
    n++;
  }
  return n;
}

static void count_reader(reactor_t *r, int fd, uint32_t events, void *ud) {
  (void)r;
  (void)fd;
  (void)events;
  (void)ud;
}

static void test_internal_fds(reactor_t *r) {
  SECTION("pipes, pty masters and pidfds are internal fds; the child's ends are blocking");
  int before[256];
  size_t nbefore = 0;
  for (int fd = 0; fd < 256; fd++)
    if (fd_open(fd) && nbefore < 256) before[nbefore++] = fd;
  prec_t a, t, m;
  rec_init(&a, "fdinfo-default");
  rec_init(&t, "fdinfo-pty");
  rec_init(&m, "fdinfo-map");
  m.wfd = 4;
  REQUIRE_OK(spawn(r, &a, "sh",
                   ARGV("sh", "-c",
                        "read x; cat /proc/self/fdinfo/0 /proc/self/fdinfo/1 /proc/self/fdinfo/2"),
                   NULL));
  reactor_spawn_options_t o = opts_default();
  o.use_pty = 1;
  REQUIRE_OK(spawn(r, &t, "sh",
                   ARGV("sh", "-c",
                        "read x; cat /proc/self/fdinfo/0 /proc/self/fdinfo/1 /proc/self/fdinfo/2"),
                   &o));
  reactor_child_fd_t map[] = {
      {.child_fd = 1, .kind = REACTOR_CHILD_FD_READ, .parent_fd = -1},
      {.child_fd = 3, .kind = REACTOR_CHILD_FD_READ, .parent_fd = -1},
      {.child_fd = 4, .kind = REACTOR_CHILD_FD_WRITE, .parent_fd = -1},
  };
  o = opts_default();
  o.child_fds = map;
  o.child_fd_count = 3;
  REQUIRE_OK(spawn(r, &m, "sh",
                   ARGV("sh", "-c",
                        "read x <&4; cat /proc/self/fdinfo/1 /proc/self/fdinfo/3 "
                        "/proc/self/fdinfo/4"),
                   &o));
  /* every new fd of this process is the library's: not for add_reader/add_writer, never listed.
     Not on the kqueue emulation of Linux: libkqueue opens a pidfd of its own per EVFILT_PROC watch
     (a real kqueue has no fd for it), which is not the library's. */
  int emulated_kqueue = 0;
#ifdef __linux__
  emulated_kqueue = strcmp(reactor_backend_name(r), "kqueue") == 0;
#endif
  if (emulated_kqueue) printf("   emulated kqueue: libkqueue's own pidfds are not checked\n");
  int internal = 0;
  for (int fd = 0; fd < 256 && !emulated_kqueue; fd++) {
    if (!fd_open(fd) || tu_contains(before, nbefore, fd)) continue;
    internal++;
    CHECK_RC(reactor_add_reader(r, fd, count_reader, NULL, NULL), REACTOR_E_INVALID);
    CHECK_RC(reactor_add_writer(r, fd, count_reader, NULL, NULL), REACTOR_E_INVALID);
  }
  CHECK(internal >= 7 || emulated_kqueue); /* 3 + 1 + 3 pipes (and pidfds) */
  size_t count = 99;
  CHECK_OK(reactor_get_readers(r, NULL, 0, &count));
  CHECK_EQ(count, 0);
  CHECK_OK(reactor_get_writers(r, NULL, 0, &count));
  CHECK_EQ(count, 0);
  CHECK_OK(reactor_remove_all(r, NULL, 0, &count));
  CHECK_EQ(count, 0);
  /* the children still work */
  CHECK_OK(w_write(a.p, 0, "go\n", 3));
  CHECK_OK(w_write(t.p, 0, "go\n", 3));
  CHECK_OK(w_write(m.p, 4, "go\n", 3));
  WAIT_UNTIL(r, a.ended && t.ended && m.ended, 10);
  LIFE(&a, REACTOR_OK, 0, 0, 0, 1, 2);
  LIFE(&t, REACTOR_OK, 0, 0, 1);
  LIFE(&m, REACTOR_OK, 0, 0, 1, 3, 4);
  prec_t *all[] = {&a, &t, &m};
  for (int i = 0; i < 3; i++) {
    int nb = 0;
    int n = count_flags(all[i], &nb);
    if (n != 3 || nb != 0)
      fprintf(stderr, "  %s: %d fdinfo flags, %d non-blocking:\n%s\n", all[i]->name, n, nb,
              all[i]->out[1].d ? all[i]->out[1].d : "");
    CHECK_EQ(n, 3);
    CHECK_EQ(nb, 0);
    rec_free(all[i]);
  }
}

/* ---- exec failures -------------------------------------------------------------------------- */

static void no_children_left(const char *what) {
  int z = 0;
  int n = count_children(&z);
  if (n != 0) fprintf(stderr, "  after %s: %d children (%d zombies)\n", what, n, z);
  CHECK_EQ(n, 0);
  if (n == 0) { /* (never with a library child around: waitpid(-1) would take it) */
    errno = 0;
    CHECK_EQ(waitpid(-1, NULL, WNOHANG), -1);
    CHECK_EQ(errno, ECHILD);
  }
}

static void test_exec_failures(reactor_t *r) {
  SECTION("exec failures: REACTOR_E_OS(errno), nothing called or released, no zombie");
  int n0 = count_children(NULL);
  CHECK_EQ(n0, 0);
  if (n0 != 0) return;
  char noexec[PATH_MAX + 32];
  snprintf(noexec, sizeof noexec, "%s/lrtest-noexec", tmpdir);
  write_file(noexec, "#!/bin/sh\necho never\n", 0644);
  const char *old = getenv("PATH");
  char *saved = old ? strdup(old) : NULL;
  char newpath[PATH_MAX * 2];
  snprintf(newpath, sizeof newpath, "%s:%s", tmpdir, saved ? saved : "/usr/bin:/bin");
  setenv("PATH", newpath, 1);

  struct {
    const char *what, *exe, *cwd;
    int err;
  } cases[] = {
      {"missing bare name", "lrtest-no-such-program", NULL, ENOENT},
      {"missing absolute path", "/nonexistent-lrtest-dir/prog", NULL, ENOENT},
      {"not executable (path)", noexec, NULL, EACCES},
      {"not executable (PATH search)", "lrtest-noexec", NULL, EACCES},
      {"a directory", "/tmp", NULL, EACCES},
      {"missing cwd", "true", "/nonexistent-lrtest-dir", ENOENT},
      {"./missing after chdir", "./lrtest-missing", tmpdir, ENOENT},
      {"cwd is a file", "true", noexec, ENOTDIR},
  };
  for (int fork_path = 0; fork_path < 2; fork_path++) {
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
      reactor_spawn_options_t o = opts_default();
      o.cwd = cases[i].cwd;
      if (fork_path) force_fork_path(&o);
      prec_t rec;
      rec_init(&rec, cases[i].what);
      int rc = spawn(r, &rec, cases[i].exe, ARGV("prog"), &o);
      if (rc != REACTOR_E_OS(cases[i].err))
        fprintf(stderr, "  case \"%s\" (%s)\n", cases[i].what, fork_path ? "fork" : "posix_spawn");
      check_refused(r, &rec, rc, REACTOR_E_OS(cases[i].err), __LINE__);
      CHECK_EQ(reactor_status_errno(rc), cases[i].err);
      if (rc == REACTOR_OK) { /* unexpected: let it end */
        WAIT_UNTIL(r, rec.ended, 5);
      }
      no_children_left(cases[i].what);
      rec_free(&rec);
    }
  }
  if (saved) {
    setenv("PATH", saved, 1);
    free(saved);
  } else {
    unsetenv("PATH");
  }
}

/* ---- many short-lived children --------------------------------------------------------------- */

static void test_many(reactor_t *r) {
  long total = tu_scale(200, 20), batch = 20;
  char title[96];
  snprintf(title, sizeof title, "%ld short-lived children: no zombie, no fd leaked", total);
  SECTION(title);
  int fds_before = count_fds();
  prec_t *recs = calloc((size_t)batch, sizeof *recs);
  REQUIRE(recs != NULL);
  for (long done = 0; done < total; done += batch) {
    reactor_spawn_options_t o = opts_default();
    if ((done / batch) % 2) force_fork_path(&o);
    for (long i = 0; i < batch; i++) {
      rec_init(&recs[i], "short");
      REQUIRE_OK(spawn(r, &recs[i], "true", ARGV("true"), &o));
    }
    for (long i = 0; i < batch; i++) WAIT_UNTIL(r, recs[i].ended, 10);
    for (long i = 0; i < batch; i++) {
      LIFE(&recs[i], REACTOR_OK, 0, 0, 0, 1, 2);
      rec_free(&recs[i]);
    }
  }
  free(recs);
  int z = 0;
  CHECK_EQ(count_children(&z), 0);
  CHECK_EQ(z, 0);
  CHECK_EQ(count_fds(), fds_before);
}

/* ---- exits before run ------------------------------------------------------------------------ */

static void stop_on_end(prec_t *rec) { CHECK_OK(reactor_stop(rec->r)); }

static void test_exit_before_run(void) {
  SECTION("a child that exits before run is reaped once the loop runs; spawn after stop → CLOSED");
  reactor_t *r = tu_new_reactor();
  prec_t rec;
  rec_init(&rec, "before-run");
  rec.on_ended = stop_on_end;
  REQUIRE_OK(spawn(r, &rec, "true", ARGV("true"), NULL));
  double deadline = tu_now() + scale_s(3);
  while (proc_state(rec.pid, NULL) != 'Z' && tu_now() < deadline) tu_sleep_ms(5);
  CHECK_EQ(proc_state(rec.pid, NULL), 'Z');
  CHECK_EQ(rec.seq, 0);
  CHECK_OK(reactor_call_later(r, scale_s(5), tu_stop_cb, NULL, NULL, NULL)); /* fallback */
  CHECK_OK(reactor_run(r));
  LIFE(&rec, REACTOR_OK, 0, 0, 0, 1, 2);
  prec_t late;
  rec_init(&late, "after-stop");
  check_refused(r, &late, spawn(r, &late, "true", ARGV("true"), NULL), REACTOR_E_CLOSED, __LINE__);
  CHECK_OK(reactor_free(r));
  CHECK_EQ(atomic_load(&late.releases), 0);
  rec_free(&rec);
}

/* ---- foreign children -------------------------------------------------------------------- */

static void test_foreign_child(reactor_t *r) {
  SECTION("a child forked by the host is never reaped by the library");
  fflush(stdout);
  fflush(stderr);
  pid_t f = fork();
  REQUIRE(f >= 0);
  if (f == 0) { /* exec, so no leak check of a valgrind'ed copy runs at its exit */
    execl("/bin/sh", "sh", "-c", "exit 7", (char *)NULL);
    _exit(7);
  }
  double deadline = tu_now() + scale_s(3);
  while (proc_state(f, NULL) != 'Z' && tu_now() < deadline) tu_sleep_ms(5);
  prec_t a, b;
  rec_init(&a, "with-foreign-1");
  rec_init(&b, "with-foreign-2");
  REQUIRE_OK(spawn(r, &a, "true", ARGV("true"), NULL));
  WAIT_UNTIL(r, a.ended, 5);
  REQUIRE_OK(spawn(r, &b, "sh", ARGV("sh", "-c", "exit 2"), NULL));
  WAIT_UNTIL(r, b.ended, 5);
  for (int i = 0; i < 3; i++) CHECK_OK(reactor_iterate(r, 0.01));
  LIFE(&a, REACTOR_OK, 0, 0, 0, 1, 2);
  LIFE(&b, REACTOR_E_PROCESS_TERMINATED, 2, 0, 0, 1, 2);
  CHECK_EQ(proc_state(f, NULL), 'Z');
  int st = 0;
  CHECK_EQ(waitpid(f, &st, 0), f);
  CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 7);
  rec_free(&a);
  rec_free(&b);
}

/* ---- SIGCHLD and EINTR ------------------------------------------------------------------------- */

typedef struct reader {
  int fd;
  atomic_int ready;
  ssize_t n;
  int err;
  char buf[16];
} reader_t;

static void *reader_main(void *arg) {
  reader_t *rd = arg;
  atomic_store(&rd->ready, 1);
  errno = 0;
  rd->n = read(rd->fd, rd->buf, sizeof rd->buf);
  rd->err = errno;
  return NULL;
}

static void test_no_eintr(reactor_t *r) {
  SECTION("SIGCHLD never makes a blocking read() in another thread fail with EINTR");
  int p[2];
  REQUIRE(pipe2(p, O_CLOEXEC) == 0);
  reader_t rd = {.fd = p[0]};
  /* SIGCHLD blocked in this thread only (after the reader started, which keeps it unblocked), so
   * the kernel delivers it to the reader while it sits in read() */
  pthread_t t;
  REQUIRE(pthread_create(&t, NULL, reader_main, &rd) == 0);
  sigset_t chld, old;
  sigemptyset(&chld);
  sigaddset(&chld, SIGCHLD);
  REQUIRE(pthread_sigmask(SIG_BLOCK, &chld, &old) == 0);
  while (!atomic_load(&rd.ready)) tu_sleep_ms(1);
  tu_sleep_ms(30);
  prec_t recs[5];
  for (int i = 0; i < 5; i++) {
    rec_init(&recs[i], "eintr");
    REQUIRE_OK(spawn(r, &recs[i], "true", ARGV("true"), NULL));
  }
  for (int i = 0; i < 5; i++) WAIT_UNTIL(r, recs[i].ended, 10);
  tu_sleep_ms(20);
  REQUIRE(write(p[1], "done", 4) == 4);
  pthread_join(t, NULL);
  REQUIRE(pthread_sigmask(SIG_SETMASK, &old, NULL) == 0);
  if (rd.n != 4) fprintf(stderr, "  read returned %zd (%s)\n", rd.n, strerror(rd.err));
  CHECK_EQ(rd.n, 4);
  CHECK(rd.n == 4 && memcmp(rd.buf, "done", 4) == 0);
  for (int i = 0; i < 5; i++) {
    LIFE(&recs[i], REACTOR_OK, 0, 0, 0, 1, 2);
    rec_free(&recs[i]);
  }
  tu_close_pair(p);
}

/* ---- write_to_child, close_child_fd, lose_connection ----------------------------------------- */

static void test_write_close(reactor_t *r) {
  SECTION("write_to_child and close_child_fd checks");
  prec_t a;
  rec_init(&a, "write-checks");
  REQUIRE_OK(spawn(r, &a, "sh", ARGV("sh", "-c", "cat; sleep 0.3"), NULL));
  CHECK_RC(w_write(a.p, 0, NULL, 5), REACTOR_E_INVALID);
  CHECK_RC(w_write(a.p, 7, NULL, 5), REACTOR_E_INVALID);
  CHECK_OK(w_write(a.p, 0, NULL, 0));
  CHECK_RC(w_write(a.p, 1, "x", 1), REACTOR_E_INVALID);
  CHECK_RC(w_write(a.p, 2, "x", 1), REACTOR_E_INVALID);
  CHECK_RC(w_write(a.p, 7, "x", 1), REACTOR_E_INVALID);
  CHECK_RC(w_write(a.p, -1, "x", 1), REACTOR_E_INVALID);
  CHECK_RC(w_write(a.p, 1, "x", 0), REACTOR_E_INVALID);
  CHECK_OK(w_write(a.p, 0, "x", 0));
  CHECK_OK(w_write(a.p, 0, "abc", 3));
  CHECK_RC(w_close(a.p, 7), REACTOR_E_INVALID);
  CHECK_RC(w_close(a.p, -1), REACTOR_E_INVALID);
  CHECK_RC(w_close(a.p, NFD + 1000), REACTOR_E_INVALID);
  WAIT_UNTIL(r, a.out[1].n == 3, 5);
  CHECK_OK(w_close(a.p, 0));
  CHECK_EQ(a.lost[0], 0); /* on a later pass */
  CHECK_OK(w_close(a.p, 0)); /* again: OK, no effect */
  CHECK_RC(w_write(a.p, 0, NULL, 1), REACTOR_E_INVALID);
  CHECK_RC(w_write(a.p, 1, "x", 1), REACTOR_E_INVALID);
  CHECK_RC(w_write(a.p, 0, "x", 1), REACTOR_E_CLOSED);
  CHECK_RC(w_write(a.p, 0, "x", 0), REACTOR_E_CLOSED);
  WAIT_UNTIL(r, a.lost[0], 5);
  CHECK_EQ(a.exited, 0); /* sleeps 0.3 s after cat */
  CHECK_OK(w_close(a.p, 0)); /* after the loss: OK, no effect */
  CHECK_RC(w_write(a.p, 0, "x", 1), REACTOR_E_CLOSED);
  WAIT_UNTIL(r, a.ended, 5);
  CHECK(out_is(&a, 1, "abc"));
  LIFE(&a, REACTOR_OK, 0, 0, 0, 1, 2);
  CHECK(strncmp(a.log, "M D1 L0", 7) == 0);
  rec_free(&a);

  SECTION("lose_connection closes 0, 2, 1 and only those");
  prec_t b;
  rec_init(&b, "lose-connection");
  REQUIRE_OK(spawn(r, &b, "sleep", ARGV("sleep", "5"), NULL));
  CHECK_OK(w_lose(b.p));
  CHECK_EQ(b.seq, 0);
  CHECK_RC(w_write(b.p, 0, "x", 1), REACTOR_E_CLOSED);
  CHECK_OK(w_lose(b.p));
  WAIT_UNTIL(r, b.lost[0] && b.lost[1] && b.lost[2], 5);
  CHECK(strcmp(b.log, "M L0 L2 L1") == 0);
  CHECK_EQ(b.exited, 0);
  CHECK_OK(w_lose(b.p));
  CHECK_OK(w_close(b.p, 1));
  CHECK_OK(w_signal(b.p, SIGKILL));
  WAIT_UNTIL(r, b.ended, 5);
  LIFE(&b, REACTOR_E_PROCESS_TERMINATED, -1, SIGKILL, 0, 1, 2);
  CHECK(strcmp(b.log, "M L0 L2 L1 X E R") == 0);
  rec_free(&b);

  prec_t c;
  rec_init(&c, "lose-connection-keeps-3");
  reactor_child_fd_t map[] = {
      {.child_fd = 0, .kind = REACTOR_CHILD_FD_WRITE, .parent_fd = -1},
      {.child_fd = 1, .kind = REACTOR_CHILD_FD_READ, .parent_fd = -1},
      {.child_fd = 3, .kind = REACTOR_CHILD_FD_READ, .parent_fd = -1},
  };
  reactor_spawn_options_t o = opts_default();
  o.child_fds = map;
  o.child_fd_count = 3;
  REQUIRE_OK(spawn(r, &c, "sh", ARGV("sh", "-c", "read x; echo \"three:$x\" >&3"), &o));
  CHECK_OK(w_lose(c.p));
  WAIT_UNTIL(r, c.ended, 5);
  LIFE(&c, REACTOR_OK, 0, 0, 0, 1, 3);
  CHECK(out_is(&c, 3, "three:\n"));
  CHECK(strncmp(c.log, "M L0 L1", 7) == 0);
  CHECK(c.lost_seq[3] > c.lost_seq[1]);
  rec_free(&c);
}

static int sigpipe_writes;

static void flood(prec_t *rec) {
  static char chunk[65536];
  int rc = w_write(rec->p, 0, chunk, sizeof chunk);
  CHECK(rc == REACTOR_OK || rc == REACTOR_E_CLOSED);
  if (rc == REACTOR_OK) sigpipe_writes++;
}

static void test_child_closes_stdin(reactor_t *r) {
  SECTION("a child closing its stdin; writing to a child that exits without reading (no SIGPIPE)");
  struct sigaction cur;
  REQUIRE(sigaction(SIGPIPE, NULL, &cur) == 0);
  CHECK(cur.sa_handler == SIG_DFL);
  prec_t a;
  rec_init(&a, "closes-stdin");
  REQUIRE_OK(spawn(r, &a, "sh",
                   ARGV("sh", "-c", tu_valgrind() ? "exec 0<&-; sleep 1.5" : "exec 0<&-; sleep 0.3"),
                   NULL));
  WAIT_UNTIL(r, a.lost[0], 5);
  CHECK_EQ(a.exited, 0);
  CHECK_RC(w_write(a.p, 0, "x", 1), REACTOR_E_CLOSED);
  WAIT_UNTIL(r, a.ended, 5);
  LIFE(&a, REACTOR_OK, 0, 0, 0, 1, 2);
  CHECK_EQ(a.lost_exited[0], 0);
  rec_free(&a);

  for (int fork_path = 0; fork_path < 2; fork_path++) {
    prec_t b;
    rec_init(&b, fork_path ? "no-sigpipe-fork" : "no-sigpipe");
    b.on_made = flood;
    reactor_spawn_options_t o = opts_default();
    if (fork_path) force_fork_path(&o);
    REQUIRE_OK(spawn(r, &b, "true", ARGV("true"), &o));
    static char big[1 << 20];
    CHECK_OK(w_write(b.p, 0, big, sizeof big));
    double deadline = tu_now() + scale_s(10);
    while (!b.ended && tu_now() < deadline) {
      if (!b.lost[0]) flood(&b);
      CHECK_OK(reactor_iterate(r, 0.01));
    }
    CHECK_EQ(b.ended, 1);
    LIFE(&b, REACTOR_OK, 0, 0, 0, 1, 2);
    rec_free(&b);
  }
}

/* ---- threads ----------------------------------------------------------------------------------- */

typedef struct foreign {
  reactor_t *r;
  reactor_process_t *p;
  int dead;
  int rc_pid, rc_write, rc_write_null, rc_write_bad, rc_close, rc_lose, rc_sig, rc_sig0, rc_spawn;
  int rc_madeup_pid, rc_madeup_sig;
  atomic_int spawn_releases;
} foreign_t;

static void *foreign_main(void *arg) {
  foreign_t *f = arg;
  f->rc_pid = reactor_process_pid(f->p);
  f->rc_write = reactor_process_write_to_child(f->p, 0, "x", 1);
  f->rc_write_null = reactor_process_write_to_child(f->p, 0, NULL, 5);
  f->rc_write_bad = reactor_process_write_to_child(f->p, 9, "x", 1);
  f->rc_close = reactor_process_close_child_fd(f->p, 0);
  f->rc_lose = reactor_process_lose_connection(f->p);
  f->rc_sig = reactor_process_signal(f->p, SIGKILL);
  f->rc_sig0 = reactor_process_signal(f->p, 0);
  if (!f->dead) {
    f->rc_spawn = reactor_spawn_process(f->r, "true", ARGV("true"), NULL, &null_proto,
                                        &f->spawn_releases, tu_count_release, NULL);
  }
  f->rc_madeup_pid = reactor_process_pid((reactor_process_t *)(uintptr_t)0x1234);
  f->rc_madeup_sig = reactor_process_signal((reactor_process_t *)(uintptr_t)0x1234, SIGTERM);
  return NULL;
}

static void test_threads(reactor_t *r) {
  SECTION("process calls from another thread");
  prec_t a;
  rec_init(&a, "threads");
  REQUIRE_OK(spawn(r, &a, "cat", ARGV("cat"), NULL));
  WAIT_UNTIL(r, a.made, 5);
  foreign_t f = {.r = r, .p = a.p};
  pthread_t t;
  REQUIRE(pthread_create(&t, NULL, foreign_main, &f) == 0);
  pthread_join(t, NULL);
  CHECK_EQ(f.rc_pid, 0);
  CHECK_RC(f.rc_write, REACTOR_E_WRONG_THREAD);
  CHECK_RC(f.rc_write_null, REACTOR_E_WRONG_THREAD);
  CHECK_RC(f.rc_write_bad, REACTOR_E_WRONG_THREAD);
  CHECK_RC(f.rc_close, REACTOR_E_WRONG_THREAD);
  CHECK_RC(f.rc_lose, REACTOR_E_WRONG_THREAD);
  CHECK_RC(f.rc_sig, REACTOR_E_WRONG_THREAD);
  CHECK_RC(f.rc_sig0, REACTOR_E_WRONG_THREAD);
  CHECK_RC(f.rc_spawn, REACTOR_E_WRONG_THREAD);
  CHECK_EQ(f.rc_madeup_pid, 0);
  CHECK_RC(f.rc_madeup_sig, REACTOR_E_INVALID);
  for (int i = 0; i < 3; i++) CHECK_OK(reactor_iterate(r, 0.01));
  CHECK_EQ(atomic_load(&f.spawn_releases), 0);
  /* nothing changed: the child runs and its stdin is open */
  CHECK_EQ(a.exited, 0);
  CHECK_EQ(a.lost_total, 0);
  CHECK_EQ(w_pid(a.p), a.pid);
  CHECK_OK(w_write(a.p, 0, "ok", 2));
  CHECK_OK(w_close(a.p, 0));
  WAIT_UNTIL(r, a.ended, 5);
  CHECK(out_is(&a, 1, "ok"));
  LIFE(&a, REACTOR_OK, 0, 0, 0, 1, 2);

  /* a dead handle from another thread */
  foreign_t g = {.r = r, .p = a.p, .dead = 1};
  REQUIRE(pthread_create(&t, NULL, foreign_main, &g) == 0);
  pthread_join(t, NULL);
  CHECK_EQ(g.rc_pid, 0);
  CHECK_RC(g.rc_write, REACTOR_E_INVALID);
  CHECK_RC(g.rc_close, REACTOR_E_INVALID);
  CHECK_RC(g.rc_lose, REACTOR_E_INVALID);
  CHECK_RC(g.rc_sig, REACTOR_E_INVALID);
  rec_free(&a);
}

/* ---- bad input ------------------------------------------------------------------------------ */

static void test_bad_input(reactor_t *r) {
  SECTION("bad input");
  reactor_process_protocol_init(NULL);
  reactor_spawn_options_init(NULL);
  reactor_process_protocol_t pi;
  memset(&pi, 0xab, sizeof pi);
  reactor_process_protocol_init(&pi);
  CHECK_EQ(pi.struct_size, sizeof pi);
  CHECK(pi.connection_made == NULL && pi.child_data_received == NULL &&
        pi.child_connection_lost == NULL && pi.process_exited == NULL && pi.process_ended == NULL);
  reactor_spawn_options_t oi;
  memset(&oi, 0xab, sizeof oi);
  reactor_spawn_options_init(&oi);
  CHECK_EQ(oi.struct_size, sizeof oi);
  CHECK(oi.env == NULL && oi.inherit_env == 0 && oi.cwd == NULL && oi.child_fds == NULL);
  CHECK_EQ(oi.uid, -1);
  CHECK_EQ(oi.gid, -1);
  CHECK_EQ(oi.child_fd_count, 0);
  CHECK_EQ(oi.use_pty, 0);

  prec_t x;
  const char *const *argv = ARGV("true");
#define REFUSED(want, r_, exe, argv_, opts, proto_)                                   \
  do {                                                                               \
    rec_init(&x, "refused");                                                          \
    check_refused(r, &x, spawn_with((r_), &x, (exe), (argv_), (opts), (proto_), 1), (want), \
                  __LINE__);                                                          \
  } while (0)

  REFUSED(REACTOR_E_INVALID, NULL, "true", argv, NULL, &proto);
  REFUSED(REACTOR_E_INVALID, r, NULL, argv, NULL, &proto);
  REFUSED(REACTOR_E_INVALID, r, "true", NULL, NULL, &proto);
  REFUSED(REACTOR_E_INVALID, r, "true", argv, NULL, NULL);

  /* struct_size rules */
  uint32_t small_p[] = {0, 4, (uint32_t)offsetof(reactor_process_protocol_t, process_ended)};
  for (size_t i = 0; i < sizeof small_p / sizeof small_p[0]; i++) {
    reactor_process_protocol_t pp = proto;
    pp.struct_size = small_p[i];
    REFUSED(REACTOR_E_INVALID, r, "true", argv, NULL, &pp);
  }
  uint32_t small_o[] = {0, 4, (uint32_t)offsetof(reactor_spawn_options_t, use_pty)};
  for (size_t i = 0; i < sizeof small_o / sizeof small_o[0]; i++) {
    reactor_spawn_options_t o = opts_default();
    o.struct_size = small_o[i];
    REFUSED(REACTOR_E_INVALID, r, "true", argv, &o, &proto);
  }
  struct {
    reactor_process_protocol_t p;
    unsigned char tail[24];
  } bigp;
  struct {
    reactor_spawn_options_t o;
    unsigned char tail[24];
  } bigo;
  memset(&bigp, 0, sizeof bigp);
  memset(&bigo, 0, sizeof bigo);
  bigp.p = proto;
  bigp.p.struct_size = (uint32_t)sizeof bigp;
  reactor_spawn_options_init(&bigo.o);
  bigo.o.struct_size = (uint32_t)sizeof bigo;
  bigp.tail[5] = 1;
  REFUSED(REACTOR_E_UNSUPPORTED, r, "true", argv, NULL, &bigp.p);
  bigo.tail[20] = 1;
  REFUSED(REACTOR_E_UNSUPPORTED, r, "true", argv, &bigo.o, &proto);
  bigp.tail[5] = 0;
  bigo.tail[20] = 0;
  prec_t big;
  rec_init(&big, "big-structs");
  REQUIRE_OK(spawn_with(r, &big, "true", argv, &bigo.o, &bigp.p, 1));
  prec_t no_opts, no_out;
  rec_init(&no_opts, "opts-NULL");
  rec_init(&no_out, "out-NULL");
  REQUIRE_OK(spawn_with(r, &no_opts, "sh", ARGV("sh", "-c", "echo hi; echo err >&2"), NULL,
                        &proto, 1));
  REQUIRE_OK(spawn_with(r, &no_out, "true", argv, NULL, &proto, 0));
  prec_t silent;
  rec_init(&silent, "no-callbacks");
  REQUIRE_OK(spawn_with(r, &silent, "sh", ARGV("sh", "-c", "echo ignored"), NULL, &null_proto, 1));
  WAIT_UNTIL(r, big.ended && no_opts.ended && no_out.ended && atomic_load(&silent.releases), 10);
  LIFE(&big, REACTOR_OK, 0, 0, 0, 1, 2);
  LIFE(&no_opts, REACTOR_OK, 0, 0, 0, 1, 2);
  CHECK(out_is(&no_opts, 1, "hi\n"));
  CHECK(out_is(&no_opts, 2, "err\n"));
  LIFE(&no_out, REACTOR_OK, 0, 0, 0, 1, 2);
  CHECK_EQ(silent.seq, 1); /* only the release */
  CHECK_EQ(atomic_load(&silent.releases), 1);
  CHECK_EQ(w_pid(silent.p), 0);
  rec_free(&big);
  rec_free(&no_opts);
  rec_free(&no_out);

  /* child-fd maps */
  reactor_spawn_options_t o = opts_default();
  o.child_fds = NULL;
  o.child_fd_count = 1;
  REFUSED(REACTOR_E_INVALID, r, "true", argv, &o, &proto);
  int closed_fd = 900;
  while (fd_open(closed_fd)) closed_fd++;
  struct {
    const char *what;
    reactor_child_fd_t map[2];
    size_t n;
  } maps[] = {
      {"negative", {{-1, REACTOR_CHILD_FD_READ, -1}}, 1},
      {"repeated", {{3, REACTOR_CHILD_FD_READ, -1}, {3, REACTOR_CHILD_FD_WRITE, -1}}, 2},
      {"repeated inherit", {{3, REACTOR_CHILD_FD_INHERIT, 2}, {3, REACTOR_CHILD_FD_INHERIT, 2}}, 2},
      {"kind 0", {{1, 0, -1}}, 1},
      {"kind 4", {{1, 4, -1}}, 1},
      {"kind -1", {{1, -1, -1}}, 1},
      {"inherit closed", {{1, REACTOR_CHILD_FD_INHERIT, closed_fd}}, 1},
      {"inherit -1", {{1, REACTOR_CHILD_FD_INHERIT, -1}}, 1},
      {"inherit INT_MAX", {{1, REACTOR_CHILD_FD_INHERIT, INT_MAX}}, 1},
  };
  for (size_t i = 0; i < sizeof maps / sizeof maps[0]; i++) {
    o = opts_default();
    o.child_fds = maps[i].map;
    o.child_fd_count = maps[i].n;
    int f0 = atomic_load(&tu_failures);
    REFUSED(REACTOR_E_INVALID, r, "true", argv, &o, &proto);
    if (atomic_load(&tu_failures) != f0) fprintf(stderr, "  map case: %s\n", maps[i].what);
  }
  /* uid / gid */
  int64_t bad_ids[] = {-2, 4294967295LL, 4294967296LL, INT64_MIN, INT64_MAX};
  for (size_t i = 0; i < sizeof bad_ids / sizeof bad_ids[0]; i++) {
    o = opts_default();
    o.uid = bad_ids[i];
    REFUSED(REACTOR_E_INVALID, r, "true", argv, &o, &proto);
    o = opts_default();
    o.gid = bad_ids[i];
    REFUSED(REACTOR_E_INVALID, r, "true", argv, &o, &proto);
  }
  /* a freed reactor */
  reactor_t *dead = tu_new_reactor();
  CHECK_OK(reactor_free(dead));
  REFUSED(REACTOR_E_INVALID, dead, "true", argv, NULL, &proto);
#undef REFUSED

  /* made-up handles */
  int local = 0;
  reactor_process_t *madeup[] = {NULL, (reactor_process_t *)(uintptr_t)0x1234,
                                 (reactor_process_t *)(uintptr_t)0x8, (reactor_process_t *)r,
                                 (reactor_process_t *)&local,
                                 (reactor_process_t *)(uintptr_t)UINTPTR_MAX};
  for (size_t i = 0; i < sizeof madeup / sizeof madeup[0]; i++) {
    CHECK_RC(w_write(madeup[i], 0, "x", 1), REACTOR_E_INVALID);
    CHECK_RC(w_write(madeup[i], 0, NULL, 0), REACTOR_E_INVALID);
    CHECK_RC(w_close(madeup[i], 0), REACTOR_E_INVALID);
    CHECK_RC(w_lose(madeup[i]), REACTOR_E_INVALID);
    CHECK_RC(w_signal(madeup[i], SIGTERM), REACTOR_E_INVALID);
    CHECK_EQ(w_pid(madeup[i]), 0);
  }
  CHECK_EQ(local, 0);
  no_children_left("bad input");
}

/* ---- spawning from callbacks ------------------------------------------------------------------ */

/* chain[1] is spawned inside chain[0]'s connection_made, chain[2] and chain[3] inside the
 * previous one's process_ended */
static prec_t chain[4];

static void chain_next(prec_t *rec) {
  int i = rec->arg_int + 1;
  if (i >= 4) return;
  rec_init(&chain[i], "chain");
  chain[i].arg_int = i;
  chain[i].on_ended = chain_next;
  CHECK_OK(spawn(rec->r, &chain[i], "true", ARGV("true"), NULL));
}

static void chain_from_made(prec_t *rec) {
  rec->on_ended = NULL;
  chain_next(rec);
}

static void test_spawn_in_callbacks(reactor_t *r) {
  SECTION("spawning inside connection_made and process_ended");
  rec_init(&chain[0], "chain");
  chain[0].arg_int = 0;
  chain[0].on_made = chain_from_made;
  REQUIRE_OK(spawn(r, &chain[0], "true", ARGV("true"), NULL));
  WAIT_UNTIL(r, chain[0].ended && chain[1].ended && chain[2].ended && chain[3].ended, 10);
  for (int i = 0; i < 4; i++) {
    LIFE(&chain[i], REACTOR_OK, 0, 0, 0, 1, 2);
    rec_free(&chain[i]);
  }
}

/* ---- shutdown -------------------------------------------------------------------------------- */

typedef struct snap {
  prec_t *a, *b;
  int a_lost, b_ended, seen;
} snap_t;

static snap_t snaps[3];

static int snap_trigger(reactor_t *r, uint64_t id, void *ud) {
  (void)r;
  (void)id;
  snap_t *s = ud;
  s->a_lost = s->a->lost_total;
  s->b_ended = s->b->ended;
  s->seen++;
  return 0;
}

static void test_shutdown(void) {
  SECTION("shutdown: pipes close, a reaped child ends, a live one is only released in free");
  reactor_t *r = tu_new_reactor();
  prec_t a, b;
  rec_init(&a, "shutdown-live");
  rec_init(&b, "shutdown-reaped");
  REQUIRE_OK(spawn(r, &a, "sleep", ARGV("sleep", "5"), NULL));
  REQUIRE_OK(spawn(r, &b, "sh",
                   ARGV("sh", "-c", tu_valgrind() ? "sleep 3 & exit 0" : "sleep 0.6 & exit 0"),
                   NULL));
  static char big[1 << 20];
  CHECK_OK(w_write(a.p, 0, big, sizeof big)); /* never read: dropped at shutdown */
  WAIT_UNTIL(r, b.exited, 5);
  CHECK_EQ(b.ended, 0);
  int pid_a = a.pid;
  reactor_phase_t phases[3] = {REACTOR_PHASE_BEFORE, REACTOR_PHASE_DURING, REACTOR_PHASE_AFTER};
  for (int i = 0; i < 3; i++) {
    snaps[i] = (snap_t){.a = &a, .b = &b};
    CHECK_OK(reactor_add_system_event_trigger(r, phases[i], "shutdown", snap_trigger, &snaps[i],
                                              NULL, NULL));
  }
  CHECK_OK(reactor_call_later(r, 0.0, tu_stop_cb, NULL, NULL, NULL));
  double t0 = tu_now();
  CHECK_OK(reactor_run(r));
  CHECK(tu_now() - t0 < scale_s(2)); /* not held by the unread bytes nor the children */
  for (int i = 0; i < 3; i++) CHECK_EQ(snaps[i].seen, 1);
  CHECK_EQ(snaps[0].a_lost, 0);
  CHECK_EQ(snaps[0].b_ended, 0);
  CHECK_EQ(snaps[2].a_lost, 3);
  CHECK_EQ(snaps[2].b_ended, 1);
  printf("   at the host's DURING-shutdown trigger: live child's pipes lost %d of 3, reaped "
         "child ended %d\n",
         snaps[1].a_lost, snaps[1].b_ended);
  /* the live child: pipes closed, no exit, no end, no release yet */
  CHECK_EQ(a.lost[0] + a.lost[1] + a.lost[2], 3);
  CHECK_EQ(a.exited, 0);
  CHECK_EQ(a.ended, 0);
  CHECK_EQ(atomic_load(&a.releases), 0);
  CHECK_EQ(w_pid(a.p), pid_a);
  CHECK_RC(w_write(a.p, 0, "x", 1), REACTOR_E_CLOSED);
  CHECK_RC(w_signal(a.p, 0), REACTOR_E_INVALID);
  CHECK_OK(w_signal(a.p, SIGCONT)); /* still alive and ours to signal */
  /* the reaped child ended during shutdown */
  LIFE(&b, REACTOR_OK, 0, 0, 0, 1, 2);
  /* spawning after a run that ended with stop */
  prec_t late;
  rec_init(&late, "after-stop");
  check_refused(r, &late, spawn(r, &late, "true", ARGV("true"), NULL), REACTOR_E_CLOSED, __LINE__);
  int seq = a.seq;
  CHECK_OK(reactor_free(r));
  CHECK_EQ(atomic_load(&a.releases), 1);
  CHECK_EQ(a.seq, seq + 1); /* only the release */
  CHECK_EQ(a.ended, 0);
  CHECK_EQ(atomic_load(&late.releases), 0);
  CHECK_EQ(w_pid(a.p), 0);
  CHECK_RC(w_signal(a.p, SIGTERM), REACTOR_E_INVALID);
  CHECK_RC(w_write(a.p, 0, "x", 1), REACTOR_E_INVALID);
  /* the pid is the host's to wait for */
  CHECK_EQ(proc_state(pid_a, NULL) != 'Z' && proc_state(pid_a, NULL) != '\0', 1);
  CHECK(kill(pid_a, SIGKILL) == 0);
  int st = 0;
  CHECK_EQ(waitpid(pid_a, &st, 0), pid_a);
  CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
  if (sigchld_mode) CHECK(sigchld_is_default()); /* the last reactor that spawned is gone */
  rec_free(&a);
  rec_free(&b);
}

/* ---- uid / gid ---------------------------------------------------------------------------------- */

static void test_uid_gid(reactor_t *r) {
  SECTION("uid/gid");
  if (geteuid() != 0) {
    printf("   not root: uid/gid part skipped\n");
    return;
  }
  reactor_spawn_options_t o = opts_default();
  o.uid = 65534;
  o.gid = 65534;
  prec_t u, g, gs;
  rec_init(&u, "id-u");
  rec_init(&g, "id-g");
  rec_init(&gs, "id-G");
  REQUIRE_OK(spawn(r, &u, "id", ARGV("id", "-u"), &o));
  REQUIRE_OK(spawn(r, &g, "id", ARGV("id", "-g"), &o));
  REQUIRE_OK(spawn(r, &gs, "id", ARGV("id", "-G"), &o));
  WAIT_UNTIL(r, u.ended && g.ended && gs.ended, 10);
  LIFE(&u, REACTOR_OK, 0, 0, 0, 1, 2);
  LIFE(&g, REACTOR_OK, 0, 0, 0, 1, 2);
  LIFE(&gs, REACTOR_OK, 0, 0, 0, 1, 2);
  CHECK(out_is(&u, 1, "65534\n"));
  CHECK(out_is(&g, 1, "65534\n"));
  CHECK(out_has(&gs, 1, "65534"));
  /* no supplementary group 0 left */
  char groups[256];
  snprintf(groups, sizeof groups, " %s", gs.out[1].d ? gs.out[1].d : "");
  CHECK(strstr(groups, " 0 ") == NULL && strstr(groups, " 0\n") == NULL);
  rec_free(&u);
  rec_free(&g);
  rec_free(&gs);
}

/* ---- main --------------------------------------------------------------------------------------- */

static int rerun_sigchld(char **argv) {
  char self[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
  if (n <= 0) {
    strcpy(self, "/proc/self/exe");
  } else {
    self[n] = '\0';
  }
  printf("%s: running again with REACTOR_CHILD_WATCH=sigchld (%s)\n", PROG, self);
  fflush(stdout);
  fflush(stderr);
  pid_t pid = fork();
  if (pid < 0) {
    perror("fork");
    return 1;
  }
  if (pid == 0) {
    setenv("REACTOR_CHILD_WATCH", "sigchld", 1);
    execv(self, argv);
    perror("execv");
    _exit(1);
  }
  int st = 0;
  while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
  }
  if (WIFEXITED(st) && WEXITSTATUS(st) == 0) return 0;
  fprintf(stderr, "%s: the REACTOR_CHILD_WATCH=sigchld run failed (status %#x)\n", PROG, st);
  return 1;
}

int main(int argc, char **argv) {
  (void)argc;
  signal(SIGPIPE, SIG_DFL);
  signal(SIGCHLD, SIG_DFL);
  setvbuf(stdout, NULL, _IOLBF, 0);
  reactor_thread = pthread_self();
  /* fds 0-2 open (run_map borrows 0 and 1 for a moment) */
  for (int fd = 0; fd < 3; fd++)
    if (!fd_open(fd)) REQUIRE(open("/dev/null", O_RDWR) == fd);
  tu_watchdog(50);
  tu_banner_probe(PROG);
  reactor_process_protocol_init(&proto);
  proto.connection_made = cb_made;
  proto.child_data_received = cb_data;
  proto.child_connection_lost = cb_lost;
  proto.process_exited = cb_exited;
  proto.process_ended = cb_ended;
  reactor_process_protocol_init(&null_proto);

  char tmpl[] = "/tmp/lrproc.XXXXXX";
  REQUIRE(mkdtemp(tmpl) != NULL);
  REQUIRE(realpath(tmpl, tmpdir) != NULL);

  test_mode();
  reactor_t *r = tu_new_reactor();
  test_exec_failures(r); /* first: no other child may exist for its zombie checks */
  test_bad_input(r);
  test_echo(r);
  test_exit_codes(r);
  test_grandchild(r);
  test_env_argv_cwd(r);
  test_fd_maps(r);
  test_signal_state(r);
  test_pty(r);
  test_internal_fds(r);
  test_many(r);
  test_foreign_child(r);
  test_no_eintr(r);
  test_write_close(r);
  test_child_closes_stdin(r);
  test_threads(r);
  test_spawn_in_callbacks(r);
  test_uid_gid(r);
  CHECK_OK(reactor_free(r));
  test_exit_before_run();
  test_shutdown();

  char path[PATH_MAX + 64];
  const char *files[] = {"lrtest-found", "rel.sh", "lrtest-noexec"};
  for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
    snprintf(path, sizeof path, "%s/%s", tmpdir, files[i]);
    unlink(path);
  }
  rmdir(tmpdir);

  int rc = tu_finish(PROG);
  if (getenv("REACTOR_CHILD_WATCH") == NULL && rerun_sigchld(argv) != 0) rc = 1;
  return rc;
}
