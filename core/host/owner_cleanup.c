/* owner_cleanup.c — the opt-in SIGINT/SIGTERM cleanup on the host: the signal handler only writes
 * the signal number to a self-pipe; a thread reading the pipe deletes every sandbox the owner
 * registry holds (owner.c), waits for creates in flight, then re-raises the signal with its
 * default disposition so the process dies of it as it would have. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include "agentix/clock.h"
#include "agentix/fleet.h"
#include "core/host/owner.h"

#define CLEANUP_DEFAULT_TIMEOUT_MS 60000

static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static int g_pipe[2] = {-1, -1};
static pthread_t g_thread;
static bool g_installed;
static int g_timeout_ms;
static struct sigaction g_old_int, g_old_term;
static volatile sig_atomic_t g_cleaning;
static volatile pid_t g_owner_pid; /* a forked child inherits the handler, not the thread */

static void on_signal(int sig)
{
    int saved = errno;
    if (getpid() != g_owner_pid || g_cleaning) {
        /* A second signal: stop cleaning and die now (agx_gc collects the rest). In a forked
         * child: the pipe is the parent's, so behave as if no handler were installed. */
        signal(sig, SIG_DFL);
        raise(sig);
    } else {
        unsigned char b = (unsigned char)sig;
        ssize_t w = write(g_pipe[1], &b, 1);
        (void)w; /* a full pipe already holds a pending signal */
    }
    errno = saved;
}

static void die_of(int sig)
{
    signal(sig, SIG_DFL);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, sig);
    pthread_sigmask(SIG_UNBLOCK, &set, NULL);
    raise(sig);
    /* raise returns only if something else handles or ignores it again: exit the same way. */
    _exit(128 + sig);
}

static void *cleanup_main(void *arg)
{
    (void)arg;
    for (;;) {
        unsigned char b = 0;
        ssize_t got = read(g_pipe[0], &b, 1);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0 || b == 0)
            return NULL; /* uninstall */
        g_cleaning = 1;
        agx_owner_set_closing(true);
        agx_owner_sweep();
        agx_owner_wait_inflight(agx_clock_ms() + g_timeout_ms);
        agx_owner_sweep(); /* what landed while closing was deleted by its creator; be sure */
        die_of(b);
    }
}

int agx_cleanup_install(int timeout_ms, agx_error *err)
{
    pthread_mutex_lock(&g_mu);
    if (g_installed) {
        pthread_mutex_unlock(&g_mu);
        return 0;
    }
    g_timeout_ms = timeout_ms > 0 ? timeout_ms : CLEANUP_DEFAULT_TIMEOUT_MS;
    int rc = 0;
    if (pipe2(g_pipe, O_CLOEXEC) != 0) {
        rc = agx_error_set(err, AGX_ERR_IO, "agx_cleanup_install: pipe2: %s", strerror(errno));
    } else {
        fcntl(g_pipe[1], F_SETFL, O_NONBLOCK);
        /* The thread must not take the signals itself: it blocks them; the handler runs on any
         * other thread. */
        sigset_t block, old;
        sigemptyset(&block);
        sigaddset(&block, SIGINT);
        sigaddset(&block, SIGTERM);
        pthread_sigmask(SIG_BLOCK, &block, &old);
        int e = pthread_create(&g_thread, NULL, cleanup_main, NULL);
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        if (e) {
            rc = agx_error_set(err, AGX_ERR_IO, "agx_cleanup_install: starting its thread: %s", strerror(e));
            close(g_pipe[0]);
            close(g_pipe[1]);
            g_pipe[0] = g_pipe[1] = -1;
        }
    }
    if (rc == 0) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        g_owner_pid = getpid();
        sa.sa_handler = on_signal;
        sa.sa_flags = SA_RESTART;
        sigemptyset(&sa.sa_mask);
        /* A signal the process was started ignoring (nohup, `&` in a non-interactive shell)
         * stays ignored. */
        sigaction(SIGINT, NULL, &g_old_int);
        sigaction(SIGTERM, NULL, &g_old_term);
        if (g_old_int.sa_handler != SIG_IGN)
            sigaction(SIGINT, &sa, NULL);
        if (g_old_term.sa_handler != SIG_IGN)
            sigaction(SIGTERM, &sa, NULL);
        g_installed = true;
    }
    pthread_mutex_unlock(&g_mu);
    return rc;
}

void agx_cleanup_uninstall(void)
{
    pthread_mutex_lock(&g_mu);
    if (!g_installed) {
        pthread_mutex_unlock(&g_mu);
        return;
    }
    sigaction(SIGINT, &g_old_int, NULL);
    sigaction(SIGTERM, &g_old_term, NULL);
    unsigned char stop = 0;
    while (write(g_pipe[1], &stop, 1) < 0 && errno == EINTR) {
    }
    pthread_join(g_thread, NULL);
    close(g_pipe[0]);
    close(g_pipe[1]);
    g_pipe[0] = g_pipe[1] = -1;
    g_installed = false;
    pthread_mutex_unlock(&g_mu);
}
