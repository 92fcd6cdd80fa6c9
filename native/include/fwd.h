/*
 * The UDP forwarder (docs/design.md C7/C8), pure C: loop threads move packets between a TUN device and a
 * UDP socket in flannel's wire format (one IP packet per UDP datagram, no extra header). The control
 * plane only queues route commands and reads counters; packets never reach JavaScript.
 *
 * Threads: fwd_open starts one loop thread for both directions, or (fwd_config.threads, split mode)
 * one per direction, each with its own route table; fwd_set_route/fwd_del_route/fwd_set_local/
 * fwd_get_stats/fwd_close are called from one control thread (the JS main thread). Commands are queued
 * under a mutex and applied by every loop between batches, in order: a route table belongs to its loop
 * thread alone. Each peer gets its own send socket (same address and port, SO_REUSEPORT).
 *
 * Ownership: on success fwd_open takes ownership of cfg->tun_fd (closed by fwd_close); the UDP socket,
 * epoll fd, eventfd and buffer pool are created and freed by the forwarder. fwd_close stops the loop,
 * joins the thread, closes every fd and frees the forwarder; the thread never outlives it.
 */
#ifndef WEFT_FWD_H
#define WEFT_FWD_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

struct fwd_config {
  int tun_fd;       /* TUN fd (IFF_TUN|IFF_NO_PI, IFF_VNET_HDR recommended); owned after success */
  uint32_t bind_ip; /* UDP bind address, network order; 0 = any */
  uint16_t port;    /* UDP port, host order; 0 = ephemeral (tests) */
  uint16_t mtu;     /* MTU of the TUN device */
  /* Called once on the loop thread if the loop stops by itself on a fatal error (errno > 0). Never
   * called after fwd_close has begun. May be NULL. */
  void (*on_fatal)(void *ctx, int err, const char *syscall);
  void *ctx;
  uint32_t max_routes; /* most routes in the table (a bound on hostile input); 0 = 1 << 20 */
  /* 1 = one loop thread for both directions; 2 = one per direction (split mode, see fwd_loop.c);
   * 0 = 2 when at least two CPUs are online, else 1. */
  int threads;
  int nice; /* nice value of the loop threads (-20..19); 0 = the caller's (see fwd_loop.c) */
};

/* One prefix of this host's own subnets (inner destinations accepted from peers). */
#define FWD_MAX_LOCAL 16
struct fwd_prefix {
  uint8_t family; /* 4 or 6 */
  uint8_t len;
  uint8_t addr[16];
};

/* A route command the loop could not apply (the route is not in the table). */
#define FWD_MAX_FAILURES 256
struct fwd_failure {
  uint8_t family, len;
  uint8_t addr[16];
  int err; /* ENOMEM, ENOSPC */
};

/* Counters: plain integers written by the loop thread only (relaxed atomics), read at any time. */
struct fwd_stats {
  uint64_t tx_packets, tx_bytes; /* IP packets/bytes sent as UDP datagrams (after segmentation) */
  uint64_t rx_packets, rx_bytes; /* IP packets/bytes received over UDP and written to the TUN */
  uint64_t tun_reads;            /* packets read from the TUN (a super-packet counts once) */
  uint64_t tun_writes;           /* writes to the TUN (a coalesced super-packet counts once) */
  uint64_t tso_packets;          /* super-packets read from the TUN and segmented */
  uint64_t gso_sends;            /* datagram batches sent with UDP_SEGMENT */
  uint64_t gro_receives;         /* receives that carried more than one datagram (UDP_GRO) */
  uint64_t coalesced_writes;     /* TUN writes carrying more than one TCP segment */
  uint64_t icmp_sent;            /* ICMP net-unreachable written back into the TUN */
  uint64_t drop_no_route;        /* TUN -> UDP: no route for the destination */
  uint64_t drop_unknown_peer;    /* UDP -> TUN: datagram from an address that is no peer */
  uint64_t drop_bad_inner_source; /* UDP -> TUN: inner source outside the sending peer's subnets */
  uint64_t drop_malformed;       /* either way: failed validation */
  uint64_t drop_ttl;             /* TTL / hop limit expired */
  uint64_t drop_unsupported;     /* GSO type or header layout not handled */
  uint64_t drop_tun_write;       /* the TUN write failed */
  uint64_t drop_udp_send;        /* the UDP send failed */
  uint64_t drop_bad_inner_dest;  /* UDP -> TUN: inner destination outside this host's own subnets */
  uint64_t drop_bad_csum;        /* UDP -> TUN: TCP segment to coalesce failed its checksum */
  uint64_t drop_congested;       /* TUN -> UDP: the peer's socket was full (never waited for) */
  uint64_t commands_queued;      /* route commands accepted by fwd_set_route/fwd_del_route */
  uint64_t commands_applied;     /* ... and applied by the loop (equal = table is current) */
  uint64_t commands_failed;      /* ... of which failed (ENOMEM/ENOSPC): see fwd_take_failures */
  uint64_t peer_sockets;         /* peers with their own send socket (congestion isolation) */
  uint64_t routes;               /* routes in the table */
  /* offloads in use: 1/0. Any 0 is a fallback (slower, still correct). */
  uint64_t off_vnet_hdr, off_tso, off_udp_gso, off_udp_gro;
  uint64_t threads;  /* loop threads (1, or 2 in split mode) */
  uint64_t running;  /* 1 while the loop runs */
  uint64_t fatal_errno; /* errno that stopped the loop, 0 if none */
};

struct fwd;

/* Creates the UDP socket (in the CALLING thread's network namespace), sets up offloads and starts
 * the loop. Returns 0, or -errno with *failed_syscall naming the call; on failure tun_fd is not
 * taken (the caller still owns it). */
int fwd_open(const struct fwd_config *cfg, struct fwd **out, const char **failed_syscall);

/* Queue a route change; `addr` is 4 (family 4) or 16 (family 6) bytes, peer_ip network order, port
 * host order. Returns 0, -ENOMEM, or -ESHUTDOWN when the loop is no longer running. */
int fwd_set_route(struct fwd *f, int family, const uint8_t *addr, int len, uint32_t peer_ip,
                  uint16_t port);
int fwd_del_route(struct fwd *f, int family, const uint8_t *addr, int len);

/* Replaces this host's own subnets (n <= FWD_MAX_LOCAL, host bits ignored), applied atomically in
 * order with the route commands. A datagram whose inner destination lies outside all of them is
 * dropped (drop_bad_inner_dest): until the first call, every one is. 0, -EINVAL, -ENOMEM, -ESHUTDOWN. */
int fwd_set_local(struct fwd *f, const struct fwd_prefix *p, int n);

/* Moves up to `max` failed route commands (oldest first) into out; returns how many. Failures beyond
 * FWD_MAX_FAILURES not yet taken are only counted (commands_failed). */
int fwd_take_failures(struct fwd *f, struct fwd_failure *out, int max);

void fwd_get_stats(struct fwd *f, struct fwd_stats *out);
/* The UDP port actually bound (host order). */
uint16_t fwd_local_port(struct fwd *f);
/* Stops and joins the loop thread, closes the TUN fd and the socket, frees f. */
void fwd_close(struct fwd *f);

#ifdef __cplusplus
}
#endif
#endif
