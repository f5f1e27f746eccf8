/* SPDX-License-Identifier: MIT */
/*
 * Request paths for iovctl: every word a user types that ends up in a path or a query
 * string is percent-encoded (RFC 3986 §2.1), so a name like "a/../b" stays one path
 * segment and the server sees exactly what was typed.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"

/* RFC 3986 §2.3 unreserved characters, plus ':' which a path segment and a query may
 * hold as it is (§3.3 pchar, §3.4), so PCI addresses stay readable in the daemon's logs. */
static bool url_plain(unsigned char c)
{
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
               c == '-' || c == '.' || c == '_' || c == '~' || c == ':';
}

char *cli_url_escape(const char *s)
{
        static const char hex[] = "0123456789ABCDEF";
        char *out = malloc(strlen(s) * 3 + 1), *p = out;
        if (!out)
                return NULL;
        for (; *s; s++) {
                unsigned char c = (unsigned char)*s;
                if (url_plain(c)) {
                        *p++ = (char)c;
                } else {
                        *p++ = '%';
                        *p++ = hex[c >> 4];
                        *p++ = hex[c & 0xf];
                }
        }
        *p = '\0';
        return out;
}

char *cli_path_build(const char *prefix, const char *segment, const char *suffix)
{
        _cleanup_free_ char *escaped = cli_url_escape(segment);
        if (!escaped)
                return NULL;
        return util_strdup_printf("%s/%s%s", prefix, escaped, suffix ? suffix : "");
}

char *cli_query_build(const char *path, const struct iov_cli_args *args,
                      const char *const *option_names, const char *const *param_names, size_t n)
{
        _cleanup_free_ char *query = strdup(path);
        bool first = true;

        for (size_t i = 0; query && i < n; i++) {
                const char *value = cli_args_get(args, option_names[i]);
                if (!value)
                        continue;
                _cleanup_free_ char *escaped = cli_url_escape(value);
                if (!escaped)
                        return NULL;
                char *next = util_strdup_printf("%s%c%s=%s", query, first ? '?' : '&',
                                                param_names[i], escaped);
                free(query);
                query = next;
                first = false;
        }
        return TAKE_PTR(query);
}
