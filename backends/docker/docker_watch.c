/* docker_watch.c — the host side of the owner watch (watch_main.c): a host killed between a
 * container's creation and its start leaves a container that never ran, which neither AutoRemove
 * nor the runtime's own expiry can end (nothing of it runs). So each process that uses the docker
 * backend starts, once, agentix-docker-watch in a session of its own, holding the read end of a
 * pipe whose write end only this process holds: when the process ends, however it ends, the
 * watch sees the pipe close and removes the never-started containers labelled with this
 * process's ownership record — what a killed host's creates left — then exits. A forked child
 * that creates starts a watch of its own (its containers carry its own pid). */
#include "backends/docker/docker_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "agentix/backend/labels.h"
#include "agentix/backend/runtime.h"

extern char **environ;

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pid_t watched;   /* the process the running watch watches (getpid() at its start) */
static int write_end = -1;

/* Spawns the watch with the pipe's read end as its fd 3. */
static int spawn_watch(const char *path, int read_end, const agx_kv *me, agx_error *err)
{
    char *argv[] = {(char *)path, "--owner-pid", (char *)agx_kv_get(me, AGX_LABEL_OWNER_PID),
                    "--owner-start", (char *)agx_kv_get(me, AGX_LABEL_OWNER_START), NULL};
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t at;
    sigset_t none, dfl;
    sigemptyset(&none);
    sigemptyset(&dfl);
    sigaddset(&dfl, SIGTERM);
    sigaddset(&dfl, SIGINT);
    sigaddset(&dfl, SIGPIPE);
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, read_end, AGX_DOCKER_WATCH_FD);
    /* No stdio of the host's: a pipe reading its output (a test runner, `agentix create | …`)
     * must close when the host ends, not when the watch does. */
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
    posix_spawnattr_init(&at);
    /* Its own session: a signal to the host's process group (Ctrl-C, a harness killing the group)
     * does not take the watch with it. */
    posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSID | POSIX_SPAWN_SETSIGMASK |
                                      POSIX_SPAWN_SETSIGDEF);
    posix_spawnattr_setsigmask(&at, &none);
    posix_spawnattr_setsigdefault(&at, &dfl);
    pid_t pid;
    int rc = posix_spawn(&pid, path, &fa, &at, argv, environ);
    posix_spawnattr_destroy(&at);
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0)
        return agx_error_set(err, AGX_ERR_UNAVAILABLE, "cannot start %s: %s", path, strerror(rc));
    return 0;
}

int agx_docker_watch_ensure(agx_error *err)
{
    pthread_mutex_lock(&mu);
    if (watched == getpid()) {
        pthread_mutex_unlock(&mu);
        return 0;
    }
    if (write_end >= 0) /* a forked child: the parent's watch is the parent's business */
        close(write_end);
    write_end = -1;
    char path[4096];
    int fds[2] = {-1, -1}, rd = -1;
    agx_kv *me = agx_kv_new();
    int rc = me ? agx_owner_labels_set(me, NULL, err)
                : agx_error_set(err, AGX_ERR_NO_MEMORY, "out of memory");
    if (!rc)
        rc = agx_runtime_bin_path(AGX_DOCKER_WATCH_NAME, path, sizeof path, err);
    if (!rc && access(path, X_OK) != 0)
        rc = agx_error_set(err, AGX_ERR_NOT_FOUND, "%s is not at '%s' (%s): install the runtime "
                           "binaries beside libagentix", AGX_DOCKER_WATCH_NAME, path,
                           strerror(errno));
    if (!rc && pipe2(fds, O_CLOEXEC) != 0)
        rc = agx_error_set(err, AGX_ERR_IO, "pipe: %s", strerror(errno));
    /* Above the watch's fd number, so the dup2 in the child always clears close-on-exec. */
    if (!rc && (rd = fcntl(fds[0], F_DUPFD_CLOEXEC, AGX_DOCKER_WATCH_FD + 1)) < 0)
        rc = agx_error_set(err, AGX_ERR_IO, "fcntl: %s", strerror(errno));
    if (!rc)
        rc = spawn_watch(path, rd, me, err);
    if (fds[0] >= 0)
        close(fds[0]);
    if (rd >= 0)
        close(rd);
    if (!rc) {
        write_end = fds[1]; /* held until this process ends: its closing is the signal */
        watched = getpid();
    } else if (fds[1] >= 0) {
        close(fds[1]);
    }
    agx_kv_free(me);
    pthread_mutex_unlock(&mu);
    return rc;
}
