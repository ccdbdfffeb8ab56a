/* reaper.h — every agentix.bash command runs under its own subreaper: a small process forked from
 * the worker (PR_SET_CHILD_SUBREAPER) that starts the command and becomes the parent of whatever
 * the command orphans, `setsid` daemons and double forks included. It is the one place that can
 * kill all of a command: on cancel and timeout (the module tells it), and when the worker dies (its
 * control socket reaches EOF), it stops and kills its whole tree (agentix/proctree.h) and exits only
 * once nothing of it runs. When the command ends normally it is released: what the command left
 * running in the background stays (reparented to agentix-server, itself a subreaper, which kills it
 * at drain), as a shell user expects of `cmd &`.
 *
 * Control socket protocol: module → reaper one byte, 'K' kill the tree, 'R' release; reaper →
 * module the command's 4-byte wait status once it exited. */
#ifndef AGX_MODULES_REAPER_H
#define AGX_MODULES_REAPER_H

#include <stdbool.h>
#include <sys/types.h>

typedef struct reaper {
    pid_t pid;        /* the subreaper, a child of the worker */
    int ctl;          /* our end of the control socket; readable when the status arrives */
    int status;       /* the command's wait status once have_status */
    bool have_status;
    bool done;        /* the subreaper has been waited for */
} reaper;

/* Forks the subreaper, which runs argv[0] (a path) with envp, cwd (NULL = ours) and fd0/fd1/fd2 as
 * its standard streams, in a process group of its own, with default signal dispositions and an
 * empty signal mask. The caller keeps (and closes) its fds. 0, or an errno. */
int reaper_spawn(reaper *r, char *const argv[], char *const envp[], const char *cwd, int fd0,
                 int fd1, int fd2);
/* Reads the status if it has arrived (never blocks): true once the command has exited. */
bool reaper_poll(reaper *r);
/* Asks for the whole tree to be killed (returns at once; safe from any thread). */
void reaper_signal_kill(reaper *r);
/* Kills the whole tree and waits until the subreaper is gone, so nothing of the command runs. */
void reaper_kill(reaper *r);
/* The command ended normally: the subreaper exits, leaving background processes be. Waits for it.
 * When the command has not exited, this kills instead. */
void reaper_release(reaper *r);

#endif
