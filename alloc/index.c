/* SPDX-License-Identifier: MIT */
/*
 * index: a string-keyed hash map (chained, grown at load factor 2) behind the registry's
 * lookups, so finding an allocation by id, device or group, a pool by name or a pool's
 * allocation count costs the same with ten items or ten thousand. The registry's rwlock
 * guards it like the arrays it indexes.
 */
#include <stdio.h>

#include "alloc/alloc-internal.h"

struct iov_index_entry {
        struct iov_index_entry *next;
        uint64_t hash;
        void *value;
        char key[]; /* NUL-terminated */
};

/* FNV-1a, 64 bits: keys are short ids, names and addresses, not attacker-chosen at
 * volume (every one passed a strict parser and a cap first). */
static uint64_t hash_key(const char *key)
{
        uint64_t h = 0xcbf29ce484222325ull;
        for (const unsigned char *p = (const unsigned char *)key; *p; p++)
                h = (h ^ *p) * 0x100000001b3ull;
        return h;
}

static struct iov_index_entry **slot_of(const struct iov_index *ix, const char *key, uint64_t hash)
{
        struct iov_index_entry **slot = &ix->buckets[hash & (ix->n_buckets - 1)];
        while (*slot && ((*slot)->hash != hash || !streq((*slot)->key, key)))
                slot = &(*slot)->next;
        return slot;
}

static int grow(struct iov_index *ix)
{
        size_t n = ix->n_buckets ? ix->n_buckets * 2 : 64;
        struct iov_index_entry **buckets = calloc(n, sizeof(*buckets));
        if (!buckets)
                return -ENOMEM;
        for (size_t i = 0; i < ix->n_buckets; i++)
                for (struct iov_index_entry *e = ix->buckets[i], *next; e; e = next) {
                        next = e->next;
                        e->next = buckets[e->hash & (n - 1)];
                        buckets[e->hash & (n - 1)] = e;
                }
        free(ix->buckets);
        ix->buckets = buckets;
        ix->n_buckets = n;
        return 0;
}

void *index_get(const struct iov_index *ix, const char *key)
{
        if (ix->n == 0)
                return NULL;
        struct iov_index_entry *e = *slot_of(ix, key, hash_key(key));
        return e ? e->value : NULL;
}

int index_put(struct iov_index *ix, const char *key, void *value)
{
        if (ix->n >= 2 * ix->n_buckets && grow(ix) < 0)
                return -ENOMEM;
        uint64_t hash = hash_key(key);
        struct iov_index_entry **slot = slot_of(ix, key, hash);
        if (*slot) {
                (*slot)->value = value;
                return 0;
        }
        size_t len = strlen(key);
        struct iov_index_entry *e = malloc(sizeof(*e) + len + 1);
        if (!e)
                return -ENOMEM;
        *e = (struct iov_index_entry){.hash = hash, .value = value};
        memcpy(e->key, key, len + 1);
        *slot = e;
        ix->n++;
        return 0;
}

void index_del(struct iov_index *ix, const char *key, const void *value)
{
        if (ix->n == 0)
                return;
        struct iov_index_entry **slot = slot_of(ix, key, hash_key(key));
        struct iov_index_entry *e = *slot;
        if (!e || (value && e->value != value))
                return; /* another item owns the key now */
        *slot = e->next;
        free(e);
        ix->n--;
}

void index_clear(struct iov_index *ix)
{
        for (size_t i = 0; i < ix->n_buckets; i++)
                for (struct iov_index_entry *e = ix->buckets[i], *next; e; e = next) {
                        next = e->next;
                        free(e);
                }
        free(ix->buckets);
        *ix = (struct iov_index){0};
}
