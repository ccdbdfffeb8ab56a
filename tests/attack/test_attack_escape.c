/* test_attack_escape.c — attack 5 (issue 13): processes started by agentix.bash must not outlive
 * what owns them. A `setsid` child when its call is cancelled; a foreground sleep when the worker
 * is SIGKILLed; three sleeps (and a daemon left by an earlier call) when the server drains on
 * SIGTERM; and everything, setsid'd or not, when a local sandbox is deleted with an exec in flight:
 * delete returns only once nothing of the sandbox runs.
 *   test_attack_escape <agentix-server> <module dir> */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "attack.h"
#include "check.h"

#define PIDS_MAX 8
#define GONE_MS 5000

typedef struct pidset {
    pid_t pid[PIDS_MAX];
    uint64_t ticks[PIDS_MAX];
    int n;
} pidset;

/* Waits until path lists want pids (one per line), then records them with their start times. */
static void read_pids(const char *path, int want, pidset *ps)
{
    long deadline = atk_now_ms() + ATK_T;
    for (;;) {
        FILE *f = fopen(path, "r");
        ps->n = 0;
        if (f) {
            int v;
            while (ps->n < PIDS_MAX && fscanf(f, "%d", &v) == 1)
                ps->pid[ps->n++] = (pid_t)v;
            fclose(f);
        }
        if (ps->n >= want)
            break;
        CHECK_MSG(atk_now_ms() < deadline, "%s: %d of %d pids after %d ms", path, ps->n, want, ATK_T);
        atk_sleep_ms(20);
    }
    for (int i = 0; i < ps->n; i++) {
        ps->ticks[i] = atk_start_ticks(ps->pid[i]);
        CHECK_MSG(ps->ticks[i], "pid %d from %s is not running", (int)ps->pid[i], path);
    }
}

/* How many of them are still alive after waiting up to ms. */
static int survivors(const pidset *ps, int ms)
{
    long deadline = atk_now_ms() + ms;
    int alive;
    do {
        alive = 0;
        for (int i = 0; i < ps->n; i++)
            alive += atk_alive(ps->pid[i], ps->ticks[i]);
        if (!alive)
            break;
        atk_sleep_ms(20);
    } while (atk_now_ms() < deadline);
    return alive;
}

static void kill_all(const pidset *ps)
{
    for (int i = 0; i < ps->n; i++)
        if (atk_alive(ps->pid[i], ps->ticks[i]))
            kill(ps->pid[i], SIGKILL);
}

static void start_bash(sh_client *c, const char *cid, const char *command)
{
    char esc[2048], json[2300];
    atk_json_escape(command, esc, sizeof esc);
    snprintf(json, sizeof json,
             "{\"call_id\":\"%s\",\"target\":\"agentix.bash::run\",\"kwargs\":{\"command\":\"%s\"}}",
             cid, esc);
    sh_emit_json(c, "unary", json);
}

static void on_cancel(const atk_sandbox *s)
{
    char path[256], cmd[1024];
    snprintf(path, sizeof path, "%s/cancel.pids", s->dir);
    snprintf(cmd, sizeof cmd,
             "setsid sleep 1001 & echo $! >> %s; sleep 1002 & echo $! >> %s; wait", path, path);
    sh_client *c = atk_connect(s);
    start_bash(c, "c1", cmd);
    pidset ps;
    read_pids(path, 2, &ps);
    sh_emit_json(c, "cancel", "{\"call_id\":\"c1\"}");
    sh_event *e = sh_expect(c, "unary:error", "c1", ATK_T);
    CHECK_STREQ(sh_error_type(e), "Cancelled");
    sh_event_free(e);
    int left = survivors(&ps, GONE_MS);
    atk_figure("escape.cancel", "processes=%d survivors=%d", ps.n, left);
    kill_all(&ps);
    CHECK_MSG(left == 0, "%d processes (a setsid one among them) survived the cancel", left);
    sh_close(c);
}

static void on_worker_kill(const atk_sandbox *s)
{
    char path[256], cmd[512];
    snprintf(path, sizeof path, "%s/wk.pids", s->dir);
    snprintf(cmd, sizeof cmd, "echo $$ >> %s; exec sleep 1003", path);
    sh_client *c = atk_connect(s);
    start_bash(c, "w1", cmd);
    pidset ps;
    read_pids(path, 1, &ps);
    pid_t worker = atk_worker_pid(s);
    CHECK(worker > 0);
    CHECK(kill(worker, SIGKILL) == 0);
    sh_event *e = sh_expect(c, "unary:error", "w1", ATK_T);
    CHECK_STREQ(sh_error_type(e), "WorkerExited");
    sh_event_free(e);
    int left = survivors(&ps, GONE_MS);
    atk_figure("escape.worker_sigkill", "processes=%d survivors=%d", ps.n, left);
    kill_all(&ps);
    CHECK_MSG(left == 0, "the foreground sleep survived its worker's SIGKILL");
    sh_close(c);
}

static void on_drain(void)
{
    atk_sandbox s;
    atk_start(&s, NULL);
    char path[256], cmd[1024];
    snprintf(path, sizeof path, "%s/drain.pids", s.dir);
    sh_client *c = atk_connect(&s);
    /* A daemon an earlier call left behind, then three sleeps of a call in flight. */
    snprintf(cmd, sizeof cmd, "nohup setsid sleep 1004 >/dev/null 2>&1 & echo $! >> %s", path);
    CHECK(atk_bash(c, "d0", cmd, NULL, 0) == 0);
    snprintf(cmd, sizeof cmd,
             "for i in 1 2 3; do sleep 1005 & echo $! >> %s; done; wait", path);
    start_bash(c, "d1", cmd);
    pidset ps;
    read_pids(path, 4, &ps);
    CHECK(kill(s.pid, SIGTERM) == 0);
    bool exited = atk_gone_within(s.pid, 0, 20000);
    int left = survivors(&ps, GONE_MS);
    atk_figure("escape.drain", "processes=%d survivors=%d server_exited=%d", ps.n, left, exited);
    kill_all(&ps);
    CHECK_MSG(exited, "the server did not exit within 20 s of SIGTERM");
    CHECK_MSG(left == 0, "%d processes survived the SIGTERM drain", left);
    sh_close(c);
    atk_delete(&s);
}

static void on_delete(void)
{
    atk_sandbox s;
    atk_start(&s, NULL);
    char path[256], cmd[1024];
    snprintf(path, sizeof path, "%s/delete.pids", s.dir);
    snprintf(cmd, sizeof cmd,
             "setsid sleep 1006 & echo $! >> %s; sh -c 'echo $$ >> %s; sleep 1007' & "
             "sleep 1008 & echo $! >> %s; wait", path, path, path);
    sh_client *c = atk_connect(&s);
    start_bash(c, "x1", cmd);
    pidset ps;
    read_pids(path, 3, &ps);
    long t0 = atk_now_ms();
    agx_error err;
    agx_error_clear(&err);
    int rc = agx_deployment_delete(s.dep, agx_sandbox_id(s.sb), &err);
    long took = atk_now_ms() - t0;
    int left = survivors(&ps, 0); /* nothing may run once delete has returned */
    atk_figure("escape.delete_in_flight", "processes=%d survivors_at_return=%d delete_ms=%ld", ps.n,
               left, took);
    kill_all(&ps);
    CHECK_OK(rc, &err);
    CHECK_MSG(left == 0, "delete returned success while %d processes of the sandbox ran", left);
    sh_close(c);
    agx_sandbox_free(s.sb);
    s.sb = NULL;
    atk_delete(&s);
}

int main(int argc, char **argv)
{
    atk_init(argc, argv);
    atk_sandbox s;
    atk_start(&s, NULL);
    on_cancel(&s);
    on_worker_kill(&s);
    atk_check_served(&s);
    atk_delete(&s);
    on_drain();
    on_delete();
    printf("test_attack_escape: ok\n");
    return 0;
}
