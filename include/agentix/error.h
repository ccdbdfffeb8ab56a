/* error.h — the error model every agentix call reports through (host, backends, runtime client).
 *
 * Every call that can fail returns 0 on success or a negative agx_error_code, and fills the
 * caller's agx_error when one is passed (NULL is allowed). agx_error is a plain caller-owned struct
 * with fixed buffers on purpose: it can live on the stack of any thread and filling it never
 * allocates, so it also works when memory is exhausted. */
#ifndef AGENTIX_ERROR_H
#define AGENTIX_ERROR_H

#include <stdarg.h>
#include <stddef.h>

#include "agentix/export.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum agx_error_code {
    AGX_OK = 0,
    AGX_ERR_INVALID_ARGUMENT = -1, /* the caller passed something malformed or out of range */
    AGX_ERR_NOT_FOUND = -2,        /* no such sandbox, plugin, module, function, file */
    AGX_ERR_CONFLICT = -3,         /* two things claim one name; a state change raced */
    AGX_ERR_UNAVAILABLE = -4,      /* a service does not answer (daemon down, connection lost) */
    AGX_ERR_TIMEOUT = -5,          /* a wait ran out of time */
    AGX_ERR_BACKEND = -6,          /* the backend's API refused or failed; see detail */
    AGX_ERR_PROTOCOL = -7,         /* a peer sent something that breaks the wire protocol */
    AGX_ERR_CANCELLED = -8,        /* the call was cancelled */
    AGX_ERR_NO_MEMORY = -9,        /* an allocation failed */
    AGX_ERR_IO = -10,              /* a system call failed (errno text in the message) */
    AGX_ERR_REMOTE = -11,          /* the remote function failed; remote_type names the kind */
    AGX_ERR_ABI = -12,             /* a plugin or module was built for another ABI version */
    AGX_ERR_LIMIT = -13,           /* a size, depth or count limit was exceeded */
    AGX_ERR_UNSUPPORTED = -14,     /* the backend or peer does not offer this operation */
    AGX_ERR_INTERNAL = -15,        /* a bug in agentix; please report it */
    AGX_ERR_RATE_LIMITED = -16     /* a service (HTTP 429) or admission control said "not now":
                                      retriable, after the wait it asked for */
} agx_error_code;

#define AGX_ERROR_MESSAGE_MAX 512
#define AGX_ERROR_DETAIL_MAX 2048
#define AGX_ERROR_TYPE_MAX 64

typedef struct agx_error {
    agx_error_code code;
    int retriable;                           /* 1 when retrying the same call may succeed (429, 5xx, timeouts) */
    char message[AGX_ERROR_MESSAGE_MAX];     /* what went wrong and what to do, one line */
    char detail[AGX_ERROR_DETAIL_MAX];       /* backend's own text (HTTP body, container logs) or a traceback */
    char remote_type[AGX_ERROR_TYPE_MAX];    /* AGX_ERR_REMOTE/CANCELLED: "ValidationError", "WorkerExited", … */
} agx_error;

/* remote_type of the framework's own failures (a module may fail with any other type, e.g.
 * "ValueError", through agx_ctx_fail): */
#define AGX_REMOTE_BAD_REQUEST "BadRequest"         /* the call itself is malformed */
#define AGX_REMOTE_NOT_FOUND "NotFound"             /* no such module or function */
#define AGX_REMOTE_SHAPE_MISMATCH "ShapeMismatch"   /* called as another shape than declared */
#define AGX_REMOTE_VALIDATION "ValidationError"     /* arguments or items do not fit the signature */
#define AGX_REMOTE_MODULE_ERROR "ModuleError"       /* the module cannot be loaded */
#define AGX_REMOTE_WORKER_EXITED "WorkerExited"     /* the worker died during the call */
#define AGX_REMOTE_CANCELLED "Cancelled"
#define AGX_REMOTE_TIMEOUT "Timeout"
#define AGX_REMOTE_LIMIT "LimitExceeded"            /* a size or count limit */
#define AGX_REMOTE_INTERNAL "InternalError"
#define AGX_REMOTE_GENERIC "Error"                  /* a module failed without naming a type */

/* Resets to AGX_OK with empty strings. */
AGX_API void agx_error_clear(agx_error *err);

/* Fills err (if not NULL) and returns code, so `return agx_error_set(err, AGX_ERR_…, "…");` works.
 * Messages longer than the buffer are truncated, never overflow. */
AGX_API int agx_error_set(agx_error *err, agx_error_code code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
AGX_API int agx_error_setv(agx_error *err, agx_error_code code, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));

/* Replaces the detail text (bounded copy of len bytes; len may be (size_t)-1 for a C string). */
AGX_API void agx_error_set_detail(agx_error *err, const char *detail, size_t len);

/* Prefixes the existing message with context: "loading plugin 'docker': <old message>". */
AGX_API void agx_error_prefix(agx_error *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Copies src into dst (either may be NULL). */
AGX_API void agx_error_copy(agx_error *dst, const agx_error *src);

/* Stable upper-case name of a code, e.g. "NOT_FOUND"; "UNKNOWN" for codes outside the enum. */
AGX_API const char *agx_error_code_name(int code);

#ifdef __cplusplus
}
#endif
#endif
