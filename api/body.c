/* SPDX-License-Identifier: MIT */
/*
 * body: strict JSON at the edge. json-c parses the text (strict mode, bounded depth) but
 * silently keeps the last of duplicate keys, so a second pass over the text checks every
 * object's keys; anything after the value but white space is refused. Then a handler's
 * field table says which fields exist, their types and which are required.
 */
#include <ctype.h>
#include <stdio.h>

#include "api/api.h"
#include "util/json.h"

#define JSON_MAX_DEPTH 32

struct scan {
        const char *p;
        const char *end;
        char *duplicate; /* the first duplicate key found */
        bool nul;        /* a string (key or value) holds \u0000 */
};

static void scan_space(struct scan *s)
{
        while (s->p < s->end && strchr(" \t\r\n", *s->p))
                s->p++;
}

/* Skip a string token (the text is already known to be valid JSON); return its raw
 * content between the quotes. An escaped NUL (RFC 8259 §7 allows "\u0000") is noted:
 * json-c keeps it, and every C string made from the value would end there. */
static void scan_string(struct scan *s, const char **ret_start, size_t *ret_len)
{
        const char *start = ++s->p;
        while (s->p < s->end && *s->p != '"') {
                if (*s->p != '\\') {
                        s->p++;
                        continue;
                }
                if (s->end - s->p >= 6 && !memcmp(s->p + 1, "u0000", 5))
                        s->nul = true;
                s->p += 2;
        }
        *ret_start = start;
        *ret_len = (size_t)(s->p - start);
        s->p++;
}

/* The key as a C string: escapes are decoded by json-c itself, so "\u0061" and "a" are the
 * same key, as they are to every JSON reader. */
static char *key_decode(const char *raw, size_t len)
{
        if (!memchr(raw, '\\', len))
                return strndup(raw, len);
        _cleanup_free_ char *quoted = util_strdup_printf("\"%.*s\"", (int)len, raw);
        if (!quoted)
                return NULL;
        struct json_object *o = json_tokener_parse(quoted);
        char *key = o ? strdup(json_object_get_string(o)) : NULL;
        json_object_put(o);
        return key;
}

/* true, false, null or a number as RFC 8259 §6 writes it: json-c also takes NaN,
 * Infinity and hex, which no other JSON reader does. */
static bool literal_valid(const char *p, size_t len)
{
        const char *end = p + len;
        if ((len == 4 && !memcmp(p, "true", 4)) || (len == 5 && !memcmp(p, "false", 5)) ||
            (len == 4 && !memcmp(p, "null", 4)))
                return true;
        if (p < end && *p == '-')
                p++;
        if (p == end || !isdigit((unsigned char)*p))
                return false;
        if (*p == '0')
                p++;
        else
                while (p < end && isdigit((unsigned char)*p))
                        p++;
        if (p < end && *p == '.') {
                if (++p == end || !isdigit((unsigned char)*p))
                        return false;
                while (p < end && isdigit((unsigned char)*p))
                        p++;
        }
        if (p < end && (*p == 'e' || *p == 'E')) {
                p++;
                if (p < end && (*p == '+' || *p == '-'))
                        p++;
                if (p == end || !isdigit((unsigned char)*p))
                        return false;
                while (p < end && isdigit((unsigned char)*p))
                        p++;
        }
        return p == end;
}

static int scan_value(struct scan *s);

static int scan_object(struct scan *s)
{
        /* A json-c object is a hash table: a cheap set of the keys seen so far. */
        struct json_object *seen = json_object_new_object();
        int r = 0;

        if (!seen)
                return -ENOMEM;
        s->p++;
        for (;;) {
                scan_space(s);
                if (s->p >= s->end || *s->p == '}')
                        break;
                const char *raw;
                size_t len;
                if (*s->p != '"') {
                        r = -EBADMSG;
                        break;
                }
                scan_string(s, &raw, &len);
                char *key = key_decode(raw, len);
                if (!key) {
                        r = -ENOMEM;
                        break;
                }
                if (json_object_object_get_ex(seen, key, NULL)) {
                        s->duplicate = key;
                        r = -EEXIST;
                        break;
                }
                json_object_object_add(seen, key, NULL);
                free(key);
                scan_space(s);
                s->p++; /* ':' */
                r = scan_value(s);
                if (r < 0)
                        break;
                scan_space(s);
                if (s->p < s->end && *s->p == ',')
                        s->p++;
        }
        s->p++;
        json_object_put(seen);
        return r;
}

static int scan_array(struct scan *s)
{
        s->p++;
        for (;;) {
                scan_space(s);
                if (s->p >= s->end || *s->p == ']')
                        break;
                int r = scan_value(s);
                if (r < 0)
                        return r;
                scan_space(s);
                if (s->p < s->end && *s->p == ',')
                        s->p++;
        }
        s->p++;
        return 0;
}

static int scan_value(struct scan *s)
{
        const char *raw;
        size_t len;

        scan_space(s);
        if (s->p >= s->end)
                return 0;
        switch (*s->p) {
        case '{':
                return scan_object(s);
        case '[':
                return scan_array(s);
        case '"':
                scan_string(s, &raw, &len);
                return 0;
        case '\'':
                return -EBADMSG; /* json-c takes single quotes even in strict mode */
        default:
                raw = s->p;
                while (s->p < s->end && !strchr(",]} \t\r\n", *s->p))
                        s->p++;
                return literal_valid(raw, (size_t)(s->p - raw)) ? 0 : -EBADMSG;
        }
}

static int parse_fail(const char *code, char *message, const char **ret_code, char **ret_message)
{
        if (ret_code)
                *ret_code = code;
        if (ret_message)
                *ret_message = message;
        else
                free(message);
        return -EBADMSG;
}

/* Step one: json-c parses (strict, bounded depth, UTF-8 checked); ret_end is where the
 * value ended. text must be NUL-terminated at size. */
static int json_parse_value(const char *text, size_t size, struct json_object **ret,
                            size_t *ret_end, char **ret_message)
{
        struct json_tokener *tok = json_tokener_new_ex(JSON_MAX_DEPTH);
        if (!tok)
                return -ENOMEM;
        json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_ALLOW_TRAILING_CHARS |
                                            JSON_TOKENER_VALIDATE_UTF8);
        struct json_object *obj = json_tokener_parse_ex(tok, text, (int)size + 1);
        enum json_tokener_error err = json_tokener_get_error(tok);
        *ret_end = json_tokener_get_parse_end(tok);
        json_tokener_free(tok);

        /* "null" parses to a NULL object with success: the handler sees no body. */
        if (err != json_tokener_success) {
                json_object_put(obj);
                *ret_message = util_strdup_printf("request body is not valid JSON: %s",
                                                  err == json_tokener_continue
                                                          ? "unexpected end of input"
                                                          : json_tokener_error_desc(err));
                return -EBADMSG;
        }
        *ret = obj;
        return 0;
}

/* Step two: nothing but white space after the value. */
static int json_check_trailing(const char *text, size_t size, size_t end, char **ret_message)
{
        for (size_t i = end; i < size; i++)
                if (!strchr(" \t\r\n", text[i]) || text[i] == 0) {
                        *ret_message = util_strdup_printf(
                                "unexpected text after the JSON value at byte %zu", i);
                        return -EBADMSG;
                }
        return 0;
}

/* Step three: what json-c lets through: duplicate keys, single quotes, NaN and hex, and
 * NUL inside strings (a name, owner or path would be cut short at it after validation). */
static int json_check_text(const char *text, size_t end, const char **ret_code, char **ret_message)
{
        struct scan s = {.p = text, .end = text + end};
        int r = scan_value(&s);
        _cleanup_free_ char *key = s.duplicate;
        if (r == 0 && s.nul) {
                *ret_code = "nul_in_string";
                *ret_message = strdup("a string in the request body holds \\u0000; no name, "
                                      "owner, path or other text may contain NUL");
                return -EBADMSG;
        }
        if (r == -EEXIST) {
                *ret_code = "duplicate_key";
                *ret_message = util_strdup_printf("duplicate key \"%s\" in request body", key);
        } else if (r == -EBADMSG) {
                *ret_code = "malformed_json";
                *ret_message = strdup("request body is not valid JSON: single quotes or a "
                                      "literal outside RFC 8259");
        }
        return r == -EEXIST ? -EBADMSG : r;
}

int api_json_parse_strict(const char *text, size_t size, struct json_object **ret,
                          const char **ret_code, char **ret_message)
{
        /* json-c cannot tell "12" or "null" are complete without a terminator after
         * them: parse a copy ending in NUL (an embedded NUL ends the value early and is
         * then found as trailing text). */
        _cleanup_free_ char *copy = malloc(size + 1);
        struct json_object *obj = NULL;
        const char *code = "malformed_json";
        char *message = NULL;
        size_t end;

        if (!copy)
                return -ENOMEM;
        memcpy(copy, text, size);
        copy[size] = 0;
        int r = json_parse_value(copy, size, &obj, &end, &message);
        if (r >= 0) {
                code = "trailing_garbage";
                r = json_check_trailing(copy, size, end, &message);
        }
        if (r >= 0)
                r = json_check_text(copy, end, &code, &message);
        if (r == -EBADMSG) {
                json_object_put(obj);
                return parse_fail(code, message, ret_code, ret_message);
        }
        if (r < 0) {
                json_object_put(obj);
                free(message);
                return r;
        }
        *ret = obj;
        return 0;
}

static bool field_type_ok(const struct iov_api_field *f, struct json_object *v)
{
        enum json_type t = json_object_get_type(v);
        if (t == json_type_null)
                return f->nullable;
        if (f->type == json_type_double)
                return t == json_type_double || t == json_type_int;
        return t == f->type;
}

int api_body_check(const struct iov_api_request *req, struct iov_api_response *resp,
                   const struct iov_api_field *fields, size_t n_fields)
{
        if (!req->body)
                return api_error(resp, 400, "missing_body", "this request needs a JSON body");
        if (!json_object_is_type(req->body, json_type_object))
                return api_error(resp, 400, "invalid_body", "the request body must be an object");

        json_object_object_foreach (req->body, key, value) {
                const struct iov_api_field *f = NULL;
                for (size_t i = 0; i < n_fields && !f; i++)
                        if (streq(fields[i].name, key))
                                f = &fields[i];
                if (!f)
                        return api_error(resp, 400, "unknown_field", "unknown field \"%s\"", key);
                if (!field_type_ok(f, value))
                        return api_error(
                                resp, 400, "wrong_type", "field \"%s\" must be %s%s, not %s", key,
                                util_json_type_name(f->type), f->nullable ? " or null" : "",
                                util_json_type_name(json_object_get_type(value)));
        }
        for (size_t i = 0; i < n_fields; i++)
                if (fields[i].required &&
                    !json_object_object_get_ex(req->body, fields[i].name, NULL))
                        return api_error(resp, 400, "missing_field", "missing field \"%s\"",
                                         fields[i].name);
        return 0;
}
