/* toolkit.h — the backend toolkit: what a deployment backend needs besides the ABI of plugin.h,
 * for backends built in this tree and outside it alike (see docs/BACKENDS.md, "Writing a
 * backend", and examples/backend-subprocess). Every function is exported by libagentix, which a
 * backend links (pkg-config agentix, or CMake agentix::agentix):
 *   agentix/backend/http.h     the HTTP client for a service's API (TCP, unix socket, TLS, retries)
 *   agentix/backend/labels.h   the ownership record every sandbox carries (label names)
 *   agentix/backend/runtime.h  the runtime binaries beside libagentix, the wait for /health, a
 *                              runtime's expiry and claim
 *   agentix/expiry.h           expiry bounds and the runtime's expiry words (libagentix-runtime)
 *   agentix/backend/process.h  state, group and start time of a process
 *   agentix/backend/files.h    state folders: removal without following links, atomic records
 *   agentix/backend/table.h    the sandboxes an instance created and has not deleted, by id
 *   agentix/clock.h            monotonic clock, deadlines, condition variables (libagentix-runtime)
 *   agentix/fdio.h             whole, bounded fd and file I/O (libagentix-runtime)
 *
 * Versioning: AGX_BACKEND_TOOLKIT_VERSION is the toolkit these headers describe. A libagentix
 * keeps every function and struct layout of the toolkit versions before its own; structs passed in
 * carry a struct_size (0 = version 1's layout) so they can grow at the end. A backend that needs a
 * newer toolkit than the library it is loaded into can tell from agx_backend_toolkit_version()
 * in construct() and refuse with a clear error. (The vtable's ABI is plugin.h's
 * AGX_PLUGIN_ABI_VERSION, checked by discovery.) */
#ifndef AGENTIX_BACKEND_TOOLKIT_H
#define AGENTIX_BACKEND_TOOLKIT_H

#include "agentix/backend/files.h"
#include "agentix/backend/http.h"
#include "agentix/backend/labels.h"
#include "agentix/backend/process.h"
#include "agentix/backend/runtime.h"
#include "agentix/backend/table.h"
#include "agentix/clock.h"
#include "agentix/expiry.h"
#include "agentix/export.h"
#include "agentix/fdio.h"
#include "agentix/plugin.h"

#ifdef __cplusplus
extern "C" {
#endif

/* 1: the first toolkit. 2: the ownership record and expiries (labels.h's agentix.expires and
 * agx_label_unix_ms, runtime.h's agx_runtime_expiry_extend and agx_runtime_claim, the vtable's
 * extend_sandbox, deployment.h's expiry fields and agx_admission_defer), http.h's on_headers,
 * abort handle and maybe_sent. 3: table.h (the table local and ns keep of their sandboxes). */
#define AGX_BACKEND_TOOLKIT_VERSION 3u

/* The toolkit version of the libagentix actually loaded (≥ the one a backend was built with
 * when the library is at least as new). */
AGX_API unsigned agx_backend_toolkit_version(void);

#ifdef __cplusplus
}
#endif
#endif
