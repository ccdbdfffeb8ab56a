/* docker_attach.c — a task container's output during its create (host → docker backend → engine
 * attach stream): sandboxes are created with AutoRemove, so a runtime that dies before answering
 * /health takes its container and its logs with it. Like `docker run`, the backend attaches to the
 * container before starting it and keeps the stream's last bytes (demultiplexed as they arrive),
 * so a failed create can still say why. The stream runs on its own thread and is cut (its socket
 * shut down) when the create is done. */
#include "backends/docker/docker_internal.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KEEP_BYTES (16u << 10) /* the last output kept; err->detail holds 2 KiB of it */

struct agx_docker_attach {
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    agx_http_abort *abort;
    agx_http_request req;
    char *url;
    int attached; /* the engine answered: the stream is live */
    int ended;    /* the stream closed (the container stopped) or failed */
    /* demultiplexing: [stream, 0, 0, 0, size(4, big-endian)] then size bytes */
    unsigned char head[8];
    size_t head_len;
    uint32_t left; /* payload bytes of the current frame still to come */
    char keep[KEEP_BYTES];
    size_t keep_len;
};

static void keep_bytes(agx_docker_attach *a, const char *p, size_t n)
{
    if (n >= KEEP_BYTES) {
        p += n - KEEP_BYTES;
        n = KEEP_BYTES;
    }
    if (a->keep_len + n > KEEP_BYTES) { /* drop the oldest */
        size_t drop = a->keep_len + n - KEEP_BYTES;
        memmove(a->keep, a->keep + drop, a->keep_len - drop);
        a->keep_len -= drop;
    }
    memcpy(a->keep + a->keep_len, p, n);
    a->keep_len += n;
}

static int on_data(const char *data, size_t len, void *user)
{
    agx_docker_attach *a = user;
    pthread_mutex_lock(&a->mu);
    while (len > 0) {
        if (a->left == 0) {
            size_t take = 8 - a->head_len < len ? 8 - a->head_len : len;
            memcpy(a->head + a->head_len, data, take);
            a->head_len += take;
            data += take;
            len -= take;
            if (a->head_len == 8) {
                a->left = (uint32_t)a->head[4] << 24 | (uint32_t)a->head[5] << 16 |
                          (uint32_t)a->head[6] << 8 | a->head[7];
                a->head_len = 0;
            }
            continue;
        }
        size_t take = a->left < len ? a->left : len;
        keep_bytes(a, data, take);
        a->left -= (uint32_t)take;
        data += take;
        len -= take;
    }
    pthread_mutex_unlock(&a->mu);
    return 0;
}

static void on_headers(long status, void *user)
{
    agx_docker_attach *a = user;
    pthread_mutex_lock(&a->mu);
    a->attached = status == 200 || status == 101;
    pthread_cond_broadcast(&a->cv);
    pthread_mutex_unlock(&a->mu);
}

static void *attach_main(void *arg)
{
    agx_docker_attach *a = arg;
    agx_http_response resp;
    agx_http_perform(&a->req, &resp, NULL);
    agx_http_response_clear(&resp);
    pthread_mutex_lock(&a->mu);
    a->ended = 1;
    pthread_cond_broadcast(&a->cv);
    pthread_mutex_unlock(&a->mu);
    return NULL;
}

static void attach_release(agx_docker_attach *a)
{
    agx_http_abort_free(a->abort);
    pthread_mutex_destroy(&a->mu);
    pthread_cond_destroy(&a->cv);
    free(a->url);
    free(a);
}

int agx_docker_attach_start(const agx_docker *d, const char *id, int64_t deadline_ms,
                            agx_docker_attach **out)
{
    *out = NULL;
    agx_docker_attach *a = calloc(1, sizeof *a);
    if (!a)
        return -1;
    pthread_mutex_init(&a->mu, NULL);
    agx_cond_init(&a->cv);
    int64_t left = deadline_ms - agx_clock_ms();
    if (agx_http_abort_new(&a->abort, NULL) != 0 ||
        asprintf(&a->url, "%s/containers/%s/attach?stream=1&stdout=1&stderr=1", d->base, id) < 0 ||
        left <= 0) {
        a->url = NULL;
        attach_release(a);
        return -1;
    }
    a->req = (agx_http_request){
        .struct_size = sizeof a->req, .method = "POST", .url = a->url,
        .unix_socket = d->socket_path[0] ? d->socket_path : NULL,
        .connect_timeout_ms = left, .timeout_ms = left + 60000, /* cut by the abort long before */
        .sink = on_data, .sink_user = a, .on_headers = on_headers, .abort = a->abort};
    if (pthread_create(&a->thread, NULL, attach_main, a) != 0) {
        attach_release(a);
        return -1;
    }
    /* Start the container only once the stream is live, or its first words are lost. */
    pthread_mutex_lock(&a->mu);
    while (!a->attached && !a->ended && agx_cond_wait_until(&a->cv, &a->mu, deadline_ms) == 0) {
    }
    int live = a->attached && !a->ended;
    pthread_mutex_unlock(&a->mu);
    if (!live) {
        agx_docker_attach_free(a);
        return -1;
    }
    *out = a;
    return 0;
}

void agx_docker_attach_tail(agx_docker_attach *a, int wait_ms, char *out, size_t n)
{
    if (n)
        out[0] = '\0';
    if (!a || !n)
        return;
    int64_t until = agx_clock_ms() + wait_ms;
    pthread_mutex_lock(&a->mu);
    while (!a->ended && agx_cond_wait_until(&a->cv, &a->mu, until) == 0) {
    }
    size_t len = a->keep_len < n - 1 ? a->keep_len : n - 1;
    memcpy(out, a->keep + a->keep_len - len, len);
    out[len] = '\0';
    pthread_mutex_unlock(&a->mu);
}

void agx_docker_attach_free(agx_docker_attach *a)
{
    if (!a)
        return;
    agx_http_abort_fire(a->abort);
    pthread_join(a->thread, NULL);
    attach_release(a);
}
