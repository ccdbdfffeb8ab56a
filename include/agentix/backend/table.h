/* table.h — the sandboxes one backend instance created and has not deleted yet, by id (local and
 * ns keep one): delete knows which sandboxes are its own and stops their processes directly, get
 * reads what it holds without the disk. Items are the backend's own records; the table owns an
 * item from add until take (or until the table is freed). Part of the backend toolkit
 * (toolkit.h, version 3), in libagentix; thread-safe: one mutex per table. */
#ifndef AGENTIX_BACKEND_TABLE_H
#define AGENTIX_BACKEND_TABLE_H

#include "agentix/error.h"
#include "agentix/export.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct agx_sandbox_table agx_sandbox_table;
typedef void (*agx_sandbox_table_free_fn)(void *item);
typedef void (*agx_sandbox_table_visit_fn)(void *item, void *ctx);

/* A new, empty table; free_item releases an item the table still owns when it is freed (NULL:
 * items are not released). NULL when out of memory. */
AGX_API agx_sandbox_table *agx_sandbox_table_new(agx_sandbox_table_free_fn free_item);
/* Frees the table and, through free_item, every item still in it. NULL is a no-op. */
AGX_API void agx_sandbox_table_free(agx_sandbox_table *t);
/* Adds item under id (copied; at most 255 bytes); the table owns item from now on. On failure
 * (AGX_ERR_NO_MEMORY, AGX_ERR_INVALID_ARGUMENT) the caller still owns it. */
AGX_API int agx_sandbox_table_add(agx_sandbox_table *t, const char *id, void *item,
                                  agx_error *err);
/* Removes the item of id and hands it back to the caller; NULL when the table has none. */
AGX_API void *agx_sandbox_table_take(agx_sandbox_table *t, const char *id);
/* Calls fn(item, ctx) with the table locked (fn must not call back into the table) when id is in
 * it. 1 when it was, 0 when not (fn may be NULL: a membership test). */
AGX_API int agx_sandbox_table_visit(agx_sandbox_table *t, const char *id,
                                    agx_sandbox_table_visit_fn fn, void *ctx);

#ifdef __cplusplus
}
#endif
#endif
