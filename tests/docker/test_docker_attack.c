/* test_docker_attack.c — attacks 4 and 6 of issue 13 on the docker backend, where sandboxes are
 * isolated: code in sandbox A (root in its container, docker's default capabilities) hunts for its
 * own token and for sandbox B's in every environment, command line and file it can read, and tries
 * to read its server's environment and memory (agentix-server is not dumpable: without
 * CAP_SYS_PTRACE, /proc/1/environ and /proc/1/mem are closed to it). Then A's code forges records
 * wherever it can write and the host deletes A: only A's container goes, B still serves.
 * Needs dockerd and the test images (scripts/setup.d/docker.sh); fails, never skips, without. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "agentix/client.h"
#include "agentix/deployment.h"
#include "agentix/value.h"
#include "check.h"
#include "token_hunt.h"
#include "docker_count.h"

#define DEBIAN "agx-test-debian:12"
#define BUNDLE "agx-test-bundle-attack:test"

static char run_id[17];
static agx_deployment *dep;

static agx_sandbox *create(void)
{
    agx_sandbox_config *cfg = agx_sandbox_config_new();
    CHECK(cfg && agx_sandbox_config_set_image(cfg, DEBIAN) == 0 &&
          agx_sandbox_config_set_bundle(cfg, BUNDLE) == 0 &&
          agx_kv_set(agx_sandbox_config_labels(cfg), "agentix.test.run", run_id) == 0);
    agx_sandbox *sb = NULL;
    agx_error err;
    CHECK_OK(agx_deployment_create(dep, cfg, &sb, &err), &err);
    agx_sandbox_config_free(cfg);
    return sb;
}

/* agentix.bash::run(command): exit code, stdout into out. */
static int bash(agx_client *c, const char *command, char *out, size_t cap)
{
    agx_value *kw = agx_value_map(), *res = NULL;
    CHECK(kw && agx_value_map_set(kw, "command", agx_value_string(command)) == 0);
    agx_error err;
    CHECK_OK(agx_client_call(c, "agentix.bash::run", NULL, kw, 120000, &res, &err), &err);
    int code = (int)agx_value_get_int64(agx_value_map_get(res, "exit_code"));
    const char *o = agx_value_get_string(agx_value_map_get(res, "stdout"), NULL);
    snprintf(out, cap, "%s", o ? o : "");
    agx_value_free(kw);
    agx_value_free(res);
    return code;
}

static agx_client *connect_to(const agx_sandbox *sb)
{
    agx_client *c = NULL;
    agx_error err;
    agx_client_options opts;
    agx_client_options_init(&opts);
    opts.connect_timeout_ms = 60000;
    CHECK_OK(agx_client_connect_sandbox(sb, &opts, &c, &err), &err);
    return c;
}

/* Places in A's reach that hold needle (split in two halves joined inside the shell, so no command
 * line holds it whole): environments, command lines, and every file outside /proc and /sys. */
static int hunt(agx_client *c, const char *needle)
{
    char cmd[2048], out[256];
    token_hunt_command(needle, "/ --exclude-dir=proc --exclude-dir=sys", cmd, sizeof cmd);
    CHECK(bash(c, cmd, out, sizeof out) == 0);
    return atoi(out);
}

static void tokens(agx_sandbox *a, agx_sandbox *b)
{
    agx_client *c = connect_to(a);
    char out[512];
    int own = hunt(c, agx_sandbox_token(a));
    int other = hunt(c, agx_sandbox_token(b));
    /* The server is pid 1 of the container: its environment and memory are closed to root here. */
    CHECK(bash(c, "id -u; cat /proc/1/environ >/dev/null 2>&1 && echo environ-readable; "
                  "dd if=/proc/1/mem bs=1 count=1 skip=4194304 >/dev/null 2>&1 && echo mem-readable; "
                  "grep -c . /proc/1/cmdline",
               out, sizeof out) == 0);
    printf("figure: token.docker_hunt own_token_found=%d other_token_found=%d server_proc=%s\n", own,
           other, strstr(out, "readable") ? "readable" : "closed");
    CHECK_MSG(own == 0, "sandbox A found its own token in %d places", own);
    CHECK_MSG(other == 0, "sandbox A found sandbox B's token in %d places", other);
    CHECK_MSG(!strstr(out, "environ-readable"), "root in the sandbox read the server's environment");
    CHECK_MSG(!strstr(out, "mem-readable"), "root in the sandbox read the server's memory");
    CHECK_MSG(strncmp(out, "0\n", 2) == 0, "the sandbox code was not root (%s): the check proves "
              "nothing", out);
    agx_client_free(c);
}

static void records(agx_sandbox *a, agx_sandbox *b)
{
    agx_client *c = connect_to(a);
    char out[256];
    /* Forged records everywhere A can write, naming B. */
    char cmd[1024];
    snprintf(cmd, sizeof cmd,
             "for d in / /tmp /opt /root; do printf '{\"id\":\"%s\",\"pid\":1}' > $d/sandbox.json "
             "2>/dev/null; done; echo done",
             agx_sandbox_id(b));
    CHECK(bash(c, cmd, out, sizeof out) == 0);
    agx_client_free(c);
    agx_error err;
    CHECK_OK(agx_deployment_delete(dep, agx_sandbox_id(a), &err), &err);
    agx_sandbox_info *info = NULL;
    CHECK_OK(agx_deployment_get(dep, agx_sandbox_id(b), &info, &err), &err);
    CHECK_MSG(agx_sandbox_info_state(info) == AGX_SANDBOX_RUNNING, "B is %s after A's delete",
              agx_sandbox_state_name(agx_sandbox_info_state(info)));
    agx_sandbox_info_free(info);
    c = connect_to(b);
    CHECK(bash(c, "echo still-here", out, sizeof out) == 0);
    CHECK_STREQ(out, "still-here\n");
    agx_client_free(c);
    printf("figure: record.docker_forged a_deleted=1 b_running=1\n");
}

int main(void)
{
    unsigned char r[8];
    CHECK(getrandom(r, sizeof r, 0) == (ssize_t)sizeof r);
    for (size_t i = 0; i < sizeof r; i++)
        sprintf(run_id + 2 * i, "%02x", r[i]);
    CHECK_MSG(system("'" AGX_CLI "' build --name " BUNDLE " --docker --quiet >/dev/null") == 0,
              "agentix build --docker failed");
    CHECK_MSG(system("sh '" AGX_TEST_SOURCE_DIR "/retire_carriers.sh' " BUNDLE) == 0,
              "retire_carriers.sh failed");
    agx_error err;
    CHECK_OK(agx_load_deployment("docker", &dep, &err), &err);
    agx_sandbox *a = create(), *b = create();
    tokens(a, b);
    records(a, b);
    CHECK_OK(agx_deployment_delete(dep, agx_sandbox_id(b), &err), &err);
    agx_sandbox_free(a);
    agx_sandbox_free(b);
    CHECK(agx_test_docker_count("agentix.test.run", run_id) == 0);
    agx_deployment_free(dep);
    printf("test_docker_attack: ok\n");
    return 0;
}
