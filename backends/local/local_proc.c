/* local_proc.c — controlling an agentix-server process of the local backend: is it running, is a
 * pid really the sandbox's server (a record on disk is written where sandbox code can reach it),
 * stop it with everything it runs, reap it. Works both for servers this process spawned (waitpid)
 * and for ones found on disk from other host processes (/proc, checked against pid reuse).
 * Killing goes through agentix/proctree.h, the one mechanism every layer uses. */
#include "backends/local/local_internal.h"

#include "agentix/clock.h"
#include "agentix/proctree.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define POLL_STEP_MS 10

#define SCAN_CAP 16384 /* processes one /proc walk keeps: any machine the host runs on */
#define SET_MAX 4096   /* processes of one sandbox tracked at delete */

static int is_zombie(char state)
{
    return state == 'Z' || state == 'X' || state == 'x';
}

int agx_local_proc_start_ticks(pid_t pid, uint64_t *ticks)
{
    agx_proc_entry e;
    if (agx_proc_entry_read(pid, &e) != 0 || is_zombie(e.state))
        return -1;
    *ticks = e.start_ticks;
    return 0;
}

/* argv[0] of pid (its /proc cmdline, world-readable even for a process that is not dumpable). */
static int argv0_is(pid_t pid, const char *want)
{
    char path[64], buf[256];
    snprintf(path, sizeof path, "/proc/%d/cmdline", (int)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return 0;
    buf[n] = '\0';
    return strcmp(buf, want) == 0;
}

int agx_local_proc_is_server(pid_t pid, uint64_t ticks, const char *id)
{
    agx_proc_entry e;
    char argv0[AGX_LOCAL_ID_MAX + sizeof AGX_LOCAL_ARGV0];
    snprintf(argv0, sizeof argv0, AGX_LOCAL_ARGV0 "%s", id);
    return pid > 1 && agx_proc_entry_read(pid, &e) == 0 && !is_zombie(e.state) &&
           (!ticks || e.start_ticks == ticks) && strcmp(e.comm, "agentix-server") == 0 &&
           argv0_is(pid, argv0);
}

/* Has our child exited? Looks without reaping, so the pid (and with it the group id) stays
 * reserved while the group is killed. */
static int child_exited(agx_local_proc *p)
{
    siginfo_t si;
    memset(&si, 0, sizeof si);
    if (waitid(P_PID, (id_t)p->pid, &si, WEXITED | WNOHANG | WNOWAIT) != 0)
        return errno == ECHILD ? -1 : 0; /* ECHILD: the host reaped it (SIGCHLD ignored) */
    return si.si_pid == p->pid;
}

static void child_reap(agx_local_proc *p)
{
    kill(-p->pid, SIGKILL); /* stragglers of the group (worker, user commands) */
    int status = 0;
    pid_t r;
    do {
        r = waitpid(p->pid, &status, 0);
    } while (r < 0 && errno == EINTR);
    p->exit_status = r == p->pid ? status : -1;
    p->reaped = 1;
}

static int foreign_running(const agx_local_proc *p)
{
    uint64_t ticks;
    return agx_local_proc_start_ticks(p->pid, &ticks) == 0 && ticks == p->start_ticks;
}

int agx_local_proc_running(agx_local_proc *p)
{
    if (p->pid <= 1)
        return 0;
    if (!p->is_child)
        return foreign_running(p);
    if (p->reaped)
        return 0;
    int exited = child_exited(p);
    if (exited == 0)
        return 1;
    if (exited > 0) {
        child_reap(p);
    } else {
        p->reaped = 1; /* already reaped by someone else: its pid is no longer ours to signal */
        p->exit_status = -1;
    }
    return 0;
}

static int wait_gone(agx_local_proc *p, int ms)
{
    for (int waited = 0;; waited += POLL_STEP_MS) {
        if (!agx_local_proc_running(p))
            return 1;
        if (waited >= ms)
            return 0;
        agx_clock_sleep_ms(POLL_STEP_MS);
    }
}

/* Has our child exited, without reaping it (its pid, and so its session and group ids, stay
 * reserved while the rest is killed)? */
static int child_gone(agx_local_proc *p)
{
    if (p->reaped)
        return 1;
    return child_exited(p) != 0;
}

/* What belongs to the sandbox right now: each server's tree (below a subreaper, daemons
 * included) and its session and process group. Appended to set (max entries), deduplicated. */
static size_t snapshot(const pid_t *servers, size_t nservers, agx_proc_entry *scan, long n,
                       agx_proc_entry *set, size_t max)
{
    size_t k = 0;
    for (size_t s = 0; s < nservers; s++) {
        size_t in = agx_proc_tree_select(scan, (size_t)n, servers[s], true);
        for (long i = 0; i < n; i++) {
            const agx_proc_entry *e = &scan[i];
            bool member = (size_t)i < in || e->sid == servers[s] || e->pgrp == servers[s];
            bool dup = false;
            for (size_t j = 0; j < k && !dup; j++)
                dup = set[j].pid == e->pid && set[j].start_ticks == e->start_ticks;
            if (member && !dup && !is_zombie(e->state) && k < max)
                set[k++] = *e;
        }
    }
    return k;
}

/* Processes that carry sandbox id's command line: the real server whatever the record says (and
 * any impostor the sandbox's own code made, which is the sandbox's too). */
static size_t find_servers(const char *id, const agx_proc_entry *scan, long n, pid_t *out,
                           size_t have, size_t max)
{
    for (long i = 0; i < n && have < max; i++) {
        if (strcmp(scan[i].comm, "agentix-server") != 0 || is_zombie(scan[i].state))
            continue;
        bool dup = false;
        for (size_t j = 0; j < have && !dup; j++)
            dup = out[j] == scan[i].pid;
        if (!dup && agx_local_proc_is_server(scan[i].pid, scan[i].start_ticks, id))
            out[have++] = scan[i].pid;
    }
    return have;
}

static int wait_set_gone(const agx_proc_entry *set, size_t k, int ms)
{
    for (int waited = 0;; waited += POLL_STEP_MS) {
        size_t alive = 0;
        for (size_t i = 0; i < k; i++)
            alive += agx_proc_alive(&set[i]);
        if (!alive)
            return 1;
        if (waited >= ms)
            return 0;
        agx_clock_sleep_ms(POLL_STEP_MS);
    }
}

int agx_local_proc_stop(agx_local_proc *p, const char *id, int grace_ms, agx_error *err)
{
    agx_proc_entry *scan = malloc(SCAN_CAP * sizeof *scan), *set = malloc(SET_MAX * sizeof *set);
    if (!scan || !set) {
        free(scan);
        free(set);
        return agx_error_set(err, AGX_ERR_NO_MEMORY, "out of memory stopping sandbox '%s'", id);
    }
    pid_t servers[8];
    size_t ns = 0;
    bool mine = p->is_child && !p->reaped && !child_gone(p);
    if (mine || (!p->is_child && p->pid > 1 && agx_local_proc_is_server(p->pid, p->start_ticks, id)))
        servers[ns++] = p->pid;
    long n = agx_proc_scan(scan, SCAN_CAP);
    if (n < 0)
        n = 0;
    ns = find_servers(id, scan, n, servers, ns, sizeof servers / sizeof *servers);
    /* Our child's session and group belong to the sandbox even when it has exited already: its
     * pid is reserved until we reap it. */
    pid_t roots[9];
    size_t nr = ns;
    memcpy(roots, servers, ns * sizeof *servers);
    if (p->is_child && !p->reaped && !mine)
        roots[nr++] = p->pid;
    size_t k = snapshot(roots, nr, scan, n, set, SET_MAX);
    /* Gracefully first: each server drains, cancelling its calls and killing what runs below it. */
    for (size_t i = 0; i < ns; i++)
        kill(servers[i], SIGTERM);
    for (size_t i = 0; i < ns; i++) {
        agx_proc_entry e;
        bool ours = p->is_child && servers[i] == p->pid;
        for (int waited = 0; waited < grace_ms; waited += POLL_STEP_MS) {
            bool gone = ours ? child_gone(p)
                             : agx_proc_entry_read(servers[i], &e) != 0 || is_zombie(e.state);
            if (gone)
                break;
            agx_clock_sleep_ms(POLL_STEP_MS);
        }
        /* Still there: freeze its whole tree, kill it all. */
        if (ours ? !child_gone(p) : agx_local_proc_is_server(servers[i], 0, id))
            agx_proc_kill_tree(servers[i], true, scan, SCAN_CAP, AGX_LOCAL_KILL_WAIT_MS);
    }
    /* What was of the sandbox when delete began and still runs: its session, its group, and
     * what the server's tree held (the drain killed what came later). */
    for (size_t i = 0; i < k; i++)
        agx_proc_signal(&set[i], SIGKILL);
    int all_gone = wait_set_gone(set, k, AGX_LOCAL_KILL_WAIT_MS);
    free(scan);
    free(set);
    if (p->is_child && !p->reaped)
        wait_gone(p, AGX_LOCAL_KILL_WAIT_MS); /* reaps it */
    if (!all_gone)
        return agx_error_set(err, AGX_ERR_TIMEOUT,
                             "processes of local sandbox '%s' are still running %d ms after "
                             "SIGKILL (stuck in the kernel?); see `ps -o pid,stat,cmd -s %d` and "
                             "delete the sandbox again", id, AGX_LOCAL_KILL_WAIT_MS, (int)p->pid);
    return 0;
}

void agx_local_proc_describe_exit(int status, char *buf, size_t n)
{
    if (status == -1)
        snprintf(buf, n, "exited (status unknown: the host process reaped it)");
    else if (WIFEXITED(status))
        snprintf(buf, n, "exited with status %d", WEXITSTATUS(status));
    else if (WIFSIGNALED(status))
    {
        const char *name = sigdescr_np(WTERMSIG(status)); /* strsignal is not thread-safe */
        snprintf(buf, n, "was killed by signal %d (%s)", WTERMSIG(status), name ? name : "?");
    }
    else
        snprintf(buf, n, "ended (wait status 0x%x)", (unsigned)status);
}
