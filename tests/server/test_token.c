/* test_token.c — the token holder of agentix-server (runtime/server/token.c): where the token comes
 * from (a descriptor, or the environment, scrubbed in place), the refusal to start without one,
 * the explicit modes (none; claim: set once later, every check false until then), and the
 * comparison. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "runtime/server/server.h"

extern char **environ;

static void clear(void)
{
    unsetenv("AGENTIX_TOKEN");
    unsetenv("AGENTIX_TOKEN_FD");
    unsetenv("AGENTIX_AUTH");
    unsetenv("AGENTIX_CLAIM_SECRET");
    unsetenv("AGENTIX_CLAIM_SECRET_FD");
}

static bool env_holds(const char *needle)
{
    for (char **e = environ; *e; e++)
        if (strstr(*e, needle))
            return true;
    return false;
}

static void test_fd(void)
{
    clear();
    int p[2];
    CHECK(pipe(p) == 0);
    CHECK(write(p[1], "s3cret-from-fd\n", 15) == 15);
    close(p[1]);
    char v[16], msg[256];
    snprintf(v, sizeof v, "%d", p[0]);
    setenv("AGENTIX_TOKEN_FD", v, 1);
    srv_token t;
    CHECK(srv_token_load(&t, msg, sizeof msg) == 0);
    CHECK(t.mode == SRV_AUTH_TOKEN && t.set);
    CHECK(srv_token_check(&t, "s3cret-from-fd", 14));
    CHECK(!srv_token_check(&t, "s3cret-from-f", 13));
    CHECK(!srv_token_check(&t, "s3cret-from-fd\n", 15));
    CHECK(!srv_token_check(&t, NULL, 0));
    CHECK(fcntl(p[0], F_GETFD) == -1); /* closed */
    srv_token_wipe(&t);
    CHECK(!srv_token_check(&t, "s3cret-from-fd", 14));
}

static void test_env_scrubbed(void)
{
    clear();
    setenv("AGENTIX_TOKEN", "from-the-env-1234", 1);
    char *kept = getenv("AGENTIX_TOKEN"); /* the bytes /proc/<pid>/environ would show */
    srv_token t;
    char msg[256];
    CHECK(srv_token_load(&t, msg, sizeof msg) == 0);
    CHECK(srv_token_check(&t, "from-the-env-1234", 17));
    CHECK(!getenv("AGENTIX_TOKEN"));
    CHECK(!env_holds("from-the-env"));
    CHECK(kept[0] == '\0'); /* overwritten in place, not only unlinked from environ */
}

static void test_refusals(void)
{
    srv_token t;
    char msg[256];
    clear();
    CHECK(srv_token_load(&t, msg, sizeof msg) == -1);
    CHECK_CONTAINS(msg, "AGENTIX_AUTH=none");
    setenv("AGENTIX_TOKEN", "", 1);
    CHECK(srv_token_load(&t, msg, sizeof msg) == -1);
    CHECK_CONTAINS(msg, "empty");
    clear();
    setenv("AGENTIX_AUTH", "none", 1);
    setenv("AGENTIX_TOKEN", "x", 1);
    CHECK(srv_token_load(&t, msg, sizeof msg) == -1); /* both: ambiguous */
    CHECK(!getenv("AGENTIX_TOKEN"));                  /* scrubbed all the same */
    clear();
    setenv("AGENTIX_TOKEN_FD", "9999", 1);
    CHECK(srv_token_load(&t, msg, sizeof msg) == -1);
    clear();
    setenv("AGENTIX_AUTH", "sometimes", 1);
    CHECK(srv_token_load(&t, msg, sizeof msg) == -1);
    char big[SRV_TOKEN_MAX + 2];
    memset(big, 'a', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    clear();
    setenv("AGENTIX_TOKEN", big, 1);
    CHECK(srv_token_load(&t, msg, sizeof msg) == -1);
}

static void test_none(void)
{
    clear();
    setenv("AGENTIX_AUTH", "none", 1);
    srv_token t;
    char msg[256];
    CHECK(srv_token_load(&t, msg, sizeof msg) == 0);
    CHECK(srv_token_check(&t, NULL, 0) && srv_token_check(&t, "anything", 8));
    CHECK_CONTAINS(srv_token_describe(&t), "without authentication");
    CHECK(srv_token_claim(&t, "x", 1, msg, sizeof msg) == -1);
}

static void test_claim(void)
{
    clear();
    setenv("AGENTIX_AUTH", "claim", 1);
    srv_token t;
    char msg[256];
    CHECK(srv_token_load(&t, msg, sizeof msg) == 0);
    CHECK(!srv_token_check(&t, NULL, 0));
    CHECK(!srv_token_check(&t, "", 0)); /* nothing matches before the claim */
    CHECK(srv_token_claim(&t, "", 0, msg, sizeof msg) == -1);
    CHECK(srv_token_claim(&t, "claimed-token", 13, msg, sizeof msg) == 0);
    CHECK(srv_token_check(&t, "claimed-token", 13));
    CHECK(srv_token_claim(&t, "another", 7, msg, sizeof msg) == -1); /* once */
    CHECK_CONTAINS(msg, "already");
    CHECK(srv_token_check(&t, "claimed-token", 13) && !srv_token_check(&t, "another", 7));
}

/* Claim mode with a claim secret: scrubbed like the token, required of every claim; refused
 * outside claim mode. */
static void test_claim_secret(void)
{
    clear();
    setenv("AGENTIX_AUTH", "claim", 1);
    setenv("AGENTIX_CLAIM_SECRET", "claim-secret-5678", 1);
    srv_token t;
    char msg[256];
    CHECK(srv_token_load(&t, msg, sizeof msg) == 0);
    CHECK(!getenv("AGENTIX_CLAIM_SECRET") && !env_holds("claim-secret-5678"));
    CHECK(!srv_token_claim_allowed(&t, NULL, 0));
    CHECK(!srv_token_claim_allowed(&t, "claim-secret-567", 16));
    CHECK(srv_token_claim_allowed(&t, "claim-secret-5678", 17));
    srv_token_wipe(&t);
    clear();
    setenv("AGENTIX_AUTH", "claim", 1);
    CHECK(srv_token_load(&t, msg, sizeof msg) == 0);
    CHECK(srv_token_claim_allowed(&t, NULL, 0)); /* no secret: the first claim wins */
    clear();
    setenv("AGENTIX_TOKEN", "a-token", 1);
    setenv("AGENTIX_CLAIM_SECRET", "claim-secret-5678", 1);
    CHECK(srv_token_load(&t, msg, sizeof msg) == -1);
    CHECK_CONTAINS(msg, "claim only");
    CHECK(!env_holds("claim-secret-5678") && !env_holds("a-token"));
    clear();
}

int main(void)
{
    test_fd();
    test_env_scrubbed();
    test_refusals();
    test_none();
    test_claim();
    test_claim_secret();
    printf("test_token: ok\n");
    return 0;
}
