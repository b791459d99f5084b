/*
 * echo_client.c — a TCP echo client on libreactor's connectors and transports.
 *
 *   echo_client HOST PORT   send each line of stdin to an echo server and print what comes back
 *   echo_client             self-test: start a tiny echo server of its own on 127.0.0.1, send it
 *                           1 MiB in one write, check the echo byte for byte (how `make test` runs it)
 *
 * Shows reactor_connect_tcp (names are resolved on the thread pool), connection_made /
 * connection_failed, a half-close (reactor_transport_lose_write_connection) so the server sees the
 * end of the input while the echo still comes back, and the connector's release.
 */
#define _POSIX_C_SOURCE 200809L

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <reactor.h>

#define CHECK(call)                                                                       \
    do {                                                                                  \
        int check_rc_ = (call);                                                           \
        if (check_rc_ != REACTOR_OK) {                                                    \
            fprintf(stderr, "echo_client: %s failed: %s (%d)\n", #call,                   \
                    reactor_strerror(check_rc_), check_rc_);                              \
            exit(1);                                                                      \
        }                                                                                 \
    } while (0)

static reactor_t *reactor;
static int exit_code = 1;

/* ---- the client ----------------------------------------------------------------------------------- */

typedef struct {
    unsigned char *sent;
    size_t sent_len;
    unsigned char *got;
    size_t got_len;
    int interactive;
} session_t;

static void made(reactor_transport_t *t, void *ud) {
    session_t *s = ud;
    if (s->interactive) {
        char line[4096];
        while (fgets(line, sizeof line, stdin)) reactor_transport_write(t, line, strlen(line));
    } else {
        reactor_transport_write(t, s->sent, s->sent_len);
    }
    /* half-close: no more input; the echo of what was sent still comes back */
    reactor_transport_lose_write_connection(t);
}

static void data(reactor_transport_t *t, const uint8_t *bytes, size_t len, void *ud) {
    (void)t;
    session_t *s = ud;
    if (s->interactive) {
        fwrite(bytes, 1, len, stdout);
        return;
    }
    if (s->got_len + len <= s->sent_len) memcpy(s->got + s->got_len, bytes, len);
    s->got_len += len;
}

static void lost(reactor_transport_t *t, int reason, void *ud) {
    (void)t;
    session_t *s = ud;
    if (s->interactive) {
        exit_code = reason == REACTOR_OK ? 0 : 1;
    } else {
        int same = s->got_len == s->sent_len && memcmp(s->got, s->sent, s->sent_len) == 0;
        printf("echo_client: %zu of %zu bytes came back%s\n", s->got_len, s->sent_len,
               same ? ", identical" : ", DIFFERENT");
        exit_code = same && reason == REACTOR_OK ? 0 : 1;
    }
    reactor_stop(reactor);
}

static void failed(reactor_connector_t *c, int reason, void *ud) {
    (void)c;
    (void)ud;
    fprintf(stderr, "echo_client: could not connect: %s\n", reactor_strerror(reason));
    reactor_stop(reactor);
}

static void released(void *ud) {
    (void)ud;
    printf("echo_client: the connector released its data\n");
}

/* ---- the self-test's server: echoes, and closes once the client half-closed -------------------- */

static void server_echo(reactor_transport_t *t, const uint8_t *bytes, size_t len, void *ud) {
    (void)ud;
    reactor_transport_write(t, bytes, len);
}

static void server_read_lost(reactor_transport_t *t, void *ud) {
    (void)ud;
    reactor_transport_lose_connection(t); /* flushes the rest of the echo first */
}

int main(int argc, char **argv) {
    CHECK(reactor_new(NULL, &reactor));
    session_t s;
    memset(&s, 0, sizeof s);
    const char *host = "127.0.0.1";
    uint16_t port = 0;
    if (argc >= 3) {
        host = argv[1];
        port = (uint16_t)atoi(argv[2]);
        s.interactive = 1;
    } else {
        reactor_protocol_t server;
        reactor_protocol_init(&server);
        server.data_received = server_echo;
        server.read_connection_lost = server_read_lost; /* half-close aware */
        reactor_port_t *listening;
        CHECK(reactor_listen_tcp(reactor, 0, "127.0.0.1", NULL, &server, NULL, NULL, NULL, &listening));
        reactor_address_t a;
        CHECK(reactor_port_get_host(listening, &a));
        port = a.port;
        s.sent_len = 1 << 20;
        s.sent = malloc(s.sent_len);
        s.got = malloc(s.sent_len);
        if (!s.sent || !s.got) return 1;
        for (size_t i = 0; i < s.sent_len; i++) s.sent[i] = (unsigned char)(i * 31 + (i >> 11));
    }
    reactor_protocol_t proto;
    reactor_protocol_init(&proto);
    proto.connection_made = made;
    proto.data_received = data;
    proto.connection_lost = lost;
    proto.connection_failed = failed;
    proto.read_connection_lost = NULL; /* not half-close aware: the server's FIN ends it */
    CHECK(reactor_connect_tcp(reactor, host, port, NULL, &proto, &s, released, NULL));
    CHECK(reactor_run(reactor));
    CHECK(reactor_free(reactor));
    free(s.sent);
    free(s.got);
    return exit_code;
}
