/* SPDX-License-Identifier: MIT */
/* Logging to stderr with syslog-style "<N>" prefixes that journald understands. */
#include <stdio.h>
#include <time.h>

#include "util/util.h"

static int max_level = UTIL_LOG_INFO;

void util_log_set_max_level(int level)
{
        max_level = level;
}

int util_log_get_max_level(void)
{
        return max_level;
}

int util_log_internal(int level, int error, const char *file, int line, const char *fmt, ...)
{
        int saved = errno;
        error = error < 0 ? -error : error;
        if (level <= max_level) {
                char msg[2048];
                va_list ap;
                errno = error; /* so %m prints the error being reported */
                va_start(ap, fmt);
                vsnprintf(msg, sizeof(msg), fmt, ap);
                va_end(ap);
                if (max_level >= UTIL_LOG_DEBUG)
                        fprintf(stderr, "<%d>%s (%s:%d)\n", level, msg, file, line);
                else
                        fprintf(stderr, "<%d>%s\n", level, msg);
        }
        errno = saved;
        return -error;
}
