/* local_proc.c — controlling an agentix-server process of the local backend: is it running, stop
 * it with its whole process group, reap it. Works both for servers this process spawned (waitpid)
 * and for ones found on disk from other host processes (/proc, checked against pid reuse). */
#include "backends/local/local_internal.h"

#include "agentix/backend/process.h"
#include "agentix/clock.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define POLL_STEP_MS 10

static int is_zombie(char state)
{
    return state == 'Z' || state == 'X' || state == 'x';
}

int agx_local_proc_start_ticks(pid_t pid, uint64_t *ticks)
{
    agx_proc_stat f;
    if (agx_proc_stat_read((long)pid, &f) != 0 || is_zombie(f.state))
        return -1;
    *ticks = f.start_ticks;
    return 0;
}

/* Is any process of group pgid still alive? Zombies do not count: a server whose owner has not
 * reaped it yet (another host process) is dead for every purpose of ours. */
static int group_alive(pid_t pgid)
{
    if (kill(-pgid, 0) != 0 && errno == ESRCH)
        return 0;
    DIR *d = opendir("/proc");
    if (!d)
        return 1;
    int alive = 0;
    struct dirent *e;
    while (!alive && (e = readdir(d)) != NULL) {
        agx_proc_stat f;
        if (e->d_name[0] >= '1' && e->d_name[0] <= '9' &&
            agx_proc_stat_read(strtol(e->d_name, NULL, 10), &f) == 0)
            alive = f.pgrp == (long)pgid && !is_zombie(f.state);
    }
    closedir(d);
    return alive;
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

/* The group outlives its leader while the worker or user commands linger; none may survive. */
static int wait_group_empty(pid_t pgid, int ms)
{
    for (int waited = 0;; waited += POLL_STEP_MS) {
        if (!group_alive(pgid))
            return 1;
        if (waited >= ms)
            return 0;
        agx_clock_sleep_ms(POLL_STEP_MS);
    }
}

int agx_local_proc_stop(agx_local_proc *p, int grace_ms, agx_error *err)
{
    int was_running = agx_local_proc_running(p);
    if (was_running) {
        /* Signals go only to a process we know is ours (our unreaped child, or a pid whose start
         * time matches the record), and to its group: the server leads its own session. */
        kill(-p->pid, SIGTERM);
        if (!wait_gone(p, grace_ms)) {
            kill(-p->pid, SIGKILL);
            if (!wait_gone(p, AGX_LOCAL_KILL_WAIT_MS))
                return agx_error_set(err, AGX_ERR_TIMEOUT,
                                     "agentix-server pid %d did not exit within %d ms of SIGKILL; "
                                     "check it with `ps -o stat= -p %d` and delete the sandbox "
                                     "again", (int)p->pid, AGX_LOCAL_KILL_WAIT_MS, (int)p->pid);
        }
        /* Our children's groups were killed before reaping; a foreign leader has just exited, so
         * its group id is still the one we saw. */
        if (!p->is_child)
            kill(-p->pid, SIGKILL);
    } else if (!p->is_child) {
        return 0; /* a foreign pid that is not our server any more: its group is not ours either */
    }
    if (!wait_group_empty(p->pid, AGX_LOCAL_KILL_WAIT_MS))
        return agx_error_set(err, AGX_ERR_TIMEOUT,
                             "processes of sandbox process group %d are still running %d ms after "
                             "SIGKILL; see `ps -o pid,stat,cmd -g %d` and delete the sandbox again",
                             (int)p->pid, AGX_LOCAL_KILL_WAIT_MS, (int)p->pid);
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
