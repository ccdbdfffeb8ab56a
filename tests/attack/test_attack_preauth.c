/* test_attack_preauth.c — attack 1 (issue 13): memory and CPU before auth. Unauthenticated peers
 * send what a CONNECT never needs: a 63 MiB text frame of `{},{},…` (once parsed into a JSON tree
 * that blocked the loop ~80 s and took the server to 4.7 GB), a 1 MiB CONNECT, and BINARY_EVENT
 * headers followed by 54 MiB attachments on four connections at once. The server must drop each
 * of them after a few KiB, keep answering /health meanwhile, give the memory back, and serve a
 * host with the token afterwards.
 *   test_attack_preauth <agentix-server> <module dir> */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "attack.h"
#include "check.h"

#define MIB (1024L * 1024L)
#define PROBE_TIMEOUT_MS 15000
#define CLOSE_WITHIN_MS 15000
#define RSS_GROWTH_MAX_KIB (16 * 1024)  /* peak growth allowed over the idle baseline */
#define RSS_KEPT_MAX_KIB (8 * 1024)     /* what may stay resident once the peers are gone */

static double idle_ms;
static long rss0;

/* The latency ceiling: fifty times the idle median, and never below one second (a busy machine
 * stretches both alike; a loop blocked on a parse takes tens of seconds). */
static double latency_ceiling(void) { return idle_ms * 50 > 1000 ? idle_ms * 50 : 1000; }

/* Sends a text frame `42["x",{},{},…,{}]` of about total bytes (valid JSON: a full parse builds
 * millions of objects) until the server stops taking it; the bytes it took. */
static size_t send_json_bomb(int fd, size_t total)
{
    size_t k = (total - 10) / 3; /* 7 bytes of prefix, k × "{},", then "{}]" */
    total = 7 + 3 * k + 3;
    CHECK(atk_ws_header(fd, 1, total));
    static char chunk[3 << 18];
    for (size_t i = 0; i < sizeof chunk; i += 3)
        memcpy(chunk + i, "{},", 3);
    size_t sent = atk_ws_payload(fd, "42[\"x\",", 7), body = 3 * k;
    while (sent < 7 + body) {
        size_t left = 7 + body - sent, n = left < sizeof chunk ? left : sizeof chunk;
        size_t got = atk_ws_payload(fd, chunk, n);
        sent += got;
        if (got < n)
            return sent;
    }
    return sent + atk_ws_payload(fd, "{}]", 3);
}

static void check_after(const char *what, atk_prober *p, long closed_ms)
{
    double worst;
    long peak;
    int failures;
    atk_prober_stop(p, &worst, &peak, &failures);
    long growth = peak - rss0;
    atk_figure(what, "health_idle_ms=%.2f health_worst_ms=%.1f peak_rss_mib=%.1f "
               "rss_growth_mib=%.1f closed_after_ms=%ld probe_failures=%d",
               idle_ms, worst, peak / 1024.0, growth / 1024.0, closed_ms, failures);
    CHECK_MSG(failures == 0, "%s: /health went unanswered %d times", what, failures);
    CHECK_MSG(worst <= latency_ceiling(), "%s: /health took %.1f ms under attack (idle %.2f ms)",
              what, worst, idle_ms);
    CHECK_MSG(growth <= RSS_GROWTH_MAX_KIB, "%s: the server grew by %ld KiB", what, growth);
}

static void attack_text(const atk_sandbox *s)
{
    atk_prober *p = atk_prober_start(s->port, s->pid, PROBE_TIMEOUT_MS);
    int fd = atk_ws_open(s->port, 10000);
    CHECK(fd >= 0);
    long t0 = atk_now_ms();
    size_t sent = send_json_bomb(fd, (size_t)(63 * MIB));
    bool closed = atk_closed_within(fd, CLOSE_WITHIN_MS);
    long took = atk_now_ms() - t0;
    close(fd);
    atk_figure("preauth.text_63mib", "bytes_taken_kib=%zu", sent / 1024);
    check_after("preauth.text_63mib", p, took);
    CHECK_MSG(closed, "the server kept an unauthenticated 63 MiB text frame open");
}

static void attack_big_connect(const atk_sandbox *s)
{
    atk_prober *p = atk_prober_start(s->port, s->pid, PROBE_TIMEOUT_MS);
    int fd = atk_ws_open(s->port, 10000);
    CHECK(fd >= 0);
    size_t n = (size_t)MIB;
    char *msg = malloc(n);
    CHECK(msg);
    memset(msg, 'a', n);
    memcpy(msg, "40{\"token\":\"", 12);
    memcpy(msg + n - 2, "\"}", 2);
    long t0 = atk_now_ms();
    atk_ws_header(fd, 1, n);
    atk_ws_payload(fd, msg, n);
    free(msg);
    bool closed = atk_closed_within(fd, CLOSE_WITHIN_MS);
    long took = atk_now_ms() - t0;
    close(fd);
    check_after("preauth.connect_1mib", p, took);
    CHECK_MSG(closed, "the server kept a connection whose CONNECT was 1 MiB");
}

/* Four peers at once: a BINARY_EVENT header, then 54 MiB of attachment each. */
static void attack_attachments(const atk_sandbox *s)
{
    enum { PEERS = 4 };
    atk_prober *p = atk_prober_start(s->port, s->pid, PROBE_TIMEOUT_MS);
    int fds[PEERS];
    static const char header[] = "451-[\"unary\",{\"_placeholder\":true,\"num\":0}]";
    size_t total = (size_t)(54 * MIB);
    for (int i = 0; i < PEERS; i++) {
        fds[i] = atk_ws_open(s->port, 10000);
        CHECK(fds[i] >= 0);
    }
    long t0 = atk_now_ms();
    static char chunk[1 << 20];
    memset(chunk, 0xa5, sizeof chunk);
    /* Interleaved, so all four are mid-message together; a refused peer just stops taking bytes. */
    bool taking[PEERS];
    for (int i = 0; i < PEERS; i++)
        taking[i] = atk_ws_frame(fds[i], 1, header, sizeof header - 1) &&
                    atk_ws_header(fds[i], 2, total);
    size_t sent[PEERS] = {0};
    for (bool any = true; any;) {
        any = false;
        for (int i = 0; i < PEERS; i++) {
            if (!taking[i] || sent[i] >= total)
                continue;
            size_t n = total - sent[i] < sizeof chunk ? total - sent[i] : sizeof chunk;
            size_t got = atk_ws_payload(fds[i], chunk, n);
            sent[i] += got;
            taking[i] = got == n;
            any = true;
        }
    }
    bool closed = true;
    size_t taken = 0;
    for (int i = 0; i < PEERS; i++) {
        closed &= atk_closed_within(fds[i], CLOSE_WITHIN_MS);
        taken += sent[i];
        close(fds[i]);
    }
    long took = atk_now_ms() - t0;
    atk_figure("preauth.attach_4x54mib", "bytes_taken_kib=%zu", taken / 1024);
    check_after("preauth.attach_4x54mib", p, took);
    CHECK_MSG(closed, "the server kept unauthenticated connections sending attachments open");
}

int main(int argc, char **argv)
{
    atk_init(argc, argv);
    atk_sandbox s;
    atk_start(&s, NULL);
    idle_ms = atk_health_median_ms(s.port, 21);
    rss0 = atk_rss_kib(s.pid);
    atk_figure("preauth.baseline", "health_idle_ms=%.2f rss_mib=%.1f", idle_ms, rss0 / 1024.0);

    attack_text(&s);
    attack_big_connect(&s);
    attack_attachments(&s);

    atk_sleep_ms(500); /* closes settle */
    long rss_after = atk_rss_kib(s.pid), hwm = atk_hwm_kib(s.pid);
    atk_figure("preauth.after", "rss_mib=%.1f kept_mib=%.1f peak_rss_mib=%.1f", rss_after / 1024.0,
               (rss_after - rss0) / 1024.0, hwm / 1024.0);
    CHECK_MSG(rss_after - rss0 <= RSS_KEPT_MAX_KIB, "the server kept %ld KiB after the peers left",
              rss_after - rss0);
    atk_check_served(&s);
    atk_delete(&s);
    printf("test_attack_preauth: ok\n");
    return 0;
}
