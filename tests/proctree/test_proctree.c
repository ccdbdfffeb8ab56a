/* test_proctree.c — the process-tree killer (core/proctree.h) on real processes: a subreaper with
 * a foreground child, a process group of three, a `setsid` daemon that double-forked (reparented to
 * the subreaper) and a shell that keeps forking while it is killed. kill_tree must leave none of
 * them running, spare the root unless asked, and refuse nothing it was not given. Also the
 * /proc/<pid>/stat parser on command names that hold spaces and parentheses. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "agentix/proctree.h"

#define CAP 8192
static agx_proc_entry scratch[CAP];

static void nap(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Running (not a zombie) and the same process (start ticks). */
static bool running(pid_t pid, uint64_t ticks)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return false;
    ssize_t n = read(fd, buf, sizeof buf);
    close(fd);
    agx_proc_entry e;
    return n > 0 && agx_proc_stat_parse(buf, (size_t)n, &e) == 0 && e.start_ticks == ticks &&
           e.state != 'Z' && e.state != 'X';
}

static uint64_t ticks_of(pid_t pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    int fd = open(path, O_RDONLY);
    CHECK(fd >= 0);
    ssize_t n = read(fd, buf, sizeof buf);
    close(fd);
    agx_proc_entry e;
    CHECK(n > 0 && agx_proc_stat_parse(buf, (size_t)n, &e) == 0);
    return e.start_ticks;
}

/* A subreaper running `script` with sh; the pids the script prints (one per line) are read back
 * through a pipe until `want` came. */
static pid_t subreaper(const char *script, pid_t *pids, int want)
{
    int p[2];
    CHECK(pipe(p) == 0);
    pid_t root = fork();
    CHECK(root >= 0);
    if (root == 0) {
        prctl(PR_SET_CHILD_SUBREAPER, 1);
        close(p[0]);
        dup2(p[1], 1);
        if (fork() == 0) {
            execl("/bin/sh", "sh", "-c", script, (char *)NULL);
            _exit(127);
        }
        for (;;)
            pause(); /* never reaps: the killed become zombies here, as under a busy reaper */
    }
    close(p[1]);
    FILE *f = fdopen(p[0], "r");
    for (int i = 0; i < want; i++)
        CHECK_MSG(fscanf(f, "%d", &pids[i]) == 1, "the script printed %d of %d pids", i, want);
    fclose(f);
    return root;
}

static void test_parse(void)
{
    static const char line[] =
        "4242 (a) (b c) S 17 4242 4242 0 -1 4194560 1 0 0 0 3 4 0 0 20 0 1 0 987654 1 2 3\n";
    agx_proc_entry e;
    CHECK(agx_proc_stat_parse(line, sizeof line - 1, &e) == 0);
    CHECK(e.pid == 4242 && e.ppid == 17 && e.state == 'S' && e.pgrp == 4242 && e.sid == 4242 &&
          e.start_ticks == 987654);
    CHECK_STREQ(e.comm, "a) (b c");
    CHECK(agx_proc_stat_parse("1 (x) S", 7, &e) == -1);
    CHECK(agx_proc_stat_parse("", 0, &e) == -1);
    CHECK(agx_proc_stat_parse("x (y) S 1 1 1", 13, &e) == -1);
}

static void test_tree(void)
{
    /* a foreground sleep, a group of three, and a daemon: setsid in a child that exits at once */
    static const char script[] =
        "sleep 1001 & echo $!; "
        "(sleep 1002 & echo $!; sleep 1003 & echo $!; sleep 1004 & echo $!; wait) & "
        "(setsid sh -c 'sleep 1005 & echo $!' &) ; "
        "exec sleep 1006";
    pid_t pids[5];
    pid_t root = subreaper(script, pids, 5);
    uint64_t ticks[5];
    nap(100);
    for (int i = 0; i < 5; i++)
        ticks[i] = ticks_of(pids[i]);
    long before = agx_proc_count_tree(root, scratch, CAP);
    CHECK_MSG(before >= 7, "the tree holds %ld live processes, want >= 7", before);
    long killed = agx_proc_kill_tree(root, false, scratch, CAP, 5000);
    CHECK_MSG(killed >= 7, "killed %ld", killed);
    for (int i = 0; i < 5; i++)
        CHECK_MSG(!running(pids[i], ticks[i]), "pid %d survived", (int)pids[i]);
    CHECK(agx_proc_count_tree(root, scratch, CAP) == 0);
    uint64_t rt = ticks_of(root);
    CHECK_MSG(running(root, rt), "the root was killed without with_root");
    CHECK(agx_proc_kill_tree(root, true, scratch, CAP, 5000) == 1);
    int st;
    CHECK(waitpid(root, &st, 0) == root && WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
    printf("figure: proctree.kill processes=%ld\n", killed);
}

/* A shell forking as fast as it can while it is killed: the freeze rounds catch up with it. */
static void test_forking(void)
{
    static const char script[] = "echo $$; while :; do sleep 100 & done";
    pid_t pid;
    pid_t root = subreaper(script, &pid, 1);
    nap(200);
    long killed = agx_proc_kill_tree(root, false, scratch, CAP, 10000);
    CHECK_MSG(killed > 0, "kill_tree returned %ld", killed);
    CHECK(agx_proc_count_tree(root, scratch, CAP) == 0);
    kill(root, SIGKILL);
    waitpid(root, NULL, 0);
    printf("figure: proctree.forking killed=%ld\n", killed);
}

/* Too little scratch: the walk says so, and still kills what it saw. */
static void test_small_scratch(void)
{
    pid_t pid;
    pid_t root = subreaper("sleep 1007 & echo $!; exec sleep 1008", &pid, 1);
    nap(50);
    agx_proc_entry few[4];
    CHECK(agx_proc_count_tree(root, few, 4) == -1);
    agx_proc_kill_tree(root, true, scratch, CAP, 5000);
    waitpid(root, NULL, 0);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    test_parse();
    test_tree();
    test_forking();
    test_small_scratch();
    printf("test_proctree: ok\n");
    return 0;
}
