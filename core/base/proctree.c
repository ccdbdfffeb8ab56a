/* proctree.c — finding and killing a process tree through /proc (see proctree.h). Written with
 * plain system calls and caller memory only (no malloc, no stdio), because agentix.bash runs it in
 * a subreaper forked from the threaded worker. */
#include "agentix/proctree.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define MAX_ROUNDS 64 /* stop rounds before giving up on a tree that keeps changing */

/* ---- parsing /proc/<pid>/stat ---- */

static const char *skip_field(const char *p, const char *end)
{
    while (p < end && *p != ' ')
        p++;
    return p < end ? p + 1 : NULL;
}

static int parse_u64(const char *p, const char *end, uint64_t *out)
{
    uint64_t v = 0;
    const char *s = p;
    while (p < end && *p >= '0' && *p <= '9') {
        if (v > (UINT64_MAX - 9) / 10)
            return -1;
        v = v * 10 + (uint64_t)(*p - '0');
        p++;
    }
    if (p == s || (p < end && *p != ' ' && *p != '\n'))
        return -1;
    *out = v;
    return 0;
}

static int parse_long(const char *p, const char *end, long *out)
{
    bool neg = p < end && *p == '-';
    uint64_t v;
    if (parse_u64(p + neg, end, &v) != 0 || v > (uint64_t)INT32_MAX + 1)
        return -1;
    *out = neg ? -(long)v : (long)v;
    return 0;
}

int agx_proc_stat_parse(const char *text, size_t len, agx_proc_entry *out)
{
    const char *end = text + len, *open = memchr(text, '(', len), *close = NULL;
    /* The command name is between the first '(' and the last ')' and may hold both. */
    for (const char *p = end; p > text; p--)
        if (p[-1] == ')') {
            close = p - 1;
            break;
        }
    if (!open || !close || close < open || end - close < 4 || close[1] != ' ')
        return -1;
    long pid;
    if (open == text || open[-1] != ' ' || parse_long(text, open - 1, &pid) != 0 || pid <= 0)
        return -1;
    size_t clen = (size_t)(close - open - 1);
    if (clen >= sizeof out->comm)
        clen = sizeof out->comm - 1; /* kernel workers' names run longer than a task's 15 bytes */
    const char *p = close + 2;
    char state = *p;
    if (state < 'A' || state > 'z')
        return -1;
    long ppid, group = 0, session = 0;
    uint64_t start = 0;
    p = skip_field(p, end); /* field 4 */
    if (!p || parse_long(p, end, &ppid) != 0 || ppid < 0)
        return -1;
    p = skip_field(p, end); /* field 5 */
    if (!p || parse_long(p, end, &group) != 0)
        return -1;
    p = skip_field(p, end); /* field 6 */
    if (!p || parse_long(p, end, &session) != 0)
        return -1;
    for (int field = 6; field < 22 && p; field++)
        p = skip_field(p, end);
    if (!p || parse_u64(p, end, &start) != 0)
        return -1;
    out->pid = (pid_t)pid;
    out->ppid = (pid_t)ppid;
    out->pgrp = (pid_t)group;
    out->sid = (pid_t)session;
    out->state = state;
    out->start_ticks = start;
    memcpy(out->comm, open + 1, clen);
    out->comm[clen] = '\0';
    return 0;
}

/* ---- reading /proc without allocating ---- */

static char *put_uint(char *p, unsigned long v)
{
    char tmp[24];
    int n = 0;
    do
        tmp[n++] = (char)('0' + v % 10);
    while ((v /= 10) != 0);
    while (n)
        *p++ = tmp[--n];
    return p;
}

int agx_proc_entry_read(pid_t pid, agx_proc_entry *e)
{
    char path[48] = "/proc/", buf[1024];
    char *p = put_uint(path + 6, (unsigned long)pid);
    memcpy(p, "/stat", 6);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t n;
    do
        n = read(fd, buf, sizeof buf);
    while (n < 0 && errno == EINTR);
    close(fd);
    if (n <= 0)
        return -1;
    return agx_proc_stat_parse(buf, (size_t)n, e);
}

struct linux_dirent64 {
    uint64_t d_ino;
    int64_t d_off;
    unsigned short d_reclen;
    unsigned char d_type;
    char d_name[];
};

/* Every process of this PID namespace into e (cap entries): the count, or -1 when they did not
 * fit or /proc could not be read. */
static long scan_all(agx_proc_entry *e, size_t cap, bool *overflowed)
{
    int dfd = open("/proc", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    *overflowed = false;
    if (dfd < 0)
        return -1;
    char buf[8192] __attribute__((aligned(8)));
    size_t n = 0;
    bool overflow = false;
    for (;;) {
        long got = syscall(SYS_getdents64, dfd, buf, sizeof buf);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0)
            break;
        for (long off = 0; off < got;) {
            struct linux_dirent64 *d = (struct linux_dirent64 *)(buf + off);
            off += d->d_reclen;
            unsigned long pid = 0;
            const char *c = d->d_name;
            for (; *c >= '0' && *c <= '9'; c++)
                pid = pid * 10 + (unsigned long)(*c - '0');
            if (*c || pid == 0)
                continue;
            if (n == cap) {
                overflow = true;
                continue;
            }
            if (agx_proc_entry_read((pid_t)pid, &e[n]) == 0)
                n++;
        }
    }
    close(dfd);
    *overflowed = overflow;
    return (long)n;
}

static long scan(agx_proc_entry *e, size_t cap)
{
    bool over = false;
    long n = scan_all(e, cap, &over);
    return over ? -1 : n;
}

long agx_proc_scan(agx_proc_entry *scratch, size_t cap)
{
    bool over = false;
    return scan_all(scratch, cap, &over);
}

/* A process is in the tree when its parent is (root is). */
size_t agx_proc_tree_select(agx_proc_entry *e, size_t n, pid_t root, bool with_root)
{
    size_t in = 0; /* e[0..in) are members */
    /* root itself first, so the parent test below has something to find */
    for (size_t i = 0; i < n; i++)
        if (e[i].pid == root) {
            agx_proc_entry t = e[0];
            e[0] = e[i];
            e[i] = t;
            in = 1;
            break;
        }
    if (!in)
        return 0;
    for (bool grew = true; grew;) {
        grew = false;
        for (size_t i = in; i < n; i++) {
            bool child = false;
            for (size_t j = 0; j < in && !child; j++)
                child = e[i].ppid == e[j].pid;
            if (child) {
                agx_proc_entry t = e[in];
                e[in] = e[i];
                e[i] = t;
                in++;
                grew = true;
            }
        }
    }
    if (!with_root) { /* drop root from the front */
        e[0] = e[in - 1];
        in--;
    }
    return in;
}

static bool is_dead(char state) { return state == 'Z' || state == 'X' || state == 'x'; }

/* Signals one process if it still is the one scanned (same start time): through a pidfd when the
 * kernel has them, so a pid reused after the check is never hit. */
void agx_proc_signal(const agx_proc_entry *e, int sig)
{
    agx_proc_entry now;
    long fd = syscall(SYS_pidfd_open, e->pid, 0);
    if (agx_proc_entry_read(e->pid, &now) != 0 || now.start_ticks != e->start_ticks || is_dead(now.state)) {
        if (fd >= 0)
            close((int)fd);
        return;
    }
    if (fd >= 0) {
        syscall(SYS_pidfd_send_signal, (int)fd, sig, NULL, 0);
        close((int)fd);
    } else {
        kill(e->pid, sig);
    }
}

bool agx_proc_alive(const agx_proc_entry *e)
{
    agx_proc_entry now;
    return agx_proc_entry_read(e->pid, &now) == 0 && now.start_ticks == e->start_ticks && !is_dead(now.state);
}

static void nap_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

static long mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A cheap fingerprint of a member set, to tell when a round found nothing new. */
static uint64_t fingerprint(const agx_proc_entry *e, size_t n)
{
    uint64_t h = n;
    for (size_t i = 0; i < n; i++)
        h += ((uint64_t)(uint32_t)e[i].pid * 0x9e3779b97f4a7c15ULL) ^ e[i].start_ticks;
    return h;
}

long agx_proc_count_tree(pid_t root, agx_proc_entry *scratch, size_t cap)
{
    long n = scan(scratch, cap);
    if (n < 0)
        return -1;
    size_t in = agx_proc_tree_select(scratch, (size_t)n, root, false);
    long live = 0;
    for (size_t i = 0; i < in; i++)
        live += !is_dead(scratch[i].state);
    return live;
}

long agx_proc_kill_tree(pid_t root, bool with_root, agx_proc_entry *scratch, size_t cap,
                        int timeout_ms)
{
    long deadline = mono_ms() + timeout_ms;
    bool complete = true;
    size_t in = 0;
    uint64_t last = 0;
    /* Freeze: stop every member until a round sees the same set as the one before. */
    for (int round = 0; round < MAX_ROUNDS; round++) {
        bool over = false;
        long n = scan_all(scratch, cap, &over);
        if (n < 0 || over)
            complete = false; /* what fit is still worth stopping */
        if (n < 0)
            n = 0;
        in = agx_proc_tree_select(scratch, (size_t)n, root, with_root);
        uint64_t fp = fingerprint(scratch, in);
        if (round > 0 && fp == last)
            break;
        last = fp;
        for (size_t i = 0; i < in; i++)
            if (!is_dead(scratch[i].state) && scratch[i].state != 'T' && scratch[i].state != 't')
                agx_proc_signal(&scratch[i], SIGSTOP);
        if (round == MAX_ROUNDS - 1)
            complete = false;
    }
    long killed = 0;
    for (size_t i = 0; i < in; i++)
        if (!is_dead(scratch[i].state)) {
            agx_proc_signal(&scratch[i], SIGKILL);
            killed++;
        }
    /* SIGKILL takes effect asynchronously (a process in D state finishes its call first). */
    for (size_t i = 0; i < in;) {
        if (is_dead(scratch[i].state) || !agx_proc_alive(&scratch[i])) {
            i++;
            continue;
        }
        if (mono_ms() >= deadline)
            return -1;
        nap_ms(2);
    }
    return complete ? killed : -1;
}
