/* sandbox_table.c — the backend toolkit's table of a backend instance's own sandboxes by id
 * (include/agentix/backend/table.h): a list under one mutex. A backend holds tens to thousands of
 * sandboxes and looks one up per delete or get, so a list is enough. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "agentix/backend/table.h"

#define ID_MAX 255

typedef struct node {
    struct node *next;
    void *item;
    char id[];
} node;

struct agx_sandbox_table {
    pthread_mutex_t mu;
    node *head;
    agx_sandbox_table_free_fn free_item;
};

agx_sandbox_table *agx_sandbox_table_new(agx_sandbox_table_free_fn free_item)
{
    agx_sandbox_table *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    pthread_mutex_init(&t->mu, NULL);
    t->free_item = free_item;
    return t;
}

static void release(const agx_sandbox_table *t, void *item)
{
    if (t->free_item && item)
        t->free_item(item);
}

void agx_sandbox_table_free(agx_sandbox_table *t)
{
    if (!t)
        return;
    for (node *n = t->head, *next; n; n = next) {
        next = n->next;
        release(t, n->item);
        free(n);
    }
    pthread_mutex_destroy(&t->mu);
    free(t);
}

int agx_sandbox_table_add(agx_sandbox_table *t, const char *id, void *item, agx_error *err)
{
    size_t len = id ? strnlen(id, ID_MAX + 1) : 0;
    if (!t || len == 0 || len > ID_MAX)
        return agx_error_set(err, AGX_ERR_INVALID_ARGUMENT,
                             "agx_sandbox_table_add: no table, or an id empty or over %d bytes",
                             ID_MAX);
    node *n = malloc(sizeof *n + len + 1);
    if (!n)
        return agx_error_set(err, AGX_ERR_NO_MEMORY, "out of memory recording sandbox '%s'", id);
    memcpy(n->id, id, len + 1);
    n->item = item;
    pthread_mutex_lock(&t->mu);
    n->next = t->head;
    t->head = n;
    pthread_mutex_unlock(&t->mu);
    return 0;
}

/* Caller holds mu. */
static node **find(agx_sandbox_table *t, const char *id)
{
    for (node **p = &t->head; *p; p = &(*p)->next)
        if (strcmp((*p)->id, id) == 0)
            return p;
    return NULL;
}

void *agx_sandbox_table_take(agx_sandbox_table *t, const char *id)
{
    if (!t || !id)
        return NULL;
    pthread_mutex_lock(&t->mu);
    node **p = find(t, id), *n = p ? *p : NULL;
    if (n)
        *p = n->next;
    pthread_mutex_unlock(&t->mu);
    void *item = n ? n->item : NULL;
    free(n);
    return item;
}

int agx_sandbox_table_visit(agx_sandbox_table *t, const char *id, agx_sandbox_table_visit_fn fn,
                            void *ctx)
{
    if (!t || !id)
        return 0;
    pthread_mutex_lock(&t->mu);
    node **p = find(t, id);
    if (p && fn)
        fn((*p)->item, ctx);
    pthread_mutex_unlock(&t->mu);
    return p != NULL;
}
