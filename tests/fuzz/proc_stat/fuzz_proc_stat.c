/* fuzz_proc_stat.c — libFuzzer target for agx_proc_stat_parse (core/proctree.c): the text of
 * /proc/<pid>/stat, whose command name (field 2) is chosen by whoever runs the process — sandbox
 * code can name itself "x) R 1 1" — and may hold spaces and parentheses. What parses must be in
 * range: a positive pid, a non-negative parent, a state letter. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "agentix/proctree.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    agx_proc_entry e;
    if (agx_proc_stat_parse((const char *)data, size, &e) == 0) {
        if (e.pid <= 0 || e.ppid < 0 || e.state < 'A' || e.state > 'z' ||
            memchr(e.comm, '\0', sizeof e.comm) == NULL)
            abort();
    }
    return 0;
}
