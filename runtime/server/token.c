/* token.c — the secret every CONNECT must carry (docs/PROTOCOL.md §1): where agentix-server gets
 * it, that nothing readable in the sandbox keeps it, and the one comparison against it.
 *
 * Sources, in order: AGENTIX_TOKEN_FD (a descriptor to read it from, then closed: nothing is left
 * in any environment or file), AGENTIX_TOKEN (then its bytes are overwritten in the environment
 * block the kernel shows as /proc/<pid>/environ, and the variable is removed). Without a token the
 * server refuses to start, unless told AGENTIX_AUTH=none (accept everyone, said in the log) or
 * AGENTIX_AUTH=claim (refuse every CONNECT until the token is set, once, by a separately
 * authenticated step: a pre-warmed pod gets its token when it is claimed). */
#include "runtime/server/server.h"

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

/* Reads at most SRV_TOKEN_MAX bytes from fd until EOF, then closes it. */
static int read_fd(int fd, srv_token *t, char *msg, size_t len)
{
    size_t got = 0;
    char extra;
    for (;;) {
        ssize_t r = got < SRV_TOKEN_MAX ? read(fd, t->bytes + got, SRV_TOKEN_MAX - got)
                                        : read(fd, &extra, 1);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            snprintf(msg, len, "AGENTIX_TOKEN_FD: cannot read the token: %s", strerror(errno));
            close(fd);
            return -1;
        }
        if (r == 0)
            break;
        if (got >= SRV_TOKEN_MAX) {
            close(fd);
            return bad(msg, len, "AGENTIX_TOKEN_FD: the token is longer than 4096 bytes");
        }
        got += (size_t)r;
    }
    close(fd);
    if (got && t->bytes[got - 1] == '\n')
        got--;
    t->len = got;
    return 0;
}

static int token_from_fd(const char *v, srv_token *t, char *msg, size_t len)
{
    char *end;
    errno = 0;
    long fd = strtol(v, &end, 10);
    if (errno || *end || end == v || fd < 0 || fd > 65535)
        return bad(msg, len, "AGENTIX_TOKEN_FD must be the number of an open file descriptor");
    if (read_fd((int)fd, t, msg, len) != 0)
        return -1;
    return 0;
}

static int check_bytes(const char *tok, size_t n, char *msg, size_t len)
{
    if (n == 0)
        return bad(msg, len, "the token is empty; give one (AGENTIX_TOKEN_FD or AGENTIX_TOKEN), or "
                   "set AGENTIX_AUTH=none to run without authentication");
    if (n > SRV_TOKEN_MAX)
        return bad(msg, len, "the token is longer than 4096 bytes");
    if (memchr(tok, '\0', n))
        return bad(msg, len, "the token holds a NUL byte");
    return 0;
}

int srv_token_load(srv_token *t, char *msg, size_t len)
{
    memset(t, 0, sizeof *t);
    const char *auth = getenv("AGENTIX_AUTH"), *fd = getenv("AGENTIX_TOKEN_FD"),
               *env = getenv("AGENTIX_TOKEN");
    bool have = (fd && *fd) || env; /* an empty AGENTIX_TOKEN is a token, and refused */
    int rc = 0;
    if (auth && *auth && strcmp(auth, "on") != 0) {
        if (strcmp(auth, "none") == 0)
            t->mode = SRV_AUTH_NONE;
        else if (strcmp(auth, "claim") == 0)
            t->mode = SRV_AUTH_CLAIM;
        else
            rc = bad(msg, len, "AGENTIX_AUTH must be on (the default: a token is required), claim or none");
        if (!rc && have)
            rc = bad(msg, len, "AGENTIX_AUTH=none/claim and a token (AGENTIX_TOKEN_FD or "
                     "AGENTIX_TOKEN) are both set; set one or the other");
    } else if (fd && *fd) {
        rc = token_from_fd(fd, t, msg, len);
        if (!rc)
            rc = check_bytes(t->bytes, t->len, msg, len);
    } else if (env) {
        size_t n = strlen(env);
        rc = check_bytes(env, n, msg, len);
        if (!rc) {
            memcpy(t->bytes, env, n);
            t->len = n;
        }
    } else {
        rc = bad(msg, len, "no token: give one through AGENTIX_TOKEN_FD (a descriptor to read it "
                 "from) or AGENTIX_TOKEN, or set AGENTIX_AUTH=none to run without "
                 "authentication");
    }
    /* Whatever happened, no copy stays where the sandbox could read it. */
    if (env)
        scrub_env("AGENTIX_TOKEN");
    if (rc) {
        srv_token_wipe(t);
        return -1;
    }
    t->set = t->mode == SRV_AUTH_TOKEN;
    return 0;
}

int srv_token_claim(srv_token *t, const char *tok, size_t n, char *msg, size_t len)
{
    if (t->mode != SRV_AUTH_CLAIM)
        return bad(msg, len, "this server does not take its token at claim time");
    if (t->set)
        return bad(msg, len, "the token was set already");
    if (check_bytes(tok, n, msg, len) != 0)
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

const char *srv_token_describe(const srv_token *t)
{
    switch (t->mode) {
    case SRV_AUTH_NONE: return " (without authentication: AGENTIX_AUTH=none; anyone who reaches the port may run code)";
    case SRV_AUTH_CLAIM: return t->set ? " (token required)" : " (token to be set at claim)";
    default: return " (token required)";
    }
}

void srv_token_wipe(srv_token *t)
{
    /* A volatile walk: the compiler may not drop it as a dead store. */
    volatile char *p = t->bytes;
    for (size_t i = 0; i < sizeof t->bytes; i++)
        p[i] = 0;
    t->len = 0;
    t->set = false;
}
