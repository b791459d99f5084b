/*
 * spawn.c — child processes on libreactor (Twisted's spawnProcess and ProcessProtocol in C).
 *
 *   spawn PROGRAM [ARG...]   run PROGRAM (searched in PATH) with our environment, copy its stdout and
 *                            stderr to ours, report how it ended; exit 0 if it exited with status 0
 *   spawn                    self-test: three children at once, each checked (how `make test` runs it):
 *                              `tr a-z A-Z`  gets a line on its stdin, which we then close; we read
 *                                            the line back in upper case and it exits 0
 *                              `sh -c ...`   writes to its stderr and exits with status 3
 *                              `sleep 30`    is killed with SIGTERM by reactor_process_signal
 *
 * Shows reactor_spawn_process with the default child-fd map {0: WRITE, 1: READ, 2: READ} (two pipes
 * from the child, one to it), reactor_process_write_to_child, reactor_process_close_child_fd,
 * child_data_received / child_connection_lost per pipe, reactor_process_signal, and the two endings:
 * process_exited (the child is reaped) and process_ended (reaped and every pipe closed), with their
 * reason, exit code and signal.
 */
#define _POSIX_C_SOURCE 200809L

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <reactor.h>

#define CHECK(call)                                                                       \
    do {                                                                                  \
        int check_rc_ = (call);                                                           \
        if (check_rc_ != REACTOR_OK) {                                                    \
            fprintf(stderr, "spawn: %s failed: %s (%d)\n", #call,                         \
                    reactor_strerror(check_rc_), check_rc_);                              \
            exit(1);                                                                      \
        }                                                                                 \
    } while (0)

static reactor_t *reactor;

/* One child: what we give it, what we expect of it, and what we saw. The user data of its
 * process protocol. */
typedef struct {
    const char *name;
    const char *input;      /* written to its stdin, which is then closed */
    int kill_with;          /* a signal sent to it as soon as it runs (0: none) */
    int copy_output;        /* 1: copy its output to ours as it comes (command mode) */
    /* expected ending */
    int want_reason, want_exit_code, want_signal;
    const char *want_out, *want_err;
    /* seen */
    int pid;
    char out[256], err[256];
    size_t out_len, err_len;
    int pipes_lost;         /* child_connection_lost calls: one per pipe (0, 1 and 2) */
    int exited;             /* process_exited was called (before process_ended) */
    int reason, exit_code, term_signal;
    int ended, ok;
} child_t;

static int children_running;

static void made(reactor_process_t *p, void *ud) {
    child_t *c = ud;
    c->pid = reactor_process_pid(p); /* > 0 until process_ended */
    printf("spawn: %s started, pid %d\n", c->name, c->pid);
    /* Writes are buffered like a transport's (never blocking); close_child_fd flushes what is
       buffered, then closes the pipe: the child reads the line, then end of file. */
    if (c->input) CHECK(reactor_process_write_to_child(p, 0, c->input, strlen(c->input)));
    CHECK(reactor_process_close_child_fd(p, 0));
    if (c->kill_with) CHECK(reactor_process_signal(p, c->kill_with));
}

static void data(reactor_process_t *p, int child_fd, const uint8_t *bytes, size_t len, void *ud) {
    (void)p;
    child_t *c = ud;
    if (c->copy_output) fwrite(bytes, 1, len, child_fd == 2 ? stderr : stdout);
    /* `bytes` is valid only during the call: keep a copy (bounded; the tests' outputs are small) */
    char *buf = child_fd == 2 ? c->err : c->out;
    size_t *used = child_fd == 2 ? &c->err_len : &c->out_len;
    if (len > sizeof c->out - 1 - *used) len = sizeof c->out - 1 - *used;
    memcpy(buf + *used, bytes, len);
    *used += len;
}

static void pipe_lost(reactor_process_t *p, int child_fd, void *ud) {
    (void)p;
    child_t *c = ud;
    c->pipes_lost++; /* fd 0: we closed it; fds 1 and 2: the child closed them (exit closes all) */
    if (!c->copy_output) printf("spawn: %s: pipe to its fd %d closed\n", c->name, child_fd);
}

static const char *describe(int reason, int exit_code, int term_signal, char *text, size_t size) {
    if (reason == REACTOR_OK)
        snprintf(text, size, "exited with status 0");
    else if (term_signal)
        snprintf(text, size, "killed by signal %d (%s)", term_signal, reactor_strerror(reason));
    else
        snprintf(text, size, "exited with status %d (%s)", exit_code, reactor_strerror(reason));
    return text;
}

/* The child was reaped; its pipes may still be open (a grandchild could hold them). */
static void exited(reactor_process_t *p, int reason, int exit_code, int term_signal, void *ud) {
    (void)p;
    child_t *c = ud;
    char text[96];
    printf("spawn: %s %s\n", c->name, describe(reason, exit_code, term_signal, text, sizeof text));
    c->exited = 1;
    c->reason = reason;
    c->exit_code = exit_code;
    c->term_signal = term_signal;
}

/* Reaped and every pipe closed: the last call; the handle dies when this returns. */
static void ended(reactor_process_t *p, int reason, int exit_code, int term_signal, void *ud) {
    (void)p;
    child_t *c = ud;
    c->ended = 1;
    c->ok = c->exited && reason == c->reason && exit_code == c->exit_code &&
            term_signal == c->term_signal && c->pipes_lost == 3;
    if (!c->copy_output) {
        c->ok = c->ok && reason == c->want_reason && exit_code == c->want_exit_code &&
                term_signal == c->want_signal && strcmp(c->out, c->want_out) == 0 &&
                strcmp(c->err, c->want_err) == 0;
        printf("spawn: %s ended; stdout \"%.*s\", stderr \"%.*s\": %s\n", c->name,
               (int)strcspn(c->out, "\n"), c->out, (int)strcspn(c->err, "\n"), c->err,
               c->ok ? "as expected" : "NOT as expected");
    }
    if (--children_running == 0) reactor_stop(reactor);
}

static void give_up(reactor_t *r, void *ud) {
    (void)r;
    (void)ud;
    fprintf(stderr, "spawn: the children did not end within 10 s\n");
    reactor_stop(reactor);
}

int main(int argc, char **argv) {
    int self_test = argc < 2;
    CHECK(reactor_new(NULL, &reactor));

    reactor_process_protocol_t proto;
    reactor_process_protocol_init(&proto);
    proto.connection_made = made;
    proto.child_data_received = data;
    proto.child_connection_lost = pipe_lost;
    proto.process_exited = exited;
    proto.process_ended = ended;

    /* The defaults: an empty environment (Twisted's), our directory, fds {0: WRITE, 1: READ,
       2: READ}; nothing else is open in the child. */
    reactor_spawn_options_t opts;
    reactor_spawn_options_init(&opts);

    child_t command = {.name = self_test ? "" : argv[1], .copy_output = 1};
    static const char *const tr_argv[] = {"tr", "a-z", "A-Z", NULL};
    static const char *const sh_argv[] = {"sh", "-c", "echo oops >&2; exit 3", NULL};
    static const char *const sleep_argv[] = {"sleep", "30", NULL};
    child_t children[] = {
        {.name = "tr", .input = "hello, child\n", .want_reason = REACTOR_OK,
         .want_out = "HELLO, CHILD\n", .want_err = ""},
        {.name = "sh", .want_reason = REACTOR_E_PROCESS_TERMINATED, .want_exit_code = 3,
         .want_out = "", .want_err = "oops\n"},
        {.name = "sleep", .kill_with = SIGTERM, .want_reason = REACTOR_E_PROCESS_TERMINATED,
         .want_exit_code = -1, .want_signal = SIGTERM, .want_out = "", .want_err = ""},
    };
    const char *const *argvs[] = {tr_argv, sh_argv, sleep_argv};
    int count = self_test ? 3 : 1;

    if (self_test) {
        for (int i = 0; i < count; i++) {
            /* A program without a '/' is searched in our PATH; argv[0] is passed as given. A missing
               program would fail here, with REACTOR_E_OS(ENOENT), and nothing would be called. */
            CHECK(reactor_spawn_process(reactor, argvs[i][0], argvs[i], &opts, &proto, &children[i],
                                        NULL, NULL));
        }
        CHECK(reactor_call_later(reactor, 10.0, give_up, NULL, NULL, NULL));
    } else {
        opts.inherit_env = 1;
        int rc = reactor_spawn_process(reactor, argv[1], (const char *const *)argv + 1, &opts, &proto,
                                       &command, NULL, NULL);
        if (rc != REACTOR_OK) {
            fprintf(stderr, "spawn: cannot run %s: %s\n", argv[1], reactor_strerror(rc));
            return 1;
        }
    }
    children_running = count;
    CHECK(reactor_run(reactor));
    CHECK(reactor_free(reactor));

    if (!self_test) {
        char text[96];
        fprintf(stderr, "spawn: %s %s\n", argv[1],
                describe(command.reason, command.exit_code, command.term_signal, text, sizeof text));
        return command.ended && command.ok && command.reason == REACTOR_OK ? 0 : 1;
    }
    int passed = 0;
    for (int i = 0; i < count; i++) passed += children[i].ended && children[i].ok;
    printf("spawn: %d of %d children ended as expected\n", passed, count);
    if (passed != count) {
        fprintf(stderr, "spawn: self-test failed\n");
        return 1;
    }
    printf("spawn: self-test passed\n");
    return 0;
}
