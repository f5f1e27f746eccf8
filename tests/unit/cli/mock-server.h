/* SPDX-License-Identifier: MIT */
/*
 * A canned HTTP server for iovctl's unit tests (libmicrohttpd on a Unix socket in a
 * temporary directory, or on 127.0.0.1): answers each method + path (+ query) with a
 * fixed status and body, and records every request so a test can check exactly what
 * iovctl sent. Paths without a canned answer get 404 in iovd's error shape.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#define MOCK_MAX_ROUTES   32
#define MOCK_MAX_REQUESTS 32

struct mock_request {
        char *method;
        char *url;  /* path plus "?k=v&..." (decoded values, in arrival order) */
        char *body; /* "" when none */
        char *authorization;
        char *content_type;
};

struct mock_route {
        const char *method;
        const char *url;
        unsigned status;
        const char *body;
        const char *content_type;
};

struct mock_server {
        struct MHD_Daemon *mhd;
        char dir[64];
        char socket_path[128];
        char url[64]; /* "http://127.0.0.1:PORT" for a TCP server */
        struct mock_route routes[MOCK_MAX_ROUTES];
        size_t n_routes;
        struct mock_request requests[MOCK_MAX_REQUESTS];
        size_t n_requests;
};

/* tcp: listen on 127.0.0.1 with a kernel-chosen port instead of a Unix socket. */
int mock_server_start(struct mock_server *s, bool tcp);
void mock_server_stop(struct mock_server *s);
/* content_type NULL means application/json. */
void mock_server_add(struct mock_server *s, const char *method, const char *url, unsigned status,
                     const char *body, const char *content_type);
/* The last request received, or NULL. */
const struct mock_request *mock_server_last(struct mock_server *s);
