/* owner.c — who owns a sandbox, on the host: the owner labels every fleet/pool sandbox carries
 * (host, pid, process start time, run id) and the process-wide registry of sandboxes this
 * process still owns, which fleet/pool deletes go through (each sandbox deleted exactly once) and
 * which the SIGINT/SIGTERM cleanup (owner_cleanup.c) empties. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "core/host/owner.h"

#include "agentix/backend/process.h"
#include "agentix/backend/runtime.h"
#include "agentix/expiry.h"
#include "agentix/clock.h"
#include "agentix/fleet.h"
#include "core/host/parallel.h"

/* ---- process identity ---- */

uint64_t agx_owner_proc_start(long pid)
{
    agx_proc_stat st;
    return agx_proc_stat_read(pid, &st) == 0 ? st.start_ticks : 0;
}

bool agx_run_id_valid(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n >= AGX_RUN_ID_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return false;
    }
    return true;
}

static char g_run_id[AGX_RUN_ID_MAX];
static char g_host[256];
static pthread_once_t g_ident_once = PTHREAD_ONCE_INIT;

static void ident_init(void)
{
    const char *env = getenv("AGENTIX_RUN_ID");
    if (agx_run_id_valid(env)) {
        snprintf(g_run_id, sizeof g_run_id, "%s", env);
    } else {
        uint64_t r = 0;
        if (getrandom(&r, sizeof r, GRND_NONBLOCK) != (ssize_t)sizeof r)
            r = ((uint64_t)getpid() << 32) ^ (uint64_t)agx_clock_ms() ^ (uint64_t)(uintptr_t)&r;
        snprintf(g_run_id, sizeof g_run_id, "run-%016" PRIx64, r);
    }
    if (gethostname(g_host, sizeof g_host - 1) != 0 || !g_host[0])
        snprintf(g_host, sizeof g_host, "localhost");
    g_host[sizeof g_host - 1] = '\0';
}

const char *agx_run_id(void)
{
    pthread_once(&g_ident_once, ident_init);
    return g_run_id;
}

const char *agx_owner_host(void)
{
    pthread_once(&g_ident_once, ident_init);
    return g_host;
}

const char *agx_label_creator(char *out, size_t n)
{
    snprintf(out, n, "%s:%ld", agx_owner_host(), (long)getpid());
    return out;
}

int agx_owner_labels_set(agx_kv *labels, const char *run_id, agx_error *err)
{
    if (!labels)
        return agx_error_set(err, AGX_ERR_INVALID_ARGUMENT, "agx_owner_labels_set: labels is NULL");
    if (run_id && !agx_run_id_valid(run_id))
        return agx_error_set(err, AGX_ERR_INVALID_ARGUMENT,
                             "run id '%.80s' is not valid: use 1-%d of [A-Za-z0-9._-]", run_id,
                             AGX_RUN_ID_MAX - 1);
    /* pid and start are read per call: a forked child labels with its own. */
    char pid[24], start[24];
    snprintf(pid, sizeof pid, "%ld", (long)getpid());
    snprintf(start, sizeof start, "%" PRIu64, agx_owner_proc_start((long)getpid()));
    if (agx_kv_set(labels, AGX_LABEL_OWNER_HOST, agx_owner_host()) ||
        agx_kv_set(labels, AGX_LABEL_OWNER_PID, pid) ||
        agx_kv_set(labels, AGX_LABEL_OWNER_START, start) ||
        agx_kv_set(labels, AGX_LABEL_RUN, run_id ? run_id : agx_run_id()))
        return agx_error_set(err, AGX_ERR_NO_MEMORY, "out of memory setting owner labels");
    return 0;
}

int64_t agx_label_unix_ms(const char *value)
{
    if (!value || !*value || strlen(value) > 15 || strspn(value, "0123456789") != strlen(value))
        return 0;
    long long v = strtoll(value, NULL, 10);
    return v > 0 && v < 253402300800000LL ? (int64_t)v : 0; /* before year 10000 */
}

int agx_expiry_default_ms(int64_t *out, agx_error *err)
{
    const char *v = getenv(AGX_EXPIRY_ENV);
    *out = AGX_EXPIRY_DEFAULT_MS;
    if (!v || !*v)
        return 0;
    char *end;
    errno = 0;
    long long ms = strtoll(v, &end, 10);
    if (errno || *end || ms < AGX_EXPIRY_MIN_MS || ms > AGX_EXPIRY_MAX_MS)
        return agx_error_set(err, AGX_ERR_INVALID_ARGUMENT,
                             AGX_EXPIRY_ENV "='%.32s' must be milliseconds from %lld to %lld (the "
                             "default expiry of new sandboxes)", v, (long long)AGX_EXPIRY_MIN_MS,
                             (long long)AGX_EXPIRY_MAX_MS);
    *out = ms;
    return 0;
}

/* Owner labels the config lacks: a fleet, pool or `agentix create` may have named the owner. */
static int stamp_owner(agx_kv *labels, agx_error *err)
{
    if (!agx_kv_get(labels, AGX_LABEL_OWNER_PID)) {
        const char *run = agx_kv_get(labels, AGX_LABEL_RUN);
        char keep[AGX_RUN_ID_MAX];
        snprintf(keep, sizeof keep, "%s", run && agx_run_id_valid(run) ? run : agx_run_id());
        int rc = agx_owner_labels_set(labels, keep, err);
        if (rc)
            return rc;
    } else if (!agx_kv_get(labels, AGX_LABEL_RUN) && agx_kv_set(labels, AGX_LABEL_RUN, agx_run_id())) {
        return agx_error_set(err, AGX_ERR_NO_MEMORY, "out of memory setting owner labels");
    }
    return 0;
}

int agx_owner_stamp(const agx_sandbox_config *cfg, agx_sandbox_config **out, agx_error *err)
{
    *out = NULL;
    int64_t expiry = agx_sandbox_config_expiry_ms(cfg);
    int rc = expiry ? 0 : agx_expiry_default_ms(&expiry, err);
    if (rc)
        return rc;
    agx_sandbox_config *copy = agx_sandbox_config_copy(cfg);
    if (!copy)
        return agx_error_set(err, AGX_ERR_NO_MEMORY, "out of memory copying the sandbox config");
    agx_kv *labels = agx_sandbox_config_labels(copy);
    char nonce[33], expires[24];
    rc = stamp_owner(labels, err);
    if (!rc)
        rc = agx_random_hex(nonce, 16, err);
    snprintf(expires, sizeof expires, "%lld", (long long)(agx_clock_wall_ms() + expiry));
    if (!rc && (agx_kv_set(labels, AGX_LABEL_CREATE, nonce) || agx_kv_set(labels, AGX_LABEL_EXPIRES, expires) ||
                agx_sandbox_config_set_expiry_ms(copy, expiry)))
        rc = agx_error_set(err, AGX_ERR_NO_MEMORY, "out of memory stamping the ownership record");
    if (rc) {
        agx_sandbox_config_free(copy);
        return rc;
    }
    *out = copy;
    return 0;
}

int agx_owner_config(const agx_sandbox_config *cfg, const char *run_id, agx_sandbox_config **out,
                     agx_error *err)
{
    *out = NULL;
    agx_sandbox_config *copy = cfg ? agx_sandbox_config_copy(cfg) : agx_sandbox_config_new();
    if (!copy)
        return agx_error_set(err, AGX_ERR_NO_MEMORY, "out of memory copying the sandbox config");
    int rc = agx_owner_labels_set(agx_sandbox_config_labels(copy), run_id, err);
    if (rc) {
        agx_sandbox_config_free(copy);
        return rc;
    }
    *out = copy;
    return 0;
}

/* ---- judging an owner by its labels ---- */

static bool parse_u64(const char *s, uint64_t *out)
{
    if (!s || !*s || strlen(s) > 20 || strspn(s, "0123456789") != strlen(s))
        return false;
    errno = 0;
    unsigned long long v = strtoull(s, NULL, 10);
    if (errno)
        return false;
    *out = v;
    return true;
}

/* The unix ms at which pid started (boot time + its start ticks); 0 when it does not exist. */
static int64_t proc_started_ms(long pid)
{
    uint64_t ticks = agx_owner_proc_start(pid);
    if (!ticks)
        return 0;
    FILE *f = fopen("/proc/stat", "re");
    char line[256];
    long long btime = 0;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "btime %lld", &btime) == 1)
            break;
    if (f)
        fclose(f);
    long hz = sysconf(_SC_CLK_TCK);
    return btime > 0 && hz > 0 ? btime * 1000 + (int64_t)(ticks * 1000 / (uint64_t)hz) : 0;
}

/* Toolkit 1's agentix.owner=<host>:<pid>: no start time, so a process with that pid is the owner
 * only if it started before the sandbox was created. */
static agx_owner_verdict legacy_owner(const char *creator, int64_t created)
{
    const char *colon = creator ? strrchr(creator, ':') : NULL;
    uint64_t pid;
    if (!colon || strncmp(creator, agx_owner_host(), (size_t)(colon - creator)) != 0 ||
        agx_owner_host()[colon - creator] != '\0')
        return AGX_OWNER_UNKNOWN;
    if (!parse_u64(colon + 1, &pid) || pid == 0 || pid > 0x7fffffff)
        return AGX_OWNER_UNKNOWN;
    int64_t started = proc_started_ms((long)pid);
    if (!started)
        return AGX_OWNER_GONE;
    if (!created)
        return AGX_OWNER_ALIVE; /* cannot tell a reused pid: keep */
    return started <= created + 1000 ? AGX_OWNER_ALIVE : AGX_OWNER_GONE;
}

/* Labels that do not tell (another host, missing or malformed) give AGX_OWNER_UNKNOWN: nothing is
 * ever deleted by owner that cannot be judged. */
agx_owner_verdict agx_owner_judge(const agx_kv *labels, int64_t created_ms)
{
    const char *host = agx_kv_get(labels, AGX_LABEL_OWNER_HOST);
    if (!host)
        return legacy_owner(agx_kv_get(labels, AGX_LABEL_CREATOR), created_ms);
    uint64_t pid, start;
    if (strcmp(host, agx_owner_host()) != 0 || !parse_u64(agx_kv_get(labels, AGX_LABEL_OWNER_PID), &pid) ||
        !parse_u64(agx_kv_get(labels, AGX_LABEL_OWNER_START), &start) || pid == 0 || pid > 0x7fffffff)
        return AGX_OWNER_UNKNOWN;
    uint64_t now_start = agx_owner_proc_start((long)pid);
    return now_start != 0 && now_start == start ? AGX_OWNER_ALIVE : AGX_OWNER_GONE;
}

/* ---- the registry ---- */

enum { OWNED_HELD = 0, OWNED_DELETING, OWNED_DONE };

struct agx_owned {
    agx_deployment *dep;
    char *id;
    int state;
    agx_owned *prev, *next;
};

static pthread_mutex_t reg_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t reg_cv;
static pthread_once_t reg_once = PTHREAD_ONCE_INIT;
static agx_owned *reg_head;
static bool reg_closing;
static size_t reg_inflight;

static void reg_init(void)
{
    agx_cond_init(&reg_cv);
}

static void reg_lock(void)
{
    pthread_once(&reg_once, reg_init);
    pthread_mutex_lock(&reg_mu);
}

static void reg_unlink_locked(agx_owned *o)
{
    if (o->prev)
        o->prev->next = o->next;
    else if (reg_head == o)
        reg_head = o->next;
    if (o->next)
        o->next->prev = o->prev;
    o->prev = o->next = NULL;
}

int agx_owner_create_begin(agx_error *err)
{
    reg_lock();
    int closing = reg_closing;
    if (!closing)
        reg_inflight++;
    pthread_mutex_unlock(&reg_mu);
    return closing ? agx_error_set(err, AGX_ERR_CANCELLED,
                                   "the process is cleaning up after a signal: no new sandboxes")
                   : 0;
}

void agx_owner_create_end(void)
{
    reg_lock();
    reg_inflight--;
    pthread_cond_broadcast(&reg_cv);
    pthread_mutex_unlock(&reg_mu);
}

int agx_owner_track(agx_deployment *dep, const char *sandbox_id, agx_owned **out, agx_error *err)
{
    *out = NULL;
    agx_owned *o = calloc(1, sizeof *o);
    if (o && !(o->id = strdup(sandbox_id))) {
        free(o);
        o = NULL;
    }
    reg_lock();
    int closing = reg_closing;
    if (o && !closing) {
        o->dep = dep;
        o->next = reg_head;
        if (reg_head)
            reg_head->prev = o;
        reg_head = o;
    }
    pthread_mutex_unlock(&reg_mu);
    if (o && !closing) {
        *out = o;
        return 0;
    }
    agx_error derr;
    if (agx_deployment_delete(dep, sandbox_id, &derr) != 0)
        fprintf(stderr, "agentix: deleting sandbox %s failed: %s (agx_gc will find it)\n",
                sandbox_id, derr.message);
    if (o)
        free(o->id);
    free(o);
    return closing ? agx_error_set(err, AGX_ERR_CANCELLED,
                                   "sandbox %s was deleted at once: the process is cleaning up "
                                   "after a signal", sandbox_id)
                   : agx_error_set(err, AGX_ERR_NO_MEMORY,
                                   "out of memory registering sandbox %s; it was deleted",
                                   sandbox_id);
}

int agx_owner_delete(agx_owned *o, agx_error *err)
{
    if (!o)
        return 0;
    reg_lock();
    while (o->state == OWNED_DELETING)
        pthread_cond_wait(&reg_cv, &reg_mu);
    int rc = 0;
    if (o->state == OWNED_HELD) {
        o->state = OWNED_DELETING;
        pthread_mutex_unlock(&reg_mu);
        rc = agx_deployment_delete(o->dep, o->id, err);
        reg_lock();
        o->state = OWNED_DONE;
        pthread_cond_broadcast(&reg_cv);
    }
    /* Deleted, or the delete failed: either way it leaves the registry — a sandbox that would not
     * delete keeps its owner labels, and agx_gc collects it once this process is gone. */
    reg_unlink_locked(o);
    pthread_mutex_unlock(&reg_mu);
    free(o->id);
    free(o);
    return rc;
}

/* ---- cleanup of everything registered ---- */

typedef struct sweep {
    agx_owned **items;
    int *rc;
} sweep;

static void sweep_one(void *user, size_t i)
{
    sweep *s = user;
    agx_error err;
    agx_owned *o = s->items[i];
    s->rc[i] = agx_deployment_delete(o->dep, o->id, &err);
    if (s->rc[i])
        fprintf(stderr, "agentix cleanup: deleting sandbox %s failed: %s (agx_gc will find it)\n",
                o->id, err.message);
}

size_t agx_owner_sweep(void)
{
    reg_lock();
    size_t n = 0;
    for (agx_owned *o = reg_head; o; o = o->next)
        n += o->state == OWNED_HELD;
    agx_owned **items = n ? calloc(n, sizeof *items) : NULL;
    int *rc = n ? calloc(n, sizeof *rc) : NULL;
    size_t k = 0;
    for (agx_owned *o = reg_head; o && items && rc; o = o->next)
        if (o->state == OWNED_HELD) {
            o->state = OWNED_DELETING;
            items[k++] = o;
        }
    pthread_mutex_unlock(&reg_mu);
    sweep s = {items, rc};
    agx_parallel_for(k, 8, sweep_one, &s);
    size_t deleted = 0;
    reg_lock();
    for (size_t i = 0; i < k; i++) {
        items[i]->state = OWNED_DONE;
        deleted += rc[i] == 0;
    }
    pthread_cond_broadcast(&reg_cv);
    pthread_mutex_unlock(&reg_mu);
    free(items);
    free(rc);
    return deleted;
}

void agx_owner_set_closing(bool closing)
{
    reg_lock();
    reg_closing = closing;
    pthread_mutex_unlock(&reg_mu);
}

size_t agx_owner_wait_inflight(int64_t deadline_ms)
{
    reg_lock();
    while (reg_inflight > 0 && agx_cond_wait_until(&reg_cv, &reg_mu, deadline_ms) != ETIMEDOUT) {
    }
    size_t left = reg_inflight;
    pthread_mutex_unlock(&reg_mu);
    return left;
}

size_t agx_cleanup_run(void)
{
    return agx_owner_sweep();
}
