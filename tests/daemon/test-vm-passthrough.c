/* SPDX-License-Identifier: MIT */
/*
 * VMs with passthrough entries through the real iovd on the generated lab tree (the fake
 * kernel binds, unbinds and resets): the allocation belongs to the VM from its create to
 * its delete, is reset around every run, survives restarts and kill -9 at every step, and
 * a definition the host cannot satisfy is refused with nothing left allocated. The VMM is
 * tests/daemon/fake-vmm.c ($FAKE_VMM): the tree has no VFIO behind it, and what iovd must
 * hand the VMM is checked in config.json.
 */
#include <pthread.h>
#include <signal.h>
#include <sys/wait.h>

#include "test-alloc-common.h"
#include "test-cli-common.h"

struct pt_env {
        struct fixture *fx;
        char dir[64]; /* mkdtemp: state/, run/, kernel */
        char *state_dir, *run_dir, *kernel;
        struct iov_harness *h;
};

static struct pt_env env;

static void pt_start(const char *extra)
{
        const char *args[] = {"--run-dir", env.run_dir,        "--image-dir", env.dir,
                              "--vmm",     getenv("FAKE_VMM"), extra,         NULL};
        env.h = start_iovd(env.fx, env.state_dir, args);
}

static void pt_setup(void)
{
        cr_assert_not_null(getenv("FAKE_VMM"), "FAKE_VMM is not set");
        HARNESS_SKIP_WITHOUT_KVM();
        env.fx = lab_fixture(2, NULL);
        snprintf(env.dir, sizeof(env.dir), "/tmp/iovd-pt-XXXXXX");
        cr_assert_not_null(mkdtemp(env.dir), "mkdtemp: %s", strerror(errno));
        env.state_dir = util_path_join(env.dir, "state", NULL);
        env.run_dir = util_path_join(env.dir, "run", NULL);
        env.kernel = util_path_join(env.dir, "bzImage", NULL);
        cr_assert_eq(util_write_file_atomic(env.kernel, "k", 1, 0600), 0);
        pt_start(NULL);
        json_object_put(call(env.h, "POST", "/v1/pools",
                             "{\"name\":\"nvme\",\"selector\":{\"vendor_id\":\"1b36\","
                             "\"physfn\":\"0000:01:00.0\"}}",
                             201));
        json_object_put(call(env.h, "POST", "/v1/pools",
                             "{\"name\":\"one\",\"selector\":{\"addresses\":[\"0000:01:00.2\"]}}",
                             201));
}

/* VMMs outlive iovd by design: kill every one a pid file still names. */
static void pt_teardown(void)
{
        harness_free(env.h);
        env.h = NULL;
        harness_kill_vmms(env.run_dir);
        _cleanup_free_ char *cmd = util_strdup_printf("rm -rf '%s'", env.dir);
        (void)!system(cmd);
        free(env.state_dir);
        free(env.run_dir);
        free(env.kernel);
        fixture_free(env.fx);
}

TestSuite(vm_passthrough, .init = pt_setup, .fini = pt_teardown, .timeout = 110);

/* ---- helpers ---------------------------------------------------------------------------- */

static char *vm_body(const char *name, const char *devices)
{
        return util_strdup_printf("{%s%s%s\"kernel\":\"%s\",\"memory_mib\":16,\"devices\":[%s]}",
                                  name ? "\"name\":\"" : "", name ? name : "", name ? "\"," : "",
                                  env.kernel, devices);
}

/* POST /v1/vms; returns the VM (caller puts it). */
static struct json_object *create_vm(const char *name, const char *devices, long status)
{
        _cleanup_free_ char *body = vm_body(name, devices);
        return call(env.h, "POST", "/v1/vms", body, status);
}

static struct json_object *vm_path_call(const char *method, const char *id, const char *action,
                                        long status)
{
        _cleanup_free_ char *path =
                util_strdup_printf("/v1/vms/%s%s%s", id, action ? "/" : "", action ? action : "");
        return call(env.h, method, path, NULL, status);
}

/* passthrough[i] of a VM as the API shows it (a borrowed reference into vm). */
static struct json_object *passthrough(struct json_object *vm, size_t i)
{
        struct json_object *list = NULL;
        json_object_object_get_ex(vm, "passthrough", &list);
        cr_assert(json_object_is_type(list, json_type_array) && json_object_array_length(list) > i,
                  "no passthrough[%zu] in %s", i, json_object_to_json_string(vm));
        return json_object_array_get_idx(list, i);
}

static struct json_object *get_allocation(const char *id, long status)
{
        _cleanup_free_ char *path = util_strdup_printf("/v1/allocations/%s", id);
        return call(env.h, "GET", path, NULL, status);
}

static size_t count_occurrences(const char *text, const char *line)
{
        size_t n = 0;
        for (const char *p = text; (p = strstr(p, line)); p += strlen(line))
                n++;
        return n;
}

/* Wait (the fake kernel reacts asynchronously) until the kernel log holds `want` lines. */
static void expect_kernel_lines(const char *line, size_t want)
{
        size_t got = 0;
        for (int i = 0; i < 300; i++) {
                _cleanup_free_ char *log = NULL;
                cr_assert_eq(fixture_kernel_log(env.fx, &log), 0);
                got = count_occurrences(log, line);
                if (got == want)
                        return;
                util_sleep_usec(10000);
        }
        cr_assert_fail("kernel log: %zu times \"%s\", expected %zu", got, line, want);
}

static void wait_vm_state(const char *id, const char *state)
{
        for (int i = 0; i < 500; i++) {
                struct json_object *vm = vm_path_call("GET", id, NULL, 200);
                bool done = streq_ptr(jstr(vm, "state"), state);
                if (done || i == 499)
                        cr_assert(done, "VM %s: %s", id, json_object_to_json_string(vm));
                json_object_put(vm);
                if (done)
                        return;
                util_sleep_usec(20000);
        }
}

/* ---- create, show, delete ---------------------------------------------------------------- */

Test(vm_passthrough, pool_entry_is_allocated_to_the_vm_and_released_with_it)
{
        struct json_object *vm =
                create_vm("web", "{\"type\":\"vfio\",\"pool\":\"nvme\",\"guest_address\":5}", 201);
        const char *id = jstr(vm, "id");
        struct json_object *pt = passthrough(vm, 0);
        cr_expect_str_eq(jstr(pt, "host"), "0000:01:00.1", "%s", json_object_to_json_string(vm));
        cr_expect_eq(jint(pt, "iommu_group"), 6, "%s", json_object_to_json_string(vm));
        cr_expect_eq(jint(pt, "guest_address"), 5, "%s", json_object_to_json_string(vm));
        const char *alloc_id = jstr(pt, "allocation");
        cr_assert_not_null(alloc_id, "%s", json_object_to_json_string(vm));
        expect_sysfs_driver(env.fx, "0000:01:00.1", "vfio-pci");

        struct json_object *a = get_allocation(alloc_id, 200);
        cr_expect_str_eq(jstr(a, "vm"), id, "allocation %s", json_object_to_json_string(a));
        cr_expect_str_eq(jstr(a, "owner"), "web", "allocation %s", json_object_to_json_string(a));
        cr_expect_str_eq(jstr(a, "device"), "0000:01:00.1", "%s", json_object_to_json_string(a));
        json_object_put(a);
        struct json_object *dev = get_device(env.h, "0000:01:00.1");
        cr_expect_str_eq(jstr(json_object_object_get(dev, "allocation"), "vm"), id, "device %s",
                         json_object_to_json_string(dev));
        json_object_put(dev);

        /* Not released behind the VM's back. */
        _cleanup_free_ char *apath = util_strdup_printf("/v1/allocations/%s", alloc_id);
        struct json_object *e = call(env.h, "DELETE", apath, NULL, 409);
        cr_expect_str_eq(error_code(e), "allocation_in_use", "%s", json_object_to_json_string(e));
        struct json_object *err = json_object_object_get(e, "error");
        cr_expect(strstr(jstr(err, "message"), id), "message does not name the VM: %s",
                  json_object_to_json_string(e));
        json_object_put(e);
        expect_sysfs_driver(env.fx, "0000:01:00.1", "vfio-pci");

        /* The VM's definition shows the entry as given. */
        struct json_object *shown = vm_path_call("GET", id, NULL, 200);
        struct json_object *entry =
                json_object_array_get_idx(json_object_object_get(shown, "devices"), 0);
        cr_expect_str_eq(jstr(entry, "pool"), "nvme", "%s", json_object_to_json_string(shown));
        json_object_put(shown);

        struct json_object *del = vm_path_call("DELETE", id, NULL, 200);
        cr_expect_eq(json_object_array_length(json_object_object_get(del, "released")), 1, "%s",
                     json_object_to_json_string(del));
        json_object_put(del);
        json_object_put(get_allocation(alloc_id, 404));
        expect_sysfs_driver(env.fx, "0000:01:00.1", "");
        expect_no_override(env.fx, "0000:01:00.1");
        expect_kernel_lines("reset 0000:01:00.1", 1);
        struct json_object *pool = call(env.h, "GET", "/v1/pools/nvme", NULL, 200);
        cr_expect_eq(jint(pool, "free"), 2, "pool after delete: %s",
                     json_object_to_json_string(pool));
        json_object_put(pool);
        json_object_put(vm);
}

Test(vm_passthrough, refused_create_leaves_nothing_allocated)
{
        add_triple(env.fx, "mlx5_core");
        /* The first entry is allocated, the second refused: the first goes back. */
        struct json_object *e = create_vm("db",
                                          "{\"type\":\"vfio\",\"pool\":\"one\"},{\"type\":\"vfio\","
                                          "\"device\":\"0000:03:00.0\"}",
                                          409);
        cr_expect_str_eq(error_code(e), "group_not_viable", "%s", json_object_to_json_string(e));
        json_object_put(e);
        expect_sysfs_driver(env.fx, "0000:01:00.2", "");
        expect_no_override(env.fx, "0000:01:00.2");
        struct json_object *list = call(env.h, "GET", "/v1/allocations", NULL, 200);
        cr_expect_eq(json_object_array_length(json_object_object_get(list, "allocations")), 0,
                     "allocations left: %s", json_object_to_json_string(list));
        json_object_put(list);
        list = call(env.h, "GET", "/v1/vms", NULL, 200);
        cr_expect_eq(json_object_array_length(json_object_object_get(list, "vms")), 0,
                     "VMs left: %s", json_object_to_json_string(list));
        json_object_put(list);

        e = create_vm(NULL, "{\"type\":\"vfio\",\"pool\":\"nope\"}", 404);
        cr_expect_str_eq(error_code(e), "pool_not_found", "%s", json_object_to_json_string(e));
        json_object_put(e);
        e = create_vm(NULL, "{\"type\":\"vfio\",\"host\":\"0000:01:00.1\"}", 400);
        cr_expect_str_eq(error_code(e), "invalid_device", "%s", json_object_to_json_string(e));
        json_object_put(e);
}

/* A multi-function group goes whole to one VM, and only when every member is free. */
Test(vm_passthrough, multi_device_group_only_whole_and_free)
{
        add_triple(env.fx, NULL);
        struct json_object *vm =
                create_vm("a", "{\"type\":\"vfio\",\"device\":\"0000:03:00.1\"}", 201);
        cr_expect_str_eq(jstr(passthrough(vm, 0), "host"), "0000:03:00.1", "%s",
                         json_object_to_json_string(vm));
        for (int f = 0; f < 3; f++) {
                _cleanup_free_ char *addr = util_strdup_printf("0000:03:00.%d", f);
                expect_sysfs_driver(env.fx, addr, "vfio-pci");
        }
        struct json_object *e =
                create_vm("b", "{\"type\":\"vfio\",\"device\":\"0000:03:00.0\"}", 409);
        cr_expect_str_eq(error_code(e), "device_allocated", "%s", json_object_to_json_string(e));
        json_object_put(e);
        json_object_put(vm_path_call("DELETE", jstr(vm, "id"), NULL, 200));
        expect_sysfs_driver(env.fx, "0000:03:00.0", "");
        json_object_put(vm);
}

struct race {
        long status;
        char code[64];
};

static void *race_create(void *userdata)
{
        struct race *r = userdata;
        _cleanup_free_ char *body = vm_body(NULL, "{\"type\":\"vfio\",\"pool\":\"one\"}");
        struct iov_http_reply reply = {0};
        if (harness_request(env.h, "POST", "/v1/vms", body, &reply) == 0) {
                r->status = reply.status;
                const char *code = error_code(reply.json);
                snprintf(r->code, sizeof(r->code), "%s", code ? code : "");
        }
        harness_reply_clear(&reply);
        return NULL;
}

Test(vm_passthrough, two_creates_race_for_the_last_vf)
{
        struct race results[2] = {0};
        pthread_t threads[2];
        for (int i = 0; i < 2; i++)
                cr_assert_eq(pthread_create(&threads[i], NULL, race_create, &results[i]), 0);
        for (int i = 0; i < 2; i++)
                pthread_join(threads[i], NULL);
        int created = 0, exhausted = 0;
        for (int i = 0; i < 2; i++) {
                created += results[i].status == 201;
                exhausted += results[i].status == 409 && streq(results[i].code, "pool_exhausted");
        }
        cr_expect(created == 1 && exhausted == 1, "statuses %ld (%s) and %ld (%s)",
                  results[0].status, results[0].code, results[1].status, results[1].code);
        struct json_object *list = call(env.h, "GET", "/v1/allocations?pool=one", NULL, 200);
        cr_expect_eq(json_object_array_length(json_object_object_get(list, "allocations")), 1, "%s",
                     json_object_to_json_string(list));
        json_object_put(list);
}

/* "allocation": ID adopts an allocation whose owner is the VM's name, held by no VM. */
Test(vm_passthrough, adopting_an_allocation_checks_its_owner)
{
        struct json_object *a = allocate(env.h, "db", "device", "0000:01:00.1", 201);
        _cleanup_free_ char *entry =
                util_strdup_printf("{\"type\":\"vfio\",\"allocation\":\"%s\"}", jstr(a, "id"));
        struct json_object *e = create_vm("other", entry, 409);
        cr_expect_str_eq(error_code(e), "allocation_owner_mismatch", "%s",
                         json_object_to_json_string(e));
        json_object_put(e);
        e = create_vm(NULL, entry, 409);
        cr_expect_str_eq(error_code(e), "allocation_owner_mismatch", "%s",
                         json_object_to_json_string(e));
        json_object_put(e);

        struct json_object *vm = create_vm("db", entry, 201);
        struct json_object *got = get_allocation(jstr(a, "id"), 200);
        cr_expect_str_eq(jstr(got, "vm"), jstr(vm, "id"), "%s", json_object_to_json_string(got));
        json_object_put(got);
        e = create_vm("db2", entry, 409);
        cr_expect_str_eq(error_code(e), "allocation_in_use", "%s", json_object_to_json_string(e));
        json_object_put(e);
        /* Deleting the VM releases what it held, adopted or not. */
        json_object_put(vm_path_call("DELETE", jstr(vm, "id"), NULL, 200));
        json_object_put(get_allocation(jstr(a, "id"), 404));
        expect_sysfs_driver(env.fx, "0000:01:00.1", "");
        json_object_put(vm);
        json_object_put(a);
}

/* A VM's allocation keeps the VM as its owner: PATCH is refused, naming the VM. */
Test(vm_passthrough, owner_of_a_vm_allocation_cannot_be_changed)
{
        struct json_object *vm = create_vm("web", "{\"type\":\"vfio\",\"pool\":\"one\"}", 201);
        const char *alloc_id = jstr(passthrough(vm, 0), "allocation");
        _cleanup_free_ char *path = util_strdup_printf("/v1/allocations/%s", alloc_id);
        struct json_object *e = call(env.h, "PATCH", path, "{\"owner\":\"k8s:ns/pod/c\"}", 409);
        cr_expect_str_eq(error_code(e), "allocation_in_use", "%s", json_object_to_json_string(e));
        struct json_object *error = json_object_object_get(e, "error");
        cr_expect_str_eq(jstr(error, "vm") ? jstr(error, "vm") : "", jstr(vm, "id"), "%s",
                         json_object_to_json_string(e));
        json_object_put(e);
        struct json_object *a = get_allocation(alloc_id, 200);
        cr_expect_str_eq(jstr(a, "owner"), "web", "%s", json_object_to_json_string(a));
        json_object_put(a);
        json_object_put(vm);
}

/* ---- running ---------------------------------------------------------------------------- */

/* name is "fd:N" and descriptor N of process pid is the file below the fixture's dev root
 * whose path ends with (or, ending in '/', continues) tail. */
static void expect_passed_node(pid_t pid, const char *name, const char *tail, const char *config)
{
        cr_assert(name && strncmp(name, "fd:", 3) == 0, "\"%s\" is no fd:N: %s", name, config);
        _cleanup_free_ char *link = util_strdup_printf("/proc/%d/fd/%s", (int)pid, name + 3);
        char target[512] = "";
        cr_assert_gt(readlink(link, target, sizeof(target) - 1), 0, "%s: %s", link,
                     strerror(errno));
        _cleanup_free_ char *want = util_strdup_printf("%s%s", fixture_dev_root(env.fx), tail + 4);
        cr_expect(strncmp(target, want, strlen(want)) == 0 &&
                          (tail[strlen(tail) - 1] == '/' || streq(target, want)),
                  "%s -> %s, want %s", link, target, want);
}

static char *config_of(const char *id)
{
        _cleanup_free_ char *path = util_strdup_printf("%s/vms/%s/config.json", env.run_dir, id);
        char *text = NULL;
        cr_assert_eq(util_read_file(path, 1 << 20, &text, NULL), 0, "cannot read %s", path);
        return text;
}

Test(vm_passthrough, start_and_stop_reset_the_device_and_keep_it)
{
        struct json_object *vm =
                create_vm("web", "{\"type\":\"vfio\",\"pool\":\"nvme\",\"guest_address\":7}", 201);
        const char *id = jstr(vm, "id");
        json_object_put(vm_path_call("POST", id, "start", 200));
        wait_vm_state(id, "running");
        expect_kernel_lines("reset 0000:01:00.1", 1);

        /* The VMM's entry names the host function; the rest of the entry is as given. */
        _cleanup_free_ char *config = config_of(id);
        struct json_object *c = json_tokener_parse(config);
        struct json_object *entry =
                json_object_array_get_idx(json_object_object_get(c, "devices"), 0);
        cr_expect_str_eq(jstr(entry, "host"), "0000:01:00.1", "config %s", config);
        cr_expect_eq(jint(entry, "guest_address"), 7, "config %s", config);
        cr_expect(!json_object_object_get_ex(entry, "pool", NULL), "config %s", config);
        json_object_put(c);

        json_object_put(vm_path_call("POST", id, "stop", 200));
        wait_vm_state(id, "stopped");
        expect_kernel_lines("reset 0000:01:00.1", 2);
        expect_sysfs_driver(env.fx, "0000:01:00.1", "vfio-pci");
        struct json_object *shown = vm_path_call("GET", id, NULL, 200);
        cr_expect_str_eq(jstr(passthrough(shown, 0), "state"), "active", "%s",
                         json_object_to_json_string(shown));
        json_object_put(shown);

        json_object_put(vm_path_call("POST", id, "start", 200));
        wait_vm_state(id, "running");
        expect_kernel_lines("reset 0000:01:00.1", 3);
        json_object_put(vm);
}

/* The function at guest slot slot of a VMM config's or a VM's list: its host address
 * ("" when none is there). */
static const char *function_at(struct json_object *list, int slot)
{
        for (size_t i = 0; i < json_object_array_length(list); i++) {
                struct json_object *f = json_object_array_get_idx(list, i);
                struct json_object *ga = json_object_object_get(f, "guest_address");
                if (json_object_is_type(ga, json_type_int) && json_object_get_int(ga) == slot)
                        return jstr(f, "host") ? jstr(f, "host") : "";
        }
        return "";
}

/* Every non-bridge function of the group reaches the VMM: the named one (not function 0)
 * with its entry's guest_address and present_as, the others plain, on the highest free
 * slots (31 is named here, so 30 and 29 in the allocation's order); GET shows the same. */
Test(vm_passthrough, every_function_of_a_multi_device_group_reaches_the_vmm)
{
        add_triple(env.fx, NULL);
        struct json_object *vm = create_vm("a",
                                           "{\"type\":\"vfio\",\"device\":\"0000:03:00.1\","
                                           "\"guest_address\":31,"
                                           "\"present_as\":{\"subsystem_id\":\"0001\"}}",
                                           201);
        const char *id = jstr(vm, "id");
        struct json_object *run = vm_path_call("POST", id, "start", 200);
        pid_t pid = (pid_t)jint(run, "pid");
        json_object_put(run);
        wait_vm_state(id, "running");

        _cleanup_free_ char *config = config_of(id);
        struct json_object *c = json_tokener_parse(config);
        struct json_object *devices = json_object_object_get(c, "devices");
        cr_assert_eq(json_object_array_length(devices), 3, "config %s", config);
        /* iovd opened the container and the group's node (below --dev-root) and passed
         * them: the VMM holds them as the descriptors config.json names. */
        expect_passed_node(pid, jstr(c, "vfio_container"), "/dev/vfio/vfio", config);
        const char *group = jstr(json_object_array_get_idx(devices, 0), "vfio_group");
        expect_passed_node(pid, group, "/dev/vfio/", config);
        cr_expect_str_eq(function_at(devices, 31), "0000:03:00.1", "config %s", config);
        cr_expect_str_eq(function_at(devices, 30), "0000:03:00.0", "config %s", config);
        cr_expect_str_eq(function_at(devices, 29), "0000:03:00.2", "config %s", config);
        for (size_t i = 0; i < 3; i++) {
                struct json_object *e = json_object_array_get_idx(devices, i);
                cr_expect_str_eq(jstr(e, "type"), "vfio", "config %s", config);
                cr_expect_str_eq(jstr(e, "vfio_group"), group, "one group, one node: %s", config);
                /* present_as is the named function's: its siblings have ids of their own. */
                cr_expect_eq(json_object_object_get_ex(e, "present_as", NULL),
                             streq(jstr(e, "host"), "0000:03:00.1"), "config %s", config);
        }
        json_object_put(c);

        struct json_object *shown = vm_path_call("GET", id, NULL, 200);
        struct json_object *functions = json_object_object_get(passthrough(shown, 0), "functions");
        const char *text = json_object_to_json_string(shown);
        cr_expect_eq(json_object_array_length(functions), 3, "%s", text);
        cr_expect_str_eq(jstr(json_object_array_get_idx(functions, 0), "host"), "0000:03:00.1",
                         "%s", text);
        cr_expect_str_eq(function_at(functions, 31), "0000:03:00.1", "%s", text);
        cr_expect_str_eq(function_at(functions, 30), "0000:03:00.0", "%s", text);
        cr_expect_str_eq(function_at(functions, 29), "0000:03:00.2", "%s", text);
        json_object_put(shown);
        json_object_put(vm);
}

/* Named by its function 0, a multi-function device keeps its shape: the other functions
 * of its host slot become the same functions of its guest slot (05.1, 05.2). */
Test(vm_passthrough, a_multi_function_device_keeps_its_functions_in_one_guest_slot)
{
        add_triple(env.fx, NULL);
        struct json_object *vm = create_vm(
                "a", "{\"type\":\"vfio\",\"device\":\"0000:03:00.0\",\"guest_address\":5}", 201);
        const char *id = jstr(vm, "id");
        struct json_object *run = vm_path_call("POST", id, "start", 200);
        pid_t pid = (pid_t)jint(run, "pid");
        json_object_put(run);
        wait_vm_state(id, "running");

        _cleanup_free_ char *config = config_of(id);
        struct json_object *c = json_tokener_parse(config);
        struct json_object *devices = json_object_object_get(c, "devices");
        cr_assert_eq(json_object_array_length(devices), 3, "config %s", config);
        /* iovd opened the container and the group's node (below --dev-root) and passed
         * them: the VMM holds them as the descriptors config.json names. */
        expect_passed_node(pid, jstr(c, "vfio_container"), "/dev/vfio/vfio", config);
        const char *group = jstr(json_object_array_get_idx(devices, 0), "vfio_group");
        expect_passed_node(pid, group, "/dev/vfio/", config);
        for (int i = 0; i < 3; i++) {
                struct json_object *e = json_object_array_get_idx(devices, (size_t)i);
                _cleanup_free_ char *host = util_strdup_printf("0000:03:00.%d", i);
                cr_expect_str_eq(jstr(e, "host"), host, "config %s", config);
                cr_expect_eq(jint(e, "guest_address"), 5, "config %s", config);
                struct json_object *fn = json_object_object_get(e, "guest_function");
                cr_expect_eq(fn ? json_object_get_int(fn) : 0, i, "config %s", config);
        }
        json_object_put(c);

        struct json_object *shown = vm_path_call("GET", id, NULL, 200);
        struct json_object *functions = json_object_object_get(passthrough(shown, 0), "functions");
        const char *text = json_object_to_json_string(shown);
        cr_assert_eq(json_object_array_length(functions), 3, "%s", text);
        for (int i = 0; i < 3; i++) {
                struct json_object *f = json_object_array_get_idx(functions, (size_t)i);
                cr_expect_eq(jint(f, "guest_address"), 5, "%s", text);
                cr_expect_eq(jint(f, "guest_function"), i, "%s", text);
        }
        json_object_put(shown);
        json_object_put(vm);
}

Test(vm_passthrough, killed_vmm_leaves_the_vm_crashed_with_the_device_reset_and_held)
{
        struct json_object *vm = create_vm("web", "{\"type\":\"vfio\",\"pool\":\"one\"}", 201);
        const char *id = jstr(vm, "id");
        struct json_object *run = vm_path_call("POST", id, "start", 200);
        pid_t pid = (pid_t)jint(run, "pid");
        json_object_put(run);
        cr_assert_gt(pid, 0, "no pid");
        expect_kernel_lines("reset 0000:01:00.2", 1);
        /* A single function without guest_address: none in its entry (iovd-vmm refuses a
         * null one). */
        _cleanup_free_ char *config = config_of(id);
        struct json_object *c = json_tokener_parse(config);
        struct json_object *entry =
                json_object_array_get_idx(json_object_object_get(c, "devices"), 0);
        cr_expect_str_eq(jstr(entry, "host"), "0000:01:00.2", "config %s", config);
        cr_expect(!json_object_object_get_ex(entry, "guest_address", NULL), "config %s", config);
        json_object_put(c);
        cr_assert_eq(kill(pid, SIGKILL), 0, "kill %d: %s", (int)pid, strerror(errno));
        wait_vm_state(id, "crashed");
        expect_kernel_lines("reset 0000:01:00.2", 2);
        expect_sysfs_driver(env.fx, "0000:01:00.2", "vfio-pci");
        /* Still the VM's: no other VM gets it. */
        struct json_object *e = create_vm("thief", "{\"type\":\"vfio\",\"pool\":\"one\"}", 409);
        cr_expect_str_eq(error_code(e), "pool_exhausted", "%s", json_object_to_json_string(e));
        json_object_put(e);
        json_object_put(vm_path_call("DELETE", id, NULL, 200));
        struct json_object *pool = call(env.h, "GET", "/v1/pools/one", NULL, 200);
        cr_expect_eq(jint(pool, "free"), 1, "%s", json_object_to_json_string(pool));
        json_object_put(pool);
        json_object_put(vm);
}

Test(vm_passthrough, failed_reset_quarantines_the_device_and_refuses_the_start)
{
        add_no_reset_device(env.fx);
        struct json_object *vm =
                create_vm("gpu", "{\"type\":\"vfio\",\"device\":\"0000:04:00.0\"}", 201);
        const char *id = jstr(vm, "id");
        struct json_object *e = vm_path_call("POST", id, "start", 409);
        cr_expect_str_eq(error_code(e), "device_reset_failed", "%s", json_object_to_json_string(e));
        json_object_put(e);
        struct json_object *shown = vm_path_call("GET", id, NULL, 200);
        cr_expect_str_eq(jstr(shown, "state"), "created", "%s", json_object_to_json_string(shown));
        cr_expect_not_null(jstr(passthrough(shown, 0), "quarantined"), "%s",
                           json_object_to_json_string(shown));
        json_object_put(shown);
        expect_sysfs_driver(env.fx, "0000:04:00.0", "vfio-pci");
        /* Deleting the VM cannot give back what cannot be reset: it stays quarantined. */
        json_object_put(vm_path_call("DELETE", id, NULL, 200));
        struct json_object *q = call(env.h, "GET", "/v1/quarantine", NULL, 200);
        cr_expect(strstr(json_object_to_json_string(q), "0000:04:00.0"), "%s",
                  json_object_to_json_string(q));
        json_object_put(q);
        json_object_put(vm);
}

/* A device that loses its reset while the guest uses it: after the VMM is killed the
 * reset fails, the device stays held and quarantined, the VM says so and does not
 * start again. */
Test(vm_passthrough, reset_failing_after_a_crash_quarantines_the_held_device)
{
        struct json_object *vm = create_vm("web", "{\"type\":\"vfio\",\"pool\":\"one\"}", 201);
        const char *id = jstr(vm, "id");
        struct json_object *run = vm_path_call("POST", id, "start", 200);
        pid_t pid = (pid_t)jint(run, "pid");
        json_object_put(run);
        expect_kernel_lines("reset 0000:01:00.2", 1);
        _cleanup_free_ char *reset = util_strdup_printf("%s/bus/pci/devices/0000:01:00.2/reset",
                                                        fixture_sysfs_root(env.fx));
        cr_assert_eq(unlink(reset), 0, "unlink %s: %s", reset, strerror(errno));
        cr_assert_eq(kill(pid, SIGKILL), 0, "kill %d: %s", (int)pid, strerror(errno));
        wait_vm_state(id, "crashed");
        struct json_object *shown = vm_path_call("GET", id, NULL, 200);
        cr_expect_not_null(jstr(passthrough(shown, 0), "quarantined"), "%s",
                           json_object_to_json_string(shown));
        json_object_put(shown);
        expect_sysfs_driver(env.fx, "0000:01:00.2", "vfio-pci");
        struct json_object *e = vm_path_call("POST", id, "start", 409);
        cr_expect_str_eq(error_code(e), "device_reset_failed", "%s", json_object_to_json_string(e));
        json_object_put(e);
        json_object_put(vm);
}

Test(vm_passthrough, start_without_interrupt_remapping_needs_the_unsafe_switch)
{
        struct json_object *vm = create_vm("web", "{\"type\":\"vfio\",\"pool\":\"one\"}", 201);
        const char *id = jstr(vm, "id");
        cr_assert_eq(fixture_set_iommu(env.fx, true, false), 0);
        struct json_object *e = vm_path_call("POST", id, "start", 409);
        cr_expect_str_eq(error_code(e), "interrupt_remapping_unavailable", "%s",
                         json_object_to_json_string(e));
        json_object_put(e);
        expect_kernel_lines("reset 0000:01:00.2", 0);

        int status = -1;
        cr_assert_eq(harness_stop(env.h, &status), 0);
        harness_free(TAKE_PTR(env.h));
        pt_start("--allow-unsafe-interrupts");
        struct json_object *run = vm_path_call("POST", id, "start", 200);
        cr_expect(json_object_get_boolean(json_object_object_get(run, "unsafe_interrupts")),
                  "the VM does not show it runs unprotected: %s", json_object_to_json_string(run));
        json_object_put(run);
        json_object_put(vm);
}

/* ---- durability ------------------------------------------------------------------------- */

static void restart_iovd(void)
{
        int status = -1;
        cr_assert_eq(harness_stop(env.h, &status), 0);
        cr_assert_eq(status, 0, "iovd exit status %d", status);
        harness_free(TAKE_PTR(env.h));
        pt_start(NULL);
}

Test(vm_passthrough, restart_keeps_the_vm_and_its_device)
{
        struct json_object *vm = create_vm("web", "{\"type\":\"vfio\",\"pool\":\"one\"}", 201);
        const char *id = jstr(vm, "id");
        const char *alloc_id = jstr(passthrough(vm, 0), "allocation");
        restart_iovd();
        struct json_object *shown = vm_path_call("GET", id, NULL, 200);
        cr_expect_str_eq(jstr(passthrough(shown, 0), "allocation"), alloc_id, "%s",
                         json_object_to_json_string(shown));
        cr_expect_str_eq(jstr(passthrough(shown, 0), "host"), "0000:01:00.2", "%s",
                         json_object_to_json_string(shown));
        json_object_put(shown);
        struct json_object *a = get_allocation(alloc_id, 200);
        cr_expect_str_eq(jstr(a, "vm"), id, "%s", json_object_to_json_string(a));
        json_object_put(a);
        expect_sysfs_driver(env.fx, "0000:01:00.2", "vfio-pci");
        json_object_put(vm);
}

/* Send a request iovd may die in the middle of; true when it answered with status. */
static bool try_call(const char *method, const char *path, const char *body, long status,
                     struct json_object **ret)
{
        struct iov_http_reply reply = {0};
        int r = harness_request(env.h, method, path, body, &reply);
        bool ok = r == 0 && reply.status == status;
        if (ok && ret)
                *ret = json_object_get(reply.json);
        harness_reply_clear(&reply);
        return ok;
}

/* After a crash, whatever its step: 0000:01:00.2 is held by exactly one allocation of a
 * VM that exists, or by none and back on no driver; no half-done record is left. */
static void expect_consistent(const char *step)
{
        struct json_object *list = call(env.h, "GET", "/v1/allocations", NULL, 200);
        struct json_object *items = json_object_object_get(list, "allocations");
        size_t n = json_object_array_length(items);
        cr_expect_leq(n, 1, "%s: %s", step, json_object_to_json_string(list));
        if (n == 1) {
                struct json_object *a = json_object_array_get_idx(items, 0);
                cr_expect_str_eq(jstr(a, "state"), "active", "%s: %s", step,
                                 json_object_to_json_string(a));
                _cleanup_free_ char *path = util_strdup_printf("/v1/vms/%s", jstr(a, "vm"));
                json_object_put(call(env.h, "GET", path, NULL, 200));
                expect_sysfs_driver(env.fx, "0000:01:00.2", "vfio-pci");
        } else {
                expect_sysfs_driver(env.fx, "0000:01:00.2", "");
                expect_no_override(env.fx, "0000:01:00.2");
        }
        json_object_put(list);
}

/* Create, start, stop, delete a VM with iovd killed at step; returns once it died (or the
 * sequence ended). */
static void run_sequence(void)
{
        _cleanup_free_ char *body = vm_body("seq", "{\"type\":\"vfio\",\"pool\":\"one\"}");
        struct json_object *vm = NULL;
        if (!try_call("POST", "/v1/vms", body, 201, &vm))
                return;
        _cleanup_free_ char *path = util_strdup_printf("/v1/vms/%s", jstr(vm, "id"));
        _cleanup_free_ char *start = util_strdup_printf("%s/start", path);
        _cleanup_free_ char *stop = util_strdup_printf("%s/stop", path);
        json_object_put(vm);
        if (!try_call("POST", start, NULL, 200, NULL) || !try_call("POST", stop, NULL, 200, NULL))
                return;
        util_sleep_usec(200000); /* the watcher's reset after the VMM's end */
        (void)try_call("DELETE", path, NULL, 200, NULL);
}

Test(vm_passthrough, kill_9_at_every_step_leaves_no_device_held_twice_or_half_bound)
{
        static const char *const steps[] = {
                "allocation-pending-saved",   "allocation-bound", "vm-create-attached",
                "vm-start-prepared",          "vm-vmm-ended",     "vm-delete-forgotten",
                "allocation-releasing-saved",
        };
        setenv("IOVD_TEST_HOOKS", "1", 1);
        for (size_t i = 0; i < ARRAY_SIZE(steps); i++) {
                setenv("IOVD_TEST_CRASH_AT", steps[i], 1);
                harness_free(TAKE_PTR(env.h));
                pt_start(NULL);
                run_sequence();
                /* Dead (killed at its step) or done: either way, start again without. */
                bool died = false;
                for (int w = 0; w < 200 && !died; w++) { /* its socket closes before it is reaped */
                        died = waitpid(env.h->pid, NULL, WNOHANG) == env.h->pid;
                        if (!died)
                                util_sleep_usec(10000);
                }
                if (died)
                        env.h->pid = 0;
                _cleanup_free_ char *log = died ? NULL : harness_log(env.h);
                cr_expect(died, "iovd never reached step %s; log:\n%s", steps[i], log ? log : "");
                unsetenv("IOVD_TEST_CRASH_AT");
                harness_free(TAKE_PTR(env.h));
                pt_start(NULL);
                expect_consistent(steps[i]);
                /* Clean up for the next step: every VM deleted frees the VF. */
                struct json_object *vms = call(env.h, "GET", "/v1/vms", NULL, 200);
                struct json_object *items = json_object_object_get(vms, "vms");
                for (size_t k = 0; k < json_object_array_length(items); k++) {
                        const char *id = jstr(json_object_array_get_idx(items, k), "id");
                        _cleanup_free_ char *path = util_strdup_printf("/v1/vms/%s", id);
                        if (!try_call("DELETE", path, NULL, 200, NULL)) {
                                _cleanup_free_ char *kill = util_strdup_printf("%s/kill", path);
                                (void)try_call("POST", kill, NULL, 200, NULL);
                                json_object_put(call(env.h, "DELETE", path, NULL, 200));
                        }
                }
                json_object_put(vms);
                expect_sysfs_driver(env.fx, "0000:01:00.2", "");
        }
        unsetenv("IOVD_TEST_HOOKS");
}

/* A create that adopted an allocation and was cut short gives it back to its owner
 * rather than releasing it: it was the client's before the VM took it. */
Test(vm_passthrough, kill_9_after_adopting_gives_the_allocation_back)
{
        struct json_object *a = allocate(env.h, "db", "device", "0000:01:00.1", 201);
        _cleanup_free_ char *entry =
                util_strdup_printf("{\"type\":\"vfio\",\"allocation\":\"%s\"}", jstr(a, "id"));
        _cleanup_free_ char *body = vm_body("db", entry);
        setenv("IOVD_TEST_HOOKS", "1", 1);
        setenv("IOVD_TEST_CRASH_AT", "vm-create-attached", 1);
        harness_free(TAKE_PTR(env.h));
        pt_start(NULL);
        cr_expect(!try_call("POST", "/v1/vms", body, 201, NULL), "the create answered");
        unsetenv("IOVD_TEST_CRASH_AT");
        unsetenv("IOVD_TEST_HOOKS");
        harness_free(TAKE_PTR(env.h));
        pt_start(NULL);
        struct json_object *got = get_allocation(jstr(a, "id"), 200);
        cr_expect(!jstr(got, "vm") && streq_ptr(jstr(got, "owner"), "db"), "after the restart: %s",
                  json_object_to_json_string(got));
        json_object_put(got);
        expect_sysfs_driver(env.fx, "0000:01:00.1", "vfio-pci");
        json_object_put(a);
}

/* A delete cut short releases an adopted allocation, as the delete would have: the
 * delete made it the VM's own before the VM left the table. */
Test(vm_passthrough, kill_9_during_a_delete_releases_an_adopted_allocation)
{
        struct json_object *a = allocate(env.h, "db", "device", "0000:01:00.1", 201);
        _cleanup_free_ char *entry =
                util_strdup_printf("{\"type\":\"vfio\",\"allocation\":\"%s\"}", jstr(a, "id"));
        _cleanup_free_ char *body = vm_body("db", entry);
        struct json_object *vm = call(env.h, "POST", "/v1/vms", body, 201);
        _cleanup_free_ char *path = util_strdup_printf("/v1/vms/%s", jstr(vm, "id"));
        setenv("IOVD_TEST_HOOKS", "1", 1);
        setenv("IOVD_TEST_CRASH_AT", "vm-delete-forgotten", 1);
        harness_free(TAKE_PTR(env.h));
        pt_start(NULL);
        cr_expect(!try_call("DELETE", path, NULL, 200, NULL), "the delete answered");
        unsetenv("IOVD_TEST_CRASH_AT");
        unsetenv("IOVD_TEST_HOOKS");
        harness_free(TAKE_PTR(env.h));
        pt_start(NULL);
        json_object_put(call(env.h, "GET", path, NULL, 404));
        _cleanup_free_ char *apath = util_strdup_printf("/v1/allocations/%s", jstr(a, "id"));
        json_object_put(call(env.h, "GET", apath, NULL, 404));
        expect_sysfs_driver(env.fx, "0000:01:00.1", "");
        expect_no_override(env.fx, "0000:01:00.1");
        json_object_put(vm);
        json_object_put(a);
}

/* ---- events ----------------------------------------------------------------------------- */

/* The next event of type on the stream (the ones before it skipped); fails after 5 s. */
static struct json_object *next_event(int fd, const char *type)
{
        struct json_object *e = NULL;
        int r = harness_events_next_of_type(fd, type, 5000, &e);
        cr_assert_eq(r, 0, "no %s event: %s", type, strerror(-r));
        return e;
}

static void expect_event_vm(int fd, const char *type, const char *vm_id)
{
        struct json_object *e = next_event(fd, type);
        struct json_object *data = json_object_object_get(e, "data");
        cr_expect_str_eq(jstr(data, "vm"), vm_id, "%s", json_object_to_json_string(e));
        json_object_put(e);
}

Test(vm_passthrough, events_for_attach_reset_and_release_name_the_vm)
{
        int fd = -1;
        long status = 0;
        cr_assert_eq(harness_events_open(env.h, &fd, &status), 0);
        cr_assert_eq(status, 200, "GET /v1/events: %ld", status);
        struct json_object *vm = create_vm("web", "{\"type\":\"vfio\",\"pool\":\"one\"}", 201);
        const char *id = jstr(vm, "id");
        expect_event_vm(fd, "allocation_attached", id);
        json_object_put(vm_path_call("POST", id, "start", 200));
        expect_event_vm(fd, "allocation_reset", id);
        json_object_put(vm_path_call("POST", id, "stop", 200));
        expect_event_vm(fd, "allocation_reset", id);
        json_object_put(vm_path_call("DELETE", id, NULL, 200));
        expect_event_vm(fd, "allocation_released", id);
        close(fd);
        json_object_put(vm);
}

/* ---- iovctl ----------------------------------------------------------------------------- */

Test(vm_passthrough, iovctl_creates_with_a_vfio_device_and_shows_it)
{
        struct ctl c = {0};
        ctl_run(&c, env.h->socket_path, env.dir, NULL, "vm", "create", "web", "--kernel",
                env.kernel, "--memory", "16", "--device", "vfio,pool=one,guest_address=5", NULL);
        cr_assert_eq(c.status, 0, "vm create: %d\n%s%s", c.status, c.out, c.err);
        ctl_clear(&c);
        ctl_run(&c, env.h->socket_path, env.dir, NULL, "vm", "show", "web", NULL);
        cr_assert_eq(c.status, 0, "vm show: %d\n%s%s", c.status, c.out, c.err);
        _cleanup_free_ char *row = detail_value(c.out, "passthrough");
        cr_expect(strstr(row, "0000:01:00.2") && strstr(row, "guest_address"),
                  "passthrough row \"%s\" in:\n%s", row, c.out);
        ctl_clear(&c);
        struct json_object *list = call(env.h, "GET", "/v1/allocations?pool=one", NULL, 200);
        struct json_object *a =
                json_object_array_get_idx(json_object_object_get(list, "allocations"), 0);
        cr_expect_str_eq(jstr(a, "owner"), "web", "%s", json_object_to_json_string(list));
        json_object_put(list);
}
