/* rows.h — the stream shape both sides of bench/rpc measure (bench_rpc.c and anchors/floor.c),
 * so agentix and its floor move the same bytes and report the same rows. */
#ifndef AGX_BENCH_RPC_ROWS_H
#define AGX_BENCH_RPC_ROWS_H

/* The 64 KiB stream moves 1 GiB by default, as the files rows do: a throughput read over a
 * tenth of a second was mostly the first use of fresh memory (page faults, which cost ~13 us
 * each on the VMs this was measured on) rather than the data path. */
#define STREAM_ITEMS_DEFAULT 16384

/* The rate over the stream's first 128 MiB is reported next to it (stream_first_mb_per_s): what
 * a short transfer on a fresh worker and connection sees. */
#define FIRST_STREAM_BYTES (128.0 * 1024 * 1024)

/* MB/s over the first FIRST_STREAM_BYTES of a stream of `total` bytes, given the seconds until they
 * had arrived (until its end, for a shorter stream); 0 without a time. */
static inline double first_stream_mbps(double total, double seconds)
{
    double bytes = total < FIRST_STREAM_BYTES ? total : FIRST_STREAM_BYTES;
    return seconds > 0 ? bytes / 1e6 / seconds : 0;
}

#endif
