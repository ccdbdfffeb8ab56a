/* export.h — which symbols a library or plugin exports. agentix builds every library with hidden
 * visibility, so what AGX_API marks (the functions of the public headers) is all that
 * libagentix.so and libagentix-runtime.so export: their internals can neither clash with a host's
 * own symbols nor be reached around the API. A test compares the exports with these headers.
 *
 * AGX_EXPORT is for code outside the libraries that must export a symbol from its own shared
 * object while building with hidden visibility: a backend's entry function (plugin.h), a module's
 * descriptor (module.h's AGX_MODULE does it). */
#ifndef AGENTIX_EXPORT_H
#define AGENTIX_EXPORT_H

#if defined(__GNUC__) || defined(__clang__)
#define AGX_EXPORT __attribute__((visibility("default")))
#else
#define AGX_EXPORT
#endif

/* On every function declared by a public header. */
#define AGX_API AGX_EXPORT

#endif
