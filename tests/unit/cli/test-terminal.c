/* SPDX-License-Identifier: MIT */
/* iovctl on a terminal: --color and NO_COLOR, COLUMNS, tables cut to a width with an
 * ellipsis, state words coloured, and the plain output unchanged when neither applies. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"

Test(cli_color, auto_follows_the_terminal_no_color_and_dumb_terminals)
{
        cr_assert_eq(cli_color_decide(NULL, true, NULL, "xterm"), 1, "auto on a terminal");
        cr_assert_eq(cli_color_decide("auto", false, NULL, "xterm"), 0, "auto off a terminal");
        cr_assert_eq(cli_color_decide("auto", true, "1", "xterm"), 0, "NO_COLOR=1");
        cr_assert_eq(cli_color_decide("auto", true, "", "xterm"), 1,
                     "NO_COLOR empty does not count (no-color.org)");
        cr_assert_eq(cli_color_decide("auto", true, NULL, "dumb"), 0, "TERM=dumb");
        cr_assert_eq(cli_color_decide("always", false, "1", "dumb"), 1,
                     "--color=always overrides NO_COLOR and the terminal");
        cr_assert_eq(cli_color_decide("never", true, NULL, "xterm"), 0, "--color=never");
        cr_assert_eq(cli_color_decide("yes", true, NULL, "xterm"), -EINVAL, "bad WHEN");
}

Test(cli_terminal, columns_from_the_environment_first)
{
        setenv("COLUMNS", "73", 1);
        cr_assert_eq(cli_terminal_columns(-1), 73, "COLUMNS=73: %zu", cli_terminal_columns(-1));
        setenv("COLUMNS", "wide", 1);
        cr_assert_eq(cli_terminal_columns(-1), 0, "COLUMNS=wide and no terminal: %zu",
                     cli_terminal_columns(-1));
        unsetenv("COLUMNS");
        cr_assert_eq(cli_terminal_columns(-1), 0, "no COLUMNS, no terminal");
}

Test(cli_terminal, state_words)
{
        cr_assert_str_eq(cli_state_sgr("running"), "32");
        cr_assert_str_eq(cli_state_sgr("crashed"), "1;31");
        cr_assert_str_eq(cli_state_sgr("lost"), "1;31");
        cr_assert_null(cli_state_sgr("demo"), "not a state");
        cr_assert_null(cli_state_sgr(NULL));
}

static char *print_styled(const struct iov_cli_table *t, const struct iov_cli_terminal *term)
{
        char *text = NULL;
        size_t size;
        FILE *f = open_memstream(&text, &size);
        cr_assert_eq(cli_table_print_styled(t, f, term), 0, "print");
        fclose(f);
        return text;
}

static struct iov_cli_table *vm_table(void)
{
        static const char *const headers[] = {"ID", "STATE", "NAME"};
        static const char *const row1[] = {"vm-1", "running", "a rather long name for a VM"};
        static const char *const row2[] = {"vm-2", "crashed", "short"};
        struct iov_cli_table *t = cli_table_new(3, headers);
        cr_assert_eq(cli_table_add_row(t, row1), 0);
        cr_assert_eq(cli_table_add_row(t, row2), 0);
        return t;
}

Test(cli_table, styled_without_width_or_colour_is_the_plain_table)
{
        struct iov_cli_table *t = vm_table();
        struct iov_cli_terminal term = {.ellipsis = "..."};
        char *plain = NULL;
        size_t size;
        FILE *f = open_memstream(&plain, &size);
        cr_assert_eq(cli_table_print(t, f), 0);
        fclose(f);
        char *styled = print_styled(t, &term);
        cr_assert_str_eq(styled, plain, "styled:\n%s\nplain:\n%s", styled, plain);
        free(plain);
        free(styled);
        cli_table_free(t);
}

Test(cli_table, the_widest_column_is_cut_with_an_ellipsis)
{
        struct iov_cli_table *t = vm_table();
        struct iov_cli_terminal term = {.columns = 30, .ellipsis = "\u2026"};
        char *text = print_styled(t, &term);
        /* 4 + 2 + 7 + 2 = 15 columns before NAME: 15 are left for it. */
        cr_assert_str_eq(text,
                         "ID    STATE    NAME\n"
                         "vm-1  running  a rather long \u2026\n"
                         "vm-2  crashed  short\n",
                         "cut to 30:\n%s", text);
        free(text);
        term.columns = 10; /* NAME stops at 8 columns; the line stays too long */
        text = print_styled(t, &term);
        cr_assert(strstr(text, "vm-1  running  a rathe\u2026\n"), "cut to 10:\n%s", text);
        free(text);
        cli_table_free(t);
}

Test(cli_table, states_coloured_in_lists_and_detail_views)
{
        struct iov_cli_table *t = vm_table();
        struct iov_cli_terminal term = {.color = true, .ellipsis = "..."};
        char *text = print_styled(t, &term);
        cr_assert(strstr(text, "vm-1  \033[32mrunning\033[0m  a rather"), "list:\n%s", text);
        cr_assert(strstr(text, "vm-2  \033[1;31mcrashed\033[0m  short"), "list:\n%s", text);
        cr_assert(strstr(text, "ID    STATE    NAME\n"), "the header stays plain:\n%s", text);
        free(text);
        cli_table_free(t);

        static const char *const row1[] = {"state", "paused"};
        static const char *const row2[] = {"name", "running"};
        static const char *const row3[] = {"allocation.state", "active"};
        t = cli_table_new(2, NULL);
        cr_assert_eq(cli_table_add_row(t, row1), 0);
        cr_assert_eq(cli_table_add_row(t, row2), 0);
        cr_assert_eq(cli_table_add_row(t, row3), 0);
        text = print_styled(t, &term);
        cr_assert_str_eq(text,
                         "state             \033[33mpaused\033[0m\n"
                         "name              running\n"
                         "allocation.state  \033[32mactive\033[0m\n",
                         "detail:\n%s", text);
        free(text);
        cli_table_free(t);
}
