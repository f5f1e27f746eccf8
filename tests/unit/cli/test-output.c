/* SPDX-License-Identifier: MIT */
/* iovctl's pure pieces: option parsing, tables, cells, error lines, --device specs, URLs. */
#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

#include "cli/cli.h"

static const struct iov_cli_option_spec specs[] = {
        {"address", 0, "ADDR", "an address"},
        {"json", 0, NULL, "json"},
        {"count", 'n', "N", "count"},
        {NULL, 0, NULL, NULL},
};

Test(cli_args, long_short_equals_repeats_and_double_dash)
{
        const char *argv[] = {"x",      "--address", "a1", "-n",    "3", "--address=a2",
                              "--json", "y",         "--", "--json"};
        struct iov_cli_args a;
        char *error = NULL;
        int consumed = -1;

        cr_assert_eq(
                cli_args_parse(specs, NULL, ARRAY_SIZE(argv), argv, false, &a, &consumed, &error),
                0, "error %s", error);
        cr_assert_eq(a.n_positional, 3, "positional %zu", a.n_positional);
        cr_assert_str_eq(a.positional[0], "x");
        cr_assert_str_eq(a.positional[1], "y");
        cr_assert_str_eq(a.positional[2], "--json", "after --: %s", a.positional[2]);
        cr_assert_str_eq(cli_args_get(&a, "address"), "a2", "last value wins");
        cr_assert_str_eq(cli_args_get(&a, "count"), "3");
        cr_assert(cli_args_has(&a, "json"));
        cr_assert_eq(a.n_options, 4, "options %zu", a.n_options);
        cr_assert_eq(consumed, (int)ARRAY_SIZE(argv), "consumed %d", consumed);
        cli_args_clear(&a);
}

Test(cli_args, errors_name_the_option)
{
        static const char *const cases[][2] = {
                {"--bogus", "unknown option --bogus"},
                {"--address", "option --address needs a value (ADDR)"},
                {"--json=1", "option --json takes no value"},
                {"-z", "unknown option -z"},
        };
        for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
                const char *argv[] = {cases[i][0]};
                struct iov_cli_args a = {.n_positional = 99};
                char *error = NULL;
                cr_expect_eq(cli_args_parse(specs, NULL, 1, argv, false, &a, NULL, &error), -EINVAL,
                             "%s accepted", cases[i][0]);
                cr_expect_str_eq(error ? error : "(null)", cases[i][1], "message for %s",
                                 cases[i][0]);
                cr_expect_eq(a.n_positional, 99, "output written on failure for %s", cases[i][0]);
                free(error);
        }
}

Test(cli_args, stop_at_positional_leaves_the_command)
{
        const char *argv[] = {"--json", "devices", "--address", "a"};
        struct iov_cli_args a;
        char *error = NULL;
        int consumed;
        cr_assert_eq(cli_args_parse(specs, NULL, 4, argv, true, &a, &consumed, &error), 0,
                     "error %s", error);
        cr_assert_eq(consumed, 1, "consumed %d", consumed);
        cr_assert_eq(a.n_positional, 0, "positional %zu", a.n_positional);
        cli_args_clear(&a);
}

Test(cli_table, widths_from_data_dash_for_null_last_column_unpadded)
{
        static const char *const headers[] = {"A", "LONG HEADER", "Z"};
        static const char *const row1[] = {"wide value", NULL, "end"};
        static const char *const row2[] = {NULL, "x", NULL};
        char *text = NULL;
        size_t size;
        FILE *f = open_memstream(&text, &size);
        struct iov_cli_table *t = cli_table_new(3, headers);

        cr_assert_eq(cli_table_add_row(t, row1), 0, "add row 1");
        cr_assert_eq(cli_table_add_row(t, row2), 0, "add row 2");
        cr_assert_eq(cli_table_rows(t), 2, "rows %zu", cli_table_rows(t));
        cr_assert_eq(cli_table_print(t, f), 0, "print the table");
        fclose(f);
        cr_assert_str_eq(text,
                         "A           LONG HEADER  Z\n"
                         "wide value  -            end\n"
                         "-           x            -\n",
                         "table:\n%s", text);
        cli_table_free(t);
        cli_table_free(NULL);
        free(text);
}

Test(cli_json, cells_for_each_type)
{
        struct json_object *o = json_tokener_parse(
                "{\"s\": \"x\", \"n\": null, \"t\": true, \"f\": false, \"i\": -3, "
                "\"a\": [\"p\", 2, null], \"e\": [], \"o\": {\"k\": 1}}");
        static const char *const keys[] = {"s", "t", "f", "i", "a", "o"};
        static const char *const want[] = {"x", "yes", "no", "-3", "p,2,-", "{\"k\":1}"};
        for (size_t i = 0; i < ARRAY_SIZE(keys); i++) {
                char *cell = cli_json_field(o, keys[i]);
                cr_expect_str_eq(cell ? cell : "(null)", want[i], "cell of %s", keys[i]);
                free(cell);
        }
        cr_expect_null(cli_json_field(o, "n"), "null is no text");
        cr_expect_null(cli_json_field(o, "e"), "empty array is no text");
        cr_expect_null(cli_json_field(o, "absent"), "absent key");
        cr_expect_null(cli_json_field(NULL, "s"), "NULL object");
        json_object_put(o);
}

Test(cli_json, error_lines)
{
        struct iov_cli_response r = {.status = 409};
        r.json = json_tokener_parse("{\"error\": {\"code\": \"group_not_viable\", "
                                    "\"message\": \"0000:01:00.1 bound to e1000e\"}}");
        char *line = cli_error_format(&r);
        cr_assert_str_eq(line, "error: group_not_viable: 0000:01:00.1 bound to e1000e", "%s", line);
        free(line);
        json_object_put(r.json);

        r.json = json_tokener_parse(
                "{\"error\": {\"code\": \"group_not_viable\", \"message\": \"group 2 in use\", "
                "\"blockers\": [{\"address\": \"0000:00:1f.2\", \"driver\": \"ahci\"}, "
                "{\"address\": \"0000:00:1f.3\", \"driver\": null}]}}");
        line = cli_error_format(&r);
        cr_assert_str_eq(line,
                         "error: group_not_viable: group 2 in use\n"
                         "  blockers: address=0000:00:1f.2 driver=ahci\n"
                         "  blockers: address=0000:00:1f.3 driver=-",
                         "%s", line);
        free(line);
        json_object_put(r.json);

        char oops[] = "oops";
        struct iov_cli_response plain = {.status = 500, .body = oops, .size = 4};
        line = cli_error_format(&plain);
        cr_assert_str_eq(line, "error: http_500: unexpected answer from iovd: oops", "%s", line);
        free(line);
}

Test(cli_device_spec, short_form_and_json)
{
        struct json_object *d = NULL, *want;
        char *error = NULL, cwd[4096];

        cr_assert_not_null(getcwd(cwd, sizeof(cwd)), "getcwd: %s", strerror(errno));
        cr_assert_eq(cli_device_spec_parse("virtio-net,mac=52:54:00:00:00:01,tap=tap0,serial=12",
                                           &d, &error),
                     0, "error %s", error);
        want = json_tokener_parse("{\"type\": \"virtio-net\", \"mac\": \"52:54:00:00:00:01\", "
                                  "\"tap\": \"tap0\", \"serial\": \"12\"}");
        cr_assert(json_object_equal(d, want), "parsed %s", json_object_to_json_string(d));
        json_object_put(d);
        json_object_put(want);

        cr_assert_eq(cli_device_spec_parse("virtio-blk,path=d.img,read_only=true", &d, &error), 0,
                     "error %s", error);
        _cleanup_free_ char *text = util_strdup_printf(
                "{\"type\": \"virtio-blk\", \"path\": \"%s/d.img\", \"read_only\": true}", cwd);
        want = json_tokener_parse(text);
        cr_assert(json_object_equal(d, want), "parsed %s, want %s", json_object_to_json_string(d),
                  text);
        json_object_put(d);
        json_object_put(want);

        /* A passthrough entry: the slot is a number, everything else a string. */
        cr_assert_eq(cli_device_spec_parse("vfio,pool=nics,guest_address=5", &d, &error), 0,
                     "error %s", error);
        cr_assert_str_eq(json_object_to_json_string_ext(d, JSON_C_TO_STRING_PLAIN),
                         "{\"type\":\"vfio\",\"pool\":\"nics\",\"guest_address\":5}",
                         "vfio short form");
        json_object_put(d);

        cr_assert_eq(cli_device_spec_parse("{\"type\": \"virtio-rng\", \"n\": 3}", &d, &error), 0,
                     "JSON form: %s", error);
        cr_assert_str_eq(json_object_to_json_string_ext(d, JSON_C_TO_STRING_PLAIN),
                         "{\"type\":\"virtio-rng\",\"n\":3}", "JSON form passed through");
        json_object_put(d);

        static const char *const bad[] = {
                "", ",a=1", "blk,oops", "blk,=1", "blk,a=1,a=2", "{\"type\": ", "{\"a\": 1} x"};
        for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
                d = NULL;
                error = NULL;
                cr_expect_eq(cli_device_spec_parse(bad[i], &d, &error), -EINVAL, "accepted '%s'",
                             bad[i]);
                cr_expect_not_null(error, "no message for '%s'", bad[i]);
                cr_expect_null(d, "output written for '%s'", bad[i]);
                free(error);
        }
}

Test(cli_url, escape_and_query)
{
        char *s = cli_url_escape("a b/../é~_-.:?#&=%");
        cr_assert_str_eq(s, "a%20b%2F..%2F%C3%A9~_-.:%3F%23%26%3D%25", "escaped %s", s);
        free(s);

        static const struct iov_cli_option_spec filter[] = {
                {"vendor-id", 0, "HEX", ""}, {"driver", 0, "NAME", ""}, {NULL, 0, NULL, NULL}};
        const char *argv[] = {"--driver", "vfio-pci&x=1", "--vendor-id", "8086"};
        struct iov_cli_args a;
        char *error = NULL;
        cr_assert_eq(cli_args_parse(filter, NULL, 4, argv, false, &a, NULL, &error), 0, "error %s",
                     error);
        static const char *const options[] = {"vendor-id", "driver"};
        static const char *const params[] = {"vendor_id", "driver"};
        s = cli_query_build("/v1/devices", &a, options, params, 2);
        cr_assert_str_eq(s, "/v1/devices?vendor_id=8086&driver=vfio-pci%26x%3D1", "query %s", s);
        free(s);
        cli_args_clear(&a);
}

Test(cli_event, format_puts_time_and_type_first)
{
        char *line =
                cli_event_format("{\"address\": \"0000:01:00.0\", \"type\": \"device_removed\","
                                 " \"time\": 12, \"vf\": {\"count\": 2}}");
        cr_assert_str_eq(line, "12 device_removed address=0000:01:00.0 vf.count=2", "%s", line);
        free(line);
        line = cli_event_format("{\"seq\": 4, \"time_usec\": 1763755262123456, \"type\": "
                                "\"allocation_created\", \"data\": {\"id\": \"a1\", "
                                "\"devices\": [\"0000:01:02.0\"], \"x\": {\"y\": null}}}");
        cr_assert_str_eq(line,
                         "2025-11-21T20:01:02.123Z allocation_created id=a1 devices=0000:01:02.0 "
                         "x.y=-",
                         "%s", line);
        free(line);
        cr_assert_null(cli_event_format("not json"), "non-JSON line formatted");
}

Test(cli_detail, nested_keys_object_lists_and_wall_clock_times)
{
        char *text = NULL;
        size_t size;
        struct iov_cli cli = {.out = open_memstream(&text, &size)};
        struct json_object *o = json_tokener_parse(
                "{\"id\": 4, \"viable\": false, \"blockers\": [{\"address\": \"0000:00:1f.0\", "
                "\"driver\": \"lpc_ich\"}, {\"address\": \"0000:00:1f.2\", \"driver\": null}], "
                "\"sel\": {\"vendor_id\": \"8086\"}, \"created_usec\": 1763755262123456, "
                "\"uptime_usec\": 1500}");
        cr_assert_eq(cli_print_object(&cli, o), 0, "print the detail view");
        fclose(cli.out);
        cr_assert_str_eq(text,
                         "id             4\n"
                         "viable         no\n"
                         "blockers       address=0000:00:1f.0 driver=lpc_ich\n"
                         "               address=0000:00:1f.2 driver=-\n"
                         "sel.vendor_id  8086\n"
                         "created_usec   2025-11-21T20:01:02.123Z\n"
                         "uptime_usec    1500\n",
                         "detail view:\n%s", text);
        json_object_put(o);
        free(text);
}

static char *token_from(const char *content, int *ret_r)
{
        char path[] = "/tmp/iovctl-token-XXXXXX";
        int fd = mkstemp(path);
        cr_assert_geq(fd, 0, "mkstemp: %s", strerror(errno));
        cr_assert_eq(write(fd, content, strlen(content)), (ssize_t)strlen(content), "write");
        close(fd);
        char *token = NULL;
        *ret_r = cli_token_read(path, &token);
        unlink(path);
        return token;
}

Test(cli_token, first_line_trimmed_and_header_safe)
{
        int r;
        char *t = token_from("s3cret\r\nsecond line\n", &r);
        cr_assert_eq(r, 0, "CRLF file: %s", strerror(-r));
        cr_assert_str_eq(t, "s3cret", "token %s", t);
        free(t);
        static const char *const bad[] = {"", "\n", "  \n", "a b\n", "a\tb", "a\x01"};
        static const int want[] = {-ENODATA, -ENODATA, -ENODATA, -EINVAL, -EINVAL, -EINVAL};
        for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
                t = token_from(bad[i], &r);
                cr_expect_eq(r, want[i], "token file %zu: %d, want %d", i, r, want[i]);
                cr_expect_null(t, "token written for file %zu", i);
        }
}
