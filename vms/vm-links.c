/* SPDX-License-Identifier: MIT */
/*
 * vm-links: VM-to-VM links between the ports of a driver VM and its clients
 * (docs/architecture.md, "VM-to-VM links"). A link is two virtio-net entries: a client's
 * {"peer": {"vm": DRIVER, "port": P}} and the driver's {"port": P}. This file checks
 * them at create and delete, makes the channel when both VMs run (one SOCK_SEQPACKET
 * socketpair, one end handed to each VMM over its control socket), publishes link_up and
 * link_down, and shows each link in GET /v1/vms/{id}. iovd keeps no end: a VMM that ends
 * closes its own, and the peer's VMM sees that as carrier off by itself.
 */
#include <stdio.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "daemon/daemon.h"
#include "vms/vm-record.h"

#define LINK_COMMAND_TIMEOUT_MS 5000
#define LINK_HAND_ATTEMPTS      3

/* One link as the definitions describe it; either side may be missing (a port no
 * client uses, a client whose driver VM was deleted with force). Lock held. */
struct vm_link {
        const struct iov_vm_record *client, *driver;
        size_t client_device, driver_device;
        const char *port;
};

/* The virtio-net options of device i of rec, or NULL when it is something else. */
static const struct iov_virtio_net_options *vm_device_net(const struct iov_vm_record *rec, size_t i)
{
        const struct iov_vm_device *d = &rec->spec.devices[i];
        if (d->kind != IOV_VM_DEVICE_VIRTIO || !streq(d->virtio.ops->name, "virtio-net"))
                return NULL;
        return d->virtio.options;
}

/* A VM by name or id (lock held). */
static struct iov_vm_record *vm_links_find_vm(struct iov_vm_table *t, const char *name)
{
        for (size_t i = 0; i < t->n_records; i++)
                if (streq(t->records[i]->id, name) || streq_ptr(t->records[i]->spec.name, name))
                        return t->records[i];
        return NULL;
}

/* The device of rec serving port, or -1. */
static ssize_t vm_port_device(const struct iov_vm_record *rec, const char *port)
{
        for (size_t i = 0; i < rec->spec.n_devices; i++) {
                const struct iov_virtio_net_options *o = vm_device_net(rec, i);
                if (o && streq(o->port, port))
                        return (ssize_t)i;
        }
        return -1;
}

/* The client of port of driver among the table's VMs (and extra, a VM not yet in it):
 * true with *ret filled. */
static bool vm_port_client(struct iov_vm_table *t, const struct iov_vm_record *extra,
                           const struct iov_vm_record *driver, const char *port,
                           struct vm_link *ret)
{
        for (size_t r = 0; r <= t->n_records; r++) {
                const struct iov_vm_record *c = r < t->n_records ? t->records[r] : extra;
                for (size_t i = 0; c && i < c->spec.n_devices; i++) {
                        const struct iov_virtio_net_options *o = vm_device_net(c, i);
                        if (!o || !o->peer_vm[0] || !streq(o->peer_port, port) ||
                            vm_links_find_vm(t, o->peer_vm) != driver)
                                continue;
                        *ret = (struct vm_link){.client = c, .client_device = i, .port = port};
                        return true;
                }
        }
        return false;
}

/* Device i of rec as a link (false when it is no link device). */
static bool vm_link_of_device(struct iov_vm_table *t, const struct iov_vm_record *rec, size_t i,
                              struct vm_link *ret)
{
        const struct iov_virtio_net_options *o = vm_device_net(rec, i);
        struct vm_link l = {0};
        if (!o || (!o->port[0] && !o->peer_vm[0]))
                return false;
        if (o->port[0]) {
                (void)vm_port_client(t, NULL, rec, o->port, &l);
                l.port = o->port;
                l.driver = rec;
                l.driver_device = i;
        } else {
                l = (struct vm_link){.client = rec, .client_device = i, .port = o->peer_port};
                l.driver = vm_links_find_vm(t, o->peer_vm);
                ssize_t d = l.driver ? vm_port_device(l.driver, o->peer_port) : -1;
                if (d < 0)
                        l.driver = NULL;
                l.driver_device = d < 0 ? 0 : (size_t)d;
        }
        *ret = l;
        return true;
}

/* ---- create and delete -------------------------------------------------------------- */

static int vm_links_check_entry(struct iov_vm_table *t, const struct iov_vm_record *rec, size_t i,
                                struct iov_problem *p)
{
        const struct iov_virtio_net_options *o = vm_device_net(rec, i);
        struct vm_link used;
        for (size_t j = 0; o && o->port[0] && j < i; j++) {
                const struct iov_virtio_net_options *other = vm_device_net(rec, j);
                if (other && streq(other->port, o->port))
                        return daemon_problem_set(p, 409, "link_invalid",
                                                  "devices[%zu]: port \"%s\" is declared twice", i,
                                                  o->port);
        }
        if (!o || !o->peer_vm[0])
                return 0;
        const struct iov_vm_record *driver = vm_links_find_vm(t, o->peer_vm);
        if (!driver)
                return daemon_problem_set(p, 409, "link_invalid",
                                          "devices[%zu]: peer VM \"%s\" does not exist", i,
                                          o->peer_vm);
        if (vm_port_device(driver, o->peer_port) < 0)
                return daemon_problem_set(p, 409, "link_invalid",
                                          "devices[%zu]: VM \"%s\" has no port \"%s\"", i,
                                          o->peer_vm, o->peer_port);
        if (vm_port_client(t, rec, driver, o->peer_port, &used) &&
            (used.client != rec || used.client_device != i))
                return daemon_problem_set(p, 409, "link_invalid",
                                          "devices[%zu]: port \"%s\" of VM \"%s\" already serves "
                                          "VM %s",
                                          i, o->peer_port, o->peer_vm, used.client->id);
        return 0;
}

int vm_links_check_new(struct iov_vm_table *t, const struct iov_vm_record *rec,
                       struct iov_problem *p)
{
        for (size_t i = 0; i < rec->spec.n_devices; i++) {
                int r = vm_links_check_entry(t, rec, i, p);
                if (r < 0)
                        return r;
        }
        return 0;
}

int vm_links_check_delete(struct iov_vm_table *t, const struct iov_vm_record *rec, bool force,
                          struct iov_problem *p)
{
        _cleanup_free_ char *names = NULL;
        for (size_t i = 0; !force && i < rec->spec.n_devices; i++) {
                struct vm_link l;
                if (!vm_link_of_device(t, rec, i, &l) || l.driver != rec || !l.client)
                        continue;
                char *more = util_strdup_printf("%s%s%s (%s)", names ? names : "",
                                                names ? ", " : "", l.client->id,
                                                l.client->spec.name ? l.client->spec.name : "");
                if (!more)
                        return -ENOMEM;
                free(names);
                names = more;
        }
        if (names)
                return daemon_problem_set(p, 409, "vm_has_clients",
                                          "VM %s serves clients: %s (force=true deletes it anyway)",
                                          rec->id, names);
        return 0;
}

/* ---- the channel ---------------------------------------------------------------------- */

static int vm_link_connect(const char *dir, int *ret_fd)
{
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        int n = snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/%s", dir, IOV_VMM_FILE_CONTROL);
        struct timeval tv = {.tv_sec = LINK_COMMAND_TIMEOUT_MS / 1000};
        if (n < 0 || (size_t)n >= sizeof(sa.sun_path))
                return -ENAMETOOLONG;
        _cleanup_close_ int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0 ||
            setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) < 0)
                return -errno;
        *ret_fd = TAKE_FD(fd);
        return 0;
}

/* Hand link `name` of the VMM in dir its end of a channel: "link NAME [MAC]" on the
 * control socket with the end passed along (SCM_RIGHTS, unix(7)). The one place iovd
 * gives a VMM an fd (vmm/vmm.h documents the command). */
static int vm_link_hand_end(const char *dir, const char *name, const uint8_t *mac, int end)
{
        char line[160], reply[256];
        int len = mac ? snprintf(line, sizeof(line), "link %s %02x:%02x:%02x:%02x:%02x:%02x\n",
                                 name, mac[0], mac[1], mac[2], mac[3], mac[4], mac[5])
                      : snprintf(line, sizeof(line), "link %s\n", name);
        union {
                struct cmsghdr align;
                char buf[CMSG_SPACE(sizeof(int))];
        } control = {0};
        struct iovec iov = {line, (size_t)len};
        struct msghdr m = {.msg_iov = &iov,
                           .msg_iovlen = 1,
                           .msg_control = control.buf,
                           .msg_controllen = sizeof(control.buf)};
        struct cmsghdr *cm = CMSG_FIRSTHDR(&m);
        if (!cm)
                return -EINVAL;
        *cm = (struct cmsghdr){.cmsg_len = CMSG_LEN(sizeof(int)),
                               .cmsg_level = SOL_SOCKET,
                               .cmsg_type = SCM_RIGHTS};
        memcpy(CMSG_DATA(cm), &end, sizeof(int));
        _cleanup_close_ int fd = -1;
        int r = vm_link_connect(dir, &fd);
        if (r < 0)
                return r;
        if (sendmsg(fd, &m, MSG_NOSIGNAL) != len)
                return -errno;
        ssize_t got = recv(fd, reply, sizeof(reply) - 1, 0);
        if (got <= 0)
                return got < 0 ? -errno : -ECONNRESET;
        reply[got] = '\0';
        return strstr(reply, "\"ok\":true") ? 0 : -EPROTO;
}

/* What it takes to join one link, copied out of the table so the lock can be dropped. */
struct vm_link_plan {
        char *client_dir, *driver_dir;
        char client_name[IOV_VIRTIO_NET_LINK_NAME_MAX], driver_name[IOV_VIRTIO_NET_PORT_MAX];
        uint8_t mac[6];
        struct json_object *event; /* link_up's data */
};

static bool vm_runs(const struct iov_vm_record *rec)
{
        return rec && rec->pidfd >= 0 && !rec->finishing && !rec->starting &&
               (rec->state == IOV_VM_STATE_RUNNING || rec->state == IOV_VM_STATE_PAUSED);
}

static struct json_object *vm_link_event(const struct vm_link *l)
{
        struct json_object *o = json_object_new_object();
        if (!o)
                return NULL;
        json_object_object_add(o, "vm", json_object_new_string(l->client->id));
        json_object_object_add(o, "device", json_object_new_int64((int64_t)l->client_device));
        json_object_object_add(o, "peer_vm", json_object_new_string(l->driver->id));
        json_object_object_add(o, "port", json_object_new_string(l->port));
        return o;
}

/* Lock held: the plan for link l when both its VMs run. */
static int vm_link_plan_make(struct iov_vm_table *t, const struct vm_link *l,
                             struct vm_link_plan *ret)
{
        const struct iov_virtio_net_options *c = vm_device_net(l->client, l->client_device);
        if (!c)
                return -EINVAL;
        struct vm_link_plan plan = {.client_dir = vm_record_dir(t, l->client),
                                    .driver_dir = vm_record_dir(t, l->driver),
                                    .event = vm_link_event(l)};
        memcpy(plan.mac, c->mac, sizeof(plan.mac));
        snprintf(plan.driver_name, sizeof(plan.driver_name), "%s", l->port);
        int r = virtio_net_link_name(c, plan.client_name, sizeof(plan.client_name));
        if (r >= 0 && (!plan.client_dir || !plan.driver_dir || !plan.event))
                r = -ENOMEM;
        if (r < 0) {
                free(plan.client_dir);
                free(plan.driver_dir);
                json_object_put(plan.event);
                return r;
        }
        *ret = plan;
        return 0;
}

/* One channel made and both ends handed over. */
static int vm_link_plan_hand(const struct vm_link_plan *plan)
{
        int sv[2];
        if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
                return -errno;
        int r = vm_link_hand_end(plan->driver_dir, plan->driver_name, plan->mac, sv[0]);
        const char *side = "the driver VM";
        if (r >= 0) {
                r = vm_link_hand_end(plan->client_dir, plan->client_name, NULL, sv[1]);
                side = "the client VM";
        }
        close(sv[0]);
        close(sv[1]);
        /* Which VMM did not take its end: a late answer has been seen from either. */
        if (r < 0)
                log_warning_errno(
                        r, "Link %s: %s did not take its end (EAGAIN: no answer in %u ms): %m",
                        plan->client_name, side, LINK_COMMAND_TIMEOUT_MS);
        return r;
}

/* Make the channel of one link and hand both ends over; link_up once both took theirs.
 * A VMM slow to answer (a loaded host) gets a new channel: each side keeps the last end
 * it was handed (the old one closes, vmm/virtio/net-link.c), and hand-overs are one at a
 * time in this order, so both end up with the same channel even if a late one lands. */
static void vm_link_plan_run(struct iov_vm_table *t, struct vm_link_plan *plan)
{
        int r = -EAGAIN;
        for (unsigned attempt = 1; r < 0 && attempt <= LINK_HAND_ATTEMPTS; attempt++) {
                r = vm_link_plan_hand(plan);
                if (r < 0)
                        log_warning_errno(r,
                                          "Link %s of %s: cannot hand the channel over "
                                          "(attempt %u of %u): %m",
                                          plan->client_name, plan->client_dir, attempt,
                                          LINK_HAND_ATTEMPTS);
        }
        if (r >= 0)
                daemon_event_publish(t->daemon, "link_up", TAKE_PTR(plan->event));
        json_object_put(plan->event);
        free(plan->client_dir);
        free(plan->driver_dir);
}

/* One vm_links_up at a time: two VMs of one link starting together would otherwise hand
 * out two pairs interleaved, each VMM keeping an end of a different pair. */
static pthread_mutex_t vm_links_handing = PTHREAD_MUTEX_INITIALIZER;

void vm_links_up(struct iov_vm_table *t, const char *id)
{
        struct vm_link_plan plans[IOV_VM_MAX_DEVICES];
        size_t n = 0;
        pthread_mutex_lock(&vm_links_handing);
        pthread_mutex_lock(&t->lock);
        struct iov_vm_record *rec = vm_table_find(t, id);
        for (size_t i = 0; vm_runs(rec) && i < rec->spec.n_devices && n < ARRAY_SIZE(plans); i++) {
                struct vm_link l;
                if (vm_link_of_device(t, rec, i, &l) && l.client && l.driver && vm_runs(l.client) &&
                    vm_runs(l.driver) && vm_link_plan_make(t, &l, &plans[n]) >= 0)
                        n++;
        }
        pthread_mutex_unlock(&t->lock);
        for (size_t i = 0; i < n; i++)
                vm_link_plan_run(t, &plans[i]);
        pthread_mutex_unlock(&vm_links_handing);
}

void vm_links_down(struct iov_vm_table *t, const struct iov_vm_record *rec)
{
        for (size_t i = 0; i < rec->spec.n_devices; i++) {
                struct vm_link l;
                if (!vm_link_of_device(t, rec, i, &l) || !l.client || !l.driver)
                        continue;
                /* The link was up while the other side ran. */
                if (!vm_runs(l.client == rec ? l.driver : l.client))
                        continue;
                struct json_object *data = vm_link_event(&l);
                if (data)
                        daemon_event_publish(t->daemon, "link_down", data);
        }
}

/* ---- GET /v1/vms/{id} ------------------------------------------------------------------- */

/* The entry named name in the VMM's live "links" (vmm/virtio/net-link.c), or NULL. */
static struct json_object *vm_live_link(struct json_object *live, const char *name)
{
        for (size_t i = 0; live && i < json_object_array_length(live); i++) {
                struct json_object *e = json_object_array_get_idx(live, i), *n = NULL;
                if (json_object_object_get_ex(e, "name", &n) &&
                    streq(json_object_get_string(n), name))
                        return e;
        }
        return NULL;
}

static struct json_object *vm_link_to_json(const struct iov_vm_record *rec, const struct vm_link *l,
                                           size_t device, struct json_object *live)
{
        const struct iov_virtio_net_options *o = vm_device_net(rec, device);
        bool is_port = l->driver == rec && o->port[0];
        const struct iov_vm_record *other = is_port ? l->client : l->driver;
        char name[IOV_VIRTIO_NET_LINK_NAME_MAX];
        struct json_object *j = json_object_new_object();
        if (!j || virtio_net_link_name(o, name, sizeof(name)) < 0)
                return j;
        json_object_object_add(j, "device", json_object_new_int64((int64_t)device));
        json_object_object_add(j, "role", json_object_new_string(is_port ? "port" : "client"));
        const char *peer = other ? (other->spec.name ? other->spec.name : other->id)
                                 : (is_port ? NULL : o->peer_vm);
        json_object_object_add(j, "peer_vm", peer ? json_object_new_string(peer) : NULL);
        json_object_object_add(j, "port", json_object_new_string(l->port));
        bool up = vm_runs(rec) && vm_runs(other);
        json_object_object_add(j, "state", json_object_new_string(up ? "up" : "down"));
        /* Live counters while the VMM runs, its final ones after. */
        struct json_object *e = vm_live_link(live, name);
        if (!e)
                return j;
        json_object_object_foreach (e, key, value)
                if (!streq(key, "name") && !streq(key, "role"))
                        json_object_object_add(j, key, json_object_get(value));
        return j;
}

void vm_links_add_json(struct iov_vm_table *t, const char *id, struct json_object *o)
{
        struct json_object *stats = NULL, *live = NULL;
        if (json_object_object_get_ex(o, "stats", &stats))
                (void)json_object_object_get_ex(stats, "links", &live);
        struct json_object *links = json_object_new_array();
        if (!links)
                return;
        pthread_mutex_lock(&t->lock);
        struct iov_vm_record *rec = vm_table_find(t, id);
        for (size_t i = 0; rec && i < rec->spec.n_devices; i++) {
                struct vm_link l;
                if (vm_link_of_device(t, rec, i, &l))
                        json_object_array_add(links, vm_link_to_json(rec, &l, i, live));
        }
        pthread_mutex_unlock(&t->lock);
        json_object_object_add(o, "links", links);
}
