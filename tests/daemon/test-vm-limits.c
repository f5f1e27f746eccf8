/* SPDX-License-Identifier: MIT */
/* Bounded state: the VM table filled to its limits (IOV_VMS_MAX VMs, every field of each at
 * its maximum: name, kernel and initrd paths, cmdline, 31 devices with the longest paths)
 * is accepted, one more VM is refused with 409 too_many_vms, and after a restart iovd
 * loads every VM again with its fields intact. */
#include <pthread.h>
#include <stdatomic.h>

#include "test-vm-common.h"

/* The published limits (api/openapi.yaml, vmm/contract/vm-contract.h, vms/vms.h). */
#define MAX_VMS      128
#define NAME_MAX_LEN 64
#define PATH_MAX_LEN 4095
#define CMDLINE_MAX  4096
#define MAX_DEVICES  31
#define FILL_THREADS 4

VM_TEST_SUITE(vm_limits, false, .timeout = 600);

/* path padded with leading slashes to exactly PATH_MAX_LEN bytes (still the same file). */
static char *long_path(const char *path)
{
        size_t n = strlen(path);
        cr_assert_leq(n, PATH_MAX_LEN, "path %s", path);
        char *p = malloc(PATH_MAX_LEN + 1);
        cr_assert_not_null(p);
        memset(p, '/', PATH_MAX_LEN - n);
        memcpy(p + PATH_MAX_LEN - n, path, n + 1);
        return p;
}

static char *max_body(unsigned index)
{
        _cleanup_free_ char *kernel = vm_guest("idle");
        _cleanup_free_ char *path = long_path(kernel);
        char name[NAME_MAX_LEN + 1];
        snprintf(name, sizeof(name), "%0*u", NAME_MAX_LEN, index);
        char *cmdline = malloc(CMDLINE_MAX + 1);
        cr_assert_not_null(cmdline);
        memset(cmdline, 'c', CMDLINE_MAX);
        cmdline[CMDLINE_MAX] = 0;
        _cleanup_free_ char *device = util_strdup_printf(
                "{\"type\": \"virtio-blk\", \"path\": \"%s\", \"serial\": \"%020u\"}", path, index);
        char *devices = strdup("");
        for (unsigned k = 0; k < MAX_DEVICES && devices; k++) {
                char *next = util_strdup_printf("%s%s%s", devices, k ? ", " : "", device);
                free(devices);
                devices = next;
        }
        char *body =
                util_strdup_printf("{\"name\": \"%s\", \"kernel\": \"%s\", \"initrd\": \"%s\", "
                                   "\"cmdline\": \"%s\", \"vcpus\": 1, \"memory_mib\": 16, "
                                   "\"devices\": [%s]}",
                                   name, path, path, cmdline, devices);
        free(cmdline);
        free(devices);
        cr_assert_not_null(body);
        return body;
}

static atomic_uint next_index;
static atomic_uint failures;
static char first_failure[512];

static void *fill_thread(void *userdata)
{
        (void)userdata;
        for (;;) {
                unsigned i = atomic_fetch_add(&next_index, 1);
                if (i >= MAX_VMS)
                        return NULL;
                _cleanup_free_ char *body = max_body(i);
                struct iov_http_reply r = {0};
                int k = harness_request(env.h, "POST", "/v1/vms", body, &r);
                if ((k < 0 || r.status != 201) && atomic_fetch_add(&failures, 1) == 0)
                        snprintf(first_failure, sizeof(first_failure), "VM %u: %s %ld %.300s", i,
                                 k < 0 ? strerror(-k) : "status", r.status, r.body ? r.body : "");
                harness_reply_clear(&r);
        }
}

/* Every VM listed has its maximal fields; returns how many were listed. */
static size_t check_listed(void)
{
        struct iov_http_reply r;
        vm_call(&env, "GET", "/v1/vms", NULL, 200, &r);
        struct json_object *vms = json_object_object_get(r.json, "vms");
        size_t n = json_object_array_length(vms);
        for (size_t k = 0; k < n; k++) {
                struct json_object *vm = json_object_array_get_idx(vms, k);
                struct json_object *devices = json_object_object_get(vm, "devices");
                cr_expect_eq(strlen(vm_str(vm, "name")), NAME_MAX_LEN, "name %s",
                             vm_str(vm, "name"));
                cr_expect_eq(strlen(vm_str(vm, "kernel")), PATH_MAX_LEN, "kernel of VM %zu", k);
                cr_expect_eq(strlen(vm_str(vm, "initrd")), PATH_MAX_LEN, "initrd of VM %zu", k);
                cr_expect_eq(strlen(vm_str(vm, "cmdline")), CMDLINE_MAX, "cmdline of VM %zu", k);
                cr_expect_eq(json_object_array_length(devices), MAX_DEVICES, "devices of VM %zu",
                             k);
        }
        harness_reply_clear(&r);
        return n;
}

Test(vm_limits, a_full_table_of_maximal_vms_loads_after_a_restart)
{
        uint64_t start = util_now_usec();
        pthread_t threads[FILL_THREADS];
        for (size_t k = 0; k < FILL_THREADS; k++)
                cr_assert_eq(pthread_create(&threads[k], NULL, fill_thread, NULL), 0);
        for (size_t k = 0; k < FILL_THREADS; k++)
                pthread_join(threads[k], NULL);
        cr_assert_eq(atomic_load(&failures), 0, "%u creates failed; first: %s",
                     atomic_load(&failures), first_failure);
        cr_log_info("%d maximal VMs created in %.1f s", MAX_VMS,
                    (double)(util_now_usec() - start) / 1e6);

        _cleanup_free_ char *one_more = max_body(MAX_VMS);
        struct iov_http_reply r;
        vm_call(&env, "POST", "/v1/vms", one_more, 409, &r);
        cr_expect_str_eq(vm_error_code(&r), "too_many_vms", "VM %d: code %s", MAX_VMS + 1,
                         vm_error_code(&r));
        harness_reply_clear(&r);

        cr_assert_eq(harness_stop(env.h, NULL), 0, "iovd did not stop");
        harness_free(env.h);
        env.h = NULL;
        vm_env_start_iovd(&env);
        cr_expect_eq(check_listed(), MAX_VMS, "VMs listed after the restart");
}

/* Control characters take 6 bytes each as stored ("\u0001"): 31 device paths of them
 * would make one VM about 760 KiB of vms.json, so the definition is refused whole. */
Test(vm_limits, a_definition_too_large_to_store_is_refused)
{
        _cleanup_free_ char *kernel = vm_guest("idle");
        size_t size = PATH_MAX_LEN * 6 + 1;
        _cleanup_free_ char *path = malloc(size);
        cr_assert_not_null(path);
        for (size_t k = 0; k < PATH_MAX_LEN; k++)
                memcpy(path + k * 6, "\\u0001", 6);
        path[size - 1] = 0;
        _cleanup_free_ char *device =
                util_strdup_printf("{\"type\": \"virtio-blk\", \"path\": \"%s\"}", path);
        char *devices = strdup("");
        for (unsigned k = 0; k < MAX_DEVICES && devices; k++) {
                char *next = util_strdup_printf("%s%s%s", devices, k ? ", " : "", device);
                free(devices);
                devices = next;
        }
        cr_assert_not_null(devices);
        _cleanup_free_ char *body =
                util_strdup_printf("{\"kernel\": \"%s\", \"devices\": [%s]}", kernel, devices);
        free(devices);
        struct iov_http_reply r;
        vm_call(&env, "POST", "/v1/vms", body, 422, &r);
        cr_expect_str_eq(vm_error_code(&r), "definition_too_large", "code %s", vm_error_code(&r));
        harness_reply_clear(&r);
        vm_call(&env, "GET", "/v1/vms", NULL, 200, &r);
        cr_expect_eq(json_object_array_length(json_object_object_get(r.json, "vms")), 0,
                     "a refused VM is listed: %.200s", r.body);
        harness_reply_clear(&r);
}
