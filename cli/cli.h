/* SPDX-License-Identifier: MIT */
/*
 * cli: iovctl, a thin client of iovd's REST API. The pieces are kept apart so the unit
 * tests can drive each one: option parsing (args.c), HTTP over the Unix socket or TCP
 * (transport.c), tables and JSON output (output.c), the command tables (commands-*.c),
 * which only turn options into requests and responses into output, and the helper of the
 * shell completions (complete.c), which reads those tables.
 *
 * Exit status is the contract with scripts: 0 ok, 1 the API answered with an error,
 * 2 usage error (nothing was sent), 3 the daemon could not be reached.
 */
#pragma once

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "util/json.h"
#include "util/util.h"

enum iov_cli_exit {
        IOV_CLI_EXIT_OK = 0,
        IOV_CLI_EXIT_API = 1,
        IOV_CLI_EXIT_USAGE = 2,
        IOV_CLI_EXIT_UNREACHABLE = 3,
};

#define IOV_CLI_DEFAULT_SOCKET "/run/iovd/iovd.sock"

struct iov_cli;
struct iov_cli_terminal;

/* ---- options -------------------------------------------------------------------------- */

struct iov_cli_option_spec {
        const char *name;       /* long name without "--"; NULL ends a table */
        char short_name;        /* 0 when there is none */
        const char *value_name; /* NULL for a flag, else the value's name in help ("ADDR") */
        const char *help;
};

struct iov_cli_option {
        const struct iov_cli_option_spec *spec;
        const char *value; /* NULL for a flag */
};

struct iov_cli_args {
        const char **positional;
        size_t n_positional;
        struct iov_cli_option *options;
        size_t n_options;
};

/* Parse argv against two option tables (a command's and the global one; either may be
 * NULL). "--name value", "--name=value", "-x value" and "--" are understood. With
 * stop_at_positional, parsing ends at the first positional argument and *ret_consumed
 * says how many were used (the rest is a command line). On a usage error, returns
 * -EINVAL and *ret_error says why (caller frees). */
int cli_args_parse(const struct iov_cli_option_spec *specs, const struct iov_cli_option_spec *more,
                   int argc, const char *const *argv, bool stop_at_positional,
                   struct iov_cli_args *ret, int *ret_consumed, char **ret_error);
void cli_args_clear(struct iov_cli_args *args);

/* The last value given for an option (options given twice: the last wins), or NULL. */
const char *cli_args_get(const struct iov_cli_args *args, const char *name);
bool cli_args_has(const struct iov_cli_args *args, const char *name);

/* Print an option table as help lines. */
void cli_args_print_help(FILE *f, const struct iov_cli_option_spec *specs);

/* ---- transport ------------------------------------------------------------------------ */

struct iov_cli_endpoint {
        const char *socket_path; /* used when url is NULL */
        const char *url;         /* "http://HOST:PORT", no trailing path */
        char *token;             /* bearer token read from --token-file, or NULL */
        long timeout_sec;        /* a whole request; 0: the default (5 minutes) */
        const int *cancel;       /* streams: end once non-zero (libcurl checks it about
                                  * once a second while idle); NULL: never */
};

struct iov_cli_response {
        long status;
        char *body;
        size_t size;
        struct json_object *json; /* NULL when the body is empty or not JSON */
};

/* One request. body may be NULL. Returns 0 when an HTTP answer arrived (whatever its
 * status), -ECONNREFUSED/-ENOENT/-EACCES/-ETIMEDOUT... when the daemon could not be
 * reached, -ECONNRESET when it closed the connection half way (stopped or died), -EPROTO
 * for other broken exchanges; *ret_error describes the failure. */
int cli_transport_request(const struct iov_cli_endpoint *e, const char *method, const char *path,
                          struct json_object *body, struct iov_cli_response *ret, char **ret_error);
void cli_response_clear(struct iov_cli_response *r);

/* Follow a streaming endpoint. Newline-delimited (raw false): on_data is called for every
 * complete line, without its newline and NUL-terminated; raw: for every chunk as it
 * arrives. A negative return from on_data stops the stream and is returned. A non-2xx
 * answer is collected into *ret_response instead. */
typedef int (*iov_cli_data_fn)(const char *data, size_t len, void *userdata);
int cli_transport_stream(const struct iov_cli_endpoint *e, const char *path, bool raw,
                         iov_cli_data_fn on_data, void *userdata,
                         struct iov_cli_response *ret_response, char **ret_error);

/* True for the errors that mean "nobody answered" (exit status 3). */
bool cli_transport_error_is_unreachable(int r);

/* Read a bearer token file: its first line, trailing white space stripped; -ENODATA
 * when empty, -EINVAL when it holds white space or control characters. */
int cli_token_read(const char *path, char **ret);

/* ---- output --------------------------------------------------------------------------- */

struct iov_cli_table;

/* headers may be NULL for a table without a header row (key/value views). */
struct iov_cli_table *cli_table_new(size_t n_columns, const char *const *headers);
void cli_table_free(struct iov_cli_table *t);
DEFINE_CLEANUP_FUNC(struct iov_cli_table, cli_table_free)
#define _cleanup_table_ _cleanup_(cli_table_freep)
/* Append a row of n_columns cells; a NULL cell prints as "-". Strings are copied. */
int cli_table_add_row(struct iov_cli_table *t, const char *const *cells);
/* Columns as wide as their widest cell, two spaces apart, the last one not padded. */
int cli_table_print(const struct iov_cli_table *t, FILE *f);
size_t cli_table_rows(const struct iov_cli_table *t);

/* The table for a person: list tables (with a header row) cut to cli->term.columns by
 * shortening the widest column (its cells end in the ellipsis), state words coloured
 * when cli->term.color; exactly cli_table_print's output when both are off. */
int cli_table_show(struct iov_cli *cli, const struct iov_cli_table *t);
int cli_table_print_styled(const struct iov_cli_table *t, FILE *f,
                           const struct iov_cli_terminal *term);

/* The text of a JSON value for a table cell: strings as they are, null or absent as
 * NULL (printed "-"), booleans yes/no, numbers in decimal, arrays joined with ",". */
char *cli_json_cell(struct json_object *value);
/* Same for obj[key]; obj may be NULL. */
char *cli_json_field(struct json_object *obj, const char *key);

/* A list element as one line: scalars as cells, objects as "key=value key=value". */
char *cli_json_item_text(struct json_object *item);

/* Microseconds since the epoch as "2026-01-02T03:04:05.678Z". */
char *cli_time_usec_text(uint64_t usec);

/* --json: the API's answer as it is, pretty printed. */
int cli_json_print(struct json_object *obj, FILE *f);

/* "error: CODE: message" from an API error body; falls back to the HTTP status. */
char *cli_error_format(const struct iov_cli_response *r);

/* ---- terminal (terminal.c, progress.c) ------------------------------------------------ */

/* --color WHEN: 1 colour, 0 none, -EINVAL for a WHEN other than never, auto, always.
 * auto: only on a terminal whose TERM is not "dumb", and never with NO_COLOR set to a
 * non-empty value (https://no-color.org); never and always decide alone. */
int cli_color_decide(const char *when, bool tty, const char *no_color, const char *term);

/* The terminal's width for fd: COLUMNS when it holds a positive number, else the
 * window size (TIOCGWINSZ); 0 when neither says. */
size_t cli_terminal_columns(int fd);

/* The SGR parameters for a state word (running, crashed, active, lost, ...), or NULL. */
const char *cli_state_sgr(const char *word);

/* Fill cli->term for the command's options; returns an exit status (2 for a bad
 * --color). */
int cli_terminal_setup(struct iov_cli *cli, const struct iov_cli_args *args);

/* A status line ("| LABEL 1.2s", a spinner and the time waited) redrawn on stderr every
 * 100 ms by a thread of its own while iovctl waits for iovd, then erased. Nothing at all
 * unless cli->term.progress. */
struct iov_cli_progress;
struct iov_cli_progress *cli_progress_start(struct iov_cli *cli, const char *fmt, ...)
        __attribute__((format(printf, 2, 3)));
/* Replace the label (NULL p: nothing). */
void cli_progress_set(struct iov_cli_progress *p, const char *fmt, ...)
        __attribute__((format(printf, 2, 3)));
/* Erase the line and stop the thread; NULL is fine. */
void cli_progress_end(struct iov_cli_progress *p);

/* cli_call with a progress line labelled label while iovd answers, then --json or the
 * answer as an object (cli_print_object). Returns an exit status. */
int cli_call_waiting(struct iov_cli *cli, const char *label, const char *method, const char *path,
                     struct json_object *body);

/* --json or the answer as an object (cli_print_object); NULL prints nothing. Returns an
 * exit status. */
int cli_print_answer(struct iov_cli *cli, struct json_object *json);

/* PUT /v1/devices/PF/sriov {body} with a progress line that counts the PF's VFs as the
 * event stream announces them (device_added with its physfn), then the answer as
 * cli_call_waiting. Off a terminal exactly cli_call_waiting. (sriov-watch.c) */
int cli_sriov_call_watching(struct iov_cli *cli, const char *pf, long long num_vfs,
                            struct json_object *body);

/* ---- commands ------------------------------------------------------------------------- */

struct iov_cli_command;

/* What the output goes to (terminal.c): set once per command from --color, --quiet,
 * NO_COLOR, COLUMNS and the terminal itself. Off (all zero) when stdout is not a
 * terminal: scripts get the same output as ever. */
struct iov_cli_terminal {
        bool color;           /* SGR colours for state words */
        bool progress;        /* a status line on stderr while iovctl waits */
        size_t columns;       /* list tables are cut to this width; 0: not cut */
        const char *ellipsis; /* ends a cut cell: U+2026 in a UTF-8 locale, else "..." */
};

struct iov_cli {
        struct iov_cli_endpoint endpoint;
        const struct iov_cli_command *command; /* the one running; NULL before */
        bool json;
        struct iov_cli_terminal term;
        FILE *out;
        FILE *err;
};

struct iov_cli_command {
        const char *name;  /* "devices", "pool create" */
        const char *usage; /* arguments after the name, for help */
        const char *summary;
        size_t min_positional;
        size_t max_positional;
        const struct iov_cli_option_spec *options; /* may be NULL */
        /* Returns an exit status (enum iov_cli_exit). */
        int (*run)(struct iov_cli *cli, const struct iov_cli_args *args);
};

extern const struct iov_cli_command cli_commands_inventory[];
extern const struct iov_cli_command cli_commands_allocation[];
extern const struct iov_cli_command cli_commands_vm[];
extern const struct iov_cli_command cli_commands_vf[];

/* Find the command named by argv[0] (and argv[1] for two-word commands); *ret_words says
 * how many words the name took. NULL when there is none. */
const struct iov_cli_command *cli_command_find(int argc, const char *const *argv, int *ret_words);

/* The whole program after argv[0]; returns the exit status. */
int cli_main(int argc, const char *const *argv, FILE *out, FILE *err);

/* Every command of every table, in help order: the i-th, or NULL past the last. */
const struct iov_cli_command *cli_command_at(size_t i);

/* --socket, --url, --token-file, --json, --color, --quiet, --help, --version. */
extern const struct iov_cli_option_spec *const cli_global_options;

/* Socket, URL and token from the options and the environment (IOVD_SOCKET) into
 * cli->endpoint; a usage error (exit status 2) when they do not make sense. */
int cli_setup_endpoint(struct iov_cli *cli, const struct iov_cli_args *args);

/* ---- shell completion (complete.c) ---------------------------------------------------- */

/* How long a completion waits for iovd before offering no live values. */
#define IOV_CLI_COMPLETE_TIMEOUT_SEC 3L

/* The hidden command "__complete CWORD WORD...": argv starts at CWORD. Prints "words"
 * and the candidates, or "files"; see complete.c. Returns an exit status. */
int cli_complete_main(int argc, const char *const *argv, FILE *out);

/* ---- helpers shared by the command files (commands.c) --------------------------------- */

/* Send a request and handle the common outcomes: transport failure -> message and exit
 * status 3 (or 1), HTTP error -> "error: CODE: message" and exit status 1. Returns an
 * exit status; on IOV_CLI_EXIT_OK hands out the parsed answer (NULL for an empty body)
 * when ret_json is not NULL. */
int cli_call(struct iov_cli *cli, const char *method, const char *path, struct json_object *body,
             struct json_object **ret_json);

/* Either --json output or the table made by print_table. */
int cli_call_and_show(struct iov_cli *cli, const char *method, const char *path,
                      struct json_object *body,
                      int (*print_table)(struct iov_cli *cli, struct json_object *json));

/* method COLLECTION/ID[SUFFIX] (ID escaped as one path segment) with body (or NULL), then
 * --json or the answer as an object (cli_print_object). Returns an exit status. */
int cli_call_resource(struct iov_cli *cli, const char *method, const char *collection,
                      const char *id, const char *suffix, struct json_object *body);

/* Usage error: "iovctl: message" plus a pointer to --help; returns exit status 2. */
int cli_usage_error(struct iov_cli *cli, const char *fmt, ...)
        __attribute__((format(printf, 2, 3)));

/* Validate a PCI address argument; on failure prints a usage error. */
int cli_check_address(struct iov_cli *cli, const char *what, const char *address);

/* Strict decimal integer argument (optionally negative) within [min, max]. */
int cli_parse_int(const char *s, long long min, long long max, long long *ret);

/* Percent-encode everything but RFC 3986 unreserved characters and ':'. NULL on OOM. */
char *cli_url_escape(const char *s);

/* "PREFIX/ESCAPED-SEGMENT[SUFFIX]", e.g. ("/v1/pools", "gpu", NULL) -> "/v1/pools/gpu". */
char *cli_path_build(const char *prefix, const char *segment, const char *suffix);

/* Append "?k=v&k2=v2" query parameters (URL-escaped) for the options that are set. */
char *cli_query_build(const char *path, const struct iov_cli_args *args,
                      const char *const *option_names, const char *const *param_names, size_t n);

/* The array in an answer: the answer itself, or its member named key. NULL if neither. */
struct json_object *cli_json_list(struct json_object *json, const char *key);

/* A table with one row per element of the answer's list (see cli_json_list); fill_row
 * sets n_columns cells (NULL for "-", freed by the caller). At most 16 columns. */
int cli_print_list(struct iov_cli *cli, struct json_object *json, const char *key,
                   const char *const *headers, size_t n_columns,
                   int (*fill_row)(struct json_object *item, char **cells));

/* events (events.c) */
extern const struct iov_cli_option_spec cli_events_options[];
int cli_cmd_events(struct iov_cli *cli, const struct iov_cli_args *args);
/* One event line as text: "TIME TYPE key=value ..."; NULL when the line is not an
 * event object. */
char *cli_event_format(const char *line);

/* vm (commands-vm.c, vm-console.c, vm-wait.c, device-spec.c) */
extern const struct iov_cli_option_spec cli_vm_start_options[];
int cli_cmd_vm_start(struct iov_cli *cli, const struct iov_cli_args *args);
extern const struct iov_cli_option_spec cli_console_options[];
int cli_cmd_vm_console(struct iov_cli *cli, const struct iov_cli_args *args);
/* A --device argument: a JSON object as it is, or "TYPE,key=value,..." where values are
 * strings but true/false (booleans) and a relative "path" is made absolute, e.g.
 * "virtio-blk,path=disk.img,read_only=true". */
int cli_device_spec_parse(const char *spec, struct json_object **ret, char **ret_error);

/* A detail view (detail.c): one "key  value" line per field, nested objects as dotted
 * keys, lists of objects one element per line. */
int cli_print_object(struct iov_cli *cli, struct json_object *obj);
