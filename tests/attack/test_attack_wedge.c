/* test_attack_wedge.c — attack 3 (issue 13): calls that ignore cancel. agentix.files::download of a
 * FIFO blocked in open() (cancel was reported but the thread stayed stuck; 1,024 of them hung
 * every later call of every host). Now: the FIFO is refused at once; a call still running a grace
 * period after its cancel gets its worker recycled (the other calls on it end with a typed error, a
 * fresh worker serves the rest); and calls beyond the worker's threads wait in order, but one
 * that waits too long is told the worker is saturated instead of waiting forever.
 *   test_attack_wedge <agentix-server> <module dir> */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "attack.h"
#include "check.h"

#define GRACE_MS 1000
#define THREADS 8
#define QUEUE_WAIT_MS 1000

/* A FIFO in the files root: download answers at once, 1,100 times over (more than the worker's
 * thread pool), and calls keep working. */
static void fifo_downloads(const atk_sandbox *s)
{
    sh_client *c = atk_connect(s);
    CHECK(atk_bash(c, "mk", "rm -f fifo && mkfifo fifo", NULL, 0) == 0);
    long t0 = atk_now_ms();
    for (int i = 0; i < 1100; i++) {
        char cid[32], json[160];
        snprintf(cid, sizeof cid, "f%d", i);
        snprintf(json, sizeof json,
                 "{\"call_id\":\"%s\",\"target\":\"agentix.files::download\",\"kwargs\":{\"path\":\"fifo\"}}",
                 cid);
        sh_emit_json(c, "unary", json);
        sh_event *e = sh_next(c, 10000);
        CHECK_MSG(e, "download of a FIFO did not answer within 10 s (call %d)", i);
        CHECK_STREQ(e->name, "unary:error");
        if (i == 0)
            CHECK_CONTAINS(sh_error_message(e), "not a regular file");
        sh_event_free(e);
    }
    atk_figure("wedge.fifo_downloads", "calls=1100 total_ms=%ld", atk_now_ms() - t0);
    sh_close(c);
}

/* A call that ignores its cancel: within the grace its worker is replaced. */
static void recycle(const atk_sandbox *s)
{
    sh_client *c = atk_connect(s);
    pid_t old = atk_worker_pid(s);
    CHECK(old > 0);
    sh_emit_json(c, "unary", "{\"call_id\":\"stuck\",\"target\":\"hostile::ignore_cancel\",\"args\":[600000]}");
    sh_emit_json(c, "unary", "{\"call_id\":\"bystander\",\"target\":\"demo::sleep\",\"args\":[600000]}");
    CHECK(sh_quiet(c, 300));
    long t0 = atk_now_ms();
    sh_emit_json(c, "cancel", "{\"call_id\":\"stuck\"}");
    sh_event *e = sh_expect(c, "unary:error", "stuck", ATK_T);
    CHECK_STREQ(sh_error_type(e), "Cancelled");
    sh_event_free(e);
    /* The bystander was fine, but it shared the stuck worker: it ends with a typed error. */
    e = sh_expect(c, "unary:error", "bystander", GRACE_MS + ATK_T);
    long recycled_ms = atk_now_ms() - t0;
    CHECK_STREQ(sh_error_type(e), "WorkerExited");
    CHECK_CONTAINS(sh_error_message(e), "recycled");
    sh_event_free(e);
    CHECK_MSG(atk_gone_within(old, 0, 10000), "the stuck worker %d still runs", (int)old);
    sh_emit_json(c, "unary", "{\"call_id\":\"after\",\"target\":\"demo::add\",\"args\":[1,2]}");
    e = sh_expect(c, "unary:result", "after", ATK_T);
    CHECK(agx_value_get_int64(sh_get(e, "value")) == 3);
    sh_event_free(e);
    pid_t fresh = atk_worker_pid(s);
    CHECK(fresh > 0 && fresh != old);
    atk_figure("wedge.recycle", "grace_ms=%d cancel_to_recycled_ms=%ld", GRACE_MS, recycled_ms);
    sh_close(c);
}

/* Every thread busy: the next calls wait for one (a burst is served, in order), and one that waits
 * longer than AGENTIX_QUEUE_WAIT_MS is told the worker is saturated instead of waiting forever. */
static void saturation(const atk_sandbox *s)
{
    sh_client *c = atk_connect(s);
    for (int i = 0; i < THREADS; i++) {
        char json[160];
        snprintf(json, sizeof json,
                 "{\"call_id\":\"busy%d\",\"target\":\"demo::sleep\",\"args\":[600000]}", i);
        sh_emit_json(c, "unary", json);
    }
    CHECK(sh_quiet(c, 300));
    sh_emit_json(c, "unary", "{\"call_id\":\"waits\",\"target\":\"demo::add\",\"args\":[1,2]}");
    CHECK_MSG(sh_quiet(c, 300), "a call ran while every thread was busy");
    sh_emit_json(c, "cancel", "{\"call_id\":\"busy0\"}"); /* frees a thread: the waiting call runs */
    sh_event *e = sh_expect(c, "unary:error", "busy0", ATK_T);
    sh_event_free(e);
    e = sh_expect(c, "unary:result", "waits", ATK_T);
    CHECK(agx_value_get_int64(sh_get(e, "value")) == 3);
    sh_event_free(e);
    sh_emit_json(c, "unary", "{\"call_id\":\"busy0\",\"target\":\"demo::sleep\",\"args\":[600000]}");
    CHECK(sh_quiet(c, 300));
    long t0 = atk_now_ms();
    sh_emit_json(c, "unary", "{\"call_id\":\"late\",\"target\":\"demo::add\",\"args\":[1,2]}");
    e = sh_next(c, QUEUE_WAIT_MS + ATK_T);
    long waited = atk_now_ms() - t0;
    CHECK_MSG(e, "a call waiting for a saturated worker got no answer");
    CHECK_STREQ(e->name, "unary:error");
    CHECK_STREQ(sh_error_type(e), "LimitExceeded");
    CHECK_CONTAINS(sh_error_message(e), "saturated");
    sh_event_free(e);
    atk_figure("wedge.saturated", "threads=%d queue_wait_ms=%d refused_after_ms=%ld", THREADS,
               QUEUE_WAIT_MS, waited);
    for (int i = 0; i < THREADS; i++) {
        char json[64], cid[16];
        snprintf(cid, sizeof cid, "busy%d", i);
        snprintf(json, sizeof json, "{\"call_id\":\"%s\"}", cid);
        sh_emit_json(c, "cancel", json);
        e = sh_expect(c, "unary:error", cid, ATK_T);
        sh_event_free(e);
    }
    sh_close(c);
}

int main(int argc, char **argv)
{
    atk_init(argc, argv);
    atk_sandbox s;
    char grace[64], threads[64], qwait[64];
    snprintf(grace, sizeof grace, "AGENTIX_CANCEL_GRACE_MS=%d", GRACE_MS);
    snprintf(threads, sizeof threads, "AGENTIX_WORKER_THREADS=%d", THREADS);
    snprintf(qwait, sizeof qwait, "AGENTIX_QUEUE_WAIT_MS=%d", QUEUE_WAIT_MS);
    const char *const env[] = {grace, threads, qwait, NULL};
    atk_start(&s, env);
    fifo_downloads(&s);
    recycle(&s);
    saturation(&s);
    atk_check_served(&s);
    atk_delete(&s);
    printf("test_attack_wedge: ok\n");
    return 0;
}
