/* ns_init.c — agentix-ns-init, PID 1 of every ns sandbox (host → ns backend → this → agentix-
 * server). A PID namespace needs an init: orphans of the task's commands are re-parented to it and
 * must be reaped, and its exit is what ends the namespace (the kernel then kills every process in
 * it). It is a static executable, so it needs nothing from the task image, and it is tiny: it runs
 * argv[1..] as its only child, forwards SIGTERM/SIGINT/SIGHUP to it, reaps every child, and exits
 * with the child's status once that child is gone — taking the whole sandbox with it.
 *
 * Usage: agentix-ns-init PROGRAM [ARGS...]   (the environment is passed to PROGRAM as is) */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    if (argc < 2) {
        fputs("usage: agentix-ns-init PROGRAM [ARGS...]\n", stderr);
        return 2;
    }
    sigset_t all, old;
    sigfillset(&all);
    sigprocmask(SIG_BLOCK, &all, &old);
    pid_t child = fork();
    if (child < 0) {
        fprintf(stderr, "agentix-ns-init: fork: %s\n", strerror(errno));
        return 1;
    }
    if (child == 0) {
        sigprocmask(SIG_SETMASK, &old, NULL);
        setsid();
        execv(argv[1], argv + 1);
        fprintf(stderr, "agentix-ns-init: cannot run %s: %s\n", argv[1], strerror(errno));
        _exit(127);
    }
    /* PID 1 keeps no descriptor it was given for the runtime (the token's pipe among them):
     * sandbox code must not find them under /proc/1/fd. */
    syscall(SYS_close_range, 3, ~0u, 0);
    for (;;) {
        siginfo_t si;
        int sig = sigwaitinfo(&all, &si);
        if (sig < 0)
            continue;
        if (sig == SIGTERM || sig == SIGINT || sig == SIGHUP) {
            kill(child, sig);
            continue;
        }
        if (sig != SIGCHLD)
            continue;
        int status;
        pid_t p;
        while ((p = waitpid(-1, &status, WNOHANG)) > 0)
            if (p == child) {
                if (WIFSIGNALED(status))
                    fprintf(stderr, "agentix-ns-init: %s was killed by signal %d\n", argv[1],
                            WTERMSIG(status));
                return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
            }
    }
}
