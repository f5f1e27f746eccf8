/* SPDX-License-Identifier: MIT */
/*
 * `iovctl __complete CWORD WORD...`: the hidden command behind the shell completions
 * (cli/completion/). WORDs are the command line after "iovctl", CWORD the index of the
 * word being completed (it may be one past the last word: an empty word). Everything
 * comes from the command tables, so a new command or option completes without touching
 * the shell scripts; live values (device addresses, pool names, VM names, allocation
 * and group ids) are asked from the daemon the command line talks to.
 *
 * Output, one item a line: first the kind, "words" or "files" (the shell completes file
 * names itself), then for "words" the candidates that start with the current word.
 * Never an error on stdout: a daemon that does not answer just gives no candidates.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"

/* Where the values of an argument come from. */
enum complete_source {
        SOURCE_NONE,
        SOURCE_FILES,
        SOURCE_CHOICES, /* the value name itself: "pf|vf" */
        SOURCE_DEVICES,
        SOURCE_PFS,
        SOURCE_VFS,
        SOURCE_POOLS,
        SOURCE_VMS,
        SOURCE_ALLOCATIONS,
        SOURCE_GROUPS,
        SOURCE_DEVICE_SPECS, /* vm create --device: the types, then a vfio entry's source */
};

/* A positional argument's source, by the command (exact name, or a prefix ending in a
 * space) and the argument's name in the command's usage. First match wins. */
static const struct {
        const char *command;
        const char *argument;
        enum complete_source source;
} positional_rules[] = {
        {"pool create", "NAME", SOURCE_NONE}, /* a new name */
        {"pool ", "NAME", SOURCE_POOLS},
        {"vm create", "NAME", SOURCE_NONE},
        {"vm ", "ID", SOURCE_VMS},
        {"alloc set-owner", "ID", SOURCE_ALLOCATIONS},
        {"release", "ID", SOURCE_ALLOCATIONS},
        {"allocation", "ID", SOURCE_ALLOCATIONS},
        {"group", "ID", SOURCE_GROUPS},
        {NULL, "ADDR", SOURCE_DEVICES},
        {NULL, "PF", SOURCE_PFS},
        {NULL, "VF", SOURCE_VFS},
        {NULL, "FILE", SOURCE_FILES},
};

/* What the daemon lists for a live source: GET path, the list's key, up to two fields
 * of each element offered as candidates (a VM by id and by name). */
static const struct {
        enum complete_source source;
        const char *path;
        const char *list_key;
        const char *fields[2];
} live_sources[] = {
        {SOURCE_DEVICES, "/v1/devices", "devices", {"address", NULL}},
        {SOURCE_PFS, "/v1/devices?sriov=pf", "devices", {"address", NULL}},
        {SOURCE_VFS, "/v1/devices?sriov=vf", "devices", {"address", NULL}},
        {SOURCE_POOLS, "/v1/pools", "pools", {"name", NULL}},
        {SOURCE_VMS, "/v1/vms", "vms", {"name", "id"}},
        {SOURCE_ALLOCATIONS, "/v1/allocations", "allocations", {"id", NULL}},
        {SOURCE_GROUPS, "/v1/iommu-groups", "groups", {"id", NULL}},
};

static void file_closep(FILE **f)
{
        if (*f)
                fclose(*f);
}

/* What the words before the current one say. */
struct complete_state {
        const struct iov_cli_command *command; /* NULL while the command is not complete */
        const char *group;   /* "vm" given, its subcommand not yet; with command set, a command
                                that is also a group ("alloc"): a subcommand may still follow */
        bool unknown;        /* a word that is no command: give up */
        bool options_done;   /* after "--" */
        size_t n_positional; /* the command's arguments so far */
        const struct iov_cli_option_spec *pending; /* the option whose value comes next */
        const char **endpoint_words;               /* --socket X, --url Y...: to ask iovd */
        int n_endpoint_words;
};

static const struct iov_cli_option_spec *option_find(const struct iov_cli_command *c,
                                                     const char *word)
{
        const struct iov_cli_option_spec *tables[] = {c ? c->options : NULL, cli_global_options};
        bool is_long = word[1] == '-';
        const char *name = word + (is_long ? 2 : 1), *eq = strchr(name, '=');
        size_t len = eq ? (size_t)(eq - name) : strlen(name);

        for (size_t t = 0; t < ARRAY_SIZE(tables); t++)
                for (const struct iov_cli_option_spec *s = tables[t]; s && s->name; s++) {
                        if (is_long && strlen(s->name) == len && strncmp(s->name, name, len) == 0)
                                return s;
                        if (!is_long && len == 1 && s->short_name == name[0])
                                return s;
                }
        return NULL;
}

static bool option_is_global(const struct iov_cli_option_spec *spec)
{
        for (const struct iov_cli_option_spec *s = cli_global_options; s->name; s++)
                if (s == spec)
                        return true;
        return false;
}

/* "vm" of "vm create": true when some command's name starts with "WORD ". */
static bool word_is_group(const char *word)
{
        size_t len = strlen(word);
        const struct iov_cli_command *c;
        for (size_t i = 0; (c = cli_command_at(i)); i++)
                if (strncmp(c->name, word, len) == 0 && c->name[len] == ' ')
                        return true;
        return false;
}

/* A positional word before the command is complete: it names the command or a group. */
static void state_take_command_word(struct complete_state *s, const char *word)
{
        const char *words[] = {s->group ? s->group : word, word};
        int n = s->group ? 2 : 1, used = 0;
        const struct iov_cli_command *c = cli_command_find(n, words, &used);

        if (c && used == n) {
                s->command = c;
                s->group = n == 1 && word_is_group(word) ? word : NULL;
        } else if (!s->group && word_is_group(word)) {
                s->group = word;
        } else {
                s->unknown = true;
        }
}

/* The word after a command that is also a group: its subcommand, or its first argument. */
static void state_take_subcommand(struct complete_state *s, const char *word)
{
        const char *words[] = {s->group, word};
        int used = 0;
        const struct iov_cli_command *c = cli_command_find(2, words, &used);
        s->group = NULL;
        if (c && used == 2)
                s->command = c;
        else
                s->n_positional++;
}

static void state_take_option(struct complete_state *s, const char *const *words, int i)
{
        const struct iov_cli_option_spec *spec = option_find(s->command, words[i]);
        bool has_value = strchr(words[i], '=') != NULL;

        if (spec && option_is_global(spec) && spec->value_name)
                s->endpoint_words[s->n_endpoint_words++] = words[i];
        if (spec && spec->value_name && !has_value)
                s->pending = spec;
}

static void state_take_words(struct complete_state *s, const char *const *words, int n)
{
        for (int i = 0; i < n && !s->unknown; i++) {
                const char *w = words[i];
                if (s->pending) {
                        if (option_is_global(s->pending))
                                s->endpoint_words[s->n_endpoint_words++] = w;
                        s->pending = NULL;
                } else if (!s->options_done && streq(w, "--")) {
                        s->options_done = true;
                } else if (!s->options_done && w[0] == '-' && w[1] != '\0') {
                        state_take_option(s, words, i);
                } else if (!s->command) {
                        state_take_command_word(s, w);
                } else if (s->group) {
                        state_take_subcommand(s, w);
                } else {
                        s->n_positional++;
                }
        }
}

/* ---- candidates ----------------------------------------------------------------------- */

struct complete_output {
        FILE *out;
        const char *prefix; /* the current word (its value part for --name=value) */
        const char *stem;   /* printed before each candidate ("vfio,pool="), or NULL */
};

static void output_candidate(const struct complete_output *o, const char *candidate)
{
        _cleanup_free_ char *text =
                candidate ? util_strdup_printf("%s%s", o->stem ? o->stem : "", candidate) : NULL;
        if (text && strncmp(text, o->prefix, strlen(o->prefix)) == 0)
                fprintf(o->out, "%s\n", text);
}

static void output_options(const struct complete_output *o, const struct iov_cli_command *c)
{
        const struct iov_cli_option_spec *tables[] = {c ? c->options : NULL, cli_global_options};
        for (size_t t = 0; t < ARRAY_SIZE(tables); t++)
                for (const struct iov_cli_option_spec *s = tables[t]; s && s->name; s++) {
                        _cleanup_free_ char *text = util_strdup_printf("--%s", s->name);
                        output_candidate(o, text);
                }
}

/* Command names, or the second words of group's commands; each first word once. */
static void output_commands(const struct complete_output *o, const char *group)
{
        size_t group_len = group ? strlen(group) : 0;
        const struct iov_cli_command *c;
        for (size_t i = 0; (c = cli_command_at(i)); i++) {
                if (group && (strncmp(c->name, group, group_len) != 0 || c->name[group_len] != ' '))
                        continue;
                const char *name = group ? c->name + group_len + 1 : c->name;
                size_t len = strcspn(name, " ");
                bool seen = false;
                const struct iov_cli_command *before;
                for (size_t j = 0; j < i && !seen && (before = cli_command_at(j)); j++)
                        seen = !group && strncmp(before->name, name, len) == 0 &&
                               (before->name[len] == ' ' || before->name[len] == '\0');
                _cleanup_free_ char *word = strndup(name, len);
                if (!seen)
                        output_candidate(o, word);
        }
}

/* "pf|vf": each alternative. */
static void output_choices(const struct complete_output *o, const char *choices)
{
        while (*choices) {
                size_t len = strcspn(choices, "|");
                _cleanup_free_ char *choice = strndup(choices, len);
                output_candidate(o, choice);
                choices += len + (choices[len] == '|');
        }
}

/* The values iovd lists for source; nothing when it cannot be asked. */
static void output_live(const struct complete_output *o, enum complete_source source,
                        const struct complete_state *s)
{
        struct iov_cli_args args = {0};
        _cleanup_free_ char *error = NULL;
        _cleanup_json_ struct json_object *json = NULL;
        size_t i = 0;

        while (i < ARRAY_SIZE(live_sources) && live_sources[i].source != source)
                i++;
        _cleanup_(file_closep) FILE *quiet = fopen("/dev/null", "we");
        if (i == ARRAY_SIZE(live_sources) || !quiet)
                return;
        /* A tab press must not hang: a short time-out instead of a command's. */
        struct iov_cli cli = {
                .endpoint.timeout_sec = IOV_CLI_COMPLETE_TIMEOUT_SEC, .out = quiet, .err = quiet};
        if (cli_args_parse(NULL, cli_global_options, s->n_endpoint_words, s->endpoint_words, false,
                           &args, NULL, &error) < 0)
                return;
        if (cli_setup_endpoint(&cli, &args) == IOV_CLI_EXIT_OK &&
            cli_call(&cli, "GET", live_sources[i].path, NULL, &json) == IOV_CLI_EXIT_OK) {
                struct json_object *list = cli_json_list(json, live_sources[i].list_key);
                for (size_t k = 0; list && k < json_object_array_length(list); k++)
                        for (size_t f = 0; f < 2 && live_sources[i].fields[f]; f++) {
                                struct json_object *item = json_object_array_get_idx(list, k);
                                _cleanup_free_ char *v =
                                        cli_json_field(item, live_sources[i].fields[f]);
                                output_candidate(o, v);
                        }
        }
        free(cli.endpoint.token);
        cli_args_clear(&args);
}

/* --device SPEC: the short forms' beginnings; after "vfio,pool=", "vfio,device=" or
 * "vfio,allocation=" the pools, devices or allocations iovd lists. */
static void output_device_specs(const struct complete_output *o, const struct complete_state *s)
{
        static const char *const kinds[] = {
                "virtio-blk,path=", "virtio-net,tap=", "virtio-rng",       "virtio-console",
                "vfio,pool=",       "vfio,device=",    "vfio,allocation=",
        };
        static const enum complete_source vfio_sources[] = {SOURCE_POOLS, SOURCE_DEVICES,
                                                            SOURCE_ALLOCATIONS};
        for (size_t i = 4; i < ARRAY_SIZE(kinds); i++)
                if (strncmp(o->prefix, kinds[i], strlen(kinds[i])) == 0) {
                        struct complete_output stemmed = *o;
                        stemmed.stem = kinds[i];
                        output_live(&stemmed, vfio_sources[i - 4], s);
                        return;
                }
        for (size_t i = 0; i < ARRAY_SIZE(kinds); i++)
                output_candidate(o, kinds[i]);
}

static void output_source(const struct complete_output *o, enum complete_source source,
                          const char *value_name, const struct complete_state *s)
{
        if (source == SOURCE_FILES) {
                fputs("files\n", o->out);
                return;
        }
        fputs("words\n", o->out);
        if (source == SOURCE_CHOICES)
                output_choices(o, value_name);
        else if (source == SOURCE_DEVICE_SPECS)
                output_device_specs(o, s);
        else if (source != SOURCE_NONE)
                output_live(o, source, s);
}

/* An option's value source: by the option's name, else by its value's name. */
static enum complete_source option_source(const struct iov_cli_option_spec *spec)
{
        static const struct {
                const char *option;
                const char *value_name;
                enum complete_source source;
        } rules[] = {
                {"physfn", NULL, SOURCE_PFS},   {"pool", NULL, SOURCE_POOLS},
                {NULL, "ADDR", SOURCE_DEVICES}, {NULL, "FILE", SOURCE_FILES},
                {NULL, "PATH", SOURCE_FILES},   {NULL, "SPEC", SOURCE_DEVICE_SPECS},
        };
        if (strchr(spec->value_name, '|'))
                return SOURCE_CHOICES;
        for (size_t i = 0; i < ARRAY_SIZE(rules); i++)
                if ((rules[i].option && streq(rules[i].option, spec->name)) ||
                    (rules[i].value_name && streq(rules[i].value_name, spec->value_name)))
                        return rules[i].source;
        return SOURCE_NONE;
}

/* The name of the n-th positional argument in a usage such as "PF N [--autoprobe]" or
 * "[NAME] --kernel FILE [OPTIONS]": the words that are neither an option nor an
 * option's value, brackets removed. NULL when there is none (caller frees). */
static char *usage_argument(const char *usage, size_t n)
{
        bool skip_value = false;
        while (usage && *usage) {
                usage += strspn(usage, " ");
                size_t len = strcspn(usage, " ");
                const char *word = usage;
                usage += len;
                size_t lead = strspn(word, "[(|");
                word += lead;
                len -= lead;
                while (len > 0 && strchr("]).|", word[len - 1]))
                        len--;
                if (len == 0)
                        continue;
                if (word[0] == '-') {
                        skip_value = true;
                } else if (skip_value) {
                        skip_value = false;
                } else if (n-- == 0) {
                        return strndup(word, len);
                }
        }
        return NULL;
}

static enum complete_source positional_source(const struct iov_cli_command *c, size_t n)
{
        if (n >= c->max_positional)
                return SOURCE_NONE;
        _cleanup_free_ char *argument = usage_argument(c->usage, n);
        for (size_t i = 0; argument && i < ARRAY_SIZE(positional_rules); i++) {
                const char *rule = positional_rules[i].command;
                size_t len = rule ? strlen(rule) : 0;
                bool command_matches = !rule || streq(rule, c->name) ||
                                       (rule[len - 1] == ' ' && strncmp(rule, c->name, len) == 0);
                if (command_matches && streq(positional_rules[i].argument, argument))
                        return positional_rules[i].source;
        }
        return SOURCE_NONE;
}

/* The current word completes an option's value ("--pool" before it, or "--pool=PREFIX"):
 * that option, with o->prefix moved past the "=". NULL otherwise. */
static const struct iov_cli_option_spec *
value_option(const struct complete_state *s, const char *current, struct complete_output *o)
{
        if (s->pending)
                return s->pending;
        const char *eq = strchr(current, '=');
        if (s->options_done || strncmp(current, "--", 2) != 0 || !eq)
                return NULL;
        const struct iov_cli_option_spec *spec = option_find(s->command, current);
        if (!spec || !spec->value_name)
                return NULL;
        o->prefix = eq + 1;
        return spec;
}

int cli_complete_main(int argc, const char *const *argv, FILE *out)
{
        long long cword;
        if (argc < 1 || cli_parse_int(argv[0], 0, argc - 1, &cword) < 0)
                return IOV_CLI_EXIT_USAGE;
        const char *const *words = argv + 1;
        int n_words = argc - 1;
        _cleanup_free_ const char **endpoint_words = calloc((size_t)n_words + 1, sizeof(char *));
        struct complete_state s = {.endpoint_words = endpoint_words};
        const char *current = cword < n_words ? words[cword] : "";
        struct complete_output o = {.out = out, .prefix = current};

        if (!endpoint_words)
                return IOV_CLI_EXIT_API;
        state_take_words(&s, words, (int)cword);
        const struct iov_cli_option_spec *spec = s.unknown ? NULL : value_option(&s, current, &o);
        if (s.unknown) {
                fputs("words\n", out);
        } else if (spec) {
                output_source(&o, option_source(spec), spec->value_name, &s);
        } else if (!s.options_done && current[0] == '-') {
                fputs("words\n", out);
                output_options(&o, s.command);
        } else if (!s.command || s.group) {
                /* A command that is also a group takes no argument of its own ("alloc"
                 * has only options): what may follow it is a subcommand. */
                fputs("words\n", out);
                output_commands(&o, s.group);
        } else {
                enum complete_source source = positional_source(s.command, s.n_positional);
                output_source(&o, source, NULL, &s);
        }
        return IOV_CLI_EXIT_OK;
}
