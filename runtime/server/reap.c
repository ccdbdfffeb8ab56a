/* reap.c — agentix-server as the subreaper of its sandbox. Every process below it that loses its
 * parent (a daemon that double-forked or called setsid, a background job left by a finished call,
 * what a recycled worker's commands left) is reparented to the server rather than to init: the
 * server reaps them as they exit (no zombies pile up, and in a container where the server is pid 1
 * that is its duty anyway), and at drain, once the workers are gone, kills whatever is still
 * running below it (core/proctree.h) before it exits. */
#include "runtime/server/server.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/proctree.h"

#define DRAIN_KILL_WAIT_MS 3000
#define SCAN_CAP 8192

static agx_proc_entry scratch[SCAN_CAP];

/* Reaps exited children that are not a worker (libuv reaps those, and needs their status). */
static void reap_orphans(srv_server *s)
{
    long n = agx_proc_scan(scratch, SCAN_CAP);
    pid_t self = getpid();
    for (long i = 0; i < n; i++) {
        if (scratch[i].ppid != self || (scratch[i].state != 'Z' && scratch[i].state != 'X'))
            continue;
        bool worker = false;
        for (const srv_wproc *wp = s->procs; wp && !worker; wp = wp->next)
            worker = (pid_t)wp->pid == scratch[i].pid;
        if (!worker)
            waitpid(scratch[i].pid, NULL, WNOHANG);
    }
}

static void on_sigchld(uv_signal_t *h, int signum)
{
    (void)signum;
    reap_orphans(h->data);
}

int srv_reap_init(srv_server *s)
{
    if (prctl(PR_SET_CHILD_SUBREAPER, 1) != 0)
        fprintf(stderr, "agentix-server: cannot become the subreaper of its processes: %s\n",
                strerror(errno));
    s->sigchld.data = s;
    if (uv_signal_init(s->loop, &s->sigchld) || uv_signal_start(&s->sigchld, on_sigchld, SIGCHLD))
        return -1;
    uv_unref((uv_handle_t *)&s->sigchld); /* never keeps the loop alive by itself */
    return 0;
}

static void closed(uv_handle_t *h) { (void)h; }

void srv_reap_close(srv_server *s)
{
    if (!uv_is_closing((uv_handle_t *)&s->sigchld))
        uv_close((uv_handle_t *)&s->sigchld, closed);
}

void srv_reap_all(srv_server *s)
{
    if (s->reaped_all)
        return;
    s->reaped_all = true;
    long killed = agx_proc_kill_tree(getpid(), false, scratch, SCAN_CAP, DRAIN_KILL_WAIT_MS);
    int status;
    while (waitpid(-1, &status, WNOHANG) > 0) {
    }
    if (killed > 0)
        fprintf(stderr, "agentix-server: drain: killed %ld process%s left below the server\n",
                killed, killed == 1 ? "" : "es");
    else if (killed < 0)
        fprintf(stderr, "agentix-server: drain: some processes below the server could not be "
                "killed in %d ms\n", DRAIN_KILL_WAIT_MS);
}
