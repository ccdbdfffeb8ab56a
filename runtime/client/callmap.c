/* callmap.c — where the RPC client (client.h) keeps its calls in flight: the call_id map the
 * loop thread routes the runtime's replies through, and the one way a call ends — leave the map,
 * record the outcome, then (outside the lock) wake its waiter or deliver its callback. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/client/client_impl.h"
#include "core/base/mpraw.h"
#include "runtime/wire/rpc_error.h"

/* ---- the id map [mu] ---- */

static int map_grow(agx_client *c)
{
    size_t n = c->nbuckets ? c->nbuckets * 2 : 256;
    agx_call **b = calloc(n, sizeof *b);
    if (!b)
        return AGX_ERR_NO_MEMORY;
    for (size_t i = 0; i < c->nbuckets; i++)
        for (agx_call *k = c->buckets[i], *next; k; k = next) {
            next = k->hnext;
            k->hnext = b[k->id & (n - 1)];
            b[k->id & (n - 1)] = k;
        }
    free(c->buckets);
    c->buckets = b;
    c->nbuckets = n;
    return 0;
}

int agx_callmap_put(agx_client *c, agx_call *k)
{
    if (c->count >= c->nbuckets && map_grow(c) != 0)
        return AGX_ERR_NO_MEMORY;
    agx_call **slot = &c->buckets[k->id & (c->nbuckets - 1)];
    k->hnext = *slot;
    *slot = k;
    k->in_map = true;
    k->refs++;
    c->count++;
    return 0;
}

agx_call *agx_callmap_get(agx_client *c, uint64_t id)
{
    if (!c->nbuckets)
        return NULL;
    for (agx_call *k = c->buckets[id & (c->nbuckets - 1)]; k; k = k->hnext)
        if (k->id == id)
            return k;
    return NULL;
}

/* Unlinks without dropping the map's reference: the caller hands it on or drops it. */
static void map_del(agx_client *c, agx_call *k)
{
    if (!k->in_map)
        return;
    for (agx_call **p = &c->buckets[k->id & (c->nbuckets - 1)]; *p; p = &(*p)->hnext)
        if (*p == k) {
            *p = k->hnext;
            break;
        }
    k->hnext = NULL;
    k->in_map = false;
    c->count--;
}

/* ---- ending calls (loop thread) ---- */

/* Ends k (lock held) and links it on *notify, keeping the map's reference until agx_client_notify
 * has woken its waiter or run its callback outside the lock. */
void agx_client_end_locked(agx_client *c, agx_call *k, int status, const agx_error *err,
                       agx_value *result, agx_call **notify)
{
    if (!k->in_map) { /* ended already: a late reply, or a cancel racing a terminal event */
        agx_value_free(result);
        return;
    }
    map_del(c, k);
    if (k->started) {
        k->started = false;
        c->inflight--;
    }
    agx_call_end_locked(k, status, err, result);
    k->fnext = *notify;
    *notify = k;
}

void agx_client_timer_unlink(agx_client *c, agx_call *k)
{
    if (!k->timed)
        return;
    if (k->tprev)
        k->tprev->tnext = k->tnext;
    else
        c->thead = k->tnext;
    if (k->tnext)
        k->tnext->tprev = k->tprev;
    else
        c->ttail = k->tprev;
    k->tprev = k->tnext = NULL;
    k->timed = false;
}

/* Wakes the waiters, or delivers the callbacks, of calls ended under the lock (now released), then
 * drops the map's references. */
void agx_client_notify(agx_client *c, agx_call *list)
{
    if (!list)
        return;
    /* The list was built by prepending: restore the order the calls ended in. */
    agx_call *rev = NULL;
    while (list) {
        agx_call *n = list->fnext;
        list->fnext = rev;
        rev = list;
        list = n;
    }
    for (agx_call *k = rev; k; k = k->fnext) {
        agx_client_timer_unlink(c, k);
        if (k->ucb || k->scb)
            agx_call_deliver(k); /* the callback runs now or from the engine's queue */
        else
            agx_wakeup_all(&k->wake); /* outside the lock: the waiter need not block on it */
    }
    agx_client_lock(c);
    while (rev) {
        agx_call *n = rev->fnext;
        agx_call_unref_locked(rev);
        rev = n;
    }
    agx_client_unlock(c);
}

void agx_client_end_call(agx_client *c, agx_call *k, int status, const agx_error *err,
                     agx_value *result)
{
    agx_call *notify = NULL;
    agx_client_timer_unlink(c, k);
    agx_client_lock(c);
    agx_client_end_locked(c, k, status, err, result, &notify);
    agx_client_unlock(c);
    agx_client_notify(c, notify);
}

/* Every call in the map ends with why (lock not held). */
void agx_client_end_all(agx_client *c, const agx_error *why)
{
    agx_call *notify = NULL;
    agx_client_lock(c);
    for (size_t i = 0; i < c->nbuckets; i++)
        while (c->buckets[i])
            agx_client_end_locked(c, c->buckets[i], why->code, why, NULL, &notify);
    agx_client_unlock(c);
    agx_client_notify(c, notify);
}

