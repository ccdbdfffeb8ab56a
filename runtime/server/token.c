/* token.c — the secret every CONNECT must carry (docs/PROTOCOL.md §1): where agentix-server gets
 * it, that nothing readable in the sandbox keeps it, and the one comparison against it.
 *
 * Sources, in order: AGENTIX_TOKEN_FD (a descriptor to read it from, then closed: nothing is left
 * in any environment or file), AGENTIX_TOKEN (then its bytes are overwritten in the environment
 * block the kernel shows as /proc/<pid>/environ, and the variable is removed). Without a token the
 * server refuses to start, unless told AGENTIX_AUTH=none (accept everyone, said in the log) or
 * AGENTIX_AUTH=claim (refuse every CONNECT until the token is set, once, by a separately
 * authenticated step: a pre-warmed pod or a cloud template's runtime gets its per-sandbox token
 * when it is claimed, POST /claim in expiry.c). In claim mode an optional claim secret
 * (AGENTIX_CLAIM_SECRET_FD / AGENTIX_CLAIM_SECRET, read the same way) is what a claim must
 * present; without one the first claim wins. */
#include "runtime/server/server.h"

#include "agentix/expiry.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

extern char **environ;

static int bad(char *msg, size_t len, const char *text)
{
    snprintf(msg, len, "%s", text);
    return -1;
}

/* Overwrites a variable's value where the environment block keeps it, then drops the variable.
 * The initial environment lives in the block the kernel exposes; a value setenv replaced lives on
 * the heap and is overwritten all the same. */
static void scrub_env(const char *name)
{
    size_t n = strlen(name);
    for (char **e = environ; e && *e; e++)
        if (strncmp(*e, name, n) == 0 && (*e)[n] == '=') {
            char *v = *e + n + 1;
            memset(v, 0, strlen(v));
        }
    unsetenv(name);
}

/* A secret (the token, the claim secret): bytes as read, at most SRV_TOKEN_MAX. */
typedef struct secret {
    char *bytes;
    size_t len;
} secret;

/* Reads at most SRV_TOKEN_MAX bytes from fd until EOF, then closes it. */
static int read_fd(int fd, const char *var, secret *out, char *msg, size_t len)
{
    size_t got = 0;
    char extra;
    for (;;) {
        ssize_t r = got < SRV_TOKEN_MAX ? read(fd, out->bytes + got, SRV_TOKEN_MAX - got)
                                        : read(fd, &extra, 1);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            snprintf(msg, len, "%s: cannot read it: %s", var, strerror(errno));
            close(fd);
            return -1;
        }
        if (r == 0)
            break;
        if (got >= SRV_TOKEN_MAX) {
            close(fd);
            snprintf(msg, len, "%s: longer than 4096 bytes", var);
            return -1;
        }
        got += (size_t)r;
    }
    close(fd);
    if (got && out->bytes[got - 1] == '\n')
        got--;
    out->len = got;
    return 0;
}

static int from_fd(const char *var, const char *v, secret *out, char *msg, size_t len)
{
    char *end;
    errno = 0;
    long fd = strtol(v, &end, 10);
    if (errno || *end || end == v || fd < 0 || fd > 65535) {
        snprintf(msg, len, "%s must be the number of an open file descriptor", var);
        return -1;
    }
    return read_fd((int)fd, var, out, msg, len);
}

static int check_bytes(const char *what, const char *tok, size_t n, char *msg, size_t len)
{
    if (n == 0) {
        snprintf(msg, len, "the %s is empty; give one (AGENTIX_TOKEN_FD or AGENTIX_TOKEN), or set "
                 "AGENTIX_AUTH=none to run without authentication", what);
        return -1;
    }
    if (n > SRV_TOKEN_MAX) {
        snprintf(msg, len, "the %s is longer than 4096 bytes", what);
        return -1;
    }
    if (memchr(tok, '\0', n)) {
        snprintf(msg, len, "the %s holds a NUL byte", what);
        return -1;
    }
    return 0;
}

/* The secret given by <fd_var> (read and closed) or <env_var> (scrubbed whatever happens).
 * 0 with *given false when neither is set. */
static int load_secret(const char *what, const char *fd_var, const char *env_var, secret *out,
                       bool *given, char *msg, size_t len)
{
    const char *fd = getenv(fd_var), *env = getenv(env_var);
    *given = (fd && *fd) || env; /* an empty variable is a secret, and refused */
    int rc = 0;
    if (fd && *fd) {
        rc = from_fd(fd_var, fd, out, msg, len);
        if (!rc)
            rc = check_bytes(what, out->bytes, out->len, msg, len);
    } else if (env) {
        size_t n = strlen(env);
        rc = check_bytes(what, env, n, msg, len);
        if (!rc) {
            memcpy(out->bytes, env, n);
            out->len = n;
        }
    }
    /* Whatever happened, no copy stays where the sandbox could read it. */
    if (env)
        scrub_env(env_var);
    return rc;
}

static bool is_given(const char *fd_var, const char *env_var)
{
    const char *fd = getenv(fd_var);
    return (fd && *fd) || getenv(env_var); /* an empty variable is a secret, and refused */
}

static int parse_mode(srv_token *t, char *msg, size_t len)
{
    const char *auth = getenv("AGENTIX_AUTH");
    if (!auth || !*auth || strcmp(auth, "on") == 0)
        t->mode = SRV_AUTH_TOKEN;
    else if (strcmp(auth, "none") == 0)
        t->mode = SRV_AUTH_NONE;
    else if (strcmp(auth, "claim") == 0)
        t->mode = SRV_AUTH_CLAIM;
    else
        return bad(msg, len, "AGENTIX_AUTH must be on (the default: a token is required), claim or none");
    bool have = is_given("AGENTIX_TOKEN_FD", "AGENTIX_TOKEN");
    if (t->mode != SRV_AUTH_TOKEN && have)
        return bad(msg, len, "AGENTIX_AUTH=none/claim and a token (AGENTIX_TOKEN_FD or "
                   "AGENTIX_TOKEN) are both set; set one or the other");
    if (t->mode == SRV_AUTH_TOKEN && !have)
        return bad(msg, len, "no token: give one through AGENTIX_TOKEN_FD (a descriptor to read it "
                   "from) or AGENTIX_TOKEN, or set AGENTIX_AUTH=none to run without "
                   "authentication");
    if (t->mode != SRV_AUTH_CLAIM && is_given(AGX_CLAIM_SECRET_FD_ENV, AGX_CLAIM_SECRET_ENV))
        return bad(msg, len, AGX_CLAIM_SECRET_ENV " / " AGX_CLAIM_SECRET_FD_ENV " are for "
                   "AGENTIX_AUTH=claim only");
    return 0;
}

int srv_token_load(srv_token *t, char *msg, size_t len)
{
    memset(t, 0, sizeof *t);
    int rc = parse_mode(t, msg, len);
    /* Read (or, after a refusal, only scrubbed): no copy stays where the sandbox could read it. */
    secret tok = {t->bytes, 0}, claim = {t->claim, 0};
    bool have = false;
    char ignored[8];
    int rc_tok = load_secret("runtime token", "AGENTIX_TOKEN_FD", "AGENTIX_TOKEN", &tok, &have,
                             rc ? ignored : msg, rc ? sizeof ignored : len);
    rc = rc ? rc : rc_tok;
    int rc_claim = load_secret("claim secret", AGX_CLAIM_SECRET_FD_ENV, AGX_CLAIM_SECRET_ENV,
                               &claim, &t->has_claim_secret, rc ? ignored : msg,
                               rc ? sizeof ignored : len);
    rc = rc ? rc : rc_claim;
    if (rc) {
        srv_token_wipe(t);
        return -1;
    }
    t->len = tok.len;
    t->claim_len = claim.len;
    t->set = t->mode == SRV_AUTH_TOKEN;
    return 0;
}

int srv_token_claim(srv_token *t, const char *tok, size_t n, char *msg, size_t len)
{
    if (t->mode != SRV_AUTH_CLAIM)
        return bad(msg, len, "this server does not take its token at claim time");
    if (t->set)
        return bad(msg, len, "the token was set already");
    if (n == 0)
        return bad(msg, len, "the claim gives no token");
    if (check_bytes("runtime token", tok, n, msg, len) != 0)
        return -1;
    memcpy(t->bytes, tok, n);
    t->len = n;
    t->set = true;
    return 0;
}

bool srv_token_check(const srv_token *t, const char *got, size_t got_len)
{
    if (t->mode == SRV_AUTH_NONE)
        return true;
    if (!t->set || !got)
        return false;
    /* The time taken does not depend on where the tokens differ. */
    unsigned char diff = got_len != t->len;
    for (size_t i = 0; i < t->len; i++)
        diff |= (unsigned char)t->bytes[i] ^ (unsigned char)(i < got_len ? got[i] : 0);
    return diff == 0;
}

bool srv_token_claim_allowed(const srv_token *t, const char *got, size_t got_len)
{
    if (!t->has_claim_secret)
        return true;
    if (!got)
        return false;
    unsigned char diff = got_len != t->claim_len;
    for (size_t i = 0; i < t->claim_len; i++)
        diff |= (unsigned char)t->claim[i] ^ (unsigned char)(i < got_len ? got[i] : 0);
    return diff == 0;
}

const char *srv_token_describe(const srv_token *t)
{
    switch (t->mode) {
    case SRV_AUTH_NONE: return " (without authentication: AGENTIX_AUTH=none; anyone who reaches the port may run code)";
    case SRV_AUTH_CLAIM: return t->set ? " (token required)"
                         : t->has_claim_secret ? " (token to be set at claim, claim secret required)"
                                               : " (token to be set by the first claim)";
    default: return " (token required)";
    }
}

void srv_token_wipe(srv_token *t)
{
    /* A volatile walk: the compiler may not drop it as a dead store. */
    volatile char *p = t->bytes;
    for (size_t i = 0; i < sizeof t->bytes; i++)
        p[i] = 0;
    p = t->claim;
    for (size_t i = 0; i < sizeof t->claim; i++)
        p[i] = 0;
    t->len = t->claim_len = 0;
    t->has_claim_secret = false;
    t->set = false;
}
