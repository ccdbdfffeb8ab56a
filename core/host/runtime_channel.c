/* runtime_channel.c — the registry of open runtime connections an expiry can be extended over
 * (runtime_channel.h): a short list under one lock, searched by sandbox id and runtime URL. An
 * entry in use by an extension is only marked removed by agx_runtime_channel_remove; the extender
 * frees it when it returns, so removal never waits on the network (a client freed on its own I/O
 * thread must not wait for an extension that needs that thread). */
#include "core/host/runtime_channel.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

typedef struct channel {
    struct channel *next;
    uint64_t handle;
    char *id, *url;
    agx_runtime_channel_fn extend;
    agx_runtime_channel_release_fn release;
    void *ctx;
    int busy;     /* extensions in flight over it */
    bool removed; /* unregistered while busy: the last extender releases it */
} channel;

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t once = PTHREAD_ONCE_INIT;
static channel *head;
static uint64_t next_handle = 1, n_connection, n_http;
static channel *volatile parents; /* a forked child: the parent's list, kept reachable, unused */

static void child_after_fork(void)
{
    /* The connections' I/O threads did not come along: a child extends by POST /expiry. */
    pthread_mutex_init(&mu, NULL);
    if (head)
        parents = head;
    head = NULL;
}

static void init(void)
{
    pthread_atfork(NULL, NULL, child_after_fork);
}

static void lock(void)
{
    pthread_once(&once, init);
    pthread_mutex_lock(&mu);
}

static void channel_free(channel *ch)
{
    ch->release(ch->ctx);
    free(ch->id);
    free(ch->url);
    free(ch);
}

uint64_t agx_runtime_channel_add(const char *sandbox_id, const char *runtime_url,
                                 agx_runtime_channel_fn extend,
                                 agx_runtime_channel_release_fn release, void *ctx)
{
    if (!sandbox_id || !runtime_url || !extend || !release)
        return 0;
    channel *ch = calloc(1, sizeof *ch);
    if (!ch || !(ch->id = strdup(sandbox_id)) || !(ch->url = strdup(runtime_url))) {
        if (ch)
            free(ch->id);
        free(ch);
        return 0;
    }
    ch->extend = extend;
    ch->release = release;
    ch->ctx = ctx;
    lock();
    ch->handle = next_handle++;
    ch->next = head; /* newest first: a reconnected client is tried before an older one */
    head = ch;
    uint64_t h = ch->handle;
    pthread_mutex_unlock(&mu);
    return h;
}

void agx_runtime_channel_remove(uint64_t handle)
{
    if (!handle)
        return;
    channel *gone = NULL;
    lock();
    for (channel **p = &head; *p; p = &(*p)->next) {
        if ((*p)->handle != handle)
            continue;
        channel *ch = *p;
        *p = ch->next;
        if (ch->busy)
            ch->removed = true; /* the extender in flight releases it */
        else
            gone = ch;
        break;
    }
    pthread_mutex_unlock(&mu);
    if (gone)
        channel_free(gone);
}

/* Caller holds mu: the first registered channel for id + url not tried yet (tried: handles below
 * `below` were tried already; 0 = none tried). */
static channel *find_locked(const char *id, const char *url, uint64_t below)
{
    for (channel *ch = head; ch; ch = ch->next)
        if ((!below || ch->handle < below) && strcmp(ch->id, id) == 0 && strcmp(ch->url, url) == 0)
            return ch;
    return NULL;
}

int agx_runtime_channel_extend(const agx_sandbox *sb, int64_t expiry_ms, int64_t deadline_ms)
{
    const char *id = agx_sandbox_id(sb), *url = agx_sandbox_runtime_url(sb);
    if (!id || !url)
        return AGX_ERR_NOT_FOUND;
    uint64_t below = 0;
    for (;;) {
        lock();
        channel *ch = find_locked(id, url, below);
        if (ch)
            ch->busy++;
        pthread_mutex_unlock(&mu);
        if (!ch)
            return AGX_ERR_NOT_FOUND;
        agx_error err;
        agx_error_clear(&err);
        int rc = ch->extend(ch->ctx, expiry_ms, deadline_ms, &err);
        lock();
        below = ch->handle;
        bool release = --ch->busy == 0 && ch->removed;
        if (rc == 0)
            n_connection++;
        pthread_mutex_unlock(&mu);
        if (release)
            channel_free(ch);
        if (rc == 0)
            return 0;
    }
}

void agx_runtime_channel_count_http(void)
{
    lock();
    n_http++;
    pthread_mutex_unlock(&mu);
}

void agx_runtime_channel_counts(uint64_t *over_connection, uint64_t *over_http)
{
    lock();
    if (over_connection)
        *over_connection = n_connection;
    if (over_http)
        *over_http = n_http;
    pthread_mutex_unlock(&mu);
}
