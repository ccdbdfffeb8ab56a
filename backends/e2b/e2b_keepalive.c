/* e2b_keepalive.c — keeps long E2B sessions alive: E2B kills a sandbox when its lifetime runs
 * out, whatever traffic it serves, so sandboxes created with option e2b.keepalive=1 get their
 * lifetime renewed every third of it by one thread per backend instance, until deleted (or the
 * host exits: then E2B reaps them at the end of their lifetime, which bounds any leak). */
#include "backends/e2b/e2b_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct agx_e2b_ka_entry {
    char id[AGX_CLOUD_ID_MAX];
    int lifetime_s;
    int64_t next_ms;
    agx_e2b_ka_entry *next;
};

int agx_e2b_set_timeout(const agx_e2b *e, const char *id, int lifetime_s, agx_error *err)
{
    char path[AGX_CLOUD_ID_MAX + 32];
    snprintf(path, sizeof path, "/sandboxes/%s/timeout", id);
    json_t *body = json_pack("{s:i}", "timeout", lifetime_s);
    if (!body)
        return agx_error_set(err, AGX_ERR_NO_MEMORY, "out of memory renewing a sandbox lifetime");
    agx_cloud_call call = {.method = "POST", .path = path, .body = body, .idempotent = 1,
                           .what = "renewing the sandbox lifetime"};
    int rc = agx_cloud_request(&e->cloud, &call, NULL, NULL, err);
    json_decref(body);
    return rc;
}

int agx_e2b_keepalive_init(agx_e2b *e, agx_error *err)
{
    if (agx_cond_init(&e->ka_cv) != 0)
        return agx_error_set(err, AGX_ERR_NO_MEMORY, "out of memory starting the e2b backend");
    if (pthread_mutex_init(&e->ka_mu, NULL) != 0) {
        pthread_cond_destroy(&e->ka_cv);
        return agx_error_set(err, AGX_ERR_NO_MEMORY, "out of memory starting the e2b backend");
    }
    return 0;
}

static agx_e2b_ka_entry *earliest(agx_e2b *e)
{
    agx_e2b_ka_entry *best = NULL;
    for (agx_e2b_ka_entry *x = e->ka_head; x; x = x->next)
        if (!best || x->next_ms < best->next_ms)
            best = x;
    return best;
}

static void wait_until(agx_e2b *e, int64_t due_ms)
{
    int64_t now = agx_clock_ms();
    int64_t ms = due_ms - now;
    if (ms > 1000)
        ms = 1000; /* re-check the list at least every second */
    if (ms <= 0)
        return;
    agx_cond_wait_until(&e->ka_cv, &e->ka_mu, now + ms);
}

static void *keepalive_main(void *arg)
{
    agx_e2b *e = arg;
    pthread_mutex_lock(&e->ka_mu);
    while (!e->ka_stop) {
        agx_e2b_ka_entry *x = earliest(e);
        if (!x || x->next_ms > agx_clock_ms()) {
            wait_until(e, x ? x->next_ms : agx_clock_ms() + 1000);
            continue;
        }
        char id[AGX_CLOUD_ID_MAX];
        int lifetime = x->lifetime_s;
        snprintf(id, sizeof id, "%s", x->id);
        /* Renewals run unlocked; a failed one is tried again soon (the lifetime has 2/3 left). */
        x->next_ms = agx_clock_ms() + (int64_t)lifetime * 1000 / 3;
        pthread_mutex_unlock(&e->ka_mu);
        agx_error err;
        agx_error_clear(&err);
        int rc = agx_e2b_set_timeout(e, id, lifetime, &err);
        if (rc == AGX_ERR_NOT_FOUND)
            agx_e2b_keepalive_remove(e, id);
        pthread_mutex_lock(&e->ka_mu);
        if (rc && rc != AGX_ERR_NOT_FOUND)
            for (agx_e2b_ka_entry *y = e->ka_head; y; y = y->next)
                if (strcmp(y->id, id) == 0)
                    y->next_ms = agx_clock_ms() + 1000;
    }
    pthread_mutex_unlock(&e->ka_mu);
    return NULL;
}

int agx_e2b_keepalive_add(agx_e2b *e, const char *id, int lifetime_s, agx_error *err)
{
    agx_e2b_ka_entry *x = calloc(1, sizeof *x);
    if (!x)
        return agx_error_set(err, AGX_ERR_NO_MEMORY, "out of memory keeping '%s' alive", id);
    snprintf(x->id, sizeof x->id, "%s", id);
    x->lifetime_s = lifetime_s;
    x->next_ms = agx_clock_ms() + (int64_t)lifetime_s * 1000 / 3;
    pthread_mutex_lock(&e->ka_mu);
    int rc = 0;
    if (!e->ka_running) {
        if (pthread_create(&e->ka_thread, NULL, keepalive_main, e) != 0)
            rc = agx_error_set(err, AGX_ERR_IO, "cannot start the e2b keep-alive thread");
        else
            e->ka_running = 1;
    }
    if (!rc) {
        x->next = e->ka_head;
        e->ka_head = x;
        pthread_cond_signal(&e->ka_cv);
    }
    pthread_mutex_unlock(&e->ka_mu);
    if (rc)
        free(x);
    return rc;
}

void agx_e2b_keepalive_remove(agx_e2b *e, const char *id)
{
    pthread_mutex_lock(&e->ka_mu);
    for (agx_e2b_ka_entry **pp = &e->ka_head; *pp; pp = &(*pp)->next) {
        if (strcmp((*pp)->id, id) == 0) {
            agx_e2b_ka_entry *x = *pp;
            *pp = x->next;
            free(x);
            break;
        }
    }
    pthread_mutex_unlock(&e->ka_mu);
}

void agx_e2b_keepalive_fini(agx_e2b *e)
{
    pthread_mutex_lock(&e->ka_mu);
    e->ka_stop = 1;
    pthread_cond_signal(&e->ka_cv);
    int running = e->ka_running;
    pthread_mutex_unlock(&e->ka_mu);
    if (running)
        pthread_join(e->ka_thread, NULL);
    while (e->ka_head) {
        agx_e2b_ka_entry *x = e->ka_head;
        e->ka_head = x->next;
        free(x);
    }
    pthread_mutex_destroy(&e->ka_mu);
    pthread_cond_destroy(&e->ka_cv);
}
