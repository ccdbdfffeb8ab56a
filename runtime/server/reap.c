/* reap.c — agentix-server as the subreaper of its sandbox. Every process below it that loses its
 * parent (a daemon that double-forked or called setsid, a background job left by a finished call,
 * what a recycled worker's commands left) is reparented to the server rather than to init: the
 * server reaps them as they exit (no zombies pile up, and in a container where the server is pid 1
 * that is its duty anyway), and at drain, once the workers are gone, kills whatever is still
 * running below it (core/proctree.h) before it exits. */
#include "runtime/server/server.h"

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "agentix/proctree.h"

#define DRAIN_KILL_WAIT_MS 3000
#define SCAN_CAP 8192

static agx_proc_entry scratch[SCAN_CAP];

static bool is_worker(const srv_server *s, pid_t pid)
{
    for (const srv_wproc *wp = s->procs; wp; wp = wp->next)
        if ((pid_t)wp->pid == pid)
            return true;
    return false;
}

static void reap_if_orphan(const srv_server *s, pid_t pid)
{
    agx_proc_entry e;
    if (!is_worker(s, pid) && agx_proc_entry_read(pid, &e) == 0 && (e.state == 'Z' || e.state == 'X'))
        waitpid(pid, NULL, WNOHANG);
}

/* The server's children from /proc/self/task/<tid>/children (cheap: no walk over every process);
 * false when the kernel does not offer the file. */
static bool reap_from_children_files(const srv_server *s)
{
    DIR *d = opendir("/proc/self/task");
    if (!d)
        return false;
    bool any = false;
    struct dirent *t;
    while ((t = readdir(d))) {
        if (t->d_name[0] < '0' || t->d_name[0] > '9')
            continue;
        char path[64];
        snprintf(path, sizeof path, "/proc/self/task/%.16s/children", t->d_name);
        FILE *f = fopen(path, "re");
        if (!f)
            continue;
        any = true;
        long pid;
        while (fscanf(f, "%ld", &pid) == 1)
            reap_if_orphan(s, (pid_t)pid);
        fclose(f);
    }
    closedir(d);
    return any;
}

/* Reaps exited children that are not a worker (libuv reaps those, and needs their status). */
static void reap_orphans(srv_server *s)
{
    if (reap_from_children_files(s))
        return;
    long n = agx_proc_scan(scratch, SCAN_CAP);
    pid_t self = getpid();
    for (long i = 0; i < n; i++)
        if (scratch[i].ppid == self)
            reap_if_orphan(s, scratch[i].pid);
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
