/* SPDX-License-Identifier: MIT */
/* listen: sockets for the API server (internal to api/). */
#pragma once

#include <stdbool.h>

#include "util/util.h"

/* "unix:/abs/path" or "tcp:HOST:PORT"; ret_rest points into listen. -EINVAL otherwise. */
int api_listen_parse(const char *listen, bool *ret_tcp, const char **ret_rest);
/* A listening Unix socket of mode 0660; -EADDRINUSE when another process listens there,
 * -EEXIST when the path is something other than a socket. */
int api_listen_unix(const char *path, int *ret_fd);
/* A listening TCP socket on a numeric host and port ("127.0.0.1:8080", "[::1]:8080"). */
int api_listen_tcp(const char *spec, int *ret_fd);
