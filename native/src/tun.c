#include "tun.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

int weft_tun_open(const char *name, int flags, char *out_name, const char **failed_syscall) {
  struct ifreq ifr;
  size_t len = strlen(name);
  if (len == 0 || len >= IFNAMSIZ) {
    *failed_syscall = "open";
    return -EINVAL;
  }
  int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) {
    *failed_syscall = "open";
    return -errno;
  }
  memset(&ifr, 0, sizeof(ifr));
  memcpy(ifr.ifr_name, name, len);
  ifr.ifr_flags = IFF_TUN | IFF_NO_PI;
  if (flags & WEFT_TUN_VNET_HDR) ifr.ifr_flags |= IFF_VNET_HDR;
  if (flags & WEFT_TUN_MULTI_QUEUE) ifr.ifr_flags |= IFF_MULTI_QUEUE;
  if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
    int e = errno;
    close(fd);
    *failed_syscall = "ioctl";
    return -e;
  }
  if ((flags & WEFT_TUN_PERSIST) && ioctl(fd, TUNSETPERSIST, 1) < 0) {
    int e = errno;
    close(fd);
    *failed_syscall = "ioctl";
    return -e;
  }
  memcpy(out_name, ifr.ifr_name, IFNAMSIZ);
  out_name[IFNAMSIZ - 1] = '\0';
  return fd;
}
