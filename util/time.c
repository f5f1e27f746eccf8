/* SPDX-License-Identifier: MIT */
#include <time.h>

#include "util/util.h"

static uint64_t clock_usec(clockid_t id)
{
        struct timespec ts;
        clock_gettime(id, &ts);
        return (uint64_t)ts.tv_sec * 1000000ULL + (uint64_t)ts.tv_nsec / 1000ULL;
}

uint64_t util_now_usec(void)
{
        return clock_usec(CLOCK_MONOTONIC);
}

uint64_t util_realtime_usec(void)
{
        return clock_usec(CLOCK_REALTIME);
}

void util_sleep_usec(uint64_t usec)
{
        struct timespec ts = {.tv_sec = usec / 1000000ULL, .tv_nsec = (usec % 1000000ULL) * 1000};
        while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
                ;
}
