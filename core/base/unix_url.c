/* unix_url.c — the http+unix:// runtime URL form (unix_url.h): encoding by the backends that make
 * such URLs, decoding by the client's dialer and by the host library's HTTP requests to runtimes. */
#include "agentix/unix_url.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int hexval(int ch)
{
    return isdigit(ch) ? ch - '0' : isxdigit(ch) ? tolower(ch) - 'a' + 10 : -1;
}

static int unreserved(unsigned char c)
{
    return isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~';
}

int agx_unix_url_format(const char *socket_path, char *out, size_t n)
{
    static const char hex[] = "0123456789ABCDEF";
    if (!socket_path || socket_path[0] != '/' || strlen(socket_path) > AGX_UNIX_URL_PATH_MAX || !out)
        return -1;
    size_t o = strlen(AGX_UNIX_URL_SCHEME);
    if (n <= o)
        return -1;
    memcpy(out, AGX_UNIX_URL_SCHEME, o);
    for (const unsigned char *p = (const unsigned char *)socket_path; *p; p++) {
        if (o + 4 > n)
            return -1;
        if (unreserved(*p)) {
            out[o++] = (char)*p;
        } else {
            out[o++] = '%';
            out[o++] = hex[*p >> 4];
            out[o++] = hex[*p & 15];
        }
    }
    if (o + 2 > n)
        return -1;
    out[o++] = '/';
    out[o] = '\0';
    return 0;
}

int agx_unix_url_decode_path(const char *enc, size_t n, char *path, size_t cap)
{
    size_t o = 0;
    if (!enc || !path || cap == 0)
        return -1;
    for (size_t i = 0; i < n; i++) {
        int ch = (unsigned char)enc[i];
        if (ch == '%') {
            int hi = i + 2 < n ? hexval((unsigned char)enc[i + 1]) : -1;
            int lo = i + 2 < n ? hexval((unsigned char)enc[i + 2]) : -1;
            if (hi < 0 || lo < 0)
                return -1;
            ch = hi * 16 + lo;
            i += 2;
        }
        if (ch == 0 || o + 1 >= cap || o >= AGX_UNIX_URL_PATH_MAX)
            return -1;
        path[o++] = (char)ch;
    }
    path[o] = '\0';
    return o > 1 && path[0] == '/' ? 0 : -1;
}

int agx_unix_url_split(const char *url, char *path, size_t cap, const char **rest)
{
    size_t s = strlen(AGX_UNIX_URL_SCHEME);
    if (!url || strncmp(url, AGX_UNIX_URL_SCHEME, s) != 0)
        return 0;
    const char *host = url + s;
    size_t n = strcspn(host, "/?#");
    if (agx_unix_url_decode_path(host, n, path, cap) != 0)
        return -1;
    if (rest)
        *rest = host + n;
    return 1;
}

int agx_unix_socket_open(const char *path, char *via, size_t n)
{
    if (!path || !via || n == 0) {
        errno = EINVAL;
        return -1;
    }
    int fd = open(path, O_PATH | O_NOFOLLOW | O_CLOEXEC); /* a symlink is opened as one */
    struct stat st = {0};
    if (fd < 0)
        return -1;
    if (fstat(fd, &st) != 0 || !S_ISSOCK(st.st_mode)) {
        int e = S_ISLNK(st.st_mode) ? ELOOP : ENOTSOCK;
        close(fd);
        errno = e;
        return -1;
    }
    if ((size_t)snprintf(via, n, "/proc/self/fd/%d", fd) >= n) {
        close(fd);
        errno = ENAMETOOLONG;
        return -1;
    }
    return fd;
}
