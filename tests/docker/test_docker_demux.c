/* test_docker_demux.c — the docker backend's reader of the engine's log stream (daemon output →
 * the log tail a failed create quotes): framing, bounds, cut frames and unframed TTY text. */
#include "backends/docker/docker_internal.h"
#include "check.h"

/* The engine's multiplexed log stream: 8-byte headers (stream, 0, 0, 0, u32 BE size) + data. */
static void test_demux(void)
{
    const char framed[] = "\x01\0\0\0\0\0\0\x06hello\n\x02\0\0\0\0\0\0\x04oops";
    char out[64];
    CHECK(agx_docker_demux(framed, sizeof framed - 1, out, sizeof out) == 10);
    CHECK_STREQ(out, "hello\noops");
    CHECK(agx_docker_demux(framed, sizeof framed - 1, out, 4) == 3); /* bounded by out */
    CHECK_STREQ(out, "hel");
    const char cut[] = "\x01\0\0\0\0\0\x10\0abc"; /* claims 4096 bytes, has 3 */
    CHECK(agx_docker_demux(cut, sizeof cut - 1, out, sizeof out) == 3);
    CHECK_STREQ(out, "abc");
    CHECK(agx_docker_demux("plain tty text", 14, out, sizeof out) == 14);
    CHECK_STREQ(out, "plain tty text");
}

int main(void)
{
    TEST_RUN(test_demux);
    return 0;
}
