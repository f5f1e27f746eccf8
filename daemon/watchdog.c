/* SPDX-License-Identifier: MIT */
/*
 * watchdog: the main thread's loop after READY=1. It waits for SIGTERM/SIGINT and, when
 * the service manager asked for a watchdog (WATCHDOG_USEC, sd_watchdog_enabled(3)),
 * wakes at half the interval and sends WATCHDOG=1 only when a health check passes:
 * state_lock, which every change of durable state takes, can be taken within a quarter
 * of the interval. A request, rescan or module stuck while holding it (the usual way a
 * daemon wedges) therefore stops the pings and systemd restarts iovd. Each wake also
 * sends STATUS= with what iovd holds ("ready: N devices, M allocations, K VMs running").
 *
 * Test hooks: with IOVD_TEST_HOOKS=1 in the environment, SIGUSR2 makes a thread take
 * state_lock and keep it until iovd stops: a wedge the tests use to see the pings stop;
 * and IOVD_TEST_CRASH_AT names a step (daemon_test_crash_point) where iovd kills itself.
 */
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

#include "daemon/runtime.h"

/* Without a watchdog, STATUS= is still refreshed this often. */
#define STATUS_REFRESH_USEC (30 * 1000 * 1000ULL)
/* How often the loop looks for a stale STATUS= (after a rescan). */
#define STATUS_POLL_USEC (1000 * 1000ULL)
/* The health check waits at most this long for state_lock, whatever the interval. */
#define HEALTH_LOCK_MAX_USEC (5 * 1000 * 1000ULL)

struct watchdog_wedge {
        struct iov_daemon *d;
        pthread_t thread;
        bool started;
        bool release; /* atomic */
};

int daemon_watchdog_usec(uint64_t *ret)
{
        const char *usec = getenv("WATCHDOG_USEC");
        const char *pid = getenv("WATCHDOG_PID");
        char *end = NULL;

        if (!usec || !usec[0])
                return 0;
        /* WATCHDOG_PID names the process meant (sd_watchdog_enabled(3)): not a child. */
        if (pid && pid[0] && strtol(pid, NULL, 10) != (long)getpid())
                return 0;
        errno = 0;
        unsigned long long v = strtoull(usec, &end, 10);
        if (errno != 0 || *end || v == 0)
                return -EINVAL;
        *ret = v;
        return 1;
}

bool daemon_test_hooks_enabled(void)
{
        const char *e = getenv("IOVD_TEST_HOOKS");
        return e && streq(e, "1");
}

void daemon_test_crash_point(const char *step)
{
        const char *at = getenv("IOVD_TEST_CRASH_AT");
        if (at && streq(at, step) && daemon_test_hooks_enabled()) {
                log_notice("test hook: killed at %s", step);
                raise(SIGKILL);
        }
}

static bool health_check(struct iov_daemon *d, uint64_t bound_usec)
{
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts); /* pthread_mutex_timedlock uses CLOCK_REALTIME */
        uint64_t ns = (uint64_t)ts.tv_nsec + bound_usec * 1000;
        ts.tv_sec += (time_t)(ns / 1000000000ULL);
        ts.tv_nsec = (long)(ns % 1000000000ULL);
        if (pthread_mutex_timedlock(&d->state_lock, &ts) != 0)
                return false;
        pthread_mutex_unlock(&d->state_lock);
        return true;
}

static int64_t count_get(struct json_object *counts, const char *key, const char *sub)
{
        struct json_object *v = NULL;
        if (!json_object_object_get_ex(counts, key, &v))
                return 0;
        if (sub && !json_object_object_get_ex(v, sub, &v))
                return 0;
        return json_object_get_int64(v);
}

static void status_send(struct iov_daemon *d, bool ping)
{
        _cleanup_snapshot_ struct iov_snapshot *snapshot = daemon_snapshot_get(d);
        struct json_object *counts = json_object_new_object();
        if (counts)
                daemon_modules_host_counts(d, counts);
        _cleanup_free_ char *msg = util_strdup_printf(
                "%sSTATUS=ready: %zu devices, %" PRId64 " allocations, %" PRId64 " VMs running",
                ping ? "WATCHDOG=1\n" : "", snapshot ? snapshot->pci->n_devices : 0,
                count_get(counts, "allocations", NULL),
                count_get(counts, "vms_by_state", "running"));
        json_object_put(counts);
        if (msg)
                daemon_notify(msg);
}

static void *wedge_run(void *userdata)
{
        struct watchdog_wedge *w = userdata;
        pthread_mutex_lock(&w->d->state_lock);
        while (!__atomic_load_n(&w->release, __ATOMIC_RELAXED))
                usleep(20 * 1000);
        pthread_mutex_unlock(&w->d->state_lock);
        return NULL;
}

static void wedge_start(struct watchdog_wedge *w)
{
        if (w->started || !daemon_test_hooks_enabled())
                return;
        log_warning("SIGUSR2 with test hooks: holding the state lock until stopped");
        w->started = pthread_create(&w->thread, NULL, wedge_run, w) == 0;
}

/* Wait for a signal for at most timeout_usec: the signal, 0 on timeout, or -errno. */
static int signal_wait(uint64_t timeout_usec)
{
        sigset_t set;
        struct timespec ts = {.tv_sec = (time_t)(timeout_usec / 1000000),
                              .tv_nsec = (long)(timeout_usec % 1000000) * 1000};
        sigemptyset(&set);
        sigaddset(&set, SIGTERM);
        sigaddset(&set, SIGINT);
        if (daemon_test_hooks_enabled())
                sigaddset(&set, SIGUSR2);
        int sig = sigtimedwait(&set, NULL, &ts);
        if (sig < 0)
                return errno == EAGAIN || errno == EINTR ? 0 : -errno;
        return sig;
}

static uint64_t watchdog_interval(struct iov_daemon *d, uint64_t *ret_bound)
{
        uint64_t usec = 0;
        int r = daemon_watchdog_usec(&usec);
        if (r < 0)
                log_warning("WATCHDOG_USEC is not a number of microseconds, no watchdog");
        if (r <= 0) {
                *ret_bound = 0;
                return STATUS_REFRESH_USEC;
        }
        (void)d;
        *ret_bound = usec / 4 < HEALTH_LOCK_MAX_USEC ? usec / 4 : HEALTH_LOCK_MAX_USEC;
        log_info("watchdog: WATCHDOG=1 every %" PRIu64 " ms while healthy", usec / 2000);
        return usec / 2;
}

/* One wake: ping (when a watchdog is on) and STATUS= only if healthy. */
static void watchdog_tick(struct iov_daemon *d, uint64_t bound_usec)
{
        if (bound_usec == 0) {
                status_send(d, false);
                return;
        }
        if (health_check(d, bound_usec)) {
                status_send(d, true);
                return;
        }
        log_error("state lock not taken within %" PRIu64 " ms: no watchdog ping",
                  bound_usec / 1000);
        daemon_notify("STATUS=unhealthy: state lock held too long");
}

void daemon_status_stale(struct iov_daemon *d)
{
        __atomic_store_n(&d->rt->status_stale, true, __ATOMIC_RELAXED);
}

int daemon_wait_for_signal(struct iov_daemon *d)
{
        struct watchdog_wedge wedge = {.d = d};
        uint64_t bound = 0;
        uint64_t interval = watchdog_interval(d, &bound);
        int sig;

        status_send(d, bound > 0);
        uint64_t next_tick = util_now_usec() + interval;
        for (;;) {
                uint64_t now = util_now_usec();
                uint64_t wait = next_tick > now ? next_tick - now : 0;
                sig = signal_wait(wait < STATUS_POLL_USEC ? wait : STATUS_POLL_USEC);
                if (sig == SIGTERM || sig == SIGINT || sig < 0)
                        break;
                if (sig == SIGUSR2)
                        wedge_start(&wedge);
                if (util_now_usec() >= next_tick) {
                        watchdog_tick(d, bound);
                        next_tick = util_now_usec() + interval;
                } else if (__atomic_exchange_n(&d->rt->status_stale, false, __ATOMIC_RELAXED))
                        status_send(d, false);
        }
        if (sig > 0)
                log_info("Received %s, stopping", sig == SIGTERM ? "SIGTERM" : "SIGINT");
        if (wedge.started) {
                __atomic_store_n(&wedge.release, true, __ATOMIC_RELAXED);
                pthread_join(wedge.thread, NULL);
        }
        return sig < 0 ? sig : 0;
}
