/*
 * echo_server.c — a TCP echo server on libreactor's transports (Twisted's Echo protocol in C).
 *
 *   echo_server PORT     serve on PORT (all IPv4 addresses) until SIGINT/SIGTERM
 *   echo_server          self-test: serve on a free port of 127.0.0.1, connect three clients of its
 *                        own (reactor_connect_tcp), check their echoes, stop (how `make test` runs it)
 *
 * Shows reactor_listen_tcp with a build_protocol that gives each connection its own state,
 * data_received → reactor_transport_write, connection_lost, and stopping the port.
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
            fprintf(stderr, "echo_server: %s failed: %s (%d)\n", #call,                   \
                    reactor_strerror(check_rc_), check_rc_);                              \
            exit(1);                                                                      \
        }                                                                                 \
    } while (0)

/* ---- the server ------------------------------------------------------------------------------ */

typedef struct {
    long bytes;
    char peer[300];
} connection_t;

static long connections_served;

static int build(reactor_port_t *port, const reactor_address_t *peer, void *port_ud, void **conn_ud,
                 reactor_release_fn *conn_release) {
    (void)port;
    (void)port_ud;
    connection_t *c = calloc(1, sizeof *c);
    if (!c) return REACTOR_E_NOMEM; /* refuse: the library closes the socket */
    reactor_address_format(peer, c->peer, sizeof c->peer);
    *conn_ud = c;
    *conn_release = free; /* runs after connection_lost */
    return REACTOR_OK;
}

static void echo(reactor_transport_t *t, const uint8_t *data, size_t len, void *ud) {
    ((connection_t *)ud)->bytes += (long)len;
    reactor_transport_write(t, data, len); /* copied; never blocks */
}

static void lost(reactor_transport_t *t, int reason, void *ud) {
    (void)t;
    connection_t *c = ud;
    connections_served++;
    printf("echo_server: %s echoed %ld bytes (%s)\n", c->peer, c->bytes,
           reason == REACTOR_OK ? "closed cleanly" : reactor_strerror(reason));
}

/* ---- the self-test's clients --------------------------------------------------------------------- */

#define CLIENTS 3
static const char MESSAGE[] = "hello, echo";
static int clients_done, clients_ok;

typedef struct {
    char got[64];
    size_t len;
} client_t;

static void client_made(reactor_transport_t *t, void *ud) {
    (void)ud;
    reactor_transport_write(t, MESSAGE, sizeof MESSAGE - 1);
}

static void client_data(reactor_transport_t *t, const uint8_t *data, size_t len, void *ud) {
    client_t *c = ud;
    if (c->len + len > sizeof c->got) len = sizeof c->got - c->len;
    memcpy(c->got + c->len, data, len);
    c->len += len;
    if (c->len >= sizeof MESSAGE - 1) reactor_transport_lose_connection(t);
}

static reactor_t *reactor;
static reactor_port_t *port;

static void client_lost(reactor_transport_t *t, int reason, void *ud) {
    (void)t;
    client_t *c = ud;
    if (reason == REACTOR_OK && c->len == sizeof MESSAGE - 1 && memcmp(c->got, MESSAGE, c->len) == 0)
        clients_ok++;
    if (++clients_done == CLIENTS) {
        reactor_port_stop_listening(port);
        reactor_stop(reactor);
    }
}

static void client_failed(reactor_connector_t *c, int reason, void *ud) {
    (void)c;
    (void)ud;
    fprintf(stderr, "echo_server: a self-test client failed: %s\n", reactor_strerror(reason));
    reactor_stop(reactor);
}

int main(int argc, char **argv) {
    int self_test = argc < 2;
    uint16_t port_number = self_test ? 0 : (uint16_t)atoi(argv[1]);
    CHECK(reactor_new(NULL, &reactor));

    reactor_protocol_t proto;
    reactor_protocol_init(&proto);
    proto.data_received = echo;
    proto.connection_lost = lost;
    CHECK(reactor_listen_tcp(reactor, port_number, self_test ? "127.0.0.1" : NULL, NULL, &proto, build,
                             NULL, NULL, &port));
    reactor_address_t host;
    CHECK(reactor_port_get_host(port, &host));
    char text[300];
    reactor_address_format(&host, text, sizeof text);
    printf("echo_server: listening on %s\n", text);

    client_t clients[CLIENTS];
    memset(clients, 0, sizeof clients);
    if (self_test) {
        reactor_protocol_t client;
        reactor_protocol_init(&client);
        client.connection_made = client_made;
        client.data_received = client_data;
        client.connection_lost = client_lost;
        client.connection_failed = client_failed;
        for (int i = 0; i < CLIENTS; i++)
            CHECK(reactor_connect_tcp(reactor, "127.0.0.1", host.port, NULL, &client, &clients[i], NULL,
                                      NULL));
    }
    CHECK(reactor_run(reactor));
    CHECK(reactor_free(reactor));
    if (self_test) {
        printf("echo_server: %d of %d clients got their echo back\n", clients_ok, CLIENTS);
        return clients_ok == CLIENTS && connections_served == CLIENTS ? 0 : 1;
    }
    return 0;
}
