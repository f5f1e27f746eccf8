/* SPDX-License-Identifier: MIT */
/*
 * The progress line of a command that waits (sriov while VFs appear, vm start --wait):
 * a thread redraws "SPINNER LABEL 1.2s" on stderr every 100 ms, since the command's own
 * thread may sit in one long request (PUT .../sriov waits in iovd up to 10 s). Drawn only
 * when stdout and stderr are the terminal and --quiet was not given (cli->term.progress):
 * pipes, files and logs never see it. Messages the command writes to stderr meanwhile are
 * held and printed once the line is erased, so they never land on the spinner's line.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"

#define PROGRESS_PERIOD_NSEC 100000000L

struct iov_cli_progress {
        pthread_t thread;
        pthread_mutex_t lock;
        pthread_cond_t wake; /* CLOCK_MONOTONIC: a clock change neither stalls nor races it */
        FILE *f;             /* the terminal: the command's stderr */
        struct iov_cli *cli; /* its err holds the command's messages meanwhile */
        FILE *held;
        char *held_text;
        size_t held_size;
        char label[256];
        unsigned frame; /* of the spinner */
        uint64_t start_usec;
        bool stop;
};

/* ECMA-48: CR, then EL (CSI K) clears the old line. */
static void progress_draw(struct iov_cli_progress *p, unsigned frame)
{
        static const char spinner[] = "|/-\\";
        uint64_t elapsed = util_now_usec() - p->start_usec;
        fprintf(p->f, "\r\033[K%c %s %" PRIu64 ".%" PRIu64 "s", spinner[frame % 4], p->label,
                elapsed / 1000000, elapsed / 100000 % 10);
        fflush(p->f);
}

static void *progress_thread(void *userdata)
{
        struct iov_cli_progress *p = userdata;
        struct timespec next;

        /* cli_progress_start drew frame 0: even a quick answer shows what was waited for. */
        clock_gettime(CLOCK_MONOTONIC, &next);
        pthread_mutex_lock(&p->lock);
        for (;;) {
                next.tv_nsec += PROGRESS_PERIOD_NSEC;
                if (next.tv_nsec >= 1000000000L) {
                        next.tv_sec++;
                        next.tv_nsec -= 1000000000L;
                }
                while (!p->stop && pthread_cond_timedwait(&p->wake, &p->lock, &next) == 0)
                        ;
                if (p->stop)
                        break;
                progress_draw(p, ++p->frame);
        }
        fputs("\r\033[K", p->f);
        fflush(p->f);
        pthread_mutex_unlock(&p->lock);
        return NULL;
}

static struct iov_cli_progress *progress_new(struct iov_cli *cli)
{
        struct iov_cli_progress *p = calloc(1, sizeof(*p));
        pthread_condattr_t attr;
        if (!p)
                return NULL;
        p->held = open_memstream(&p->held_text, &p->held_size);
        if (!p->held) {
                free(p);
                return NULL;
        }
        p->cli = cli;
        p->f = cli->err;
        p->start_usec = util_now_usec();
        pthread_mutex_init(&p->lock, NULL);
        pthread_condattr_init(&attr);
        pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
        pthread_cond_init(&p->wake, &attr);
        pthread_condattr_destroy(&attr);
        return p;
}

/* Give the command its stderr back, with what it wrote meanwhile. */
static void progress_free(struct iov_cli_progress *p)
{
        if (fclose(p->held) == 0 && p->held_size > 0)
                fwrite(p->held_text, 1, p->held_size, p->f);
        free(p->held_text);
        p->cli->err = p->f;
        pthread_cond_destroy(&p->wake);
        pthread_mutex_destroy(&p->lock);
        free(p);
}

/* Without a thread there is no line: the command works the same, silently. */
struct iov_cli_progress *cli_progress_start(struct iov_cli *cli, const char *fmt, ...)
{
        if (!cli->term.progress)
                return NULL;
        struct iov_cli_progress *p = progress_new(cli);
        if (!p)
                return NULL;
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(p->label, sizeof(p->label), fmt, ap);
        va_end(ap);
        progress_draw(p, 0);
        if (pthread_create(&p->thread, NULL, progress_thread, p) != 0) {
                fputs("\r\033[K", p->f);
                progress_free(p);
                return NULL;
        }
        cli->err = p->held;
        return p;
}

void cli_progress_set(struct iov_cli_progress *p, const char *fmt, ...)
{
        if (!p)
                return;
        va_list ap;
        pthread_mutex_lock(&p->lock);
        va_start(ap, fmt);
        vsnprintf(p->label, sizeof(p->label), fmt, ap);
        va_end(ap);
        /* At once: a count that reaches its end just before the answer is still seen. */
        progress_draw(p, p->frame);
        pthread_mutex_unlock(&p->lock);
}

void cli_progress_end(struct iov_cli_progress *p)
{
        if (!p)
                return;
        pthread_mutex_lock(&p->lock);
        p->stop = true;
        pthread_cond_signal(&p->wake);
        pthread_mutex_unlock(&p->lock);
        pthread_join(p->thread, NULL);
        progress_free(p);
}

int cli_call_waiting(struct iov_cli *cli, const char *label, const char *method, const char *path,
                     struct json_object *body)
{
        _cleanup_json_ struct json_object *json = NULL;
        struct iov_cli_progress *p = cli_progress_start(cli, "%s", label);
        int status = cli_call(cli, method, path, body, &json);
        cli_progress_end(p);
        return status == IOV_CLI_EXIT_OK ? cli_print_answer(cli, json) : status;
}

int cli_print_answer(struct iov_cli *cli, struct json_object *json)
{
        if (!json)
                return IOV_CLI_EXIT_OK;
        int r = cli->json ? cli_json_print(json, cli->out) : cli_print_object(cli, json);
        if (r < 0) {
                fprintf(cli->err, "iovctl: cannot print the answer: %s\n", strerror(-r));
                return IOV_CLI_EXIT_API;
        }
        return IOV_CLI_EXIT_OK;
}
