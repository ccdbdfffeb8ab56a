/* test_attack_ring.c — hostile code in the worker against the bulk ring between it and the server
 * (runtime/wire/ring.h, docs/PROTOCOL.md §4.1), through the real server of a `local` sandbox:
 * resizing the shared memory (which would make the server's mapping fault) is refused by the
 * kernel; item frames forged to point anywhere but the next place in the out ring make the server
 * give that worker up — the call fails naming the ring — and the server stays up: the next large
 * stream is served by a fresh worker, through a fresh ring, with every byte right; a worker lying
 * about how far it read the in ring gets its uploads through the pipe, every byte right.
 *   test_attack_ring <agentix-server> <module dir> */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attack.h"
#include "check.h"

#define ITEMS 96
#define ITEM_BYTES 65536

/* Whether pid maps the bulk ring (its memfd's name in /proc/<pid>/maps). */
static bool maps_ring(pid_t pid)
{
    char path[64], line[512];
    snprintf(path, sizeof path, "/proc/%d/maps", (int)pid);
    FILE *f = fopen(path, "r");
    bool found = false;
    while (f && !found && fgets(line, sizeof line, f))
        found = strstr(line, "memfd:agentix-ring") != NULL;
    if (f)
        fclose(f);
    return found;
}

/* demo::produce_bytes of ITEMS × ITEM_BYTES, every byte of every item checked. */
static void stream_checked(sh_client *c, const char *cid)
{
    char json[256];
    snprintf(json, sizeof json, "{\"call_id\":\"%s\",\"target\":\"demo::produce_bytes\",\"args\":"
             "[%d,%d],\"window\":16}", cid, ITEMS * ITEM_BYTES, ITEM_BYTES);
    sh_emit_json(c, "stream", json);
    for (int i = 0; i < ITEMS; i++) {
        sh_event *e = sh_expect(c, "stream:item", cid, ATK_T);
        size_t len;
        const unsigned char *d = agx_value_get_binary(sh_get(e, "value"), &len);
        CHECK_MSG(d && len == ITEM_BYTES, "item %d: %zu bytes", i, len);
        for (size_t k = 0; k < len; k++)
            CHECK_MSG(d[k] == (unsigned char)(k * 31 + 7), "item %d: byte %zu is wrong", i, k);
        sh_event_free(e);
        snprintf(json, sizeof json, "{\"call_id\":\"%s\",\"n\":1}", cid);
        sh_emit_json(c, "credit", json);
    }
    sh_event_free(sh_expect(c, "stream:end", cid, ATK_T));
}

static sh_event *unary(sh_client *c, const char *cid, const char *target, const char *kwargs)
{
    char json[512];
    snprintf(json, sizeof json, "{\"call_id\":\"%s\",\"target\":\"%s\",\"kwargs\":%s}", cid, target,
             kwargs);
    sh_emit_json(c, "unary", json);
    sh_event *e = sh_next(c, ATK_T);
    CHECK_MSG(e, "%s: no answer", cid);
    return e;
}

/* demo::echo_bidi of ITEMS inputs of ITEM_BYTES, each numbered in its bytes, sent 8 ahead of the
 * echoes; every echoed byte checked. Uploads cross the in ring (or the pipe), echoes the out. */
static void echo_checked(sh_client *c, const char *cid)
{
    char json[256];
    snprintf(json, sizeof json, "{\"call_id\":\"%s\",\"target\":\"demo::echo_bidi\"}", cid);
    sh_emit_json(c, "bidi:start", json);
    unsigned char *blob = malloc(ITEM_BYTES);
    CHECK(blob);
    int sent = 0;
    for (int i = 0; i < ITEMS; i++) {
        for (; sent < ITEMS && sent < i + 8; sent++) {
            agx_value *m = agx_value_map();
            for (size_t k = 0; k < ITEM_BYTES; k++)
                blob[k] = (unsigned char)(sent + k * 7);
            agx_value_map_set(m, "call_id", agx_value_string(cid));
            agx_value_map_set(m, "item", agx_value_binary(blob, ITEM_BYTES));
            void *mp;
            size_t len;
            agx_error err;
            CHECK_OK(agx_value_to_msgpack(m, &mp, &len, &err), &err);
            sh_emit_raw(c, "bidi:in", mp, len);
            free(mp);
            agx_value_free(m);
        }
        sh_event *e = sh_next(c, ATK_T);
        while (e && strcmp(e->name, "bidi:credit") == 0) { /* input credit comes back */
            sh_event_free(e);
            e = sh_next(c, ATK_T);
        }
        CHECK_MSG(e && strcmp(e->name, "bidi:out") == 0, "echo %d: %s", i, e ? e->name : "none");
        size_t len;
        const unsigned char *d = agx_value_get_binary(sh_get(e, "value"), &len);
        CHECK_MSG(d && len == ITEM_BYTES, "echo %d: %zu bytes", i, len);
        for (size_t k = 0; k < len; k++)
            CHECK_MSG(d[k] == (unsigned char)(i + k * 7), "echo %d: byte %zu is wrong", i, k);
        sh_event_free(e);
        snprintf(json, sizeof json, "{\"call_id\":\"%s\",\"n\":1}", cid);
        sh_emit_json(c, "credit", json);
    }
    free(blob);
    snprintf(json, sizeof json, "{\"call_id\":\"%s\"}", cid);
    sh_emit_json(c, "bidi:end_in", json);
    sh_event *e = sh_next(c, ATK_T);
    while (e && strcmp(e->name, "bidi:credit") == 0) {
        sh_event_free(e);
        e = sh_next(c, ATK_T);
    }
    CHECK_MSG(e && strcmp(e->name, "bidi:end") == 0, "no bidi:end: %s", e ? e->name : "none");
    sh_event_free(e);
}

int main(int argc, char **argv)
{
    atk_init(argc, argv);
    atk_sandbox s;
    atk_start(&s, NULL);
    sh_client *c = atk_connect(&s);
    stream_checked(c, "s0");
    pid_t worker = atk_worker_pid(&s);
    CHECK(worker > 0);
    CHECK_MSG(maps_ring(worker), "the worker has no bulk ring mapped (the fast path is off)");

    sh_event *e = unary(c, "resize", "hostile::ring_resize", "{}");
    CHECK_STREQ(e->name, "unary:result");
    const char *said = agx_value_get_string(sh_get(e, "value"), NULL);
    atk_figure("ring.resize", "%s", said);
    CHECK_STREQ(said, "out shrink=EPERM grow=EPERM, in shrink=EPERM grow=EPERM");
    sh_event_free(e);

    /* Ahead of the ring's position, behind it, longer than the ring, past its end. */
    static const char *const forged[] = {
        "{\"at\":1099511627776,\"len\":65536}",
        "{\"at\":0,\"len\":65536}",
        "{\"at\":0,\"len\":4194304}",
        "{\"at\":0,\"len\":0}",
    };
    for (size_t i = 0; i < sizeof forged / sizeof *forged; i++) {
        pid_t before = atk_worker_pid(&s);
        char cid[16];
        snprintf(cid, sizeof cid, "forge%zu", i);
        long t0 = atk_now_ms();
        e = unary(c, cid, "hostile::ring_forge", forged[i]);
        long ms = atk_now_ms() - t0;
        atk_figure("ring.forged", "%s -> %s %s (%ld ms): %s", forged[i], e->name,
                   e->payload ? sh_error_type(e) : "-", ms, e->payload ? sh_error_message(e) : "");
        CHECK_MSG(strcmp(e->name, "unary:error") == 0, "a forged ring frame was taken: %s", forged[i]);
        CHECK_STREQ(sh_error_type(e), "WorkerExited");
        CHECK_CONTAINS(sh_error_message(e), "bulk ring");
        sh_event_free(e);
        CHECK_MSG(atk_gone_within(before, 0, 10000), "the worker that forged a frame still runs");
        snprintf(cid, sizeof cid, "after%zu", i);
        stream_checked(c, cid);
        pid_t fresh = atk_worker_pid(&s);
        CHECK(fresh > 0 && fresh != before && maps_ring(fresh));
    }
    /* A worker lying about how far it read its in ring: past what the server placed (the ring
     * looks full: uploads take the pipe), and back to 0 after much was placed (the same). The
     * server neither overwrites what it did not place nor stops; every echoed byte is right. */
    echo_checked(c, "up0");
    static const char *const lies[] = {"{\"released\":9223372036854775807}", "{\"released\":0}"};
    for (size_t i = 0; i < sizeof lies / sizeof *lies; i++) {
        char cid[16];
        snprintf(cid, sizeof cid, "lie%zu", i);
        e = unary(c, cid, "hostile::ring_lie", lies[i]);
        CHECK_STREQ(e->name, "unary:result");
        sh_event_free(e);
        snprintf(cid, sizeof cid, "up%zu", i + 1);
        echo_checked(c, cid);
    }
    sh_close(c);
    atk_check_served(&s);
    atk_delete(&s);
    printf("test_attack_ring: ok\n");
    return 0;
}
