/* admission.c — admission control for creates, per backend, shared by every agentix process of
 * the host (deployment.h has the contract and the knobs): host → agx_deployment_create → here →
 * backend.
 *
 * One state file per backend, <state dir>/admission-<backend>:
 *   - slots: a live sandbox (or a create in flight) holds a write lock on byte SLOT_BASE + i, an
 *     open-file-description lock (F_OFD_SETLK) on this process's own descriptor. The kernel drops
 *     it when the process dies, so a killed holder's slots come back at once; nothing needs a
 *     sweeper. Threads of one process share the descriptor (their locks never conflict with each
 *     other), so which slots this process holds is kept in memory too.
 *   - the create-rate bucket: a small record at offset 0 read and written under a lock on byte
 *     BUCKET_LOCK, held for a few microseconds (F_OFD_SETLKW). It refills at the rate on the
 *     boot-wide monotonic clock and carries not_before, the end of a service's Retry-After.
 * Waits poll with jittered backoff (up to 200 ms) and stay within the create's deadline. */
#include "core/host/admission.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "agentix/clock.h"
#include "agentix/deployment.h"

#define SLOT_BASE 4096
#define BUCKET_LOCK 64
#define MAX_LIVE 65536
#define MAX_RATE 100000.0
#define POLL_MAX_MS 200
#define BUCKET_MAGIC 0x61677861u /* "agxa" */

typedef struct bucket_rec {
    uint32_t magic;
    uint32_t version;
    double tokens;
    int64_t last_ns;       /* CLOCK_MONOTONIC (boot-wide) of the last refill */
    int64_t not_before_ns; /* no create before this (a service's Retry-After) */
} bucket_rec;

typedef struct bstate {
    char name[128];
    int fd;                 /* -1 until the first capped or rate-limited create */
    agx_admission_options o;
    bool set;               /* agx_admission_set was called: the environment is not read */
    unsigned char *own;     /* own[i]: this process holds slot i */
    size_t own_n;
    size_t held;
    uint64_t admitted, waited;
    struct bstate *next;
} bstate;

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t once = PTHREAD_ONCE_INIT;
static bstate *states;

/* A forked child does not own its parent's slots; its descriptors share the parent's open file
 * descriptions (and so their locks), so it opens its own files and never unlocks through the
 * inherited ones. */
static void child_after_fork(void)
{
    pthread_mutex_init(&mu, NULL);
    states = NULL;
}

static void init(void)
{
    pthread_atfork(NULL, NULL, child_after_fork);
}

static void lock(void)
{
    pthread_once(&once, init);
    pthread_mutex_lock(&mu);
}

static int64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static unsigned rnd(void)
{
    unsigned r = 0;
    if (getrandom(&r, sizeof r, GRND_NONBLOCK) != (ssize_t)sizeof r)
        r = (unsigned)mono_ns();
    return r;
}

/* ---- knobs ---- */

/* $<base>_<NAME> (upper-cased, '-' and '.' → '_'), else $<base>. */
static const char *env_knob(const char *base, const char *name)
{
    char key[256];
    int n = snprintf(key, sizeof key, "%s_", base);
    for (const char *p = name; *p && n < (int)sizeof key - 1; p++)
        key[n++] = (*p >= 'a' && *p <= 'z') ? (char)(*p - 32) : (*p == '-' || *p == '.') ? '_' : *p;
    key[n] = '\0';
    const char *v = getenv(key);
    return v && *v ? v : getenv(base);
}

static int env_number(const char *base, const char *name, double lo, double hi, double *out,
                      agx_error *err)
{
    const char *v = env_knob(base, name);
    if (!v || !*v)
        return 0;
    char *end;
    errno = 0;
    double d = strtod(v, &end);
    if (errno || *end || !isfinite(d) || d < lo || d > hi)
        return agx_error_set(err, AGX_ERR_INVALID_ARGUMENT,
                             "%s for backend '%s' is '%.32s'; it must be a number from %g to %g",
                             base, name, v, lo, hi);
    *out = d;
    return 0;
}

static int read_env(bstate *b, agx_error *err)
{
    double cap = 0, rate = 0, burst = 1;
    int rc = env_number("AGENTIX_MAX_SANDBOXES", b->name, 0, MAX_LIVE, &cap, err);
    if (!rc)
        rc = env_number("AGENTIX_CREATE_RATE", b->name, 0, MAX_RATE, &rate, err);
    if (!rc)
        rc = env_number("AGENTIX_CREATE_BURST", b->name, 1, MAX_LIVE, &burst, err);
    if (rc)
        return rc;
    b->o.max_live = (unsigned)cap;
    b->o.creates_per_s = rate;
    b->o.burst = (unsigned)burst;
    return 0;
}

/* ---- the state file ---- */

/* $AGENTIX_STATE_DIR, $XDG_RUNTIME_DIR/agentix, /tmp/agentix-<uid>: created 0700, and refused when
 * it is a symlink or someone else's (another user could forge or hold our slots). */
static int open_dir(agx_error *err)
{
    char path[1024];
    const char *s = getenv("AGENTIX_STATE_DIR"), *x = getenv("XDG_RUNTIME_DIR");
    if (s && *s)
        snprintf(path, sizeof path, "%s", s);
    else if (x && *x == '/')
        snprintf(path, sizeof path, "%s/agentix", x);
    else
        snprintf(path, sizeof path, "/tmp/agentix-%ld", (long)getuid());
    if (mkdir(path, 0700) != 0 && errno != EEXIST)
        return agx_error_set(err, AGX_ERR_IO, "admission control: cannot create '%s': %s (set "
                             "AGENTIX_STATE_DIR to a folder of yours)", path, strerror(errno));
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0 || st.st_uid != getuid() || (st.st_mode & 022)) {
        int e = errno;
        if (fd >= 0)
            close(fd);
        return agx_error_set(err, AGX_ERR_IO, "admission control: '%s' %s; set AGENTIX_STATE_DIR "
                             "to a folder only you can write", path,
                             fd < 0 ? strerror(e) : "is not a folder owned and writable only by you");
    }
    return fd;
}

static int open_state(bstate *b, agx_error *err)
{
    if (b->fd >= 0)
        return 0;
    int dir = open_dir(err);
    if (dir < 0)
        return err ? err->code : AGX_ERR_IO;
    char file[160];
    snprintf(file, sizeof file, "admission-%s", b->name);
    b->fd = openat(dir, file, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    int e = errno;
    close(dir);
    if (b->fd < 0)
        return agx_error_set(err, AGX_ERR_IO, "admission control: cannot open its file for "
                             "backend '%s': %s", b->name, strerror(e));
    return 0;
}

/* Caller holds mu. The state of backend, made (with the environment's knobs) on first use. */
static bstate *state_of(const char *backend, agx_error *err)
{
    for (bstate *b = states; b; b = b->next)
        if (strcmp(b->name, backend) == 0)
            return b;
    if (strlen(backend) >= sizeof ((bstate *)0)->name ||
        strspn(backend, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") !=
            strlen(backend)) {
        agx_error_set(err, AGX_ERR_INVALID_ARGUMENT, "'%.64s' is not a backend name", backend);
        return NULL;
    }
    bstate *b = calloc(1, sizeof *b);
    if (!b) {
        agx_error_set(err, AGX_ERR_NO_MEMORY, "out of memory for admission control");
        return NULL;
    }
    snprintf(b->name, sizeof b->name, "%s", backend);
    b->fd = -1;
    agx_admission_options_init(&b->o);
    if (read_env(b, err) != 0) {
        free(b);
        return NULL;
    }
    b->next = states;
    states = b;
    return b;
}

static int lock_byte(int fd, off_t at, int cmd, short type)
{
    struct flock fl = {.l_type = type, .l_whence = SEEK_SET, .l_start = at, .l_len = 1};
    return fcntl(fd, cmd, &fl);
}

/* ---- slots ---- */

/* Caller holds mu. A free slot below the cap: its index, -1 when all are held, -2 on an error. */
static int take_slot(bstate *b, agx_error *err)
{
    unsigned cap = b->o.max_live;
    if (b->own_n < cap) {
        unsigned char *own = realloc(b->own, cap);
        if (!own) {
            agx_error_set(err, AGX_ERR_NO_MEMORY, "out of memory for admission control");
            return -2;
        }
        memset(own + b->own_n, 0, cap - b->own_n);
        b->own = own;
        b->own_n = cap;
    }
    unsigned start = rnd() % cap; /* spread processes over the slots: fewer failed tries */
    for (unsigned k = 0; k < cap; k++) {
        unsigned i = (start + k) % cap;
        if (b->own[i])
            continue;
        if (lock_byte(b->fd, SLOT_BASE + (off_t)i, F_OFD_SETLK, F_WRLCK) == 0) {
            b->own[i] = 1;
            b->held++;
            return (int)i;
        }
        if (errno != EAGAIN && errno != EACCES && errno != EINTR) {
            agx_error_set(err, AGX_ERR_IO, "admission control: locking a slot of backend '%s': %s",
                          b->name, strerror(errno));
            return -2;
        }
    }
    return -1;
}

static void give_slot(bstate *b, int slot)
{
    if (slot < 0 || (size_t)slot >= b->own_n || !b->own[slot])
        return;
    lock_byte(b->fd, SLOT_BASE + slot, F_OFD_SETLK, F_UNLCK);
    b->own[slot] = 0;
    b->held--;
}

/* ---- the bucket ---- */

static void rec_read(int fd, bucket_rec *r, double burst, int64_t now)
{
    if (pread(fd, r, sizeof *r, 0) != (ssize_t)sizeof *r || r->magic != BUCKET_MAGIC ||
        r->version != 1 || !isfinite(r->tokens) || r->last_ns > now || r->not_before_ns - now > 3600e9) {
        memset(r, 0, sizeof *r); /* new, damaged, or from before a reboot */
        r->magic = BUCKET_MAGIC;
        r->version = 1;
        r->tokens = burst;
        r->last_ns = now;
    }
}

/* One try: 0 took a token, else the ms to wait before the next try (≥ 1). -1 on an I/O error. */
static int64_t bucket_take(bstate *b, double rate, double burst)
{
    if (lock_byte(b->fd, BUCKET_LOCK, F_OFD_SETLKW, F_WRLCK) != 0)
        return -1;
    int64_t now = mono_ns(), wait_ns = 0;
    bucket_rec r;
    rec_read(b->fd, &r, burst, now);
    if (rate > 0) {
        r.tokens += (double)(now - r.last_ns) / 1e9 * rate;
        if (r.tokens > burst)
            r.tokens = burst;
    }
    r.last_ns = now;
    if (now < r.not_before_ns)
        wait_ns = r.not_before_ns - now;
    else if (rate > 0 && r.tokens < 1.0)
        wait_ns = (int64_t)((1.0 - r.tokens) / rate * 1e9);
    else if (rate > 0)
        r.tokens -= 1.0;
    ssize_t w = pwrite(b->fd, &r, sizeof r, 0);
    lock_byte(b->fd, BUCKET_LOCK, F_OFD_SETLK, F_UNLCK);
    if (w != (ssize_t)sizeof r)
        return -1;
    return wait_ns ? wait_ns / 1000000 + 1 : 0;
}

/* ---- acquire / release ---- */

/* Sleeps ms with up to 25 % jitter, never past the deadline. */
static void nap(int64_t ms, int64_t deadline_ms)
{
    ms += ms / 4 ? (int64_t)(rnd() % (unsigned)(ms / 4 + 1)) : 0;
    int64_t left = deadline_ms - agx_clock_ms();
    agx_clock_sleep_ms(ms < left ? ms : left);
}

static int too_long(const bstate *b, const char *what, int64_t waited_ms, agx_error *err)
{
    agx_error_set(err, AGX_ERR_RATE_LIMITED, "admission control: no create on backend '%s' within "
                  "the create's timeout (%lld ms waited for %s); raise the timeout, or the limits "
                  "(AGENTIX_MAX_SANDBOXES=%u, AGENTIX_CREATE_RATE=%g)", b->name,
                  (long long)waited_ms, what, b->o.max_live, b->o.creates_per_s);
    if (err)
        err->retriable = 1;
    return AGX_ERR_RATE_LIMITED;
}

static int wait_slot(bstate *b, int64_t deadline_ms, int64_t t0, bool *waited, int *slot,
                     agx_error *err)
{
    for (int64_t pause = 5;; pause = pause * 2 < POLL_MAX_MS ? pause * 2 : POLL_MAX_MS) {
        lock();
        int s = take_slot(b, err);
        pthread_mutex_unlock(&mu);
        if (s >= 0) {
            *slot = s;
            return 0;
        }
        if (s == -2)
            return err ? err->code : AGX_ERR_IO;
        if (agx_clock_ms() >= deadline_ms)
            return too_long(b, "a free slot", agx_clock_ms() - t0, err);
        *waited = true;
        nap(pause, deadline_ms);
    }
}

static int wait_token(bstate *b, int64_t deadline_ms, int64_t t0, bool *waited, agx_error *err)
{
    for (;;) {
        lock();
        double rate = b->o.creates_per_s, burst = b->o.burst ? b->o.burst : 1;
        pthread_mutex_unlock(&mu);
        int64_t wait = bucket_take(b, rate, burst);
        if (wait == 0)
            return 0;
        if (wait < 0)
            return agx_error_set(err, AGX_ERR_IO, "admission control: the rate bucket of backend "
                                 "'%s': %s", b->name, strerror(errno));
        if (agx_clock_ms() + wait > deadline_ms)
            return too_long(b, "the create rate or a service's Retry-After", agx_clock_ms() - t0, err);
        *waited = true;
        nap(wait < POLL_MAX_MS ? wait : POLL_MAX_MS, deadline_ms);
    }
}

int agx_admission_acquire(const char *backend, int64_t deadline_ms, int *slot, agx_error *err)
{
    *slot = -1;
    lock();
    bstate *b = state_of(backend, err);
    bool capped = b && b->o.max_live > 0, limited = b && b->o.creates_per_s > 0;
    int rc = !b ? (err ? err->code : AGX_ERR_NO_MEMORY)
                : (capped || limited) ? open_state(b, err) : 0;
    pthread_mutex_unlock(&mu);
    if (rc || (!capped && !limited)) {
        if (!rc) {
            lock();
            b->admitted++;
            pthread_mutex_unlock(&mu);
        }
        return rc;
    }
    /* The knobs and the descriptor stay as they are from here: states are never freed. */
    int64_t t0 = agx_clock_ms();
    bool waited = false;
    if (capped && (rc = wait_slot(b, deadline_ms, t0, &waited, slot, err)) != 0)
        return rc;
    if (limited && (rc = wait_token(b, deadline_ms, t0, &waited, err)) != 0) {
        agx_admission_release(backend, *slot);
        *slot = -1;
        return rc;
    }
    lock();
    b->admitted++;
    b->waited += waited;
    pthread_mutex_unlock(&mu);
    return 0;
}

void agx_admission_release(const char *backend, int slot)
{
    if (slot < 0 || !backend)
        return;
    lock();
    for (bstate *b = states; b; b = b->next)
        if (strcmp(b->name, backend) == 0)
            give_slot(b, slot);
    pthread_mutex_unlock(&mu);
}

/* ---- public ---- */

void agx_admission_options_init(agx_admission_options *opts)
{
    if (!opts)
        return;
    memset(opts, 0, sizeof *opts);
    opts->struct_size = sizeof *opts;
    opts->burst = 1;
}

int agx_admission_set(const char *backend, const agx_admission_options *opts, agx_error *err)
{
    agx_error_clear(err);
    if (!backend || !opts || opts->struct_size != sizeof *opts)
        return agx_error_set(err, AGX_ERR_INVALID_ARGUMENT, "agx_admission_set: a backend name "
                             "and options from agx_admission_options_init are required");
    if (opts->max_live > MAX_LIVE || !isfinite(opts->creates_per_s) || opts->creates_per_s < 0 ||
        opts->creates_per_s > MAX_RATE || opts->burst < 1 || opts->burst > MAX_LIVE)
        return agx_error_set(err, AGX_ERR_INVALID_ARGUMENT, "agx_admission_set: max_live 0..%d, "
                             "creates_per_s 0..%g, burst 1..%d", MAX_LIVE, MAX_RATE, MAX_LIVE);
    lock();
    bstate *b = state_of(backend, err);
    if (b) {
        b->o = *opts;
        b->set = true;
    }
    pthread_mutex_unlock(&mu);
    return b ? 0 : (err ? err->code : AGX_ERR_NO_MEMORY);
}

int agx_admission_stats_get(const char *backend, agx_admission_stats *out, agx_error *err)
{
    agx_error_clear(err);
    if (!backend || !out)
        return agx_error_set(err, AGX_ERR_INVALID_ARGUMENT, "agx_admission_stats_get: a backend "
                             "name and out are required");
    memset(out, 0, sizeof *out);
    lock();
    bstate *b = state_of(backend, err);
    int rc = b ? 0 : (err ? err->code : AGX_ERR_NO_MEMORY);
    if (b && b->o.max_live > 0)
        open_state(b, NULL); /* other processes' slots are counted through the file */
    if (b) {
        out->live_process = b->held;
        out->admitted = b->admitted;
        out->waited = b->waited;
        out->live_host = b->held;
        /* Slots held by other processes: our own descriptor's locks never show as conflicts. */
        for (unsigned i = 0; b->fd >= 0 && i < b->o.max_live; i++) {
            if (i < b->own_n && b->own[i])
                continue;
            struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = SLOT_BASE + i,
                               .l_len = 1};
            if (fcntl(b->fd, F_OFD_GETLK, &fl) == 0 && fl.l_type != F_UNLCK)
                out->live_host++;
        }
    }
    pthread_mutex_unlock(&mu);
    return rc;
}

void agx_admission_defer(const char *backend, int64_t ms)
{
    if (!backend || ms <= 0)
        return;
    if (ms > 3600000)
        ms = 3600000;
    lock();
    bstate *b = state_of(backend, NULL);
    bool use = b && b->o.creates_per_s > 0 && open_state(b, NULL) == 0;
    pthread_mutex_unlock(&mu);
    if (!use || lock_byte(b->fd, BUCKET_LOCK, F_OFD_SETLKW, F_WRLCK) != 0)
        return;
    int64_t now = mono_ns();
    bucket_rec r;
    rec_read(b->fd, &r, b->o.burst ? b->o.burst : 1, now);
    if (now + ms * 1000000 > r.not_before_ns)
        r.not_before_ns = now + ms * 1000000;
    if (pwrite(b->fd, &r, sizeof r, 0) != (ssize_t)sizeof r) {
        /* best effort: the service's own 429 answers stay the bound */
    }
    lock_byte(b->fd, BUCKET_LOCK, F_OFD_SETLK, F_UNLCK);
}
