/* value_samples.h — trees shared by the value tests: one of every type, nested and edge values. */
#ifndef AGX_TEST_VALUE_SAMPLES_H
#define AGX_TEST_VALUE_SAMPLES_H

#include <stdbool.h>
#include <stddef.h>

#include "agentix/value.h"

/* A map holding every type, nested containers, empty containers, int64 min/max, -0.0, a string
 * with NUL bytes and a 64 KiB binary. with_big_uint adds UINT64_MAX (msgpack only). */
agx_value *sample_tree(bool with_big_uint);

/* A compact tree with every type (a few hundred bytes encoded), for exhaustive truncation and
 * mutation runs. */
agx_value *sample_small(bool with_big_uint);

/* Parses hex bytes into buf, e.g. `83 a4"type" 00` (spaces ignored, quoted text copied as is);
 * returns the byte count. */
size_t sample_hex(const char *hex, unsigned char *buf, size_t cap);

#endif
