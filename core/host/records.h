/* records.h (internal) — what the host's plain records (kv.c, sandbox.c, sandbox_config.c) share. */
#ifndef AGX_CORE_HOST_RECORDS_H
#define AGX_CORE_HOST_RECORDS_H

/* Replaces *slot with a copy of s (NULL clears); AGX_ERR_NO_MEMORY leaves *slot as it was. */
int agx_str_replace(char **slot, const char *s);

#endif
