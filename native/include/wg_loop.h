/*
 * The WireGuard device loop (the userspace engine of backend `wireguard`), pure C: one thread moves
 * packets between a TUN device and one UDP socket, encrypting and decrypting with the protocol core
 * (wg.h). Packets never reach JavaScript; the control plane queues peer and allowed-IP commands and
 * reads snapshots of the counters.
 *
 * Threads: wgl_open starts the loop thread; every other function is called from ONE control thread
 * (the JS main thread). Commands are queued under a mutex and applied by the loop between batches,
 * in order: the WireGuard device, its peers and the allowed-IPs table belong to the loop thread.
 * wgl_snapshot asks the loop for a consistent copy of the counters and peers and waits for it
 * (bounded by a timeout).
 *
 * Ownership: on success wgl_open takes cfg->tun_fd (closed by wgl_close). The private key is
 * copied into the loop and wiped when it closes; it is never logged or returned.
 */
#ifndef WEFT_WG_LOOP_H
#define WEFT_WG_LOOP_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

struct wgl_config {
  int tun_fd;          /* TUN fd (IFF_TUN|IFF_NO_PI, IFF_VNET_HDR recommended); owned after success */
  int family;          /* underlay: 4 (AF_INET socket) or 6 (AF_INET6 socket) */
  uint8_t bind_ip[16]; /* bind address (4 or 16 bytes used), all zero = any */
  uint16_t port;       /* UDP port, host order; 0 = ephemeral (tests) */
  uint16_t mtu;        /* MTU of the TUN device (inner packets) */
  uint8_t priv[32];    /* X25519 private key */
  uint32_t load_threshold; /* handshakes/s before cookies are required; 0 = default */
  void (*on_fatal)(void *ctx, int err, const char *syscall);
  void *ctx;
};

/* Device counters (one snapshot). */
struct wgl_stats {
  uint64_t tx_packets, tx_bytes;   /* inner packets sent as transport messages / UDP payload bytes */
  uint64_t rx_packets, rx_bytes;   /* inner packets written to the TUN / UDP payload bytes received */
  uint64_t tun_reads, tun_writes, tso_packets, gso_sends, gro_receives, coalesced_writes;
  uint64_t rx_handshake, tx_handshake, rx_cookie, tx_cookie, under_load;
  uint64_t drop_no_route;     /* TUN -> UDP: destination in no peer's allowed IPs */
  uint64_t drop_no_session;   /* queued while handshaking and dropped (queue full, gave up) */
  uint64_t drop_malformed;    /* bad packet either way */
  uint64_t drop_mac1;         /* handshake not for our key */
  uint64_t drop_unknown_key;  /* handshake from a static key that is no peer */
  uint64_t drop_handshake;    /* handshake that failed (decrypt, replayed timestamp, state) */
  uint64_t drop_ratelimited;  /* handshake over the per-source rate while under load */
  uint64_t drop_stale;        /* transport for an unknown index or an expired session */
  uint64_t drop_decrypt;      /* transport that did not authenticate */
  uint64_t drop_replay;       /* transport counter replayed / outside the window */
  uint64_t drop_allowed_ips;  /* inner source not in the sending peer's allowed IPs */
  uint64_t drop_unsupported;  /* GSO type not handled */
  uint64_t drop_tun_write, drop_udp_send;
  uint64_t commands_queued, commands_applied, peers, allowed_ips;
  uint64_t off_vnet_hdr, off_tso, off_udp_gso, off_udp_gro;
  uint64_t running, fatal_errno;
  /* most recent handshake from a key that is no peer: source and key (family 0 = none) */
  uint64_t unknown_family, unknown_port, unknown_age_ms;
  uint8_t unknown_addr[16], unknown_pub[32];
};

struct wgl_peer_info {
  uint8_t pub[32];
  uint8_t ep_family; /* 0 = no endpoint yet */
  uint8_t ep_addr[16];
  uint16_t ep_port;
  uint8_t has_session;
  uint32_t keepalive;
  uint64_t last_handshake_sec; /* wall clock, 0 = never */
  uint64_t rx_bytes, tx_bytes, rx_packets, tx_packets;
  uint64_t handshakes, handshake_initiations, drop_allowed_ips, drop_replay;
};

struct wgl;

/* Creates the UDP socket (in the CALLING thread's network namespace) and starts the loop. 0, or
 * -errno with *failed_syscall naming the call; on failure tun_fd is not taken. */
int wgl_open(const struct wgl_config *cfg, struct wgl **out, const char **failed_syscall);

/* Queue commands; 0, -EINVAL, -ENOMEM or -ESHUTDOWN. psk NULL = none; ep_family 0 = no endpoint
 * (ep_addr 4 or 16 bytes, port host order). */
int wgl_set_peer(struct wgl *w, const uint8_t pub[32], const uint8_t *psk, int ep_family,
                 const uint8_t *ep_addr, uint16_t ep_port, uint32_t keepalive);
int wgl_del_peer(struct wgl *w, const uint8_t pub[32]);
/* Starts a handshake with the peer now unless it has a session (a restarted host announces itself,
 * so peers drop the sessions they still hold with its previous instance). */
int wgl_initiate(struct wgl *w, const uint8_t pub[32]);
int wgl_set_allowed(struct wgl *w, const uint8_t pub[32], int family, const uint8_t *addr, int len);
int wgl_del_allowed(struct wgl *w, int family, const uint8_t *addr, int len);

/* Copies the counters and up to max_peers peers (returns how many peers exist, may be > max). -1
 * when the loop did not answer within timeout_ms (stats then hold the last known counters). */
int wgl_snapshot(struct wgl *w, struct wgl_stats *st, struct wgl_peer_info *peers, int max_peers,
                 int timeout_ms);
/* The public key and the UDP port actually bound (host order). */
void wgl_public_key(struct wgl *w, uint8_t pub[32]);
uint16_t wgl_local_port(struct wgl *w);
void wgl_close(struct wgl *w);

#ifdef __cplusplus
}
#endif
#endif
