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
