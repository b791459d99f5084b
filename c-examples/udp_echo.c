/*
 * udp_echo.c — a UDP echo server on libreactor's datagram ports (Twisted's UDP Echo in C).
 *
 *   udp_echo PORT     echo every datagram back to its sender on PORT (all IPv4 addresses) until
 *                     SIGINT/SIGTERM
 *   udp_echo          self-test: echo on a free port of 127.0.0.1, send datagrams from a second,
 *                     connected port, check the echoes, stop both (how `make test` runs it)
 *
 * Shows reactor_listen_udp, datagram_received → reactor_udp_write back to `from`, a connected port
 * (reactor_udp_connect, writes with a NULL destination), start_protocol / stop_protocol and
 * reactor_udp_stop_listening.
 */
#define _POSIX_C_SOURCE 200809L

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <reactor.h>

#define CHECK(call)                                                                       \
    do {                                                                                  \
        int check_rc_ = (call);                                                           \
        if (check_rc_ != REACTOR_OK) {                                                    \
            fprintf(stderr, "udp_echo: %s failed: %s (%d)\n", #call,                      \
                    reactor_strerror(check_rc_), check_rc_);                              \
            exit(1);                                                                      \
        }                                                                                 \
    } while (0)

static reactor_t *reactor;

/* ---- the server ------------------------------------------------------------------------------ */

static long datagrams_echoed;

static void echo(reactor_udp_t *u, const uint8_t *data, size_t len, const reactor_address_t *from,
                 void *ud) {
    (void)ud;
    /* `from` is numeric: its host and port address the reply. A full socket buffer drops the reply
       (UDP promises nothing more), so the status is only reported. */
    int rc = reactor_udp_write(u, data, len, from->host, from->port);
    if (rc != REACTOR_OK) fprintf(stderr, "udp_echo: reply dropped: %s\n", reactor_strerror(rc));
    datagrams_echoed++;
}

static void server_stopped(reactor_udp_t *u, void *ud) {
    (void)u;
    (void)ud;
    printf("udp_echo: server stopped after %ld datagrams\n", datagrams_echoed);
}

/* ---- the self-test's client ------------------------------------------------------------------ */

#define DATAGRAMS 5
static reactor_udp_t *server, *client;
static int echoes;

static void client_started(reactor_udp_t *u, void *ud) {
    (void)ud;
    for (int i = 0; i < DATAGRAMS; i++) {
        char message[32];
        int n = snprintf(message, sizeof message, "datagram %d", i);
        CHECK(reactor_udp_write(u, message, (size_t)n, NULL, 0)); /* NULL: the connected peer */
    }
}

static void client_received(reactor_udp_t *u, const uint8_t *data, size_t len,
                            const reactor_address_t *from, void *ud) {
    (void)u;
    (void)ud;
    char text[64];
    reactor_address_format(from, text, sizeof text);
    printf("udp_echo: echo from %s: %.*s\n", text, (int)len, (const char *)data);
    if (++echoes == DATAGRAMS) {
        /* both stop now; their stop_protocol runs on a later pass, then reactor_stop's shutdown */
        reactor_udp_stop_listening(client);
        reactor_udp_stop_listening(server);
        reactor_stop(reactor);
    }
}

static void give_up(reactor_t *r, void *ud) {
    (void)r;
    (void)ud;
    fprintf(stderr, "udp_echo: no echo within 5 s\n");
    reactor_stop(reactor);
}

int main(int argc, char **argv) {
    int self_test = argc < 2;
    uint16_t port_number = self_test ? 0 : (uint16_t)atoi(argv[1]);
    CHECK(reactor_new(NULL, &reactor));

    reactor_datagram_protocol_t echo_protocol;
    reactor_datagram_protocol_init(&echo_protocol);
    echo_protocol.datagram_received = echo;
    echo_protocol.stop_protocol = server_stopped;
    CHECK(reactor_listen_udp(reactor, port_number, self_test ? "127.0.0.1" : NULL, NULL, &echo_protocol,
                             NULL, NULL, &server));
    reactor_address_t host;
    CHECK(reactor_udp_get_host(server, &host));
    char text[300];
    reactor_address_format(&host, text, sizeof text);
    printf("udp_echo: echoing on %s\n", text);

    if (self_test) {
        reactor_datagram_protocol_t client_protocol;
        reactor_datagram_protocol_init(&client_protocol);
        client_protocol.start_protocol = client_started;
        client_protocol.datagram_received = client_received;
        CHECK(reactor_listen_udp(reactor, 0, "127.0.0.1", NULL, &client_protocol, NULL, NULL, &client));
        CHECK(reactor_udp_connect(client, "127.0.0.1", host.port));
        CHECK(reactor_call_later(reactor, 5.0, give_up, NULL, NULL, NULL));
    }
    CHECK(reactor_run(reactor));
    CHECK(reactor_free(reactor));
    if (self_test) {
        if (echoes != DATAGRAMS) {
            fprintf(stderr, "udp_echo: self-test failed: %d of %d echoes\n", echoes, DATAGRAMS);
            return 1;
        }
        printf("udp_echo: self-test passed\n");
    }
    return 0;
}
