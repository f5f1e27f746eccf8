/* SPDX-License-Identifier: MIT */
/*
 * iovctl output: aligned tables for people (column widths from the data, "-" for
 * null), the API's own JSON for scripts, and the one error line format.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"

struct iov_cli_table {
        size_t n_columns;
        bool has_header;
        char **cells;  /* row-major, the headers (if any) are row 0; NULL prints as "-" */
        size_t n_rows; /* including the header row */
};

struct iov_cli_table *cli_table_new(size_t n_columns, const char *const *headers)
{
        struct iov_cli_table *t = calloc(1, sizeof(*t));
        if (!t)
                return NULL;
        t->n_columns = n_columns;
        t->has_header = headers != NULL;
        if (headers && cli_table_add_row(t, headers) < 0) {
                cli_table_free(t);
                return NULL;
        }
        return t;
}

void cli_table_free(struct iov_cli_table *t)
{
        if (!t)
                return;
        for (size_t i = 0; i < t->n_rows * t->n_columns; i++)
                free(t->cells[i]);
        free(t->cells);
        free(t);
}

int cli_table_add_row(struct iov_cli_table *t, const char *const *cells)
{
        size_t base = t->n_rows * t->n_columns;
        char **p = realloc(t->cells, (base + t->n_columns) * sizeof(*p));
        if (!p)
                return -ENOMEM;
        t->cells = p;
        for (size_t c = 0; c < t->n_columns; c++) {
                p[base + c] = NULL;
                if (cells[c] && !(p[base + c] = strdup(cells[c]))) {
                        for (size_t k = 0; k < c; k++)
                                free(p[base + k]);
                        return -ENOMEM;
                }
        }
        t->n_rows++;
        return 0;
}

size_t cli_table_rows(const struct iov_cli_table *t)
{
        return t->n_rows - (t->has_header ? 1 : 0);
}

static const char *table_cell(const struct iov_cli_table *t, size_t row, size_t column)
{
        const char *s = t->cells[row * t->n_columns + column];
        return s ? s : "-";
}

int cli_table_print(const struct iov_cli_table *t, FILE *f)
{
        _cleanup_free_ size_t *width = calloc(t->n_columns, sizeof(*width));
        if (!width)
                return -ENOMEM;
        for (size_t r = 0; r < t->n_rows; r++)
                for (size_t c = 0; c < t->n_columns; c++) {
                        size_t w = strlen(table_cell(t, r, c));
                        if (w > width[c])
                                width[c] = w;
                }
        for (size_t r = 0; r < t->n_rows; r++) {
                for (size_t c = 0; c < t->n_columns; c++) {
                        const char *s = table_cell(t, r, c);
                        if (c + 1 == t->n_columns)
                                fputs(s, f);
                        else
                                fprintf(f, "%-*s  ", (int)width[c], s);
                }
                fputc('\n', f);
        }
        return ferror(f) ? -EIO : 0;
}

/* ---- tables on a terminal ------------------------------------------------------------- */

/* A cut column keeps at least this many columns of text (ellipsis included). */
#define TABLE_MIN_WIDTH 8

/* Display columns of UTF-8 text: one per character (continuation bytes, 10xxxxxx, add
 * none). Wide East Asian characters count as one; inventory text is ASCII. */
static size_t text_columns(const char *s)
{
        size_t n = 0;
        for (; *s; s++)
                n += ((unsigned char)*s & 0xc0) != 0x80;
        return n;
}

/* The bytes of s that fill at most `columns` display columns, never splitting a
 * character. */
static size_t text_prefix_bytes(const char *s, size_t columns)
{
        size_t i = 0;
        for (size_t used = 0; s[i]; used++) {
                if (used == columns)
                        break;
                i++;
                while (((unsigned char)s[i] & 0xc0) == 0x80)
                        i++;
        }
        return i;
}

/* Shorten the widest column so the line fits in `limit`, but not below TABLE_MIN_WIDTH:
 * the other columns (addresses, ids, states) stay whole, and a line that still does not
 * fit is left to the terminal to wrap. */
static void table_fit(size_t *width, size_t n_columns, size_t limit)
{
        size_t total = 2 * (n_columns - 1), widest = 0;
        for (size_t c = 0; c < n_columns; c++) {
                total += width[c];
                if (width[c] > width[widest])
                        widest = c;
        }
        if (total <= limit || width[widest] <= TABLE_MIN_WIDTH)
                return;
        size_t excess = total - limit;
        width[widest] =
                width[widest] > excess + TABLE_MIN_WIDTH ? width[widest] - excess : TABLE_MIN_WIDTH;
}

/* Is column c of row r a state word? The STATE column of a list, or a detail view's
 * "state" / "*.state" row. */
static bool table_cell_is_state(const struct iov_cli_table *t, size_t r, size_t c)
{
        if (t->has_header)
                return r > 0 && streq(table_cell(t, 0, c), "STATE");
        const char *key = table_cell(t, r, 0);
        size_t len = strlen(key);
        return c == 1 && t->n_columns == 2 &&
               (streq(key, "state") || (len > 6 && streq(key + len - 6, ".state")));
}

static void table_put_cell(const struct iov_cli_table *t, size_t r, size_t c, size_t width, FILE *f,
                           const struct iov_cli_terminal *term)
{
        const char *s = table_cell(t, r, c), *sgr = NULL;
        size_t shown = text_columns(s), bytes = strlen(s);
        bool cut = shown > width;

        if (cut) {
                size_t room = text_columns(term->ellipsis) < width
                                      ? width - text_columns(term->ellipsis)
                                      : 0;
                bytes = text_prefix_bytes(s, room);
                shown = room + text_columns(term->ellipsis);
        }
        if (term->color && table_cell_is_state(t, r, c))
                sgr = cli_state_sgr(s);
        if (sgr)
                fprintf(f, "\033[%sm", sgr);
        fprintf(f, "%.*s%s", (int)bytes, s, cut ? term->ellipsis : "");
        if (sgr)
                fputs("\033[0m", f);
        if (c + 1 < t->n_columns)
                fprintf(f, "%*s", (int)(width - shown + 2), "");
}

int cli_table_print_styled(const struct iov_cli_table *t, FILE *f,
                           const struct iov_cli_terminal *term)
{
        _cleanup_free_ size_t *width = calloc(t->n_columns, sizeof(*width));
        if (!width)
                return -ENOMEM;
        for (size_t r = 0; r < t->n_rows; r++)
                for (size_t c = 0; c < t->n_columns; c++) {
                        size_t w = text_columns(table_cell(t, r, c));
                        if (w > width[c])
                                width[c] = w;
                }
        if (term->columns > 0 && t->has_header)
                table_fit(width, t->n_columns, term->columns);
        for (size_t r = 0; r < t->n_rows; r++) {
                for (size_t c = 0; c < t->n_columns; c++)
                        table_put_cell(t, r, c, width[c], f, term);
                fputc('\n', f);
        }
        return ferror(f) ? -EIO : 0;
}

/* Off a terminal the plain printer: byte for byte what scripts always read. */
int cli_table_show(struct iov_cli *cli, const struct iov_cli_table *t)
{
        if (!cli->term.color && cli->term.columns == 0)
                return cli_table_print(t, cli->out);
        return cli_table_print_styled(t, cli->out, &cli->term);
}

static char *json_array_join(struct json_object *array)
{
        size_t n = json_object_array_length(array), len = 0;
        char *joined = strdup("");

        for (size_t i = 0; joined && i < n; i++) {
                _cleanup_free_ char *item = cli_json_cell(json_object_array_get_idx(array, i));
                const char *s = item ? item : "-";
                char *p = realloc(joined, len + strlen(s) + 2);
                if (!p) {
                        free(joined);
                        return NULL;
                }
                joined = p;
                len += (size_t)sprintf(joined + len, "%s%s", i > 0 ? "," : "", s);
        }
        return joined;
}

char *cli_json_cell(struct json_object *value)
{
        switch (json_object_get_type(value)) {
        case json_type_null:
                return NULL;
        case json_type_boolean:
                return strdup(json_object_get_boolean(value) ? "yes" : "no");
        case json_type_int:
                return util_strdup_printf("%" PRId64, json_object_get_int64(value));
        case json_type_double:
                return util_strdup_printf("%g", json_object_get_double(value));
        case json_type_string:
                return strdup(json_object_get_string(value));
        case json_type_array:
                return json_object_array_length(value) > 0 ? json_array_join(value) : NULL;
        case json_type_object:
                return strdup(json_object_to_json_string_ext(value, JSON_C_TO_STRING_PLAIN));
        }
        return NULL;
}

char *cli_json_field(struct json_object *obj, const char *key)
{
        struct json_object *v = NULL;
        if (!obj || !json_object_is_type(obj, json_type_object) ||
            !json_object_object_get_ex(obj, key, &v))
                return NULL;
        return cli_json_cell(v);
}

int cli_json_print(struct json_object *obj, FILE *f)
{
        const char *s = json_object_to_json_string_ext(obj, JSON_C_TO_STRING_PRETTY |
                                                                    JSON_C_TO_STRING_SPACED |
                                                                    JSON_C_TO_STRING_NOSLASHESCAPE);
        fprintf(f, "%s\n", s);
        return ferror(f) ? -EIO : 0;
}

char *cli_json_item_text(struct json_object *item)
{
        if (!json_object_is_type(item, json_type_object))
                return cli_json_cell(item);
        _cleanup_free_ char *text = strdup("");
        json_object_object_foreach (item, key, value) {
                _cleanup_free_ char *cell = cli_json_cell(value);
                char *next = text ? util_strdup_printf("%s%s%s=%s", text, text[0] ? " " : "", key,
                                                       cell ? cell : "-")
                                  : NULL;
                free(text);
                text = next;
        }
        return TAKE_PTR(text);
}
