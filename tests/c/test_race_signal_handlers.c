/*
 * test_race_signal_handlers.c - host signal handlers (API.md §8.2) on several reactors in several
 * threads at once, while another thread keeps sending the signals to the process.
 *
 * Dispositions are process-wide: every reactor's first handler of a signal may install the
 * library's, every last one may restore the previous one, and the signal handler itself writes the
 * wakers of the reactors that watch while they are being freed. Per round, 3 crew threads each
 * create a reactor, add and remove handlers for SIGUSR1/SIGUSR2 (raising them in between and
 * iterating), and free the reactor with a handler still installed on odd rounds; a fourth thread
 * sends SIGUSR1/SIGUSR2 to the process all the while.
 * Checks: every call returns OK (or NOT_FOUND for a second remove); every handler is released
 * exactly once (heap user data: a double release is a double free, a missing one a leak); handlers
 * run only on their reactor's thread; after the last reactor is gone both custom dispositions are
 * back and still receive the signals. 4000 rounds (40 under valgrind).
 */
#include "race_util.h"

static const char *PROG = "test_race_signal_handlers";

#define WORKERS 3

static atomic_int custom_hits;
static void custom_handler(int sig) {
  (void)sig;
  atomic_fetch_add(&custom_hits, 1);
}

static void install_custom(int sig) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = custom_handler;
  sa.sa_flags = SA_RESTART;
  sigemptyset(&sa.sa_mask);
  REQUIRE(sigaction(sig, &sa, NULL) == 0);
}

static int custom_installed(int sig) {
  struct sigaction cur;
  REQUIRE(sigaction(sig, NULL, &cur) == 0);
  return !(cur.sa_flags & SA_SIGINFO) && cur.sa_handler == custom_handler;
}

typedef struct {
  pthread_t owner;
  atomic_int *releases;
  atomic_int calls;
} handler_ud_t;

static atomic_int releases, added, wrong_thread_calls;

static void on_signal(reactor_t *r, int signum, void *ud) {
  (void)r;
  (void)signum;
  handler_ud_t *h = ud;
  if (!pthread_equal(h->owner, pthread_self())) atomic_fetch_add(&wrong_thread_calls, 1);
  atomic_fetch_add(&h->calls, 1);
}

static void release_handler(void *ud) {
  handler_ud_t *h = ud;
  atomic_fetch_add(h->releases, 1);
  free(h);
}

static uint64_t add_handler(reactor_t *r, int sig) {
  handler_ud_t *h = calloc(1, sizeof *h);
  REQUIRE(h != NULL);
  h->owner = pthread_self();
  h->releases = &releases;
  uint64_t id = 0;
  int rc = reactor_add_signal_handler(r, sig, on_signal, h, release_handler, &id);
  if (rc != REACTOR_OK) {
    fprintf(stderr, "   add_signal_handler: %s\n", tu_status(rc));
    atomic_fetch_add(&tu_failures, 1);
    free(h);
    return 0;
  }
  atomic_fetch_add(&added, 1);
  return id;
}

static void worker(race_crew_t *crew, int index) {
  uint64_t seed = race_seed(crew->round, index);
  reactor_t *r = tu_new_reactor();
  int sig = (race_rand(&seed) & 1) ? SIGUSR1 : SIGUSR2;
  uint64_t a = add_handler(r, sig);
  uint64_t b = add_handler(r, sig == SIGUSR1 ? SIGUSR2 : SIGUSR1);
  race_spin((unsigned)(race_rand(&seed) % 2000));
  if (race_rand(&seed) & 1) raise(sig);
  CHECK_OK(reactor_iterate(r, 0.0));
  CHECK_OK(reactor_remove_signal_handler(r, a));
  CHECK_RC(reactor_remove_signal_handler(r, a), REACTOR_E_NOT_FOUND);
  if (race_rand(&seed) & 1) raise(sig);
  CHECK_OK(reactor_iterate(r, 0.0));
  if (crew->round % 2 == 0) CHECK_OK(reactor_remove_signal_handler(r, b));
  /* odd rounds: freed with `b` still installed */
  CHECK_OK(reactor_free(r));
}

static atomic_int sender_quit;
static void *sender(void *arg) {
  (void)arg;
  long n = 0;
  while (!atomic_load(&sender_quit)) {
    kill(getpid(), (n++ & 1) ? SIGUSR1 : SIGUSR2);
    race_spin(500);
  }
  return NULL;
}

int main(void) {
  tu_watchdog(300);
  tu_banner_probe(PROG);
  install_custom(SIGUSR1);
  install_custom(SIGUSR2);
  long rounds = tu_scale(4000, 40);
  pthread_t send_thread;
  REQUIRE(pthread_create(&send_thread, NULL, sender, NULL) == 0);
  race_crew_t crew;
  race_crew_init(&crew, WORKERS, worker, NULL);
  for (long round = 0; round < rounds; round++) {
    race_crew_begin(&crew, round);
    race_crew_end(&crew);
  }
  race_crew_destroy(&crew);
  atomic_store(&sender_quit, 1);
  pthread_join(send_thread, NULL);

  printf("   %ld rounds, %d handlers added, %d released\n", rounds, atomic_load(&added),
         atomic_load(&releases));
  CHECK_EQ(atomic_load(&releases), atomic_load(&added));
  CHECK_EQ(atomic_load(&wrong_thread_calls), 0);
  CHECK(custom_installed(SIGUSR1));
  CHECK(custom_installed(SIGUSR2));
  int before = atomic_load(&custom_hits);
  raise(SIGUSR1);
  raise(SIGUSR2);
  CHECK_EQ(atomic_load(&custom_hits), before + 2);
  return tu_finish(PROG);
}
