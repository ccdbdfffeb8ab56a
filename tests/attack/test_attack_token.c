/* test_attack_token.c — attack 4 (issue 13), on the local backend: the token must not be readable
 * from inside. Code in sandbox A looks for its own token and sandbox B's in every environment and
 * command line it can read (/proc/<pid>/environ of the servers included) and in every file under
 * the local backend's root; it must find neither. And a server given an empty or no token refuses
 * to start, unless told explicitly to run without auth (it used to accept everyone, fail-open).
 * Reading the server's memory is not covered here: the local backend gives no isolation from
 * same-uid code with CAP_SYS_PTRACE (root); the docker test covers it (tests/docker).
 *   test_attack_token <agentix-server> <module dir> */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "attack.h"
#include "check.h"
#include "token_hunt.h"

/* How many places A's code finds `needle` in: environments, command lines, files under root. The
 * needle travels in two halves joined inside the shell, so no command line holds it whole. */
static int hunt(sh_client *c, const char *cid, const char *needle, const char *root)
{
    char cmd[2048], out[256], files[600];
    snprintf(files, sizeof files, "'%s'", root);
    token_hunt_command(needle, files, cmd, sizeof cmd);
    CHECK(atk_bash(c, cid, cmd, out, sizeof out) == 0);
    return atoi(out);
}

static void cross_sandbox(void)
{
    atk_sandbox a, b;
    atk_start(&a, NULL);
    atk_start(&b, NULL);
    sh_client *c = atk_connect(&a);
    int own = hunt(c, "own", a.token, a.root);
    int other = hunt(c, "other", b.token, b.root);
    atk_figure("token.local_hunt", "own_token_found=%d other_token_found=%d", own, other);
    CHECK_MSG(other == 0, "sandbox A found sandbox B's token in %d places", other);
    CHECK_MSG(own == 0, "sandbox A found its own token in %d places", own);
    /* The tokens still work for their hosts. */
    sh_close(c);
    atk_check_served(&a);
    atk_check_served(&b);
    atk_delete(&a);
    atk_delete(&b);
}

/* Runs agentix-server with the given extra environment; its exit status, or -1 when it was still
 * running after wait_ms (then it is stopped with SIGTERM and *served says whether a CONNECT without
 * a token was accepted). */
static int run_server(const char *const *env, int wait_ms, bool *served, char *log, size_t cap)
{
    char dir[] = "/tmp/agx-token-XXXXXX", port_file[64], log_path[64];
    CHECK(mkdtemp(dir));
    snprintf(port_file, sizeof port_file, "%s/port", dir);
    snprintf(log_path, sizeof log_path, "%s/log", dir);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        int fd = open(log_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        dup2(fd, 2);
        unsetenv("AGENTIX_TOKEN");
        setenv("AGENTIX_BIND_HOST", "127.0.0.1", 1);
        setenv("AGENTIX_BIND_PORT", "0", 1);
        setenv("AGENTIX_PORT_FILE", port_file, 1);
        for (const char *const *e = env; *e; e++)
            putenv((char *)*e);
        const char *server = getenv("AGENTIX_LOCAL_SERVER");
        execl(server, server, (char *)NULL);
        _exit(127);
    }
    int status = -1;
    long deadline = atk_now_ms() + wait_ms;
    while (atk_now_ms() < deadline && waitpid(pid, &status, WNOHANG) == 0) {
        status = -1;
        atk_sleep_ms(20);
    }
    if (status == -1) {
        FILE *f = fopen(port_file, "r");
        int port = 0;
        if (f) {
            if (fscanf(f, "%d", &port) != 1)
                port = 0;
            fclose(f);
        }
        *served = false;
        if (port > 0) {
            sh_server sh = {.pid = pid, .port = port};
            agx_error why;
            sh_client *c = sh_connect(&sh, NULL, &why);
            *served = c != NULL;
            if (c)
                sh_close(c);
        }
        kill(pid, SIGTERM);
        waitpid(pid, NULL, 0);
    }
    FILE *f = fopen(log_path, "r");
    size_t n = f ? fread(log, 1, cap - 1, f) : 0;
    log[n] = '\0';
    if (f)
        fclose(f);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    CHECK(system(cmd) == 0);
    return status;
}

static void fail_closed(void)
{
    char log[4096];
    bool served = false;
    const char *const empty[] = {"AGENTIX_TOKEN=", NULL};
    int st = run_server(empty, 10000, &served, log, sizeof log);
    CHECK_MSG(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 2,
              "a server with an empty AGENTIX_TOKEN did not refuse to start (status 0x%x, "
              "accepted a CONNECT without token: %d)", st, served);
    CHECK_CONTAINS(log, "AGENTIX_TOKEN");
    const char *const none[] = {NULL};
    st = run_server(none, 10000, &served, log, sizeof log);
    CHECK_MSG(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 2,
              "a server without a token did not refuse to start (status 0x%x)", st);
    const char *const open_[] = {"AGENTIX_AUTH=none", NULL};
    st = run_server(open_, 3000, &served, log, sizeof log);
    CHECK_MSG(st == -1 && served, "AGENTIX_AUTH=none: the server did not serve without a token");
    CHECK_CONTAINS(log, "without authentication");
    atk_figure("token.fail_closed", "empty_token_exit=2 no_token_exit=2 auth_none_serves=1");
}

int main(int argc, char **argv)
{
    atk_init(argc, argv);
    cross_sandbox();
    fail_closed();
    printf("test_attack_token: ok\n");
    return 0;
}
