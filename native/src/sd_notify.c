/* sd_notify(3) without libsystemd: see native/include/sd_notify.h and docs/systemd.md. */
#include "sd_notify.h"

#include <errno.h>
#include <stddef.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

int weft_sd_notify(const char *path, const char *msg, size_t len) {
  if (path == NULL || msg == NULL) return -EINVAL;
  size_t plen = strlen(path);
  struct sockaddr_un sa;
  memset(&sa, 0, sizeof(sa));
  sa.sun_family = AF_UNIX;
  /* a path must be absolute ("/…") or abstract ("@…"); sun_path has no room for more than 107 bytes */
  if (plen < 2 || (path[0] != '/' && path[0] != '@') || plen >= sizeof(sa.sun_path)) return -EINVAL;
  memcpy(sa.sun_path, path, plen);
  socklen_t salen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + plen);
  if (path[0] == '@') {
    sa.sun_path[0] = '\0'; /* abstract namespace: the address length counts, no trailing NUL */
  } else {
    salen += 1;
  }
  int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return -errno;
  ssize_t n;
  do {
    n = sendto(fd, msg, len, MSG_NOSIGNAL, (const struct sockaddr *)&sa, salen);
  } while (n < 0 && errno == EINTR);
  int err = n < 0 ? errno : 0;
  close(fd);
  if (err != 0) return -err;
  return (size_t)n == len ? 0 : -EMSGSIZE;
}
