/* watch_main.c — agentix-docker-watch, the owner watch of one host process (docker_watch.c
 * starts it): it waits for the pipe on fd 3 to close — the host ended, however it ended — then
 * removes the containers that host created and never started (status created, its ownership
 * record in their labels), polling a while since creates the host sent just before it died may
 * still land; then it exits. Containers that did start are not its business: their runtimes end
 * themselves at their expiry (AutoRemove removes them).
 *
 * Usage (not for people): agentix-docker-watch --owner-pid PID --owner-start TICKS, with fd 3
 * the read end of the host's pipe. DOCKER_HOST as the host had it. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agentix/clock.h"
#include "backends/docker/docker_internal.h"

#define POLL_MS 1000
#define QUIET_MS 20000   /* this long without a never-started container of the host: done */
#define WATCH_MAX_MS 120000

static int digits(const char *s)
{
    size_t n = strlen(s);
    return n > 0 && n < 21 && strspn(s, "0123456789") == n;
}

/* Blocks until the host's end of the pipe is closed (or the pipe fails: the same to us). */
static void wait_for_host(void)
{
    char buf[64];
    for (;;) {
        ssize_t n = read(AGX_DOCKER_WATCH_FD, buf, sizeof buf);
        if (n == 0 || (n < 0 && errno != EINTR))
            return;
    }
}

/* One pass: removes what is there; how many were found (-1: the daemon did not answer). */
static int sweep(agx_docker *d, const char *const *owner)
{
    json_t *arr = NULL;
    agx_error err;
    agx_docker_bound(agx_clock_ms() + 10000);
    int found = -1;
    if (agx_docker_list_unstarted(d, owner, &arr, &err) == 0) {
        size_t i;
        json_t *c;
        found = (int)json_array_size(arr);
        json_array_foreach(arr, i, c) {
            const char *id = json_string_value(json_object_get(c, "Id"));
            if (id)
                agx_docker_remove(d, id, &err);
        }
    }
    agx_docker_bound(0);
    json_decref(arr);
    return found;
}

int main(int argc, char **argv)
{
    if (argc != 5 || strcmp(argv[1], "--owner-pid") != 0 || !digits(argv[2]) ||
        strcmp(argv[3], "--owner-start") != 0 || !digits(argv[4])) {
        fprintf(stderr, "%s is started by the docker backend, not by hand\n", argv[0]);
        return 2;
    }
    close_range(AGX_DOCKER_WATCH_FD + 1, ~0U, 0); /* nothing else of the host's stays open */
    signal(SIGPIPE, SIG_IGN);
    wait_for_host();
    agx_kv *me = agx_kv_new();
    agx_error err;
    if (!me || agx_owner_labels_set(me, NULL, &err) != 0)
        return 1;
    char host[600], pid[64], start[64];
    snprintf(host, sizeof host, AGX_LABEL_OWNER_HOST "=%s", agx_kv_get(me, AGX_LABEL_OWNER_HOST));
    snprintf(pid, sizeof pid, AGX_LABEL_OWNER_PID "=%s", argv[2]);
    snprintf(start, sizeof start, AGX_LABEL_OWNER_START "=%s", argv[4]);
    agx_kv_free(me);
    const char *const owner[] = {host, pid, start, NULL};
    agx_docker d;
    memset(&d, 0, sizeof d);
    int64_t began = agx_clock_ms(), seen = began;
    int connected = 0;
    while (agx_clock_ms() - seen < QUIET_MS && agx_clock_ms() - began < WATCH_MAX_MS) {
        if (!connected)
            connected = agx_docker_connect(&d, &err) == 0;
        if (connected && sweep(&d, owner) != 0)
            seen = agx_clock_ms(); /* found some (or could not ask): keep watching */
        agx_clock_sleep_ms(POLL_MS);
    }
    return 0;
}
