/* SPDX-License-Identifier: MIT */
/*
 * What iovctl's output goes to: colour (--color, NO_COLOR), the terminal's width for
 * list tables, and whether a progress line may be drawn. All of it is off when stdout
 * is not a terminal, so what scripts read never changes.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "cli/cli.h"

int cli_color_decide(const char *when, bool tty, const char *no_color, const char *term)
{
        if (!when || streq(when, "auto"))
                /* https://no-color.org: set and not empty disables colour; a command-line
                 * choice (--color=always) still overrides it. */
                return tty && !(no_color && no_color[0]) && !(term && streq(term, "dumb"));
        if (streq(when, "always"))
                return 1;
        if (streq(when, "never"))
                return 0;
        return -EINVAL;
}

size_t cli_terminal_columns(int fd)
{
        const char *env = getenv("COLUMNS");
        struct winsize ws = {0};
        long long n;

        if (env && cli_parse_int(env, 1, 65535, &n) == 0)
                return (size_t)n;
        if (ioctl(fd, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0)
                return ws.ws_col;
        return 0;
}

/* ECMA-48 §8.3.117 SGR: 31 red, 32 green, 33 yellow, 36 cyan, 2 faint. */
const char *cli_state_sgr(const char *word)
{
        static const struct {
                const char *word, *sgr;
        } states[] = {
                {"running", "32"}, {"active", "32"},        {"created", "36"}, {"paused", "33"},
                {"pending", "33"}, {"releasing", "33"},     {"stopped", "2"},  {"crashed", "1;31"},
                {"lost", "1;31"},  {"quarantined", "1;31"},
        };
        for (size_t i = 0; word && i < ARRAY_SIZE(states); i++)
                if (streq(word, states[i].word))
                        return states[i].sgr;
        return NULL;
}

/* The locale's character set from the environment (iovctl never calls setlocale):
 * the first of LC_ALL, LC_CTYPE, LANG that is set decides, as in POSIX. */
static bool locale_is_utf8(void)
{
        static const char *const names[] = {"LC_ALL", "LC_CTYPE", "LANG"};
        for (size_t i = 0; i < ARRAY_SIZE(names); i++) {
                const char *v = getenv(names[i]);
                if (v && v[0])
                        return strcasestr(v, "utf-8") || strcasestr(v, "utf8");
        }
        return false;
}

int cli_terminal_setup(struct iov_cli *cli, const struct iov_cli_args *args)
{
        int out_fd = fileno(cli->out), err_fd = fileno(cli->err);
        bool tty = out_fd >= 0 && isatty(out_fd);
        const char *when = cli_args_get(args, "color");
        int color = cli_color_decide(when, tty, getenv("NO_COLOR"), getenv("TERM"));

        if (color < 0)
                return cli_usage_error(cli, "--color takes never, auto or always, not '%s'", when);
        cli->term = (struct iov_cli_terminal){
                .color = color > 0,
                /* On stderr, so stdout keeps only the answer; both must be the terminal. */
                .progress = tty && err_fd >= 0 && isatty(err_fd) && !cli_args_has(args, "quiet"),
                .columns = tty ? cli_terminal_columns(out_fd) : 0,
                .ellipsis = locale_is_utf8() ? "\u2026" : "...",
        };
        return IOV_CLI_EXIT_OK;
}
