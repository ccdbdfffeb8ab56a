/* test_attack_record.c — attack 6 (issue 13), on the local backend: forged records. Code in the
 * sandbox rewrites every sandbox record it can find under the backend's root with the pid and
 * start time of an unrelated process; `agentix delete` (another host process, which knows the
 * sandbox only from disk) must not touch that process, must stop the real server, and must only
 * say "deleted" when nothing of the sandbox runs.
 *   test_attack_record <agentix-server> <module dir> <agentix cli> */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "attack.h"
#include "check.h"

/* An unrelated process in its own session, like a user's long-running job. */
static pid_t start_victim(void)
{
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        setsid();
        execlp("sleep", "sleep", "1009", (char *)NULL);
        _exit(127);
    }
    return pid;
}

int main(int argc, char **argv)
{
    atk_init(argc, argv);
    CHECK_MSG(argc >= 4, "usage: %s <agentix-server> <module dir> <agentix cli>", argv[0]);
    const char *cli = argv[3];
    atk_sandbox s;
    atk_start(&s, NULL);
    pid_t server = s.pid;
    uint64_t server_ticks = atk_start_ticks(server);
    pid_t victim = start_victim();
    atk_sleep_ms(50);
    uint64_t victim_ticks = atk_start_ticks(victim);
    CHECK(victim_ticks);

    /* The sandbox's code forges every record of itself it can reach. */
    char forged[512], cmd[2048], out[64];
    snprintf(forged, sizeof forged,
             "{\"id\":\"%s\",\"pid\":%d,\"pid_start\":%llu,\"port\":%d,\"labels\":{},"
             "\"owner_pid\":1,\"created_at\":1}",
             agx_sandbox_id(s.sb), (int)victim, (unsigned long long)victim_ticks, s.port);
    snprintf(cmd, sizeof cmd,
             "n=0; for f in $(grep -rl '%s' '%s' 2>/dev/null); do "
             "  case \"$f\" in *.json) printf '%%s' '%s' > \"$f\" && n=$((n+1));; esac; "
             "done; echo $n",
             agx_sandbox_id(s.sb), s.root, forged);
    sh_client *c = atk_connect(&s);
    CHECK(atk_bash(c, "forge", cmd, out, sizeof out) == 0);
    int written = atoi(out);
    sh_close(c);
    CHECK_MSG(written > 0, "the sandbox's code found no record to forge under %s", s.root);

    /* Another host process deletes it, knowing it only from disk. */
    char line[2048];
    snprintf(line, sizeof line, "AGENTIX_LOCAL_ROOT='%s' '%s' delete --backend local '%s' 2>&1", s.root,
             cli, agx_sandbox_id(s.sb));
    FILE *p = popen(line, "r");
    CHECK(p);
    char text[2048] = "";
    size_t n = fread(text, 1, sizeof text - 1, p);
    text[n] = '\0';
    int st = pclose(p);
    bool victim_alive = atk_alive(victim, victim_ticks);
    bool server_alive = atk_alive(server, server_ticks);
    atk_figure("record.forged", "records_forged=%d cli_exit=%d victim_alive=%d server_alive=%d",
               written, WIFEXITED(st) ? WEXITSTATUS(st) : -1, victim_alive, server_alive);
    kill(victim, SIGKILL);
    waitpid(victim, NULL, 0);
    CHECK_MSG(victim_alive, "delete killed an unrelated process named by a forged record");
    CHECK_MSG(!server_alive, "delete left the real server running (it said: %s)", text);
    CHECK_MSG(WIFEXITED(st) && WEXITSTATUS(st) == 0, "delete failed: %s", text);
    CHECK_CONTAINS(text, "deleted");
    atk_delete(&s); /* this process's instance: already gone, succeeds */
    printf("test_attack_record: ok\n");
    return 0;
}
