/* SPDX-License-Identifier: MIT */
/*
 * Command-line option parsing for iovctl. getopt_long would do for one table, but
 * iovctl accepts the global options (--socket, --json...) both before the command and
 * among the command's own, and some options repeat (--address, --device), so options
 * are collected in order into a list the commands query by name.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"

static const struct iov_cli_option_spec *spec_find_long(const struct iov_cli_option_spec *specs,
                                                        const char *name, size_t len)
{
        for (; specs && specs->name; specs++)
                if (strlen(specs->name) == len && strncmp(specs->name, name, len) == 0)
                        return specs;
        return NULL;
}

static const struct iov_cli_option_spec *spec_find_short(const struct iov_cli_option_spec *specs,
                                                         char c)
{
        for (; specs && specs->name; specs++)
                if (specs->short_name != 0 && specs->short_name == c)
                        return specs;
        return NULL;
}

static int args_push_option(struct iov_cli_args *a, const struct iov_cli_option_spec *spec,
                            const char *value)
{
        struct iov_cli_option *o = realloc(a->options, (a->n_options + 1) * sizeof(*o));
        if (!o)
                return -ENOMEM;
        a->options = o;
        a->options[a->n_options++] = (struct iov_cli_option){.spec = spec, .value = value};
        return 0;
}

static int args_push_positional(struct iov_cli_args *a, const char *arg)
{
        const char **p = realloc(a->positional, (a->n_positional + 1) * sizeof(*p));
        if (!p)
                return -ENOMEM;
        a->positional = p;
        a->positional[a->n_positional++] = arg;
        return 0;
}

/* Handle one option word at argv[*i]; advances *i past a separate value. */
static int args_parse_option(const struct iov_cli_option_spec *specs,
                             const struct iov_cli_option_spec *more, int argc,
                             const char *const *argv, int *i, struct iov_cli_args *a,
                             char **ret_error)
{
        const char *word = argv[*i], *value = NULL;
        const struct iov_cli_option_spec *spec;

        if (word[1] == '-') {
                const char *name = word + 2, *eq = strchr(name, '=');
                size_t len = eq ? (size_t)(eq - name) : strlen(name);
                spec = spec_find_long(specs, name, len);
                if (!spec)
                        spec = spec_find_long(more, name, len);
                if (eq)
                        value = eq + 1;
        } else {
                spec = word[2] == '\0' ? spec_find_short(specs, word[1]) : NULL;
                if (!spec && word[2] == '\0')
                        spec = spec_find_short(more, word[1]);
        }
        if (!spec) {
                *ret_error = util_strdup_printf("unknown option %s", word);
                return -EINVAL;
        }
        if (!spec->value_name && value) {
                *ret_error = util_strdup_printf("option --%s takes no value", spec->name);
                return -EINVAL;
        }
        if (spec->value_name && !value) {
                if (*i + 1 >= argc) {
                        *ret_error = util_strdup_printf("option --%s needs a value (%s)",
                                                        spec->name, spec->value_name);
                        return -EINVAL;
                }
                value = argv[++*i];
        }
        return args_push_option(a, spec, value);
}

int cli_args_parse(const struct iov_cli_option_spec *specs, const struct iov_cli_option_spec *more,
                   int argc, const char *const *argv, bool stop_at_positional,
                   struct iov_cli_args *ret, int *ret_consumed, char **ret_error)
{
        struct iov_cli_args a = {0};
        bool options_done = false;
        int i, r = 0;

        *ret_error = NULL;
        for (i = 0; i < argc; i++) {
                const char *word = argv[i];
                if (!options_done && streq(word, "--")) {
                        options_done = true;
                        continue;
                }
                if (!options_done && word[0] == '-' && word[1] != '\0') {
                        r = args_parse_option(specs, more, argc, argv, &i, &a, ret_error);
                } else if (stop_at_positional) {
                        break;
                } else {
                        r = args_push_positional(&a, word);
                }
                if (r < 0) {
                        cli_args_clear(&a);
                        if (r == -ENOMEM && !*ret_error)
                                *ret_error = strdup("out of memory");
                        return r;
                }
        }
        if (ret_consumed)
                *ret_consumed = i;
        *ret = a;
        return 0;
}

void cli_args_clear(struct iov_cli_args *args)
{
        if (!args)
                return;
        free(args->positional);
        free(args->options);
        *args = (struct iov_cli_args){0};
}

const char *cli_args_get(const struct iov_cli_args *args, const char *name)
{
        const char *value = NULL;
        for (size_t i = 0; i < args->n_options; i++)
                if (streq(args->options[i].spec->name, name))
                        value = args->options[i].value;
        return value;
}

bool cli_args_has(const struct iov_cli_args *args, const char *name)
{
        for (size_t i = 0; i < args->n_options; i++)
                if (streq(args->options[i].spec->name, name))
                        return true;
        return false;
}

void cli_args_print_help(FILE *f, const struct iov_cli_option_spec *specs)
{
        for (; specs && specs->name; specs++) {
                char left[64];
                snprintf(left, sizeof(left), "%c%c%c --%s %s", specs->short_name ? '-' : ' ',
                         specs->short_name ? specs->short_name : ' ', specs->short_name ? ',' : ' ',
                         specs->name, specs->value_name ? specs->value_name : "");
                fprintf(f, "  %-30s %s\n", left, specs->help);
        }
}
