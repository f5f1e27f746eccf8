/* SPDX-License-Identifier: MIT */
/*
 * util/json: the ownership helper for json-c objects, the one every module uses. Kept out
 * of util.h so that util.h stays free of json-c; util_dep carries json-c's include path,
 * so any module may include this.
 */
#pragma once

#include <json-c/json.h>

#include "util/util.h"

/* For _cleanup_json_: drops the reference; json_object_put accepts NULL. */
static inline void util_json_putp(struct json_object **p)
{
        json_object_put(*p);
}
#define _cleanup_json_ _cleanup_(util_json_putp)

/* The JSON name of a json-c type ("integer", "string", ...), for messages that say what
 * a field must be. */
static inline const char *util_json_type_name(enum json_type t)
{
        switch (t) {
        case json_type_int:
                return "integer";
        case json_type_double:
                return "number";
        case json_type_boolean:
                return "boolean";
        case json_type_string:
                return "string";
        case json_type_array:
                return "array";
        case json_type_object:
                return "object";
        case json_type_null:
                return "null";
        }
        return "value";
}
