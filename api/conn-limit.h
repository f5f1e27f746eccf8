/* SPDX-License-Identifier: MIT */
/* conn-limit: who may hold an API connection (internal to api/). See conn-limit.c. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "util/util.h"

/* Unix socket and TCP: connections one client (a uid, an IPv4 address, an IPv6 /64) may
 * hold. Only uid 0 and the daemon's own uid are not counted per client: a member of the
 * socket's group is an operator but still one client. */
#define IOV_CONN_PER_CLIENT 32
/* Connections all non-operator clients of one listener share. */
#define IOV_CONN_SHARED 192
/* Unix socket: slots above the shared ones that only operators (uid 0, the daemon's own
 * uid, members of the socket's group by any of their groups) may take, so stop and kill
 * answer under any load. */
#define IOV_CONN_RESERVED 32
/* TCP: connections that have not yet shown the token, all clients together / one client. */
#define IOV_CONN_UNAUTHENTICATED            32
#define IOV_CONN_UNAUTHENTICATED_PER_CLIENT 8
/* Open streams (events, console follow): one client (uid 0 and the daemon's uid excepted,
 * as above) / all non-operator clients together / further ones only operators may open. */
#define IOV_CONN_STREAMS_PER_CLIENT 8
#define IOV_CONN_STREAMS            64
#define IOV_CONN_STREAMS_RESERVED   16
/* A client must finish a request's headers this long after connecting (or after its
 * previous request ended) or is cut off. */
#define IOV_CONN_HEADER_TIMEOUT_SEC 5
/* Every slot a listener can fill: MHD's own limit. */
#define IOV_CONN_MAX (IOV_CONN_SHARED + IOV_CONN_RESERVED)

struct iov_conn_limit;

/* listen_fd is taken over (closed by conn_limit_stop). gid: the Unix socket's group. */
int conn_limit_new(int listen_fd, bool tcp, gid_t gid, struct iov_conn_limit **ret);
/* Accept in a thread of its own; each admitted socket is handed to add(). */
int conn_limit_start(struct iov_conn_limit *l, int (*add)(void *userdata, int fd), void *userdata);
/* Stops accepting; connections already admitted stay until conn_limit_free. */
void conn_limit_stop(struct iov_conn_limit *l);
void conn_limit_free(struct iov_conn_limit *l);

/* The connection's headers arrived; authorized: the token was right (always on Unix). */
void conn_limit_headers_done(struct iov_conn_limit *l, int fd, bool authorized);
/* The request ended: a next one on the connection has the header deadline again. */
void conn_limit_request_done(struct iov_conn_limit *l, int fd);
/* 0, or -EUSERS (the client has its streams) or -EBUSY (every stream slot is taken). */
int conn_limit_stream_begin(struct iov_conn_limit *l, int fd);
/* Whether the stream's client went away (its socket was hung up); the stream then ends at
 * its next read instead of its next write. */
bool conn_limit_peer_gone(struct iov_conn_limit *l, int fd);
/* The socket is being closed by MHD. */
void conn_limit_release(struct iov_conn_limit *l, int fd);
