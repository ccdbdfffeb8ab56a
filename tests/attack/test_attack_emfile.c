/* test_attack_emfile.c — attack 2 (issue 13): the server out of file descriptors. Its fd limit is
 * lowered to 64 (soft and hard, so it cannot raise it) and 200 idle TCP connections arrive. The
 * accept loop must back off instead of spinning (it burned 4.2 s of CPU in 5 s and logged 1.08 M
 * lines), log at a bounded rate, and serve again once the connections are gone.
 *   test_attack_emfile <agentix-server> <module dir> */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "attack.h"
#include "check.h"

#define PEERS 200
#define WINDOW_MS 5000
#define CPU_MAX_S 0.5          /* of the 5 s window: a tenth of a core at most */
#define LOG_GROWTH_MAX 4096    /* bytes of log the window may add */
#define FD_LIMIT 64

static long file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (long)st.st_size : -1;
}

static void find_log(const atk_sandbox *s, char *out, size_t n)
{
    char dir[256];
    atk_sandbox_dir(s, dir, sizeof dir);
    snprintf(out, n, "%s/server.log", dir);
    CHECK_MSG(file_size(out) >= 0, "no server log at %s", out);
}

int main(int argc, char **argv)
{
    atk_init(argc, argv);
    atk_sandbox s;
    atk_start(&s, NULL);
    char log[512];
    find_log(&s, log, sizeof log);
    double idle_ms = atk_health_median_ms(s.port, 11);

    struct rlimit lim = {FD_LIMIT, FD_LIMIT};
    CHECK_MSG(prlimit(s.pid, RLIMIT_NOFILE, &lim, NULL) == 0, "prlimit: %s", strerror(errno));

    double cpu0 = atk_cpu_s(s.pid);
    long log0 = file_size(log);
    int fds[PEERS], open_ = 0;
    for (int i = 0; i < PEERS; i++) {
        fds[i] = atk_tcp(s.port, 2000);
        if (fds[i] >= 0)
            open_++;
    }
    atk_sleep_ms(WINDOW_MS);
    double cpu = atk_cpu_s(s.pid) - cpu0;
    long grown = file_size(log) - log0;
    atk_figure("emfile.200_idle", "fd_limit=%d connected=%d cpu_s_in_5s=%.2f log_bytes=%ld", FD_LIMIT,
               open_, cpu, grown);
    CHECK_MSG(atk_alive(s.pid, 0), "the server died out of file descriptors");
    CHECK_MSG(cpu <= CPU_MAX_S, "the server burned %.2f s of CPU in %d ms out of fds", cpu, WINDOW_MS);
    CHECK_MSG(grown <= LOG_GROWTH_MAX, "the server logged %ld bytes in %d ms out of fds", grown,
              WINDOW_MS);

    for (int i = 0; i < PEERS; i++)
        if (fds[i] >= 0)
            close(fds[i]);
    /* Once the peers are gone it serves again (the backoff resumes accepting). */
    long t0 = atk_now_ms();
    double ms = 0;
    int st;
    while ((st = atk_http(s.port, false, "/health", 2000, &ms)) != 200 && atk_now_ms() - t0 < 20000)
        atk_sleep_ms(100);
    atk_figure("emfile.recovery", "health_idle_ms=%.2f served_again_after_ms=%ld", idle_ms,
               atk_now_ms() - t0);
    CHECK_MSG(st == 200, "no /health answer within 20 s of the peers leaving");
    atk_check_served(&s); /* still under the 64-fd limit */
    atk_delete(&s);
    printf("test_attack_emfile: ok\n");
    return 0;
}
