/* SPDX-License-Identifier: MIT */
/* The run states' names and iovd-vmm's final statistics line (vm-contract.h). */
#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/util.h"
#include "vmm/contract/vm-contract.h"

static const char *const state_names[IOV_VM_STATE_COUNT] = {
        [IOV_VM_STATE_CREATED] = "created", [IOV_VM_STATE_RUNNING] = "running",
        [IOV_VM_STATE_PAUSED] = "paused",   [IOV_VM_STATE_STOPPED] = "stopped",
        [IOV_VM_STATE_CRASHED] = "crashed",
};

const char *vm_state_to_string(enum iov_vm_state state)
{
        if ((unsigned)state >= IOV_VM_STATE_COUNT)
                return "unknown";
        return state_names[state];
}

int vm_state_from_string(const char *s, enum iov_vm_state *ret)
{
        for (unsigned st = 0; s && st < IOV_VM_STATE_COUNT; st++)
                if (streq(s, state_names[st])) {
                        *ret = (enum iov_vm_state)st;
                        return 0;
                }
        return -EINVAL;
}

int vm_stats_line_format(struct json_object *stats, char **ret_line)
{
        if (!json_object_is_type(stats, json_type_object))
                return -EINVAL;
        /* PLAIN: one line, so a reader of the log finds it by its prefix. */
        const char *json = json_object_to_json_string_ext(stats, JSON_C_TO_STRING_PLAIN);
        char *line = json ? util_strdup_printf("%s%s\n", IOV_VMM_STATS_LINE_PREFIX, json) : NULL;
        if (!line)
                return -ENOMEM;
        *ret_line = line;
        return 0;
}

int vm_stats_line_parse(const char *line, struct json_object **ret)
{
        size_t prefix = strlen(IOV_VMM_STATS_LINE_PREFIX);
        if (strncmp(line, IOV_VMM_STATS_LINE_PREFIX, prefix) != 0)
                return -ENOMSG;
        const char *json = line + prefix;
        size_t len = strcspn(json, "\n");
        struct json_tokener *tok = json_tokener_new();
        if (!tok)
                return -ENOMEM;
        struct json_object *o = json_tokener_parse_ex(tok, json, (int)len);
        /* The object must be the whole rest of the line. */
        bool whole = o && json_tokener_get_error(tok) == json_tokener_success &&
                     json_tokener_get_parse_end(tok) == len;
        json_tokener_free(tok);
        if (!whole || !json_object_is_type(o, json_type_object)) {
                json_object_put(o);
                return -EBADMSG;
        }
        *ret = o;
        return 0;
}

int vm_stats_line_find(const char *text, struct json_object **ret)
{
        struct json_object *found = NULL;
        for (const char *line = text; line && *line;) {
                struct json_object *o = NULL;
                int r = vm_stats_line_parse(line, &o);
                if (r == -ENOMEM) {
                        json_object_put(found);
                        return r;
                }
                if (r >= 0) {
                        json_object_put(found);
                        found = o;
                }
                line = strchr(line, '\n');
                line = line ? line + 1 : NULL;
        }
        if (!found)
                return -ENOMSG;
        *ret = found;
        return 0;
}
