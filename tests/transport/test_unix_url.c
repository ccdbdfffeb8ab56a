/* test_unix_url.c — the http+unix:// runtime URL form (agentix/unix_url.h) that ns makes, the
 * client dials and the host library's requests to runtimes follow: round trips, every refusal of
 * the decoder, and the socket opener's refusal of symlinks and of files that are not sockets. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "agentix/unix_url.h"
#include "check.h"

static void round_trip(const char *path)
{
    char url[4096], back[AGX_UNIX_URL_PATH_MAX + 1];
    const char *rest = NULL;
    CHECK(agx_unix_url_format(path, url, sizeof url) == 0);
    CHECK(strncmp(url, AGX_UNIX_URL_SCHEME, strlen(AGX_UNIX_URL_SCHEME)) == 0);
    CHECK(strchr(url + strlen(AGX_UNIX_URL_SCHEME), '/') == url + strlen(url) - 1);
    CHECK(agx_unix_url_split(url, back, sizeof back, &rest) == 1);
    CHECK(strcmp(back, path) == 0 && strcmp(rest, "/") == 0);
}

static void test_format_and_split(void)
{
    round_trip("/run/agx/sb-1/run/agentix.sock");
    round_trip("/tmp/with space/and%percent/ünïcode/s");
    char longest[AGX_UNIX_URL_PATH_MAX + 2];
    memset(longest, 'a', sizeof longest);
    longest[0] = '/';
    longest[AGX_UNIX_URL_PATH_MAX] = '\0';
    round_trip(longest);
    longest[AGX_UNIX_URL_PATH_MAX] = 'a';
    longest[AGX_UNIX_URL_PATH_MAX + 1] = '\0';
    char url[8192], small[24];
    CHECK(agx_unix_url_format(longest, url, sizeof url) == -1);     /* one byte too long */
    CHECK(agx_unix_url_format("relative/s", url, sizeof url) == -1); /* not absolute */
    CHECK(agx_unix_url_format("/a/b/c/d/e/f/g", small, sizeof small) == -1); /* does not fit */

    char path[256];
    const char *rest;
    CHECK(agx_unix_url_split("http://127.0.0.1:80/", path, sizeof path, &rest) == 0);
    CHECK(agx_unix_url_split("http+unix://%2Ftmp%2Fs/pre/fix/", path, sizeof path, &rest) == 1);
    CHECK(strcmp(path, "/tmp/s") == 0 && strcmp(rest, "/pre/fix/") == 0);
    CHECK(agx_unix_url_split("http+unix://%2Ftmp%2Fs", path, sizeof path, &rest) == 1);
    CHECK(strcmp(rest, "") == 0);
    static const char *const bad[] = {
        "http+unix://",             /* no path */
        "http+unix://%2F",          /* just "/" */
        "http+unix://tmp%2Fs/",     /* relative */
        "http+unix://%2Ftmp%00s/",  /* a NUL byte */
        "http+unix://%2Ftmp%2/",    /* a cut escape */
        "http+unix://%2Ftmp%zz/",   /* not hex */
        "http+unix://%2Ftmp%2",     /* a cut escape at the end */
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        CHECK_MSG(agx_unix_url_split(bad[i], path, sizeof path, &rest) == -1, "%s", bad[i]);
    CHECK(agx_unix_url_split("http+unix://%2Ftmp%2Fsock/", path, 8, &rest) == -1); /* cap */
}

static void test_socket_open(void)
{
    char dir[] = "/tmp/agx-unix-url-XXXXXX";
    CHECK(mkdtemp(dir));
    char sock[64], link[64], file[64], via[32];
    snprintf(sock, sizeof sock, "%s/s", dir);
    snprintf(link, sizeof link, "%s/l", dir);
    snprintf(file, sizeof file, "%s/f", dir);
    int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    snprintf(a.sun_path, sizeof a.sun_path, "%s", sock);
    CHECK(s >= 0 && bind(s, (struct sockaddr *)&a, sizeof a) == 0 && listen(s, 1) == 0);
    CHECK(symlink(sock, link) == 0);
    FILE *f = fopen(file, "w");
    CHECK(f && fclose(f) == 0);

    int fd = agx_unix_socket_open(sock, via, sizeof via);
    CHECK(fd >= 0 && strncmp(via, "/proc/self/fd/", 14) == 0);
    int c = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un b = {.sun_family = AF_UNIX};
    snprintf(b.sun_path, sizeof b.sun_path, "%s", via);
    CHECK(c >= 0 && connect(c, (struct sockaddr *)&b, sizeof b) == 0); /* the name connects */
    close(c);
    close(fd);
    CHECK(agx_unix_socket_open(link, via, sizeof via) == -1 && errno == ELOOP);
    CHECK(agx_unix_socket_open(file, via, sizeof via) == -1 && errno == ENOTSOCK);
    CHECK(agx_unix_socket_open("/nonexistent/agx/s", via, sizeof via) == -1 && errno == ENOENT);
    CHECK(agx_unix_socket_open(sock, via, 4) == -1 && errno == ENAMETOOLONG);
    close(s);
    unlink(sock);
    unlink(link);
    unlink(file);
    CHECK(rmdir(dir) == 0);
}

int main(void)
{
    test_format_and_split();
    test_socket_open();
    printf("test_unix_url: ok\n");
    return 0;
}
