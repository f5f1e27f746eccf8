/* SPDX-License-Identifier: MIT */
/* problem: the one way a module tells the API why it refused a request (daemon.h). */
#include <stdarg.h>
#include <stdio.h>

#include "daemon/daemon.h"

int daemon_problem_set(struct iov_problem *p, unsigned status, const char *code, const char *fmt,
                       ...)
{
        va_list ap;

        p->status = status;
        snprintf(p->code, sizeof(p->code), "%s", code);
        va_start(ap, fmt);
        vsnprintf(p->message, sizeof(p->message), fmt, ap);
        va_end(ap);
        return -EBADMSG;
}

void daemon_problem_clear(struct iov_problem *p)
{
        json_object_put(p->details);
        p->details = NULL;
}
