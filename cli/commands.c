/* SPDX-License-Identifier: MIT */
/*
 * iovctl's driver: global options, finding the command, checking its arguments, help,
 * and the helpers every command uses to call the API and report the outcome with the
 * right exit status.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/un.h>

#include "cli/cli.h"
#include "config.h"
#include "pci/pci.h"

static const struct iov_cli_option_spec global_options[] = {
        {"socket", 0, "PATH",
         "iovd's Unix socket (env IOVD_SOCKET, default " IOV_CLI_DEFAULT_SOCKET ")"},
        {"url", 0, "URL", "talk HTTP to http://HOST:PORT instead of the socket"},
        {"token-file", 0, "FILE", "bearer token for --url (first line of FILE)"},
        {"json", 0, NULL, "print the API's JSON as it is (error objects too)"},
        {"color", 0, "never|auto|always",
         "colour states: auto (default) on a terminal unless NO_COLOR is set"},
        {"quiet", 'q', NULL, "no progress line while waiting (there is none off a terminal)"},
        {"help", 'h', NULL, "show help"},
        {"version", 0, NULL, "show the version"},
        {NULL, 0, NULL, NULL},
};

static const struct iov_cli_command *const command_tables[] = {
        cli_commands_inventory,
        cli_commands_allocation,
        cli_commands_vm,
        cli_commands_vf,
};

const struct iov_cli_option_spec *const cli_global_options = global_options;

const struct iov_cli_command *cli_command_at(size_t i)
{
        for (size_t t = 0; t < ARRAY_SIZE(command_tables); t++)
                for (const struct iov_cli_command *c = command_tables[t]; c->name; c++)
                        if (i-- == 0)
                                return c;
        return NULL;
}

/* Does the command's name equal the first one or two words of argv? */
static int command_match(const struct iov_cli_command *c, int argc, const char *const *argv)
{
        const char *space = strchr(c->name, ' ');
        if (!space)
                return argc >= 1 && streq(c->name, argv[0]) ? 1 : 0;
        size_t len = (size_t)(space - c->name);
        if (argc < 2 || strlen(argv[0]) != len || strncmp(c->name, argv[0], len) != 0)
                return 0;
        return streq(space + 1, argv[1]) ? 2 : 0;
}

const struct iov_cli_command *cli_command_find(int argc, const char *const *argv, int *ret_words)
{
        for (size_t t = 0; t < ARRAY_SIZE(command_tables); t++)
                for (const struct iov_cli_command *c = command_tables[t]; c->name; c++) {
                        int words = command_match(c, argc, argv);
                        if (words > 0) {
                                *ret_words = words;
                                return c;
                        }
                }
        return NULL;
}

/* "pool" or "vm" alone: the first word of some two-word command. */
static bool command_is_group(const char *word)
{
        size_t len = strlen(word);
        for (size_t t = 0; t < ARRAY_SIZE(command_tables); t++)
                for (const struct iov_cli_command *c = command_tables[t]; c->name; c++)
                        if (strncmp(c->name, word, len) == 0 && c->name[len] == ' ')
                                return true;
        return false;
}

static char *command_synopsis(const struct iov_cli_command *c)
{
        return util_strdup_printf("%s%s%s", c->name, c->usage && c->usage[0] ? " " : "",
                                  c->usage ? c->usage : "");
}

static void print_main_help(FILE *f)
{
        int width = 0;
        fputs("usage: iovctl [OPTIONS] COMMAND [ARGS...]\n\n"
              "Client of iovd, the I/O virtualization daemon.\n\nCommands:\n",
              f);
        for (size_t t = 0; t < ARRAY_SIZE(command_tables); t++)
                for (const struct iov_cli_command *c = command_tables[t]; c->name; c++) {
                        _cleanup_free_ char *synopsis = command_synopsis(c);
                        if (synopsis && (int)strlen(synopsis) > width)
                                width = (int)strlen(synopsis);
                }
        for (size_t t = 0; t < ARRAY_SIZE(command_tables); t++)
                for (const struct iov_cli_command *c = command_tables[t]; c->name; c++) {
                        _cleanup_free_ char *synopsis = command_synopsis(c);
                        fprintf(f, "  %-*s  %s\n", width, synopsis ? synopsis : c->name,
                                c->summary);
                }
        fputs("\nOptions:\n", f);
        cli_args_print_help(f, global_options);
        fputs("\nExit status: 0 ok, 1 API error, 2 usage error, 3 iovd unreachable.\n"
              "Run 'iovctl COMMAND --help' for a command's options.\n",
              f);
}

static void print_command_help(FILE *f, const struct iov_cli_command *c)
{
        _cleanup_free_ char *synopsis = command_synopsis(c);
        fprintf(f, "usage: iovctl %s\n\n%s\n", synopsis ? synopsis : c->name, c->summary);
        if (c->options && c->options->name) {
                fputs("\nOptions:\n", f);
                cli_args_print_help(f, c->options);
        }
        fputs("\nGlobal options:\n", f);
        cli_args_print_help(f, global_options);
}

int cli_usage_error(struct iov_cli *cli, const char *fmt, ...)
{
        va_list ap;
        fputs("iovctl: ", cli->err);
        va_start(ap, fmt);
        vfprintf(cli->err, fmt, ap);
        va_end(ap);
        if (cli->command)
                fprintf(cli->err, "\nTry 'iovctl %s --help'.\n", cli->command->name);
        else
                fputs("\nTry 'iovctl --help'.\n", cli->err);
        return IOV_CLI_EXIT_USAGE;
}

static const char *token_error_text(int r)
{
        if (r == -ENODATA)
                return "empty";
        if (r == -EINVAL)
                return "white space or control characters in the token";
        return strerror(-r);
}

int cli_setup_endpoint(struct iov_cli *cli, const struct iov_cli_args *args)
{
        const char *socket_path = cli_args_get(args, "socket");
        const char *url = cli_args_get(args, "url"), *token_file = cli_args_get(args, "token-file");

        if (!socket_path)
                socket_path = getenv("IOVD_SOCKET");
        if (!socket_path || socket_path[0] == '\0')
                socket_path = IOV_CLI_DEFAULT_SOCKET;
        /* unix(7): the path must fit sun_path with its NUL. */
        if (strlen(socket_path) >= sizeof(((struct sockaddr_un *)NULL)->sun_path))
                return cli_usage_error(cli, "socket path longer than %zu bytes: %s",
                                       sizeof(((struct sockaddr_un *)NULL)->sun_path) - 1,
                                       socket_path);
        cli->endpoint.socket_path = socket_path;
        if (url) {
                size_t len = strlen(url);
                if (strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0)
                        return cli_usage_error(cli, "--url must start with http:// or https://");
                if (len > 0 && url[len - 1] == '/')
                        return cli_usage_error(cli, "--url takes no path: give http://HOST:PORT");
                cli->endpoint.url = url;
        }
        if (token_file) {
                if (!url)
                        return cli_usage_error(cli, "--token-file is only used with --url");
                int r = cli_token_read(token_file, &cli->endpoint.token);
                if (r < 0)
                        return cli_usage_error(cli, "cannot read token file %s: %s", token_file,
                                               token_error_text(r));
        }
        return IOV_CLI_EXIT_OK;
}

/* Parse the command's words (global options included, wherever they were given), check
 * the positional count, set up the endpoint and run it. */
static int cli_run_command(struct iov_cli *cli, const struct iov_cli_command *c, int argc,
                           const char *const *argv)
{
        struct iov_cli_args args = {0};
        _cleanup_free_ char *error = NULL;
        int status;

        cli->command = c;
        if (cli_args_parse(c->options, global_options, argc, argv, false, &args, NULL, &error) < 0)
                return cli_usage_error(cli, "%s: %s", c->name, error);
        if (cli_args_has(&args, "help")) {
                print_command_help(cli->out, c);
                status = IOV_CLI_EXIT_OK;
        } else if (args.n_positional < c->min_positional) {
                _cleanup_free_ char *synopsis = command_synopsis(c);
                status = cli_usage_error(cli, "%s: missing argument\nusage: iovctl %s", c->name,
                                         synopsis ? synopsis : c->name);
        } else if (args.n_positional > c->max_positional) {
                status = cli_usage_error(cli, "%s: unexpected argument '%s'", c->name,
                                         args.positional[c->max_positional]);
        } else {
                cli->json = cli_args_has(&args, "json");
                status = cli_setup_endpoint(cli, &args);
                if (status == IOV_CLI_EXIT_OK)
                        status = cli_terminal_setup(cli, &args);
                if (status == IOV_CLI_EXIT_OK)
                        status = c->run(cli, &args);
        }
        cli_args_clear(&args);
        return status;
}

/* No command matched: a group word alone ("vm") gets its subcommands listed. */
static int command_not_found(struct iov_cli *cli, int argc, const char *const *argv)
{
        if (!command_is_group(argv[0]))
                return cli_usage_error(cli, "unknown command '%s'", argv[0]);
        _cleanup_free_ char *list = strdup("");
        size_t len = strlen(argv[0]);
        for (size_t t = 0; t < ARRAY_SIZE(command_tables); t++)
                for (const struct iov_cli_command *c = command_tables[t]; list && c->name; c++) {
                        if (strncmp(c->name, argv[0], len) != 0 || c->name[len] != ' ')
                                continue;
                        char *next = util_strdup_printf("%s%s%s", list, list[0] ? ", " : "",
                                                        c->name + len + 1);
                        free(list);
                        list = next;
                }
        if (argc > 1)
                return cli_usage_error(cli, "unknown command '%s %s' (%s takes: %s)", argv[0],
                                       argv[1], argv[0], list ? list : "?");
        return cli_usage_error(cli, "'%s' needs a subcommand: %s", argv[0], list ? list : "?");
}

/* Run c with the global options given before it (argv[0..consumed)) followed by the
 * words after its name. */
static int cli_run_merged(struct iov_cli *cli, const struct iov_cli_command *c, int argc,
                          const char *const *argv, int consumed, int words)
{
        _cleanup_free_ const char **merged = calloc((size_t)argc + 1, sizeof(*merged));
        int n = 0;
        if (!merged)
                return cli_usage_error(cli, "out of memory");
        for (int i = 0; i < consumed; i++)
                merged[n++] = argv[i];
        for (int i = consumed + words; i < argc; i++)
                merged[n++] = argv[i];
        int status = cli_run_command(cli, c, n, merged);
        free(cli->endpoint.token);
        cli->endpoint.token = NULL;
        return status;
}

int cli_main(int argc, const char *const *argv, FILE *out, FILE *err)
{
        struct iov_cli cli = {.out = out, .err = err};
        struct iov_cli_args global = {0};
        _cleanup_free_ char *error = NULL;
        int consumed = 0, words = 0;

        /* Hidden: the shell completions' helper (complete.c), never in the help. */
        if (argc >= 1 && streq(argv[0], "__complete"))
                return cli_complete_main(argc - 1, argv + 1, out);
        if (cli_args_parse(global_options, NULL, argc, argv, true, &global, &consumed, &error) < 0)
                return cli_usage_error(&cli, "%s", error);
        bool help = cli_args_has(&global, "help"), version = cli_args_has(&global, "version");
        cli_args_clear(&global);
        if (version) {
                fprintf(out, "iovctl %s\n", IOVD_VERSION);
                return IOV_CLI_EXIT_OK;
        }
        if (consumed == argc && help) {
                print_main_help(out);
                return IOV_CLI_EXIT_OK;
        }
        if (consumed == argc)
                return cli_usage_error(&cli, "no command given");
        const struct iov_cli_command *c =
                cli_command_find(argc - consumed, argv + consumed, &words);
        if (!c)
                return command_not_found(&cli, argc - consumed, argv + consumed);
        return cli_run_merged(&cli, c, argc, argv, consumed, words);
}

int cli_call(struct iov_cli *cli, const char *method, const char *path, struct json_object *body,
             struct json_object **ret_json)
{
        struct iov_cli_response resp = {0};
        _cleanup_free_ char *error = NULL;

        int r = cli_transport_request(&cli->endpoint, method, path, body, &resp, &error);
        if (r < 0) {
                fprintf(cli->err, "iovctl: %s\n", error ? error : strerror(-r));
                return cli_transport_error_is_unreachable(r) ? IOV_CLI_EXIT_UNREACHABLE
                                                             : IOV_CLI_EXIT_API;
        }
        if (resp.status < 200 || resp.status > 299) {
                _cleanup_free_ char *line = cli_error_format(&resp);
                fprintf(cli->err, "%s\n", line ? line : "error: out of memory");
                /* Scripts reading --json get the error object (with its details) too. */
                if (cli->json && resp.json)
                        cli_json_print(resp.json, cli->out);
                cli_response_clear(&resp);
                return IOV_CLI_EXIT_API;
        }
        if (ret_json)
                *ret_json = TAKE_PTR(resp.json);
        cli_response_clear(&resp);
        return IOV_CLI_EXIT_OK;
}

int cli_call_and_show(struct iov_cli *cli, const char *method, const char *path,
                      struct json_object *body,
                      int (*print_table)(struct iov_cli *cli, struct json_object *json))
{
        _cleanup_json_ struct json_object *json = NULL;
        int status = cli_call(cli, method, path, body, &json);
        if (status != IOV_CLI_EXIT_OK)
                return status;
        if (!json)
                return IOV_CLI_EXIT_OK;
        int r = cli->json ? cli_json_print(json, cli->out) : print_table(cli, json);
        if (r < 0) {
                fprintf(cli->err, "iovctl: cannot print the answer: %s\n", strerror(-r));
                return IOV_CLI_EXIT_API;
        }
        return IOV_CLI_EXIT_OK;
}

int cli_call_resource(struct iov_cli *cli, const char *method, const char *collection,
                      const char *id, const char *suffix, struct json_object *body)
{
        _cleanup_free_ char *path = cli_path_build(collection, id, suffix);
        if (!path)
                return cli_usage_error(cli, "out of memory");
        return cli_call_and_show(cli, method, path, body, cli_print_object);
}

int cli_check_address(struct iov_cli *cli, const char *what, const char *address)
{
        struct iov_pci_address a;
        if (pci_address_parse(address, &a) < 0)
                return cli_usage_error(cli,
                                       "invalid %s '%s': expected a PCI address DDDD:BB:SS.F "
                                       "like 0000:01:00.0",
                                       what, address);
        return IOV_CLI_EXIT_OK;
}

int cli_parse_int(const char *s, long long min, long long max, long long *ret)
{
        uint64_t magnitude;
        bool negative = s[0] == '-';
        int r = util_parse_u64(negative ? s + 1 : s, 10, &magnitude);
        if (r < 0)
                return r;
        if (magnitude > (uint64_t)INT64_MAX)
                return -ERANGE;
        long long v = negative ? -(long long)magnitude : (long long)magnitude;
        if (v < min || v > max)
                return -ERANGE;
        *ret = v;
        return 0;
}
