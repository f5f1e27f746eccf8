/* SPDX-License-Identifier: MIT */
/* Shared by the allocation, SR-IOV and durability tests: a generated tree with the fake
 * kernel running, the real iovd on it, and small request helpers whose failures name what
 * was sent and what came back. */
#pragma once

#include <criterion/criterion.h>
#include <stdio.h>

#include "harness.h"
#include "tests/fixtures/fixture.h"

/* A group of three functions (0000:03:00.0-2, group 30), none bound: a multi-function
 * device iovd may hand out whole. */
static inline void add_triple(struct fixture *fx, const char *third_driver)
{
        static const char *const addresses[] = {"0000:03:00.0", "0000:03:00.1", "0000:03:00.2"};
        for (size_t i = 0; i < 3; i++) {
                struct fixture_device d = {
                        .address = addresses[i],
                        .vendor_id = 0x15b3,
                        .device_id = 0x1017,
                        .class_code = 0x020000,
                        .driver = i == 2 ? third_driver : NULL,
                        .natural_driver = i == 2 ? third_driver : NULL,
                        .iommu_group = 30,
                        .numa_node = 0,
                };
                int r = fixture_add_device(fx, &d);
                cr_assert_eq(r, 0, "fixture_add_device(%s): %s", addresses[i], strerror(-r));
        }
}

/* A GPU-like function (0000:04:00.0, group 40) without any reset method: what iovd
 * hands out but must quarantine on release. */
static inline void add_no_reset_device(struct fixture *fx)
{
        struct fixture_device d = {
                .address = "0000:04:00.0",
                .vendor_id = 0x10de,
                .device_id = 0x1eb8,
                .class_code = 0x030200,
                .iommu_group = 40,
                .numa_node = -1,
                .no_reset = true,
        };
        int r = fixture_add_device(fx, &d);
        cr_assert_eq(r, 0, "fixture_add_device(%s): %s", d.address, strerror(-r));
}

/* Bind a function behind iovd's back as the kernel would show it: driver_override set to
 * override ("(null)" clears it) and the function on driver. */
static inline void bind_outside_iovd(struct fixture *fx, const char *address, const char *override,
                                     const char *driver)
{
        _cleanup_free_ char *path = util_strdup_printf("%s/bus/pci/devices/%s/driver_override",
                                                       fixture_sysfs_root(fx), address);
        _cleanup_free_ char *line = util_strdup_printf("%s\n", override);
        int r = util_write_attr(path, line);
        cr_assert_eq(r, 0, "write %s to %s: %s", override, path, strerror(-r));
        r = fixture_set_driver(fx, address, driver);
        cr_assert_eq(r, 0, "fixture_set_driver(%s, %s): %s", address, driver, strerror(-r));
}

/* The lab machine, its NVMe PF with n_vfs driverless VFs (0000:01:00.1...), the fake
 * kernel running with opts. */
static inline struct fixture *lab_fixture(unsigned n_vfs, const struct fixture_kernel_options *opts)
{
        struct fixture *fx = NULL;
        int r = fixture_new(&fx);
        cr_assert_eq(r, 0, "fixture_new: %s", strerror(-r));
        r = fixture_add_lab_preset(fx);
        cr_assert_eq(r, 0, "fixture_add_lab_preset: %s", strerror(-r));
        if (n_vfs) {
                /* As iovd's PUT sriov does by default: VFs come up driverless. */
                _cleanup_free_ char *autoprobe = util_strdup_printf(
                        "%s/bus/pci/devices/0000:01:00.0/sriov_drivers_autoprobe",
                        fixture_sysfs_root(fx));
                r = util_write_attr(autoprobe, "0\n");
                cr_assert_eq(r, 0, "write %s: %s", autoprobe, strerror(-r));
                r = fixture_set_num_vfs(fx, "0000:01:00.0", n_vfs);
                cr_assert_eq(r, 0, "fixture_set_num_vfs(%u): %s", n_vfs, strerror(-r));
        }
        r = fixture_kernel_start(fx, opts);
        cr_assert_eq(r, 0, "fixture_kernel_start: %s", strerror(-r));
        return fx;
}

/* Start iovd on the tree; state_dir NULL: a fresh one. extra: NULL-terminated or NULL. */
static inline struct iov_harness *start_iovd(struct fixture *fx, const char *state_dir,
                                             const char *const *extra)
{
        struct iov_harness_options o = {
                .sysfs_root = fixture_sysfs_root(fx),
                .dev_root = fixture_dev_root(fx),
                .state_dir = state_dir,
                .extra_args = extra,
        };
        struct iov_harness *h = NULL;
        int r = harness_start(&o, &h);
        _cleanup_free_ char *log = h ? harness_log(h) : NULL;
        cr_assert_eq(r, 0, "iovd did not start: %s; log:\n%s", strerror(-r), log ? log : "");
        return h;
}

/* Send a request, expect a status, return the JSON body (caller puts it). */
static inline struct json_object *call(struct iov_harness *h, const char *method, const char *path,
                                       const char *body, long expected)
{
        struct iov_http_reply reply = {0};
        int r = harness_request(h, method, path, body, &reply);
        cr_assert_eq(r, 0, "%s %s: no reply: %s", method, path, strerror(-r));
        cr_assert_eq(reply.status, expected, "%s %s %s: status %ld, expected %ld; body %s", method,
                     path, body ? body : "", reply.status, expected, reply.body ? reply.body : "");
        struct json_object *json = json_object_get(reply.json);
        harness_reply_clear(&reply);
        return json;
}

static inline const char *jstr(struct json_object *o, const char *key)
{
        struct json_object *v = NULL;
        if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string))
                return NULL;
        return json_object_get_string(v);
}

static inline int64_t jint(struct json_object *o, const char *key)
{
        struct json_object *v = NULL;
        if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_int))
                return INT64_MIN;
        return json_object_get_int64(v);
}

static inline const char *error_code(struct json_object *o)
{
        struct json_object *e = NULL;
        json_object_object_get_ex(o, "error", &e);
        return jstr(e, "code");
}

/* Call and check the error code of the reply. */
static inline void expect_error(struct iov_harness *h, const char *method, const char *path,
                                const char *body, long status, const char *code)
{
        struct json_object *o = call(h, method, path, body, status);
        const char *got = error_code(o);
        cr_assert(got && streq(got, code), "%s %s %s: error code %s, expected %s (%s)", method,
                  path, body ? body : "", got ? got : "(none)", code,
                  json_object_to_json_string(o));
        json_object_put(o);
}

/* The device as the API shows it. */
static inline struct json_object *get_device(struct iov_harness *h, const char *address)
{
        _cleanup_free_ char *path = util_strdup_printf("/v1/devices/%s", address);
        return call(h, "GET", path, NULL, 200);
}

/* The device's driver as sysfs says (the fake kernel's view), "" when none. */
static inline char *sysfs_driver(struct fixture *fx, const char *address)
{
        _cleanup_free_ char *link =
                util_strdup_printf("%s/bus/pci/devices/%s/driver", fixture_sysfs_root(fx), address);
        char *name = NULL;
        if (util_readlink_basename(link, &name) < 0)
                return strdup("");
        return name;
}

static inline void expect_sysfs_driver(struct fixture *fx, const char *address,
                                       const char *expected)
{
        _cleanup_free_ char *driver = sysfs_driver(fx, address);
        cr_assert_str_eq(driver, expected, "%s is bound to \"%s\", expected \"%s\"", address,
                         driver, expected);
}

static inline char *sysfs_override(struct fixture *fx, const char *address)
{
        _cleanup_free_ char *path = util_strdup_printf("%s/bus/pci/devices/%s/driver_override",
                                                       fixture_sysfs_root(fx), address);
        char *value = NULL;
        if (util_read_line(path, &value) < 0)
                return strdup("?");
        return value;
}

/* No override: the kernel prints "(null)"; a cleared plain file in the tree is empty. */
static inline void expect_no_override(struct fixture *fx, const char *address)
{
        _cleanup_free_ char *ovr = sysfs_override(fx, address);
        cr_assert(streq(ovr, "(null)") || streq(ovr, ""), "%s keeps driver_override \"%s\"",
                  address, ovr);
}

/* Marks the VF `dev` (0000:01:00.N, 1 <= N <= n_vfs) held; a second mark is a failure. */
static inline void mark_vf_held(bool *held, unsigned n_vfs, const char *dev, const char *what,
                                const char *when)
{
        unsigned fn = (unsigned)(dev[strlen(dev) - 1] - '0');
        cr_assert(fn >= 1 && fn <= n_vfs && !held[fn], "%s: %s %s, held twice or unknown", when,
                  dev, what);
        held[fn] = true;
}

/* What every mix of requests, crashes and restarts must leave on the PF 0000:01:00.0's VFs
 * 1..n_vfs (at most 7): each allocation active with its VFs on vfio-pci, a quarantined VF
 * on vfio-pci and in no allocation, no VF held twice, and every VF nobody holds back as it
 * was (no driver, no override). `when` names the moment in failures. */
static inline void expect_vf_invariants(struct fixture *fx, struct iov_harness *h, unsigned n_vfs,
                                        const char *when)
{
        bool held[8] = {0};
        struct json_object *list = call(h, "GET", "/v1/allocations", NULL, 200);
        struct json_object *arr = json_object_object_get(list, "allocations");
        for (size_t i = 0; i < json_object_array_length(arr); i++) {
                struct json_object *a = json_object_array_get_idx(arr, i);
                cr_assert_str_eq(jstr(a, "state"), "active", "%s: %s", when,
                                 json_object_to_json_string(a));
                struct json_object *devices = json_object_object_get(a, "devices");
                for (size_t j = 0; j < json_object_array_length(devices); j++) {
                        const char *dev =
                                json_object_get_string(json_object_array_get_idx(devices, j));
                        mark_vf_held(held, n_vfs, dev, "allocated", when);
                        expect_sysfs_driver(fx, dev, "vfio-pci");
                }
        }
        json_object_put(list);
        list = call(h, "GET", "/v1/quarantine", NULL, 200);
        arr = json_object_object_get(list, "quarantined");
        for (size_t i = 0; i < json_object_array_length(arr); i++) {
                const char *dev = jstr(json_object_array_get_idx(arr, i), "address");
                mark_vf_held(held, n_vfs, dev, "quarantined", when);
                expect_sysfs_driver(fx, dev, "vfio-pci");
        }
        json_object_put(list);
        for (unsigned fn = 1; fn <= n_vfs; fn++) {
                _cleanup_free_ char *dev = util_strdup_printf("0000:01:00.%u", fn);
                if (held[fn])
                        continue;
                expect_sysfs_driver(fx, dev, "");
                expect_no_override(fx, dev);
        }
}

/* A state directory that outlives the daemons started on it (remove_state_dir() at the
 * end); name says whose, in /tmp. */
static inline char *make_state_dir(const char *name)
{
        _cleanup_free_ char *tmpl = util_strdup_printf("/tmp/iovd-test-%s-XXXXXX", name);
        cr_assert_not_null(mkdtemp(tmpl), "mkdtemp: %s", strerror(errno));
        return strdup(tmpl);
}

static inline void remove_state_dir(const char *dir)
{
        _cleanup_free_ char *cmd = util_strdup_printf("rm -rf '%s'", dir);
        cr_assert_eq(system(cmd), 0, "%s", cmd);
}

/* SIGTERM, and a clean exit (status 0) expected. */
static inline void stop_iovd(struct iov_harness *h)
{
        int status = -1;
        cr_assert_eq(harness_stop(h, &status), 0, "iovd did not stop");
        cr_assert_eq(status, 0, "iovd exit status %d; log:\n%s", status, harness_log(h));
}

static inline struct json_object *allocate(struct iov_harness *h, const char *owner,
                                           const char *key, const char *value, long expected)
{
        _cleanup_free_ char *body =
                util_strdup_printf("{\"owner\":\"%s\",\"%s\":\"%s\"}", owner, key, value);
        return call(h, "POST", "/v1/allocations", body, expected);
}
