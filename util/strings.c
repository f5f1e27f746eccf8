/* SPDX-License-Identifier: MIT */
/* String, path and number helpers. */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>

#include "util/util.h"

char *util_path_join(const char *first, ...)
{
        va_list ap;
        size_t len = 0;
        va_start(ap, first);
        for (const char *s = first; s; s = va_arg(ap, const char *))
                len += strlen(s) + 1;
        va_end(ap);

        char *out = malloc(len + 1), *p = out;
        if (!out)
                return NULL;
        *p = '\0';
        va_start(ap, first);
        for (const char *s = first; s; s = va_arg(ap, const char *)) {
                if (p != out && p[-1] != '/' && *s != '/')
                        *p++ = '/';
                else if (p != out && p[-1] == '/' && *s == '/')
                        s++;
                size_t n = strlen(s);
                memcpy(p, s, n);
                p += n;
        }
        va_end(ap);
        *p = '\0';
        return out;
}

char *util_strdup_printf(const char *fmt, ...)
{
        va_list ap;
        char *s;
        va_start(ap, fmt);
        int r = vasprintf(&s, fmt, ap);
        va_end(ap);
        return r < 0 ? NULL : s;
}

int util_error_printf(char **ret_error, const char *fmt, ...)
{
        if (!ret_error)
                return -EINVAL;
        char *msg = NULL;
        va_list ap;
        va_start(ap, fmt);
        if (vasprintf(&msg, fmt, ap) < 0)
                msg = NULL;
        va_end(ap);
        free(*ret_error);
        *ret_error = msg;
        return -EINVAL;
}

int util_hex_digit(char c)
{
        if (c >= '0' && c <= '9')
                return c - '0';
        if (c >= 'a' && c <= 'f')
                return c - 'a' + 10;
        if (c >= 'A' && c <= 'F')
                return c - 'A' + 10;
        return -1;
}

int util_parse_u64(const char *s, int base, uint64_t *ret)
{
        if (!s || !*s || isspace((unsigned char)*s) || *s == '-' || *s == '+')
                return -EINVAL;
        char *end;
        errno = 0;
        unsigned long long v = strtoull(s, &end, base);
        if (errno == ERANGE)
                return -ERANGE;
        if (errno != 0 || end == s || *end != '\0')
                return -EINVAL;
        *ret = v;
        return 0;
}

bool util_consttime_equal(const void *a, size_t a_len, const void *b, size_t b_len)
{
        /* Touch every byte of a whatever b holds, so timing tells nothing but a's length. */
        const volatile unsigned char *x = a, *y = b;
        unsigned char diff = a_len != b_len;
        for (size_t i = 0; i < a_len; i++)
                diff |= x[i] ^ (b_len ? y[i % b_len] : 0xff);
        return diff == 0;
}
