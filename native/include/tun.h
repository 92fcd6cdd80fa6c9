/*
 * TUN device opening, without N-API (testable from C). Ownership: the returned fd belongs to the
 * caller, who must close() it.
 */
#ifndef WEFT_TUN_H
#define WEFT_TUN_H

#ifdef __cplusplus
extern "C" {
#endif

#define WEFT_TUN_VNET_HDR 0x1    /* IFF_VNET_HDR: packets carry a virtio-net header */
#define WEFT_TUN_MULTI_QUEUE 0x2 /* IFF_MULTI_QUEUE: one more queue of an existing multi-queue TUN */
#define WEFT_TUN_PERSIST 0x4     /* TUNSETPERSIST: the device (address, routes) outlives the fd */

/*
 * Opens /dev/net/tun and attaches it to the TUN interface `name` (created if absent), with
 * IFF_TUN|IFF_NO_PI plus the WEFT_TUN_* flags. On success returns the fd (O_CLOEXEC|O_NONBLOCK) and
 * writes the kernel's interface name into `out_name` (IFNAMSIZ bytes). On failure returns -errno and
 * sets *failed_syscall to "open" or "ioctl".
 */
int weft_tun_open(const char *name, int flags, char *out_name, const char **failed_syscall);

#ifdef __cplusplus
}
#endif
#endif
