/* sd_notify(3)'s wire protocol without libsystemd (docs/systemd.md): one datagram to NOTIFY_SOCKET. */
#ifndef WEFT_SD_NOTIFY_H
#define WEFT_SD_NOTIFY_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Sends `msg` (len bytes, e.g. "READY=1\nSTATUS=...") as one SOCK_DGRAM datagram to the AF_UNIX
 * socket `path` as systemd passes it in NOTIFY_SOCKET: a file path ("/run/systemd/notify") or an
 * abstract name written with a leading '@'. Returns 0, or -errno (-EINVAL for an unusable path,
 * -EMSGSIZE for a short send). Blocking is bounded: the socket is non-blocking (-EAGAIN if full). */
int weft_sd_notify(const char *path, const char *msg, size_t len);

#ifdef __cplusplus
}
#endif

#endif
