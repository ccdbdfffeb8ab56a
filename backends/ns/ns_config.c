/* ns_config.c — what the ns backend reads from its environment at construct (and checks at once,
 * so a machine that cannot run it fails there with what to do), and the per-sandbox options.
 *
 *   AGENTIX_NS_ROOT    state dir: sandboxes/ and the layer cache (default /var/lib/agentix-ns)
 *   AGENTIX_NS_INIT    agentix-ns-init (default <libdir>/agentix/bin/agentix-ns-init)
 *   AGENTIX_NS_PASTA   pasta, for the private network (default: /usr/bin/pasta if present)
 *   AGENTIX_NS_USERNS  1/0: put the sandbox's root in its own user namespace (default 1 where
 *                      the kernel allows user namespaces)
 *   DOCKER_HOST        unix:///path of the Docker Engine that task images are exported from */
#include "backends/ns/ns_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>


#define ROOT_MAX 60 /* <root>/sandboxes/<id>/run/agentix.sock must fit sun_path (108) */

static int read_long(const char *path, long *out)
{
    FILE *f = fopen(path, "re");
    if (!f)
        return -1;
    int ok = fscanf(f, "%ld", out) == 1;
    fclose(f);
    return ok ? 0 : -1;
}

static int userns_available(void)
{
    long max = 0;
    return access("/proc/self/ns/user", F_OK) == 0 &&
           read_long("/proc/sys/user/max_user_namespaces", &max) == 0 && max > 0;
}

static int fs_available(const char *name)
{
    FILE *f = fopen("/proc/filesystems", "re");
    if (!f)
        return 0;
    char line[128];
    int found = 0;
    while (!found && fgets(line, sizeof line, f)) {
        char *tab = strrchr(line, '\t');
        char *w = tab ? tab + 1 : line;
        w[strcspn(w, "\n")] = '\0';
        found = strcmp(w, name) == 0;
    }
    fclose(f);
    return found;
}

static int executable(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode) && access(path, X_OK) == 0;
}

static int check_privileges(agx_error *err)
{
    if (geteuid() == 0)
        return 0;
    if (!userns_available())
        return agx_error_set(err, AGX_ERR_UNSUPPORTED,
                             "the ns backend needs root, and this process is not root and user "
                             "namespaces are unavailable (/proc/sys/user/max_user_namespaces is "
                             "0 or missing); run the host as root");
    return agx_error_set(err, AGX_ERR_UNSUPPORTED,
                         "the ns backend runs as root only (it mounts overlayfs roots, manages "
                         "cgroups and writes user namespace maps for its sandboxes); rootless "
                         "operation through user namespaces is not implemented yet: run the "
                         "host as root, or use the docker backend");
}

static int find_paths(agx_ns *ns, agx_error *err)
{
    const char *root = getenv("AGENTIX_NS_ROOT");
    if (root && (root[0] != '/' || strlen(root) > ROOT_MAX || strstr(root, "//")))
        return agx_error_set(err, AGX_ERR_INVALID_ARGUMENT,
                             "AGENTIX_NS_ROOT='%s' must be an absolute path of at most %d bytes "
                             "(its sandboxes' socket paths must fit 108 bytes)", root, ROOT_MAX);
    snprintf(ns->root, sizeof ns->root, "%s", root && *root ? root : "/var/lib/agentix-ns");
    const char *init = getenv("AGENTIX_NS_INIT");
    if (init && *init)
        snprintf(ns->init_path, sizeof ns->init_path, "%s", init);
    else if (agx_runtime_bin_path("agentix-ns-init", ns->init_path, sizeof ns->init_path, NULL) != 0)
        return agx_error_set(err, AGX_ERR_NOT_FOUND, "cannot locate libagentix's folder to find "
                             "agentix-ns-init; set AGENTIX_NS_INIT to its path");
    if (!executable(ns->init_path))
        return agx_error_set(err, AGX_ERR_NOT_FOUND,
                             "agentix-ns-init is not an executable file at '%s'; install the "
                             "runtime beside libagentix or set AGENTIX_NS_INIT", ns->init_path);
    const char *pasta = getenv("AGENTIX_NS_PASTA");
    if (pasta && *pasta && !executable(pasta))
        return agx_error_set(err, AGX_ERR_INVALID_ARGUMENT,
                             "AGENTIX_NS_PASTA='%s' is not an executable file", pasta);
    const char *guess[] = {pasta, "/usr/bin/pasta", "/usr/sbin/pasta"};
    for (size_t i = 0; i < 3 && !ns->pasta[0]; i++)
        if (guess[i] && *guess[i] && executable(guess[i]))
            snprintf(ns->pasta, sizeof ns->pasta, "%s", guess[i]);
    const char *dh = getenv("DOCKER_HOST");
    if (dh && *dh && strncmp(dh, "unix://", 7) != 0)
        return agx_error_set(err, AGX_ERR_INVALID_ARGUMENT,
                             "DOCKER_HOST='%s': the ns backend exports images from a local "
                             "Docker Engine socket only (unix:///path)", dh);
    const char *sock = dh && *dh ? dh + 7 : "/var/run/docker.sock";
    if (strlen(sock) >= sizeof ns->docker_socket)
        return agx_error_set(err, AGX_ERR_INVALID_ARGUMENT, "DOCKER_HOST socket path is too long");
    snprintf(ns->docker_socket, sizeof ns->docker_socket, "%s", sock);
    return 0;
}

int agx_ns_config_load(agx_ns *ns, agx_error *err)
{
    int rc = check_privileges(err);
    if (!rc && !fs_available("overlay"))
        rc = agx_error_set(err, AGX_ERR_UNSUPPORTED,
                           "overlayfs is not available in this kernel (no 'overlay' in "
                           "/proc/filesystems); load it with `modprobe overlay`");
    if (!rc)
        rc = find_paths(ns, err);
    if (rc)
        return rc;
    const char *u = getenv("AGENTIX_NS_USERNS");
    if (u && *u && strcmp(u, "0") != 0 && strcmp(u, "1") != 0)
        return agx_error_set(err, AGX_ERR_INVALID_ARGUMENT, "AGENTIX_NS_USERNS='%s' must be 0 or 1",
                             u);
    ns->userns = u && *u ? u[0] == '1' : userns_available();
    if (ns->userns && !userns_available())
        return agx_error_set(err, AGX_ERR_UNSUPPORTED,
                             "AGENTIX_NS_USERNS=1 but user namespaces are unavailable here "
                             "(/proc/sys/user/max_user_namespaces); set AGENTIX_NS_USERNS=0");
    /* A folder without a record may belong to a create that is about to write it: the sweep
     * leaves such folders until they are this old. Tests that sweep right after killing their
     * only creators set 0. */
    const char *stale = getenv("AGENTIX_NS_STALE_DIR_MS");
    ns->stale_dir_ms = 60000;
    if (stale && *stale) {
        char *end;
        errno = 0;
        long long v = strtoll(stale, &end, 10);
        if (errno || *end || v < 0 || v > 86400000 || stale[0] == '-' || stale[0] == '+')
            return agx_error_set(err, AGX_ERR_INVALID_ARGUMENT, "AGENTIX_NS_STALE_DIR_MS='%s' "
                                 "must be milliseconds from 0 to 86400000", stale);
        ns->stale_dir_ms = v;
    }
    long last = 40;
    read_long("/proc/sys/kernel/cap_last_cap", &last);
    ns->cap_last = (int)(last > 0 && last < 64 ? last : 40);
    return 0;
}

static int parse_bool(const char *k, const char *v, int *out, agx_error *err)
{
    if (strcmp(v, "1") == 0 || strcmp(v, "true") == 0)
        *out = 1;
    else if (strcmp(v, "0") == 0 || strcmp(v, "false") == 0)
        *out = 0;
    else
        return agx_error_set(err, AGX_ERR_INVALID_ARGUMENT, "%s='%s' must be 0 or 1", k, v);
    return 0;
}

static int hostname_valid(const char *h)
{
    size_t n = strlen(h);
    if (n == 0 || n > 63)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!((h[i] >= 'a' && h[i] <= 'z') || (h[i] >= 'A' && h[i] <= 'Z') ||
              (h[i] >= '0' && h[i] <= '9') || h[i] == '-' || h[i] == '.'))
            return 0;
    return 1;
}

static int read_option(const agx_ns *ns, const char *k, const char *v, agx_ns_opts *o,
                       agx_error *err)
{
    if (strcmp(k, "ns.network") == 0) {
        if (strcmp(v, "none") == 0)
            o->net = AGX_NS_NET_NONE;
        else if (strcmp(v, "private") == 0)
            o->net = AGX_NS_NET_PRIVATE;
        else
            return agx_error_set(err, AGX_ERR_INVALID_ARGUMENT,
                                 "ns.network='%s' must be 'none' or 'private'", v);
        if (o->net == AGX_NS_NET_PRIVATE && !ns->pasta[0])
            return agx_error_set(err, AGX_ERR_UNSUPPORTED,
                                 "ns.network=private needs pasta (Debian package 'passt'); "
                                 "install it or set AGENTIX_NS_PASTA");
        return 0;
    }
    if (strcmp(k, "ns.host_loopback") == 0)
        return parse_bool(k, v, &o->host_loopback, err);
    if (strcmp(k, "ns.hostname") == 0) {
        if (!hostname_valid(v))
            return agx_error_set(err, AGX_ERR_INVALID_ARGUMENT,
                                 "ns.hostname='%.70s' must be 1-63 letters, digits, '-' or '.'", v);
        snprintf(o->hostname, sizeof o->hostname, "%s", v);
        return 0;
    }
    if (strcmp(k, "ns.pids") == 0) {
        char *end;
        errno = 0;
        long long n = strtoll(v, &end, 10);
        if (errno || *end || n < 8 || n > 4194304)
            return agx_error_set(err, AGX_ERR_INVALID_ARGUMENT,
                                 "ns.pids='%s' must be a whole number in 8..4194304", v);
        o->pids = n;
        return 0;
    }
    return agx_error_set(err, AGX_ERR_INVALID_ARGUMENT,
                         "unknown ns option '%s' (known: ns.network, ns.host_loopback, "
                         "ns.hostname, ns.pids)", k);
}

int agx_ns_opts_read(const agx_ns *ns, const agx_sandbox_config *cfg, agx_ns_opts *o,
                     agx_error *err)
{
    memset(o, 0, sizeof *o);
    o->cpus = agx_sandbox_config_cpus(cfg);
    o->memory = agx_sandbox_config_memory(cfg);
    int64_t t = agx_sandbox_config_timeout_ms(cfg);
    o->timeout_ms = t > 0 ? t : AGX_NS_DEFAULT_TIMEOUT_MS;
    if (o->cpus < 0 || o->cpus > 4096)
        return agx_error_set(err, AGX_ERR_INVALID_ARGUMENT, "cpus=%g is out of range", o->cpus);
    if (o->memory && o->memory < (4u << 20))
        return agx_error_set(err, AGX_ERR_INVALID_ARGUMENT,
                             "memory=%llu bytes is below the 4 MiB the runtime needs",
                             (unsigned long long)o->memory);
    const agx_kv *opts = agx_sandbox_config_options_const(cfg);
    for (size_t i = 0; opts && i < agx_kv_count(opts); i++) {
        const char *k = agx_kv_key_at(opts, i);
        if (strncmp(k, "ns.", 3) != 0)
            continue; /* other backends' options */
        int rc = read_option(ns, k, agx_kv_value_at(opts, i), o, err);
        if (rc)
            return rc;
    }
    return 0;
}
