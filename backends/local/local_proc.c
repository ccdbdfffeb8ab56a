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
#define REAP_WAIT_MS 1000 /* a state query finding the server dead waits this long for the rest */

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

/* ---- killing what is left of a sandbox ----
 *
 * A sandbox is its server's session and process group (the server leads both), its server's tree,
 * and what any of those forked. They outlive the server: its worker is orphaned, not killed, when
 * the server dies. SIGKILL is asynchronous — a process goes on exiting (releasing its memory and
 * files, slow under ASan or on a loaded machine) before it is a zombie — and a process may fork
 * between a scan and its kill. So a sweep scans /proc, kills what belongs, and scans again, until
 * a scan finds none of it alive (dead or a zombie: nothing runs and nothing is held open any
 * more), or its deadline passes. */

typedef struct sweep_root {
    pid_t pid;          /* a server: the id of its session and process group */
    uint64_t ticks;     /* its start time */
    bool held;          /* our unreaped child: its pid, so both ids, cannot be reused meanwhile */
    bool valid;         /* members of its session and group still are the sandbox's */
} sweep_root;

static bool tracked(const agx_proc_entry *e, const agx_proc_entry *set, size_t k)
{
    for (size_t j = 0; j < k; j++)
        if (set[j].pid == e->pid && set[j].start_ticks == e->start_ticks)
            return true;
    return false;
}

/* Whether root's session and group ids may still be trusted in this scan. Our unreaped child
 * holds them. Otherwise the ids stay reserved only while a process has them: the server itself
 * (its start time checked), or a member tracked since an earlier scan — one process (same pid,
 * same start time) seen at two instants existed in between, and a session or group id never
 * comes back to a process that left it. Without either the id may have been reused by a stranger,
 * and the root is given up for good (what it had is tracked in set). */
static void root_check(sweep_root *r, agx_local_proc *p, const agx_proc_entry *scan, size_t n,
                       const agx_proc_entry *set, size_t k)
{
    if (!r->valid)
        return;
    if (r->held) {
        if (p->is_child && !p->reaped && p->pid == r->pid) {
            int exited = child_exited(p);
            if (exited >= 0)
                return;
            p->reaped = 1; /* reaped by the host (SIGCHLD ignored): no longer holding the ids */
            p->exit_status = -1;
        }
        r->held = false;
    }
    for (size_t i = 0; i < n; i++) {
        const agx_proc_entry *e = &scan[i];
        if ((e->pid == r->pid && e->start_ticks == r->ticks) ||
            ((e->sid == r->pid || e->pgrp == r->pid) && tracked(e, set, k)))
            return;
    }
    r->valid = false;
}

/* Moves to the front of scan[0..n) what belongs to the sandbox: the processes of set, our
 * unreaped child, the members of the valid roots' sessions and groups, and the descendants of
 * all those. Their count. */
static size_t select_members(agx_proc_entry *scan, size_t n, const sweep_root *roots, size_t nr,
                             const agx_proc_entry *set, size_t k)
{
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        bool in = tracked(&scan[i], set, k);
        for (size_t r = 0; r < nr && !in; r++)
            in = (roots[r].valid &&
                  (scan[i].sid == roots[r].pid || scan[i].pgrp == roots[r].pid)) ||
                 (roots[r].held && scan[i].pid == roots[r].pid);
        if (in) {
            agx_proc_entry t = scan[m];
            scan[m++] = scan[i];
            scan[i] = t;
        }
    }
    for (bool grew = true; grew;) {
        grew = false;
        for (size_t i = m; i < n; i++) {
            bool child = false;
            for (size_t j = 0; j < m && !child; j++)
                child = scan[i].ppid == scan[j].pid && !is_zombie(scan[j].state);
            if (child) {
                agx_proc_entry t = scan[m];
                scan[m++] = scan[i];
                scan[i] = t;
                grew = true;
            }
        }
    }
    return m;
}

/* SIGKILLs, scan after scan, what belongs to the sandbox (see above; set holds *k tracked
 * processes, SET_MAX at most, and gains what is found) until a scan finds none of it alive: 1.
 * 0 once deadline (agx_clock_ms) has passed with some still alive, or /proc unreadable. */
static int sweep(agx_local_proc *p, sweep_root *roots, size_t nr, agx_proc_entry *scan,
                 agx_proc_entry *set, size_t *k, int64_t deadline)
{
    for (;;) {
        long got = agx_proc_scan(scan, SCAN_CAP);
        size_t n = got > 0 ? (size_t)got : 0;
        for (size_t r = 0; r < nr; r++)
            root_check(&roots[r], p, scan, n, set, *k);
        size_t m = select_members(scan, n, roots, nr, set, *k);
        size_t live = 0;
        for (size_t i = 0; i < m; i++) {
            if (is_zombie(scan[i].state))
                continue;
            live++;
            if (*k < SET_MAX && !tracked(&scan[i], set, *k))
                set[(*k)++] = scan[i];
            agx_proc_signal(&scan[i], SIGKILL);
        }
        /* The group at once, in the kernel: a fork under way is killed with it. Only through a
         * held id: any other may be a stranger's by now. */
        for (size_t r = 0; r < nr; r++)
            if (roots[r].valid && roots[r].held)
                kill(-roots[r].pid, SIGKILL);
        if (got > 0 && live == 0)
            return 1;
        if (agx_clock_ms() >= deadline)
            return 0;
        agx_clock_sleep_ms(POLL_STEP_MS);
    }
}

/* Reaps our child, which has exited (blocks otherwise). */
static void child_wait(agx_local_proc *p)
{
    int status = 0;
    pid_t r;
    do {
        r = waitpid(p->pid, &status, 0);
    } while (r < 0 && errno == EINTR);
    p->exit_status = r == p->pid ? status : -1;
    p->reaped = 1;
}

/* Our child has exited: its stragglers (the orphaned worker, user commands) are killed first, and
 * it is reaped only once none of its session and group runs — until then its pid keeps their ids
 * ours. Past REAP_WAIT_MS it stays unreaped: a later call, or delete, finishes the job. */
static void child_reap(agx_local_proc *p)
{
    agx_proc_entry *scan = malloc((SCAN_CAP + SET_MAX) * sizeof *scan);
    if (!scan) {
        kill(-p->pid, SIGKILL);
        return;
    }
    sweep_root root = {p->pid, p->start_ticks, true, true};
    size_t k = 0;
    int done = sweep(p, &root, 1, scan, scan + SCAN_CAP, &k, agx_clock_ms() + REAP_WAIT_MS);
    free(scan);
    if (done && !p->reaped)
        child_wait(p);
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
    sweep_root roots[9];
    pid_t root_pids[9];
    size_t nr = 0;
    for (size_t i = 0; i < ns; i++) {
        sweep_root r = {servers[i], 0, p->is_child && !p->reaped && servers[i] == p->pid, true};
        for (long j = 0; j < n; j++)
            if (scan[j].pid == servers[i])
                r.ticks = scan[j].start_ticks;
        roots[nr++] = r;
    }
    if (p->is_child && !p->reaped && !mine)
        roots[nr++] = (sweep_root){p->pid, p->start_ticks, true, true};
    for (size_t i = 0; i < nr; i++)
        root_pids[i] = roots[i].pid;
    size_t k = snapshot(root_pids, nr, scan, n, set, SET_MAX);
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
    /* Then everything else of the sandbox — what it was when delete began (set), its sessions and
     * groups, what those forked since — until none of it is alive, orphaned or exiting ones
     * too. */
    int all_gone = sweep(p, roots, nr, scan, set, &k, agx_clock_ms() + AGX_LOCAL_KILL_WAIT_MS);
    free(scan);
    free(set);
    /* Dead, so a zombie: reaped at once. Not when some of it still runs: the unreaped pid keeps
     * the session and group ids for a delete that tries again. */
    if (all_gone && p->is_child && !p->reaped)
        child_wait(p);
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
