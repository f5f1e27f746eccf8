/* SPDX-License-Identifier: MIT */
/*
 * The detail view of one object (host, device, group, pool, allocation, VM): one
 * "key  value" line per field, nested objects as dotted keys ("kvm.available"), lists
 * of objects one element per line, wall-clock *_usec fields as UTC times. It follows
 * whatever fields the API returns, so new fields show without a change here.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"

/* Microseconds since the epoch after 2001 are wall-clock times; smaller ones are
 * durations and stay numbers. */
#define IOV_CLI_USEC_WALL_CLOCK 1000000000000000ull

static bool key_is_usec(const char *key)
{
        size_t n = strlen(key);
        return n > 5 && streq(key + n - 5, "_usec");
}

char *cli_time_usec_text(uint64_t usec)
{
        time_t t = (time_t)(usec / 1000000);
        struct tm tm;
        char buf[64];
        if (!gmtime_r(&t, &tm) || strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm) == 0)
                return NULL;
        return util_strdup_printf("%s.%03uZ", buf, (unsigned)(usec % 1000000 / 1000));
}

static int detail_add_value(struct iov_cli_table *t, const char *name, const char *key,
                            struct json_object *value)
{
        if (json_object_is_type(value, json_type_array) && json_object_array_length(value) > 0 &&
            json_object_is_type(json_object_array_get_idx(value, 0), json_type_object)) {
                for (size_t i = 0; i < json_object_array_length(value); i++) {
                        _cleanup_free_ char *text =
                                cli_json_item_text(json_object_array_get_idx(value, i));
                        const char *row[] = {i == 0 ? name : "", text};
                        int r = cli_table_add_row(t, row);
                        if (r < 0)
                                return r;
                }
                return 0;
        }
        _cleanup_free_ char *cell = NULL;
        if (key_is_usec(key) && json_object_is_type(value, json_type_int) &&
            json_object_get_uint64(value) >= IOV_CLI_USEC_WALL_CLOCK)
                cell = cli_time_usec_text(json_object_get_uint64(value));
        else
                cell = cli_json_cell(value);
        const char *row[] = {name, cell};
        return cli_table_add_row(t, row);
}

static int detail_add_object(struct iov_cli_table *t, const char *prefix, struct json_object *obj)
{
        json_object_object_foreach (obj, key, value) {
                _cleanup_free_ char *name =
                        prefix ? util_strdup_printf("%s.%s", prefix, key) : strdup(key);
                int r;
                if (!name)
                        return -ENOMEM;
                if (json_object_is_type(value, json_type_object) &&
                    json_object_object_length(value) > 0)
                        r = detail_add_object(t, name, value);
                else
                        r = detail_add_value(t, name, key, value);
                if (r < 0)
                        return r;
        }
        return 0;
}

int cli_print_object(struct iov_cli *cli, struct json_object *obj)
{
        _cleanup_table_ struct iov_cli_table *t = cli_table_new(2, NULL);
        if (!t)
                return -ENOMEM;
        if (json_object_is_type(obj, json_type_object)) {
                int r = detail_add_object(t, NULL, obj);
                if (r < 0)
                        return r;
        }
        return cli_table_show(cli, t);
}
