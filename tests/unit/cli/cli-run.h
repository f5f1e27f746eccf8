/* SPDX-License-Identifier: MIT */
/* Run cli_main() in-process with its output captured, for iovctl's unit tests. */
#pragma once

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "cli/cli.h"

struct cli_run {
        int status;
        char *out;
        char *err;
};

/* Arguments after "iovctl", NULL-terminated. */
static inline void cli_run(struct cli_run *r, const char *first, ...)
{
        const char *argv[64];
        int argc = 0;
        size_t out_size, err_size;
        va_list ap;

        va_start(ap, first);
        for (const char *a = first; a && argc < 63; a = va_arg(ap, const char *))
                argv[argc++] = a;
        va_end(ap);
        argv[argc] = NULL;

        FILE *out = open_memstream(&r->out, &out_size);
        FILE *err = open_memstream(&r->err, &err_size);
        r->status = cli_main(argc, argv, out, err);
        fclose(out);
        fclose(err);
}

static inline void cli_run_clear(struct cli_run *r)
{
        free(r->out);
        free(r->err);
        r->out = r->err = NULL;
}
