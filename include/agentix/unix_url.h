/* unix_url.h — runtime URLs that name a Unix socket: http+unix://<percent-encoded absolute socket
 * path>[/prefix] (docs/PROTOCOL.md §1). One definition of the form for every side that handles
 * one: a backend whose sandboxes listen on a socket (ns with network none) makes them, the host's
 * client dials them, and the host library's own HTTP requests to a runtime (POST /expiry,
 * POST /claim) reach the socket they name. Part of libagentix-runtime; no state. */
#ifndef AGENTIX_UNIX_URL_H
#define AGENTIX_UNIX_URL_H

#include <stddef.h>

#include "agentix/export.h"

#ifdef __cplusplus
extern "C" {
#endif

#define AGX_UNIX_URL_SCHEME "http+unix://"
/* The longest socket path: longer than sockaddr_un's 108 bytes, since agx_unix_socket_open's
 * /proc/self/fd name is what connect() is given. */
#define AGX_UNIX_URL_PATH_MAX 1023

/* Writes AGX_UNIX_URL_SCHEME + socket_path percent-encoded (every byte but A-Z a-z 0-9 - . _ ~)
 * + "/" into out. 0, or -1 when socket_path is not absolute, longer than AGX_UNIX_URL_PATH_MAX
 * or the URL does not fit in n bytes. */
AGX_API int agx_unix_url_format(const char *socket_path, char *out, size_t n);

/* Decodes the n bytes of an encoded socket path (the URL's "host", up to its first '/') into
 * path (cap bytes). 0, or -1 for a bad escape, a NUL byte, a path that is not absolute or is
 * longer than AGX_UNIX_URL_PATH_MAX or cap - 1. */
AGX_API int agx_unix_url_decode_path(const char *enc, size_t n, char *path, size_t cap);

/* Splits an http+unix URL: its socket path into path (cap bytes) and *rest to what follows the
 * encoded path ("" or "/prefix…"). 1 when url is such a URL, 0 when it has another scheme, -1
 * when it has this scheme but a bad socket path. */
AGX_API int agx_unix_url_split(const char *url, char *path, size_t cap, const char **rest);

/* Opens the socket at path for a connect: without following a symlink (the socket may sit in a
 * folder sandbox code can write, which could plant one) and checked to be a socket. Writes
 * "/proc/self/fd/<n>" into via (n bytes, 32 are enough): the name to connect() to, whatever the
 * path's length; close the descriptor once connected. Returns it, or -1 with errno set (ELOOP: a
 * symlink; ENOTSOCK: not a socket). */
AGX_API int agx_unix_socket_open(const char *path, char *via, size_t n);

#ifdef __cplusplus
}
#endif

#endif
