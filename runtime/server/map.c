/* map.c — the intrusive chained hash tables the server routes with: every call is in one table by
 * worker id (worker frames → call) and in its connection's table by call_id (host events → call).
 * Nodes live inside the calls, so routing allocates nothing per item. */
#include "runtime/server/server.h"

#include <stdlib.h>
#include <sys/random.h>

static uint64_t seed(void)
{
    /* Host-chosen call_ids are hashed: a per-process seed keeps chains unpredictable. */
    static uint64_t s;
    static bool have;
    if (!have) {
        if (getrandom(&s, sizeof s, GRND_NONBLOCK) != (ssize_t)sizeof s)
            s = (uint64_t)(uintptr_t)&s ^ 0x9e3779b97f4a7c15ull;
        have = true;
    }
    return s;
}

uint64_t srv_hash_u64(uint64_t v)
{
    v ^= v >> 33;
    v *= 0xff51afd7ed558ccdull;
    v ^= v >> 33;
    v *= 0xc4ceb9fe1a85ec53ull;
    return v ^ (v >> 33);
}

uint64_t srv_hash_bytes(const void *data, size_t len)
{
    const unsigned char *p = data;
    uint64_t h = 0xcbf29ce484222325ull ^ seed();
    for (size_t i = 0; i < len; i++)
        h = (h ^ p[i]) * 0x100000001b3ull;
    return srv_hash_u64(h);
}

static int grow(srv_map *m)
{
    size_t nb = m->nb ? m->nb * 2 : 16;
    srv_map_node **b = calloc(nb, sizeof *b);
    if (!b)
        return AGX_ERR_NO_MEMORY;
    for (size_t i = 0; i < m->nb; i++) {
        srv_map_node *n = m->b[i];
        while (n) {
            srv_map_node *next = n->next;
            n->next = b[n->hash & (nb - 1)];
            b[n->hash & (nb - 1)] = n;
            n = next;
        }
    }
    free(m->b);
    m->b = b;
    m->nb = nb;
    return 0;
}

int srv_map_insert(srv_map *m, srv_map_node *node)
{
    if (m->n >= m->nb) {
        int rc = grow(m);
        if (rc)
            return rc;
    }
    srv_map_node **head = &m->b[node->hash & (m->nb - 1)];
    node->next = *head;
    *head = node;
    m->n++;
    return 0;
}

void srv_map_remove(srv_map *m, srv_map_node *node)
{
    if (!m->nb)
        return;
    for (srv_map_node **pp = &m->b[node->hash & (m->nb - 1)]; *pp; pp = &(*pp)->next)
        if (*pp == node) {
            *pp = node->next;
            node->next = NULL;
            m->n--;
            return;
        }
}

srv_map_node *srv_map_chain(const srv_map *m, uint64_t hash)
{
    return m->nb ? m->b[hash & (m->nb - 1)] : NULL;
}

void srv_map_free(srv_map *m)
{
    free(m->b);
    m->b = NULL;
    m->nb = m->n = 0;
}
