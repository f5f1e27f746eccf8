/* SPDX-License-Identifier: MIT */
/*
 * state: iovd's durable state under --state-dir.
 *
 * Each collection ("pools", "allocations", later "vms") is one JSON document,
 * STATE_DIR/KIND.json:
 *
 *   {"format": "iovd-state", "version": 1, "kind": "pools", "items": [ ... ]}
 *
 * A save replaces the whole document atomically (temporary file, fsync, rename, fsync of
 * the directory), so after a crash a reader finds the old or the new document, never a
 * mix; callers save before they answer the request that changed the state.
 *
 * A document that cannot be read, is not JSON, has the wrong shape or a version newer
 * than this daemon understands is reported with a message naming the file, and is never
 * rewritten: the daemon refuses to start and leaves the evidence to the administrator.
 */
#pragma once

#include <json-c/json.h>

#define IOV_STATE_FORMAT  "iovd-state"
#define IOV_STATE_VERSION 1
/* A state document is small (a few hundred bytes per item); anything bigger is not ours. */
#define IOV_STATE_MAX_SIZE (64u * 1024 * 1024)

struct iov_state;

/* Use dir (created with mode 0700 when missing) for the state documents; temporary files
 * an interrupted save left there are removed. */
int state_open(const char *dir, struct iov_state **ret);
void state_free(struct iov_state *state);

const char *state_dir(const struct iov_state *state);

/* STATE_DIR/KIND.json; NULL on OOM. kind is a program constant, never request input. */
char *state_path(const struct iov_state *state, const char *kind);

/* Load the items of a collection as a new JSON array (an empty one when the document does
 * not exist yet). -EBADMSG: not a state document of this kind (not JSON, trailing data,
 * wrong format, kind or shape); -EPROTONOSUPPORT: written by a newer version; other
 * negative errno: the file could not be read. On failure ret_error (may be NULL) gets a
 * message naming the file and what is wrong with it. */
int state_load(const struct iov_state *state, const char *kind, struct json_object **ret_items,
               char **ret_error);

/* Durably replace the collection with items (a JSON array, not consumed). */
int state_save(const struct iov_state *state, const char *kind, struct json_object *items);
