/* reaper.c — the per-command subreaper of agentix.bash (see reaper.h). The subreaper is forked from
 * the threaded worker and never execs, so between fork and _exit it uses system calls only: no
 * malloc, no stdio, no locks (the tree walk in core/proctree.c is written the same way). */
#include "reaper.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "agentix/proctree.h"

#define KILL_WAIT_MS 5000  /* SIGKILL → gone; a process stuck in D state is left to the server */
#define FD_SCAN_MAX 65536  /* without close_range: the fds closed one by one */

/* The tree walk's memory. Touched only in the subreaper, which has its own copy of it. */
static agx_proc_entry scratch[8192];

/* ---- the subreaper (after fork: system calls only) ---- */

static volatile sig_atomic_t got_term;

static void on_signal(int sig)
{
    if (sig != SIGCHLD)
        got_term = 1;
}

static void write_status(int ctl, int status)
{
    const char *p = (const char *)&status;
    size_t left = sizeof status;
    while (left) {
        ssize_t n = write(ctl, p, left);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return; /* the worker is gone: nobody wants it */
        p += n;
        left -= (size_t)n;
    }
}

/* Closes every fd but the sorted keep[0..n). */
static void close_others(const int *keep, int n)
{
    int from = 3;
    for (int i = 0; i <= n; i++) {
        int to = i < n ? keep[i] - 1 : ~0;
        if (to >= from && syscall(SYS_close_range, (unsigned)from, (unsigned)to, 0) != 0)
            for (int fd = from; fd <= (to < FD_SCAN_MAX ? to : FD_SCAN_MAX); fd++)
                close(fd);
        if (i < n)
            from = keep[i] + 1;
    }
}

static void sort4(int *a)
{
    for (int i = 1; i < 4; i++)
        for (int j = i; j > 0 && a[j] < a[j - 1]; j--) {
            int t = a[j];
            a[j] = a[j - 1];
            a[j - 1] = t;
        }
}

/* The command and all it starts are the OOM killer's first choice in the sandbox (the most it
 * allows, inherited by its children): a command that fills the memory limit is killed and
 * reported as oom_killed, and the runtime — server, worker, this subreaper — lives on to say so.
 * With equal scores a second kill, made while the first victim's memory was still being freed,
 * took the runtime's server, the largest process left. Raising needs no privilege. */
static void prefer_for_oom_kill(void)
{
    int fd = open("/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return; /* no procfs: the scores stay as they were */
    ssize_t n = write(fd, "1000", 4);
    (void)n;
    close(fd);
}

/* The command: own process group, OOM preference, standard streams, default signals, exec. */
static void __attribute__((noreturn))
command(char *const argv[], char *const envp[], const char *cwd, int fd0, int fd1, int fd2)
{
    setpgid(0, 0);
    prefer_for_oom_kill();
    if (dup2(fd0, 0) < 0 || dup2(fd1, 1) < 0 || dup2(fd2, 2) < 0)
        _exit(127);
    if (cwd && chdir(cwd) != 0) {
        static const char msg[] = "agentix.bash: cannot enter the working directory\n";
        ssize_t n = write(2, msg, sizeof msg - 1);
        (void)n;
        _exit(127);
    }
    struct sigaction dfl;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    for (int sig = 1; sig < NSIG; sig++)
        sigaction(sig, &dfl, NULL); /* SIGKILL/SIGSTOP refuse: harmless */
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    execve(argv[0], argv, envp);
    static const char msg[] = "agentix.bash: cannot execute the shell\n";
    ssize_t n = write(2, msg, sizeof msg - 1);
    (void)n;
    _exit(127);
}

/* Kills everything below this process, reaps it, reports the command's status if not yet done. */
static void __attribute__((noreturn)) finish(int ctl, pid_t cmd, bool sent)
{
    agx_proc_kill_tree(getpid(), false, scratch, sizeof scratch / sizeof *scratch, KILL_WAIT_MS);
    struct timespec step = {0, 2000000};
    for (int tries = 0; tries < KILL_WAIT_MS / 2; tries++) {
        int st;
        pid_t p = waitpid(-1, &st, WNOHANG);
        if (p > 0) {
            if (p == cmd && !sent) {
                write_status(ctl, st);
                sent = true;
            }
            continue;
        }
        if (p < 0 && errno == ECHILD)
            break;
        nanosleep(&step, NULL);
    }
    _exit(0);
}

static void __attribute__((noreturn))
subreaper(int ctl, char *const argv[], char *const envp[], const char *cwd, int fd0, int fd1, int fd2)
{
    prctl(PR_SET_CHILD_SUBREAPER, 1);
    int keep[4] = {ctl, fd0, fd1, fd2};
    sort4(keep);
    close_others(keep, 4);
    /* Signals arrive only inside ppoll: blocked everywhere else. */
    sigset_t blocked, open;
    sigemptyset(&blocked);
    sigaddset(&blocked, SIGCHLD);
    sigaddset(&blocked, SIGTERM);
    sigaddset(&blocked, SIGINT);
    sigaddset(&blocked, SIGHUP);
    sigprocmask(SIG_BLOCK, &blocked, &open);
    sigdelset(&open, SIGCHLD);
    sigdelset(&open, SIGTERM);
    sigdelset(&open, SIGINT);
    sigdelset(&open, SIGHUP);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGCHLD, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    sa.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &sa, NULL);

    pid_t cmd = fork();
    if (cmd == 0)
        command(argv, envp, cwd, fd0, fd1, fd2);
    close(fd0);
    close(fd1);
    close(fd2);
    if (cmd < 0) {
        write_status(ctl, 127 << 8);
        _exit(0);
    }
    bool sent = false;
    for (;;) {
        int st;
        pid_t p;
        while ((p = waitpid(-1, &st, WNOHANG)) > 0)
            if (p == cmd && !sent) {
                write_status(ctl, st);
                sent = true;
            }
        if (got_term)
            finish(ctl, cmd, sent);
        struct pollfd pf = {.fd = ctl, .events = POLLIN};
        if (ppoll(&pf, 1, NULL, &open) <= 0)
            continue; /* a signal: reap, look at got_term */
        char b;
        ssize_t n = read(ctl, &b, 1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n == 1 && b == 'R')
            _exit(0); /* released: background jobs go to the next subreaper up */
        finish(ctl, cmd, sent); /* 'K', EOF (the worker died) or an error */
    }
}

/* ---- the module's side ---- */

int reaper_spawn(reaper *r, char *const argv[], char *const envp[], const char *cwd, int fd0,
                 int fd1, int fd2)
{
    memset(r, 0, sizeof *r);
    r->ctl = -1;
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
        return errno;
    pid_t pid = fork();
    if (pid < 0) {
        int e = errno;
        close(sv[0]);
        close(sv[1]);
        return e;
    }
    if (pid == 0) {
        close(sv[0]);
        subreaper(sv[1], argv, envp, cwd, fd0, fd1, fd2);
    }
    close(sv[1]);
    r->pid = pid;
    r->ctl = sv[0];
    return 0;
}

bool reaper_poll(reaper *r)
{
    if (r->have_status)
        return true;
    int st;
    ssize_t n;
    do
        n = recv(r->ctl, &st, sizeof st, MSG_DONTWAIT | MSG_PEEK);
    while (n < 0 && errno == EINTR);
    if (n == (ssize_t)sizeof st && recv(r->ctl, &st, sizeof st, 0) == (ssize_t)sizeof st) {
        r->status = st;
        r->have_status = true;
    } else if (n == 0) {
        /* The subreaper is gone without a word (killed by code in the sandbox): the command's
         * fate is unknown; say it was killed. */
        r->status = SIGKILL;
        r->have_status = true;
    }
    return r->have_status;
}

static void send_byte(reaper *r, char b)
{
    ssize_t n;
    do
        n = send(r->ctl, &b, 1, MSG_NOSIGNAL);
    while (n < 0 && errno == EINTR);
}

void reaper_signal_kill(reaper *r)
{
    if (!r->done)
        send_byte(r, 'K');
}

static void wait_gone(reaper *r)
{
    if (r->done)
        return;
    int st;
    while (waitpid(r->pid, &st, 0) < 0 && errno == EINTR) {
    }
    r->done = true;
    reaper_poll(r); /* the status it wrote before exiting, if any */
    close(r->ctl);
    r->ctl = -1;
}

void reaper_kill(reaper *r)
{
    reaper_signal_kill(r);
    wait_gone(r);
}

void reaper_release(reaper *r)
{
    if (!reaper_poll(r)) {
        reaper_kill(r);
        return;
    }
    if (!r->done)
        send_byte(r, 'R');
    wait_gone(r);
}
