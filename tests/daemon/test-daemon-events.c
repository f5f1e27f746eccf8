/* SPDX-License-Identifier: MIT */
/* Rescans and the event stream: what changes in the tree shows in the API and as events. */
#include <criterion/criterion.h>
#include <stdio.h>

#include "lab-suite.h"
#include "tests/fixtures/fixture.h"

LAB_SUITE(events);

static long get_status(const char *path)
{
        struct iov_http_reply r = {0};
        cr_assert_eq(harness_request(h, "GET", path, NULL, &r), 0);
        long s = r.status;
        harness_reply_clear(&r);
        return s;
}

static void rescan(void)
{
        struct iov_http_reply r = {0};
        cr_assert_eq(harness_request(h, "POST", "/v1/rescan", NULL, &r), 0);
        cr_assert_eq(r.status, 200L, "rescan: %ld %s", r.status, r.body);
        harness_reply_clear(&r);
}

static const struct fixture_device new_nic = {
        .address = "0000:05:00.0",
        .vendor_id = 0x8086,
        .device_id = 0x1572,
        .class_code = 0x020000,
        .driver = "i40e",
        .iommu_group = 40,
        .numa_node = 0,
};

Test(events, rescan_sees_added_and_removed_device)
{
        cr_assert_eq(get_status("/v1/devices/0000:05:00.0"), 404L, "device there before added");
        cr_assert_eq(fixture_add_device(fx, &new_nic), 0);
        rescan();
        long s = get_status("/v1/devices/0000:05:00.0");
        cr_assert_eq(s, 200L, "added device after rescan: %ld", s);
        s = get_status("/v1/iommu-groups/40");
        cr_assert_eq(s, 200L, "its group after rescan: %ld", s);

        cr_assert_eq(fixture_remove_device(fx, "0000:05:00.0"), 0);
        rescan();
        s = get_status("/v1/devices/0000:05:00.0");
        cr_assert_eq(s, 404L, "removed device after rescan: %ld", s);
}

/* Read lines until one has the type; fail after timeout. Returns the parsed event. */
static struct json_object *wait_event(int fd, const char *type)
{
        for (;;) {
                _cleanup_free_ char *line = NULL;
                int r = harness_events_next(fd, 5000, &line);
                cr_assert_eq(r, 0, "no %s event: %s", type, strerror(-r));
                struct json_object *o = json_tokener_parse(line);
                cr_assert_not_null(o, "event line is not JSON: %s", line);
                struct json_object *t;
                if (json_object_object_get_ex(o, "type", &t) &&
                    streq(json_object_get_string(t), type))
                        return o;
                json_object_put(o);
        }
}

static const char *event_field(struct json_object *event, const char *name)
{
        struct json_object *data, *v;
        if (!json_object_object_get_ex(event, "data", &data) ||
            !json_object_object_get_ex(data, name, &v))
                return "(absent)";
        return json_object_get_string(v);
}

Test(events, stream_sees_device_and_vf_changes)
{
        int fd;
        long status;
        cr_assert_eq(harness_events_open(h, &fd, &status), 0);
        cr_assert_eq(status, 200L, "events status %ld", status);
        json_object_put(wait_event(fd, "subscribed"));

        cr_assert_eq(fixture_add_device(fx, &new_nic), 0);
        rescan();
        struct json_object *e = wait_event(fd, "device_added");
        cr_expect_str_eq(event_field(e, "address"), "0000:05:00.0", "device_added for %s",
                         event_field(e, "address"));
        cr_expect_str_eq(event_field(e, "vendor_id"), "8086");
        json_object_put(e);

        cr_assert_eq(fixture_set_num_vfs(fx, "0000:01:00.0", 2), 0);
        rescan();
        e = wait_event(fd, "vfs_changed");
        cr_expect_str_eq(event_field(e, "address"), "0000:01:00.0");
        cr_expect_str_eq(event_field(e, "num_vfs"), "2", "num_vfs %s", event_field(e, "num_vfs"));
        json_object_put(e);

        cr_assert_eq(fixture_set_driver(fx, "0000:00:02.0", NULL), 0);
        rescan();
        e = wait_event(fd, "driver_changed");
        cr_expect_str_eq(event_field(e, "address"), "0000:00:02.0");
        cr_expect_str_eq(event_field(e, "previous_driver"), "e1000e");
        json_object_put(e);
        close(fd);
}

Test(events, vfs_listed_after_rescan)
{
        cr_assert_eq(fixture_set_num_vfs(fx, "0000:01:00.0", 3), 0);
        rescan();
        struct iov_http_reply r = {0};
        cr_assert_eq(harness_request(h, "GET", "/v1/devices?physfn=0000:01:00.0", NULL, &r), 0);
        struct json_object *list;
        cr_assert(r.json && json_object_object_get_ex(r.json, "devices", &list), "%s", r.body);
        cr_expect_eq(json_object_array_length(list), 3u, "%zu VFs listed",
                     json_object_array_length(list));
        harness_reply_clear(&r);
        cr_assert_eq(harness_request(h, "GET", "/v1/devices?sriov=vf", NULL, &r), 0);
        cr_assert(r.json && json_object_object_get_ex(r.json, "devices", &list), "%s", r.body);
        cr_expect_eq(json_object_array_length(list), 3u, "sriov=vf: %zu",
                     json_object_array_length(list));
        harness_reply_clear(&r);
}

Test(events, stream_ends_cleanly_on_sigterm)
{
        int fd;
        long status;
        cr_assert_eq(harness_events_open(h, &fd, &status), 0);
        json_object_put(wait_event(fd, "subscribed"));
        int exit_status = -1;
        cr_assert_eq(harness_stop(h, &exit_status), 0, "iovd hung with an open event stream");
        cr_expect_eq(exit_status, 0, "exit status %d", exit_status);
        _cleanup_free_ char *line = NULL;
        int r = harness_events_next(fd, 5000, &line);
        cr_expect_eq(r, -EPIPE, "stream still open after stop: %d", r);
        close(fd);
}
