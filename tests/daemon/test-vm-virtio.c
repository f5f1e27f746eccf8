/* SPDX-License-Identifier: MIT */
/*
 * Paravirtual devices through the API: a VM defined with virtio-blk and virtio-rng runs the
 * tests/guest virtio-devices payload (it reads the disk, writes sectors 8-15, flushes, reads
 * its serial, provokes one failed read, takes 64 random bytes, then resets), and
 * GET /v1/vms/{id} reports what each device did: bytes and requests, as counted by the VMM.
 */
#include "test-vm-common.h"

static struct vm_env env;

static void setup(void)
{
        HARNESS_SKIP_WITHOUT_KVM();
        cr_assert_not_null(getenv("VIRTIO_DEVICES_PAYLOAD"), "VIRTIO_DEVICES_PAYLOAD is not set");
        vm_env_init(&env);
}

static void teardown(void)
{
        vm_env_done(&env);
}

TestSuite(vm_virtio, .init = setup, .fini = teardown);

/* The device entry of `type` in the stats' virtio list, or NULL. */
static struct json_object *virtio_stats_of(struct json_object *vm, const char *type)
{
        struct json_object *stats, *list;
        if (!json_object_object_get_ex(vm, "stats", &stats) ||
            !json_object_object_get_ex(stats, "virtio", &list) ||
            !json_object_is_type(list, json_type_array))
                return NULL;
        for (size_t i = 0; i < json_object_array_length(list); i++) {
                struct json_object *dev = json_object_array_get_idx(list, i);
                if (streq(vm_str(dev, "type"), type))
                        return dev;
        }
        return NULL;
}

static int64_t counter(struct json_object *dev, const char *key)
{
        struct json_object *v;
        cr_assert(json_object_object_get_ex(dev, key, &v), "no %s in %s", key,
                  json_object_to_json_string(dev));
        return json_object_get_int64(v);
}

Test(vm_virtio, device_counters_reach_the_api)
{
        _cleanup_free_ char *image = util_path_join(env.dir, "disk.img", NULL);
        uint8_t disk[8192];
        for (size_t i = 0; i < sizeof(disk); i++)
                disk[i] = (uint8_t)i;
        cr_assert_eq(util_write_file_atomic(image, disk, sizeof(disk), 0600), 0, "disk image");

        _cleanup_free_ char *body = util_strdup_printf(
                "{\"name\": \"pv\", \"memory_mib\": 64, \"kernel\": \"%s\", \"devices\": ["
                "{\"type\": \"virtio-rng\"}, {\"type\": \"virtio-blk\", \"path\": \"%s\", "
                "\"serial\": \"iovd-e2e-disk\"}]}",
                getenv("VIRTIO_DEVICES_PAYLOAD"), image);
        struct iov_http_reply r;
        vm_call(&env, "POST", "/v1/vms", body, 201, &r);
        harness_reply_clear(&r);
        vm_run_until_stopped(&env, "pv");

        vm_get(&env, "pv", &r);
        struct json_object *blk = virtio_stats_of(r.json, "virtio-blk");
        struct json_object *rng = virtio_stats_of(r.json, "virtio-rng");
        cr_assert_not_null(blk, "no virtio-blk counters in %s", r.body);
        cr_assert_not_null(rng, "no virtio-rng counters in %s", r.body);

        /* One 4 KiB write (sectors 8-15); reads of sectors 0-7 and of the serial; one read
         * past the end of the 8 KiB disk that the device must fail. */
        cr_assert_eq(counter(blk, "requests_written"), 1, "blk writes %ld",
                     (long)counter(blk, "requests_written"));
        cr_assert_eq(counter(blk, "bytes_written"), 4096, "blk bytes written %ld",
                     (long)counter(blk, "bytes_written"));
        cr_assert_geq(counter(blk, "bytes_read"), 4096, "blk bytes read %ld",
                      (long)counter(blk, "bytes_read"));
        cr_assert_eq(counter(blk, "requests_failed"), 1, "blk failed requests %ld",
                     (long)counter(blk, "requests_failed"));
        cr_assert_eq(counter(rng, "bytes_read"), 64, "rng bytes %ld",
                     (long)counter(rng, "bytes_read"));
        harness_reply_clear(&r);

        /* What the counters claim is on the disk: the guest's ~i pattern in sectors 8-15. */
        _cleanup_free_ char *after = NULL;
        size_t size = 0;
        cr_assert_eq(util_read_file(image, 1 << 20, &after, &size), 0, "reading the image");
        cr_assert_eq(size, sizeof(disk), "image is %zu bytes", size);
        for (size_t i = 0; i < 4096; i++)
                cr_assert_eq((uint8_t)after[4096 + i], (uint8_t)~i, "byte %zu is 0x%02x", 4096 + i,
                             (uint8_t)after[4096 + i]);
}
