/*
 * test_race_process.c - child processes (API.md §8.1, §8.6) while other threads call the process
 * functions on their handles, and on their reactors.
 *
 * Two owner threads (a crew), each with a reactor per round, spawn 1-3 short children per round:
 * /bin/true with the default pipes, `sh -c 'exit 3'` with a custom child-fd map {1,2,5: READ},
 * /bin/true on a pty, /bin/cat fed through fd 0, and /bin/sleep (killed with reactor_process_signal,
 * or left running). Then, by round: they wait for every process_ended; or free the reactor at once,
 * or after a few passes, with children still running (then they kill and waitpid those by the pid
 * recorded at the spawn, so no zombie remains). Meanwhile two foreign threads spin all the time over
 * the published handles: live ones (of a reactor another thread owns, ending or being freed at any
 * moment), dead ones (process_ended returned, or the reactor was freed), made-up ones, and the
 * owners' reactors for reactor_spawn_process. From inside their own callbacks the owners also call
 * the other owner's live handles (a foreign thread that owns a reactor itself). The two owners
 * create and free reactors at the same time, so with REACTOR_CHILD_WATCH=sigchld the process-wide
 * SIGCHLD watch (installed before a reactor's first fork, restored after the last one is freed)
 * comes and goes while the other owner's children exit: a lost exit shows as a round that times out.
 *
 * Checks: a foreign call gets REACTOR_E_WRONG_THREAD (live handle) or REACTOR_E_INVALID (dead), and
 * only INVALID for a handle known dead or made up; reactor_process_pid is 0 from another thread and
 * for dead handles, and the spawn pid on the owner until process_ended; a foreign spawn never
 * succeeds and never releases its ud (heap ud, freed by the caller: a release would be a double
 * free); every accepted spawn is released exactly once, and every callback and release runs on its
 * owner's thread, in order (connection_made once, first; a pipe lost once; process_exited once,
 * before process_ended); the exit statuses are the expected ones (a signal from a foreign thread that
 * got through would show); a child whose process_exited never ran is still ours to waitpid after
 * reactor_free; at the end no child of ours remains (waitpid(-1) gives ECHILD), /proc/self/fd has as
 * many entries as at the start, and SIGCHLD's disposition is back (REACTOR_CHILD_WATCH=sigchld).
 * 400 rounds per owner (60 under valgrind); the foreign threads make millions of calls meanwhile.
 */
#include "race_util.h"

#include <dirent.h>
#include <sys/wait.h>

static const char *PROG = "test_race_process";

#define OWNERS 2
#define FOREIGNERS 2
#define MAX_KIDS 3
#define LIVE_SLOTS (OWNERS * MAX_KIDS)
#define DEAD_SLOTS 32

enum { K_TRUE, K_EXIT3, K_PTY, K_CAT, K_SLEEP, K_COUNT };
static const char *const KIND_NAME[K_COUNT] = {"true", "exit3", "pty", "cat", "sleep"};

enum { M_WAIT, M_FREE_NOW, M_PARTIAL };

/* What the owner knows of one child (lives on the owner's stack until after reactor_free). */
typedef struct kid {
  reactor_process_t *handle;
  pid_t pid;
  int kind;
  int owner;     /* index of the owner thread */
  int signalled; /* the owner sent SIGKILL through reactor_process_signal */
  atomic_int made, exited, ended, released, lost_mask;
  int reason, exit_code, term_signal;
  long bytes; /* cat: bytes echoed on fd 1 */
} kid_t;

/* The heap user data of a spawn: its release frees it (a double release is a double free). */
typedef struct kid_ud {
  kid_t *kid;
  pthread_t owner;
} kid_ud_t;

static race_counts_t spawns;         /* owners' spawns: accepted / released */
static race_counts_t foreign_spawns; /* foreign spawns: all must be refused */
static atomic_int off_owner, order_bad, status_bad, pid_bad, pty_unavailable;
static atomic_long foreign_calls, foreign_live_calls, foreign_dead_calls, foreign_spawn_calls;
static atomic_long inner_calls, killed_after_free, kind_counts[K_COUNT];
static atomic_long seen_wrong_thread, seen_invalid; /* foreign signal on a live slot */
static atomic_int quit;
static atomic_int budget_status, budget_misc;

/* Published for the foreign threads. */
static _Atomic(reactor_process_t *) live_slots[LIVE_SLOTS];
static _Atomic(reactor_process_t *) dead_slots[DEAD_SLOTS];
static _Atomic(reactor_t *) live_reactor[OWNERS];
static _Atomic(reactor_t *) dead_reactor[OWNERS];

static int the_static; /* its address is a made-up handle */

/* ThreadSanitizer runs an asynchronous signal's handler only once the thread that caught it is in a
 * blocking call or next enters the runtime: a SIGCHLD caught by a thread parked in the crew's
 * pthread_barrier_wait (not a blocking call to TSan) would wait for the end of the round, which waits
 * for that very exit (REACTOR_CHILD_WATCH=sigchld). So under TSan only the owners take SIGCHLD, and
 * only inside their rounds; natively it lands on any thread (the library's handler then runs on
 * foreign threads too, racing reactor_free's removal of the watch). */
#if defined(__SANITIZE_THREAD__)
#define UNDER_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define UNDER_TSAN 1
#endif
#endif
#ifndef UNDER_TSAN
#define UNDER_TSAN 0
#endif

static void tsan_sigchld(int how) {
  if (!UNDER_TSAN) return;
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGCHLD);
  REQUIRE(pthread_sigmask(how, &set, NULL) == 0);
}

/* ---- status checks -------------------------------------------------------------------------- */

static void expect_status(int rc, int a, int b, const char *what) {
  if (rc == a || rc == b) return;
  if (race_report(&budget_status))
    fprintf(stderr, "   %s -> %d (%s): not an allowed status\n", what, rc, tu_status(rc));
  atomic_fetch_add(&tu_failures, 1);
}

#define EXPECT_FOREIGN(rc, what) expect_status((rc), REACTOR_E_WRONG_THREAD, REACTOR_E_INVALID, (what))
#define EXPECT_INVALID(rc, what) expect_status((rc), REACTOR_E_INVALID, REACTOR_E_INVALID, (what))

static void misc_failure(const char *fmt, long a, long b) {
  if (race_report(&budget_misc)) {
    fprintf(stderr, "   ");
    fprintf(stderr, fmt, a, b);
    fprintf(stderr, "\n");
  }
  atomic_fetch_add(&tu_failures, 1);
}

/* Every process function on a handle of a reactor this thread does not own (live or dead). */
static void call_foreign(reactor_process_t *h, int sig) {
  if (reactor_process_pid(h) != 0) atomic_fetch_add(&pid_bad, 1);
  int rc = reactor_process_signal(h, sig);
  EXPECT_FOREIGN(rc, "foreign signal");
  atomic_fetch_add_explicit(rc == REACTOR_E_WRONG_THREAD ? &seen_wrong_thread : &seen_invalid, 1,
                            memory_order_relaxed);
  EXPECT_FOREIGN(reactor_process_signal(h, 0), "foreign signal(0)");
  EXPECT_FOREIGN(reactor_process_write_to_child(h, 0, "x", 1), "foreign write_to_child");
  EXPECT_FOREIGN(reactor_process_write_to_child(h, 9, NULL, 5), "foreign write_to_child(bad)");
  EXPECT_FOREIGN(reactor_process_close_child_fd(h, sig % 3), "foreign close_child_fd");
  EXPECT_FOREIGN(reactor_process_lose_connection(h), "foreign lose_connection");
}

/* The same on a handle known dead or made up: INVALID only, from any thread. */
static void call_dead(reactor_process_t *h, int sig) {
  if (reactor_process_pid(h) != 0) atomic_fetch_add(&pid_bad, 1);
  EXPECT_INVALID(reactor_process_signal(h, sig), "dead signal");
  EXPECT_INVALID(reactor_process_write_to_child(h, 0, "x", 1), "dead write_to_child");
  EXPECT_INVALID(reactor_process_close_child_fd(h, sig % 3), "dead close_child_fd");
  EXPECT_INVALID(reactor_process_lose_connection(h), "dead lose_connection");
}

/* Handles no spawn ever returned. A live handle with its generation changed by 128 stays made up:
 * that generation would need 128 reuses of its slot, and a slot is reused only after 4096 other
 * releases of its kind (this test makes at most 2400). */
static reactor_process_t *made_up(uint64_t x) {
  switch (x % 5) {
    case 0: return NULL;
    case 1: return (reactor_process_t *)(uintptr_t)0x1000;
    case 2: return (reactor_process_t *)&the_static;
    case 3: return (reactor_process_t *)atomic_load(&live_reactor[(x >> 8) % OWNERS]);
    default: {
      reactor_process_t *h = atomic_load(&live_slots[(x >> 8) % LIVE_SLOTS]);
      return h ? (reactor_process_t *)((uintptr_t)h ^ ((uintptr_t)0x80 << 16)) : NULL;
    }
  }
}

/* ---- the protocol (owner thread) --------------------------------------------------------- */

static kid_ud_t *ud_of(void *p, const char *what) {
  kid_ud_t *u = p;
  if (!pthread_equal(pthread_self(), u->owner)) {
    if (race_report(&budget_misc)) fprintf(stderr, "   %s ran off its owner's thread\n", what);
    atomic_fetch_add(&off_owner, 1);
  }
  return u;
}

static void order_failure(kid_t *k, const char *what) {
  if (race_report(&budget_misc))
    fprintf(stderr, "   kid %s (pid %d): %s\n", KIND_NAME[k->kind], (int)k->pid, what);
  atomic_fetch_add(&order_bad, 1);
}

/* From inside a callback (this thread is inside a call on its own reactor): the other owner's
 * live handles, and dead ones. */
static void poke_others(kid_t *k) {
  int other = (k->owner + 1) % OWNERS;
  for (int i = 0; i < MAX_KIDS; i++) call_foreign(atomic_load(&live_slots[other * MAX_KIDS + i]), SIGKILL);
  call_dead(atomic_load(&dead_slots[k->pid % DEAD_SLOTS]), SIGKILL);
  call_dead(made_up((uint64_t)k->pid), SIGKILL);
  atomic_fetch_add(&inner_calls, 1);
}

static void on_made(reactor_process_t *p, void *ud) {
  kid_t *k = ud_of(ud, "connection_made")->kid;
  if (p != k->handle) order_failure(k, "connection_made: another handle");
  if (atomic_fetch_add(&k->made, 1) != 0) order_failure(k, "connection_made twice");
  if (atomic_load(&k->exited) || atomic_load(&k->lost_mask)) order_failure(k, "connection_made late");
  if (reactor_process_pid(p) != k->pid) atomic_fetch_add(&pid_bad, 1);
  poke_others(k);
}

static void on_data(reactor_process_t *p, int child_fd, const uint8_t *data, size_t len, void *ud) {
  (void)p;
  (void)data;
  kid_t *k = ud_of(ud, "child_data_received")->kid;
  if (!atomic_load(&k->made)) order_failure(k, "data before connection_made");
  if (k->kind == K_CAT && child_fd == 1) k->bytes += (long)len;
}

static void on_lost(reactor_process_t *p, int child_fd, void *ud) {
  (void)p;
  kid_t *k = ud_of(ud, "child_connection_lost")->kid;
  if (!atomic_load(&k->made)) order_failure(k, "connection_lost before connection_made");
  if (child_fd < 0 || child_fd > 7) {
    order_failure(k, "connection_lost: bad fd");
    return;
  }
  if (atomic_fetch_or(&k->lost_mask, 1 << child_fd) & (1 << child_fd))
    order_failure(k, "connection_lost twice for one fd");
  if (atomic_load(&k->ended)) order_failure(k, "connection_lost after process_ended");
}

static void on_exited(reactor_process_t *p, int reason, int code, int sig, void *ud) {
  kid_t *k = ud_of(ud, "process_exited")->kid;
  if (!atomic_load(&k->made)) order_failure(k, "process_exited before connection_made");
  if (atomic_fetch_add(&k->exited, 1) != 0) order_failure(k, "process_exited twice");
  k->reason = reason;
  k->exit_code = code;
  k->term_signal = sig;
  if (reactor_process_pid(p) != k->pid) atomic_fetch_add(&pid_bad, 1);
  CHECK_RC(reactor_process_signal(p, SIGKILL), REACTOR_E_PROCESS_EXITED);
  poke_others(k);
}

static void on_ended(reactor_process_t *p, int reason, int code, int sig, void *ud) {
  kid_t *k = ud_of(ud, "process_ended")->kid;
  if (atomic_load(&k->exited) != 1) order_failure(k, "process_ended without process_exited");
  if (atomic_fetch_add(&k->ended, 1) != 0) order_failure(k, "process_ended twice");
  if (reason != k->reason || code != k->exit_code || sig != k->term_signal)
    order_failure(k, "process_ended's status differs from process_exited's");
  if (reactor_process_pid(p) != 0) atomic_fetch_add(&pid_bad, 1); /* 0 inside process_ended */
  CHECK_RC(reactor_process_signal(p, SIGKILL), REACTOR_E_PROCESS_EXITED);
  /* the expected status of each kind */
  int want_reason = REACTOR_OK, want_code = 0, want_sig = 0;
  if (k->kind == K_EXIT3) want_reason = REACTOR_E_PROCESS_TERMINATED, want_code = 3;
  if (k->signalled) want_reason = REACTOR_E_PROCESS_TERMINATED, want_code = -1, want_sig = SIGKILL;
  if (reason != want_reason || code != want_code || sig != want_sig) {
    if (race_report(&budget_misc))
      fprintf(stderr, "   kid %s (pid %d) ended with (%d, %d, %d), want (%d, %d, %d)\n",
              KIND_NAME[k->kind], (int)k->pid, reason, code, sig, want_reason, want_code, want_sig);
    atomic_fetch_add(&status_bad, 1);
  }
  if (k->kind == K_CAT && k->bytes != 6) misc_failure("cat echoed %ld bytes, want %ld", k->bytes, 6);
}

static void kid_release(void *p) {
  kid_ud_t *u = ud_of(p, "release");
  kid_t *k = u->kid;
  if (atomic_fetch_add(&k->released, 1) != 0) order_failure(k, "released twice");
  atomic_fetch_add(&spawns.released, 1);
  free(u);
}

static reactor_process_protocol_t proto;

/* ---- owners ------------------------------------------------------------------------------- */

static int spawn_kid(reactor_t *r, kid_t *k, int owner, int kind, int mode) {
  static const char *const argv_true[] = {"true", NULL};
  static const char *const argv_exit3[] = {"sh", "-c", "exit 3", NULL};
  static const char *const argv_cat[] = {"cat", NULL};
  static const char *const argv_sleep[] = {"sleep", "30", NULL};
  static const reactor_child_fd_t map_exit3[] = {
      {1, REACTOR_CHILD_FD_READ, -1}, {2, REACTOR_CHILD_FD_READ, -1}, {5, REACTOR_CHILD_FD_READ, -1}};
  reactor_spawn_options_t o;
  reactor_spawn_options_init(&o);
  const reactor_spawn_options_t *opts = NULL;
  const char *exe = "/bin/true";
  const char *const *argv = argv_true;
  switch (kind) {
    case K_EXIT3:
      exe = "/bin/sh", argv = argv_exit3;
      o.child_fds = map_exit3;
      o.child_fd_count = 3;
      opts = &o;
      break;
    case K_PTY:
      o.use_pty = 1;
      opts = &o;
      break;
    case K_CAT: exe = "/bin/cat", argv = argv_cat; break;
    case K_SLEEP: exe = "/bin/sleep", argv = argv_sleep; break;
    default: break;
  }
  memset(k, 0, sizeof *k);
  k->kind = kind;
  k->owner = owner;
  kid_ud_t *u = calloc(1, sizeof *u);
  REQUIRE(u != NULL);
  u->kid = k;
  u->owner = pthread_self();
  reactor_process_t *h = NULL;
  int rc = reactor_spawn_process(r, exe, argv, opts, &proto, u, kid_release, &h);
  if (rc != REACTOR_OK) {
    free(u);
    if (kind == K_PTY && reactor_status_errno(rc) != 0) {
      if (atomic_fetch_add(&pty_unavailable, 1) == 0)
        printf("   no pty here (%s): pty children skipped\n", tu_status(rc));
      return 0;
    }
    fprintf(stderr, "   spawn %s: %d (%s)\n", KIND_NAME[kind], rc, tu_status(rc));
    atomic_fetch_add(&tu_failures, 1);
    return 0;
  }
  atomic_fetch_add(&spawns.accepted, 1);
  atomic_fetch_add(&kind_counts[kind], 1);
  k->handle = h;
  k->pid = reactor_process_pid(h);
  REQUIRE(k->pid > 0); /* (kill(0 or -1, ...) below would hit more than the child) */
  /* the owner's own calls, racing the foreign threads on the same handle */
  CHECK_RC(reactor_process_signal(h, 0), REACTOR_E_INVALID);
  CHECK_RC(reactor_process_signal(h, 32), REACTOR_E_INVALID);
  if (kind == K_TRUE || kind == K_CAT || kind == K_SLEEP) {
    CHECK_RC(reactor_process_write_to_child(h, 1, "x", 1), REACTOR_E_INVALID); /* a READ pipe */
    CHECK_RC(reactor_process_close_child_fd(h, 7), REACTOR_E_INVALID);
  }
  if (kind == K_CAT) {
    CHECK_OK(reactor_process_write_to_child(h, 0, "hello\n", 6));
    CHECK_OK(reactor_process_close_child_fd(h, 0));
    CHECK_RC(reactor_process_write_to_child(h, 0, "x", 1), REACTOR_E_CLOSED);
  }
  if (kind == K_SLEEP && mode == M_WAIT) {
    CHECK_OK(reactor_process_signal(h, SIGKILL)); /* not reaped before the loop runs */
    k->signalled = 1;
  }
  if (kind == K_TRUE || kind == K_EXIT3) {
    switch (k->pid % 3) {
      case 0: CHECK_OK(reactor_process_lose_connection(h)); break;
      case 1: CHECK_OK(reactor_process_close_child_fd(h, 1)); break;
      default: break;
    }
  }
  return 1;
}

static int pick_kind(uint64_t x) {
  int kind = (int)(x % 8);
  /* true x3, exit3, pty, cat, sleep x2 */
  static const int table[8] = {K_TRUE, K_TRUE, K_TRUE, K_EXIT3, K_PTY, K_CAT, K_SLEEP, K_SLEEP};
  kind = table[kind];
  if (kind == K_PTY && atomic_load(&pty_unavailable)) kind = K_TRUE;
  return kind;
}

static int count_released(const kid_t *kids, int n) {
  int done = 0;
  for (int i = 0; i < n; i++)
    if (!kids[i].handle || atomic_load(&kids[i].released)) done++;
  return done;
}

static void owner_round(race_crew_t *crew, int o) {
  long round = crew->round;
  uint64_t seed = race_seed(round, 100 + o);
  kid_t kids[MAX_KIDS];
  memset(kids, 0, sizeof kids);
  reactor_t *r = tu_new_reactor();
  atomic_store(&live_reactor[o], r);
  uint64_t x = race_rand(&seed);
  int mode = (x % 4 < 2) ? M_WAIT : (x % 4 == 2) ? M_FREE_NOW : M_PARTIAL;
  int n = 1 + (int)((x >> 8) % MAX_KIDS);
  for (int i = 0; i < n; i++) {
    if (spawn_kid(r, &kids[i], o, pick_kind(race_rand(&seed)), mode))
      atomic_store(&live_slots[o * MAX_KIDS + i], kids[i].handle);
  }
  int passes = 0;
  if (mode == M_WAIT) {
    double deadline = tu_now() + (tu_valgrind() ? 60.0 : 15.0);
    while (count_released(kids, n) < n) {
      CHECK_OK(reactor_iterate(r, 0.01));
      for (int i = 0; i < n; i++) {
        if (!kids[i].handle) continue;
        int pid = reactor_process_pid(kids[i].handle);
        int want = atomic_load(&kids[i].released) ? 0 : kids[i].pid;
        if (pid != want) atomic_fetch_add(&pid_bad, 1);
        if (atomic_load(&kids[i].released)) /* dead now: the owner gets INVALID too */
          call_dead(kids[i].handle, SIGKILL);
      }
      if (tu_now() > deadline) {
        fprintf(stderr, "   round %ld owner %d: children did not end in time (%d of %d)\n", round, o,
                count_released(kids, n), n);
        for (int i = 0; i < n; i++)
          fprintf(stderr, "     %s pid %d: made %d exited %d ended %d lost 0x%x\n",
                  KIND_NAME[kids[i].kind], (int)kids[i].pid, atomic_load(&kids[i].made),
                  atomic_load(&kids[i].exited), atomic_load(&kids[i].ended),
                  atomic_load(&kids[i].lost_mask));
        atomic_fetch_add(&tu_failures, 1);
        break;
      }
      passes++;
    }
    for (int i = 0; i < n; i++)
      if (kids[i].handle && atomic_load(&kids[i].released))
        atomic_store(&dead_slots[(size_t)race_rand(&seed) % DEAD_SLOTS], kids[i].handle);
  } else {
    int want = mode == M_FREE_NOW ? (int)(race_rand(&seed) % 2) : 1 + (int)(race_rand(&seed) % 6);
    for (; passes < want; passes++) CHECK_OK(reactor_iterate(r, mode == M_FREE_NOW ? 0.0 : 0.002));
  }
  CHECK_OK(reactor_free(r));
  /* every release ran, once, by the time reactor_free returned */
  for (int i = 0; i < n; i++) {
    kid_t *k = &kids[i];
    if (!k->handle) continue;
    if (atomic_load(&k->released) != 1)
      misc_failure("a child's release ran %ld times by the end of reactor_free (pid %ld)",
                   atomic_load(&k->released), k->pid);
    if (atomic_load(&k->ended) && !atomic_load(&k->exited)) order_failure(k, "ended, not exited");
    call_dead(k->handle, SIGKILL);
    /* not reaped by the library: ours to kill and wait for (its pid cannot have been reused) */
    if (!atomic_load(&k->exited)) {
      kill(k->pid, SIGKILL);
      int st = 0;
      pid_t w;
      while ((w = waitpid(k->pid, &st, 0)) < 0 && errno == EINTR) {
      }
      if (w != k->pid)
        misc_failure("waitpid(%ld) after reactor_free: %ld (reaped without process_exited?)",
                     k->pid, (long)w);
      atomic_fetch_add(&killed_after_free, 1);
    }
    atomic_store(&dead_slots[(size_t)race_rand(&seed) % DEAD_SLOTS], k->handle);
  }
  atomic_store(&dead_reactor[o], r);
}

/* ---- foreign threads ---------------------------------------------------------------------- */

static void foreign_spawn(reactor_t *r, int dead, uint64_t x) {
  static const char *const argv[] = {"true", NULL};
  race_ud_t *u = race_ud_new(&foreign_spawns, (long)x);
  reactor_process_t *h = NULL;
  int rc = reactor_spawn_process(r, (x & 1) ? "/bin/true" : NULL, argv, NULL, &proto, u,
                                 race_ud_release, &h);
  if (dead)
    EXPECT_INVALID(rc, "foreign spawn on a freed reactor");
  else
    EXPECT_FOREIGN(rc, "foreign spawn");
  race_ud_settle(&foreign_spawns, u, rc);
}

static void *foreigner(void *arg) {
  int who = (int)(intptr_t)arg;
  uint64_t seed = race_seed(-1, who);
  unsigned yield_mask = tu_valgrind() ? 3u : 1023u;
  long calls = 0, live = 0, dead = 0, spawned = 0;
  for (unsigned long it = 0; !atomic_load_explicit(&quit, memory_order_relaxed); it++) {
    uint64_t x = race_rand(&seed);
    int sig = (x >> 20) & 1 ? SIGKILL : SIGTERM;
    switch (x % 16) {
      case 0: case 1: case 2: case 3: case 4: case 5: case 6: case 7:
        call_foreign(atomic_load(&live_slots[(x >> 8) % LIVE_SLOTS]), sig);
        live++;
        break;
      case 8: case 9: case 10: case 11:
        call_dead(atomic_load(&dead_slots[(x >> 8) % DEAD_SLOTS]), sig);
        dead++;
        break;
      case 12: case 13:
        call_dead(made_up(x >> 8), sig);
        dead++;
        break;
      case 14:
        foreign_spawn(atomic_load(&live_reactor[(x >> 8) % OWNERS]), 0, x >> 9);
        spawned++;
        break;
      default: {
        reactor_t *r = atomic_load(&dead_reactor[(x >> 8) % OWNERS]);
        if (r) {
          foreign_spawn(r, 1, x >> 9);
          spawned++;
        }
        break;
      }
    }
    calls++;
    if ((it & yield_mask) == 0) sched_yield();
  }
  atomic_fetch_add(&foreign_calls, calls);
  atomic_fetch_add(&foreign_live_calls, live);
  atomic_fetch_add(&foreign_dead_calls, dead);
  atomic_fetch_add(&foreign_spawn_calls, spawned);
  return NULL;
}

/* ---- process-wide state ------------------------------------------------------------------- */

static int count_fds(void) {
  DIR *d = opendir("/proc/self/fd");
  if (!d) return -1;
  int n = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL)
    if (e->d_name[0] != '.') n++;
  closedir(d);
  return n;
}

static void list_fds(void) {
  DIR *d = opendir("/proc/self/fd");
  if (!d) return;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    if (e->d_name[0] == '.') continue;
    char path[300], target[256];
    snprintf(path, sizeof path, "/proc/self/fd/%s", e->d_name);
    ssize_t len = readlink(path, target, sizeof target - 1);
    target[len > 0 ? len : 0] = 0;
    fprintf(stderr, "     fd %s -> %s\n", e->d_name, target);
  }
  closedir(d);
}

/* Children of this process still there (running or zombies), found through /proc: each is
 * printed; returns how many are not a sanitizer's symbolizer (TSan starts one, with two pipes, when
 * it must symbolize a stack, e.g. to match a suppression), counted in *helpers. */
static int leftover_children(int *helpers) {
  DIR *d = opendir("/proc");
  if (!d) return 1;
  int ours = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    if (e->d_name[0] < '1' || e->d_name[0] > '9') continue;
    char path[300], buf[512];
    snprintf(path, sizeof path, "/proc/%s/stat", e->d_name);
    FILE *f = fopen(path, "r");
    if (!f) continue;
    size_t len = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[len] = 0;
    char *open = strchr(buf, '('), *close = strrchr(buf, ')');
    char state = 0;
    int ppid = 0;
    if (!open || !close || sscanf(close + 1, " %c %d", &state, &ppid) != 2) continue;
    if (ppid != (int)getpid()) continue;
    *close = 0;
    if (strstr(open + 1, "symbolizer") || strstr(open + 1, "addr2line")) {
      (*helpers)++;
      continue;
    }
    fprintf(stderr, "   child %s (%s) state %c remains\n", e->d_name, open + 1, state);
    ours++;
  }
  closedir(d);
  return ours;
}

static void owner_body(race_crew_t *crew, int index) {
  tsan_sigchld(SIG_UNBLOCK);
  owner_round(crew, index);
  tsan_sigchld(SIG_BLOCK);
}

/* The kqueue backend on Linux is libkqueue's emulation. */
static int emulated_kqueue(void) {
#ifdef __linux__
  const char *backend = getenv("REACTOR_BACKEND");
  return backend && strcmp(backend, "kqueue") == 0;
#else
  return 0;
#endif
}

int main(void) {
  tu_watchdog(240);
  tu_banner_probe(PROG);
  const char *watch = getenv("REACTOR_CHILD_WATCH");
  printf("   child watch: %s\n", watch && *watch ? watch : "(default)");
  struct sigaction chld_before;
  REQUIRE(sigaction(SIGCHLD, NULL, &chld_before) == 0);
  int fds_before = count_fds();

  tsan_sigchld(SIG_BLOCK); /* inherited by every thread started below */
  reactor_process_protocol_init(&proto);
  proto.connection_made = on_made;
  proto.child_data_received = on_data;
  proto.child_connection_lost = on_lost;
  proto.process_exited = on_exited;
  proto.process_ended = on_ended;

  long rounds = tu_scale(400, 60);
  double t0 = tu_now();
  pthread_t foreign[FOREIGNERS];
  for (int i = 0; i < FOREIGNERS; i++)
    REQUIRE(pthread_create(&foreign[i], NULL, foreigner, (void *)(intptr_t)i) == 0);
  SECTION("owners spawn, end and free while foreign threads call the process functions");
  race_crew_t crew;
  race_crew_init(&crew, OWNERS, owner_body, NULL);
  for (long round = 0; round < rounds; round++) {
    race_crew_begin(&crew, round);
    race_crew_end(&crew);
  }
  race_crew_destroy(&crew);
  atomic_store(&quit, 1);
  for (int i = 0; i < FOREIGNERS; i++) pthread_join(foreign[i], NULL);

  printf("   %ld rounds x %d owners in %.1f s: %ld spawns (true %ld, exit3 %ld, pty %ld, cat %ld, "
         "sleep %ld), %ld killed and reaped by the test after reactor_free\n",
         rounds, OWNERS, tu_now() - t0, atomic_load(&spawns.accepted),
         atomic_load(&kind_counts[K_TRUE]), atomic_load(&kind_counts[K_EXIT3]),
         atomic_load(&kind_counts[K_PTY]), atomic_load(&kind_counts[K_CAT]),
         atomic_load(&kind_counts[K_SLEEP]), atomic_load(&killed_after_free));
  printf("   foreign threads: %ld iterations (%ld on live handles, %ld on dead or made-up ones, %ld "
         "spawns); %ld batches of calls from inside callbacks\n",
         atomic_load(&foreign_calls), atomic_load(&foreign_live_calls),
         atomic_load(&foreign_dead_calls), atomic_load(&foreign_spawn_calls),
         atomic_load(&inner_calls));
  printf("   on live slots: %ld WRONG_THREAD (handle live), %ld INVALID (ended or freed)\n",
         atomic_load(&seen_wrong_thread), atomic_load(&seen_invalid));

  RACE_CHECK_RELEASED(&spawns);
  CHECK_EQ(atomic_load(&foreign_spawns.accepted), 0);
  CHECK_EQ(atomic_load(&foreign_spawns.released), 0);
  CHECK_EQ(atomic_load(&off_owner), 0);
  CHECK_EQ(atomic_load(&order_bad), 0);
  CHECK_EQ(atomic_load(&status_bad), 0);
  CHECK_EQ(atomic_load(&pid_bad), 0);
  CHECK(atomic_load(&spawns.accepted) > 0);

  SECTION("no child, fd or SIGCHLD disposition left behind");
  int helpers = 0;
  int st = 0;
  pid_t w = waitpid(-1, &st, WNOHANG);
  if (!(w == -1 && errno == ECHILD)) {
    int ours = leftover_children(&helpers);
    if (ours > 0 || helpers == 0) {
      fprintf(stderr, "   %d child(ren) of ours remain (waitpid(-1, WNOHANG) -> %d)\n", ours, (int)w);
      atomic_fetch_add(&tu_failures, 1);
    }
  }
  int fds_after = count_fds();
  if (helpers > 0) {
    printf("   a sanitizer's symbolizer runs (%d): its pipes make the fd count moot\n", helpers);
  } else if (emulated_kqueue()) {
    /* libkqueue opens and closes fds of its own (per kqueue and process-wide) behind our back:
       only a leak (more fds than before) is ours. */
    CHECK(fds_after <= fds_before);
    if (fds_after > fds_before) list_fds();
  } else {
    CHECK_EQ(fds_after, fds_before);
    if (fds_after != fds_before) list_fds();
  }
  struct sigaction chld_after;
  REQUIRE(sigaction(SIGCHLD, NULL, &chld_after) == 0);
  CHECK(chld_after.sa_handler == chld_before.sa_handler);
  CHECK_EQ(chld_after.sa_flags & SA_SIGINFO, chld_before.sa_flags & SA_SIGINFO);
  return tu_finish(PROG);
}
