/* SPDX-License-Identifier: MIT */
/*
 * `iovctl events`: follow GET /v1/events (newline-delimited JSON) and print one line per
 * event, flushed at once so a pipe sees each event when it happens. --json prints the
 * daemon's lines untouched; --count N stops after N events (scripts, tests). The
 * stream ending otherwise means iovd went away: exit status 3.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"

const struct iov_cli_option_spec cli_events_options[] = {
        {"count", 'n', "N", "exit after N events"},
        {NULL, 0, NULL, NULL},
};

struct events_state {
        struct iov_cli *cli;
        long long remaining; /* -1: follow for ever */
};

/* Shown in front of the line, or not at all (seq orders events; the line order does). */
static bool event_key_is_header(const char *key)
{
        return streq(key, "type") || streq(key, "time") || streq(key, "time_usec") ||
               streq(key, "seq");
}

/* Append " key=value" for every field; nested objects as dotted keys, except the
 * event's "data" whose fields are the event's own. */
static int event_append_fields(char **text, const char *prefix, struct json_object *obj)
{
        json_object_object_foreach (obj, key, value) {
                if (!prefix && event_key_is_header(key))
                        continue;
                bool is_object = json_object_is_type(value, json_type_object);
                _cleanup_free_ char *name =
                        prefix ? util_strdup_printf("%s.%s", prefix, key) : strdup(key);
                if (!name)
                        return -ENOMEM;
                if (is_object) {
                        bool is_data = !prefix && streq(key, "data");
                        int r = event_append_fields(text, is_data ? NULL : name, value);
                        if (r < 0)
                                return r;
                        continue;
                }
                _cleanup_free_ char *cell = cli_json_cell(value);
                char *next = util_strdup_printf("%s %s=%s", *text, name, cell ? cell : "-");
                if (!next)
                        return -ENOMEM;
                free(*text);
                *text = next;
        }
        return 0;
}

/* "time" as the daemon wrote it, or "time_usec" (wall clock) as UTC ISO 8601. */
static char *event_time(struct json_object *event)
{
        struct json_object *usec = NULL;
        if (json_object_object_get_ex(event, "time", NULL))
                return cli_json_field(event, "time");
        if (!json_object_object_get_ex(event, "time_usec", &usec) ||
            !json_object_is_type(usec, json_type_int))
                return NULL;
        return cli_time_usec_text(json_object_get_uint64(usec));
}

char *cli_event_format(const char *line)
{
        _cleanup_json_ struct json_object *event = json_tokener_parse(line);
        if (!event || !json_object_is_type(event, json_type_object))
                return NULL;
        _cleanup_free_ char *time = event_time(event);
        _cleanup_free_ char *type = cli_json_field(event, "type");
        _cleanup_free_ char *text =
                util_strdup_printf("%s%s%s", time ? time : "", time ? " " : "", type ? type : "-");
        if (!text || event_append_fields(&text, NULL, event) < 0)
                return NULL;
        return TAKE_PTR(text);
}

static int on_event_line(const char *line, size_t len, void *userdata)
{
        struct events_state *s = userdata;

        /* Blank lines keep an idle connection alive; they are not events. */
        if (strspn(line, " \t\r") == len)
                return 0;
        if (s->cli->json) {
                fprintf(s->cli->out, "%s\n", line);
        } else {
                _cleanup_free_ char *text = cli_event_format(line);
                fprintf(s->cli->out, "%s\n", text ? text : line);
        }
        fflush(s->cli->out);
        if (s->remaining > 0 && --s->remaining == 0)
                return -ECANCELED; /* done: stop the stream */
        return 0;
}

/* Only the daemon ends the stream, when it stops or dies: cut (closed mid-chunk) or
 * cleanly, before the N events asked for or while following for ever. */
static int events_ended(struct iov_cli *cli)
{
        fprintf(cli->err, "iovctl: the event stream of iovd at %s ended\n",
                cli->endpoint.url ? cli->endpoint.url : cli->endpoint.socket_path);
        return IOV_CLI_EXIT_UNREACHABLE;
}

int cli_cmd_events(struct iov_cli *cli, const struct iov_cli_args *args)
{
        struct events_state state = {.cli = cli, .remaining = -1};
        struct iov_cli_response resp = {0};
        _cleanup_free_ char *error = NULL;
        const char *count = cli_args_get(args, "count");

        if (count && cli_parse_int(count, 1, INT64_MAX, &state.remaining) < 0)
                return cli_usage_error(cli, "--count takes a positive number, not '%s'", count);

        int r = cli_transport_stream(&cli->endpoint, "/v1/events", false, on_event_line, &state,
                                     &resp, &error);
        if (r == -ECANCELED)
                return IOV_CLI_EXIT_OK;
        if (r == -ECONNRESET)
                return events_ended(cli);
        if (r < 0) {
                fprintf(cli->err, "iovctl: %s\n", error ? error : strerror(-r));
                return cli_transport_error_is_unreachable(r) ? IOV_CLI_EXIT_UNREACHABLE
                                                             : IOV_CLI_EXIT_API;
        }
        int status = IOV_CLI_EXIT_OK;
        if (resp.status < 200 || resp.status > 299) {
                _cleanup_free_ char *line = cli_error_format(&resp);
                fprintf(cli->err, "%s\n", line ? line : "error: out of memory");
                status = IOV_CLI_EXIT_API;
        } else {
                status = events_ended(cli);
        }
        cli_response_clear(&resp);
        return status;
}
