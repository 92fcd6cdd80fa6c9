/*
 * WireGuard protocol core, without I/O (unit-tested in native/test): the Noise_IKpsk2 handshake
 * (initiation, response), cookie replies and MAC2 under load, transport data with counters and a
 * replay window, key rotation and the timers of the whitepaper (section 6) with wireguard-go's
 * semantics. Crypto primitives come from wg_crypto.h (libsodium + OpenSSL).
 *
 * Threads: a struct wg_device and everything reachable from it belong to ONE thread (the loop
 * thread, or a test). Time is passed in (`now`, monotonic nanoseconds) so tests control it.
 *
 * Output: handshake, cookie and keepalive messages leave through dev->send (a callback given at
 * creation); transport data of the fast path is sealed by the caller with wg_seal into its own
 * buffers (batching), after wg_tx_begin reserved a counter.
 *
 * Ownership: wg_device_new allocates the device; peers, keypairs and staged packets are allocated
 * and freed by the device (wg_peer_remove, wg_device_free wipe key material before freeing).
 */
#ifndef WEFT_WG_H
#define WEFT_WG_H

#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "wg_crypto.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Message types and sizes (whitepaper 5.4). */
#define WG_MSG_INITIATION 1
#define WG_MSG_RESPONSE 2
#define WG_MSG_COOKIE 3
#define WG_MSG_DATA 4
#define WG_INITIATION_LEN 148
#define WG_RESPONSE_LEN 92
#define WG_COOKIE_LEN 64
#define WG_DATA_HDR_LEN 16
#define WG_DATA_MIN_LEN (WG_DATA_HDR_LEN + WG_TAG_LEN) /* a keepalive */
/* Bytes WireGuard adds to an inner packet besides padding: header + tag. */
#define WG_DATA_OVERHEAD (WG_DATA_HDR_LEN + WG_TAG_LEN)

/* Protocol constants (whitepaper 6.1), in nanoseconds where times. */
#define WG_NS 1000000000ULL
#define WG_REKEY_AFTER_MESSAGES (1ULL << 60)
#define WG_REJECT_AFTER_MESSAGES (UINT64_MAX - (1ULL << 13))
#define WG_REKEY_AFTER_TIME (120 * WG_NS)
#define WG_REJECT_AFTER_TIME (180 * WG_NS)
#define WG_REKEY_ATTEMPT_TIME (90 * WG_NS)
#define WG_REKEY_TIMEOUT (5 * WG_NS)
#define WG_KEEPALIVE_TIMEOUT (10 * WG_NS)
#define WG_COOKIE_REFRESH_TIME (120 * WG_NS)
#define WG_MAX_TIMER_HANDSHAKES (WG_REKEY_ATTEMPT_TIME / WG_REKEY_TIMEOUT)
#define WG_HANDSHAKE_INITIATION_RATE (WG_NS / 50) /* min gap between consumed initiations */
/* After crossed initiations (wg_session.c handle_handshake), the side with the greater public key
 * starts again after this: past the peer's initiation flood limit and TAI64N's 2^24 ns rounding. */
#define WG_RACE_RETRY (WG_NS / 10)
#define WG_MAX_STAGED 128                         /* packets queued per peer while handshaking */

/* Replay window (RFC 6479 layout, wireguard-go's size). */
#define WG_REPLAY_BLOCKS 128
#define WG_REPLAY_WINDOW ((WG_REPLAY_BLOCKS - 1) * 64)
struct wg_replay {
  uint64_t last;
  uint64_t bits[WG_REPLAY_BLOCKS];
};
void wg_replay_init(struct wg_replay *r);
/* 1 if `counter` is new (and records it), 0 if replayed, too old or >= limit. */
int wg_replay_check(struct wg_replay *r, uint64_t counter, uint64_t limit);

/* An underlay endpoint: IPv4 or IPv6 socket address (family 0 = none). */
struct wg_endpoint {
  union {
    struct sockaddr sa;
    struct sockaddr_in in4;
    struct sockaddr_in6 in6;
  };
};
socklen_t wg_endpoint_len(const struct wg_endpoint *e);
int wg_endpoint_equal(const struct wg_endpoint *a, const struct wg_endpoint *b);

struct wg_peer;
struct wg_device;
struct wg_keypair;

/* An entry of the device's index table (receiver index -> handshake or keypair). */
struct wg_idx_entry {
  uint32_t index;
  struct wg_peer *peer;
  struct wg_keypair *kp; /* NULL: the peer's handshake */
  struct wg_idx_entry *next;
  uint8_t linked;
};

struct wg_keypair {
  uint8_t send_key[WG_KEY_LEN], recv_key[WG_KEY_LEN];
  uint64_t send_id, recv_id; /* identities of the two keys (wg_aead_key_id) */
  uint64_t send_counter; /* next counter to use */
  struct wg_replay replay;
  uint64_t created;      /* monotonic ns */
  uint32_t local_index, remote_index;
  uint8_t initiator;
  struct wg_peer *peer;
  struct wg_idx_entry ie; /* registered under local_index */
};

enum wg_hs_state {
  WG_HS_ZEROED = 0,
  WG_HS_INITIATION_CREATED,
  WG_HS_INITIATION_CONSUMED,
  WG_HS_RESPONSE_CREATED,
  WG_HS_RESPONSE_CONSUMED,
};

struct wg_handshake {
  enum wg_hs_state state;
  uint8_t hash[WG_HASH_LEN], chain[WG_HASH_LEN];
  uint8_t eph_priv[WG_KEY_LEN], remote_eph[WG_KEY_LEN];
  uint32_t remote_index;
  struct wg_idx_entry ie;             /* local index, registered while state != ZEROED */
  uint8_t latest_ts[WG_TAI64N_LEN];   /* greatest initiation timestamp consumed */
  uint64_t last_init_consumed;        /* monotonic ns */
};

/* Per-peer counters, readable by the control thread through the loop's snapshot. */
struct wg_peer_stats {
  uint64_t rx_bytes, tx_bytes;       /* transport bytes received/sent (UDP payload) */
  uint64_t rx_packets, tx_packets;   /* inner packets (keepalives not counted) */
  uint64_t handshakes;               /* sessions derived */
  uint64_t handshake_initiations;    /* initiations sent */
  uint64_t last_handshake_sec;       /* wall clock of the last completed handshake, 0 = never */
  uint64_t drop_allowed_ips;         /* inner source outside this peer's allowed IPs */
  uint64_t drop_replay;              /* counter replayed or outside the window */
};

struct wg_peer {
  uint8_t pub[WG_KEY_LEN];
  uint8_t psk[WG_KEY_LEN];
  uint8_t ss[WG_KEY_LEN];          /* DH(our static, peer static), precomputed */
  uint8_t mac1_key[WG_HASH_LEN];   /* HASH(LABEL_MAC1 || peer pub): MAC1 of messages to the peer */
  uint8_t cookie_key[WG_HASH_LEN]; /* HASH(LABEL_COOKIE || peer pub): cookie replies from the peer */
  uint8_t ss_ok;                   /* the peer's public key is not a low-order point */
  struct wg_endpoint ep;
  uint32_t keepalive_sec; /* PersistentKeepalive, 0 = off */
  uint32_t slot;          /* index in dev->slots, stable while the peer exists */

  struct wg_handshake hs;
  struct wg_keypair *cur, *prev, *next;

  /* cookie generator: */
  uint8_t cookie[WG_MAC_LEN];
  uint64_t cookie_time; /* 0 = none */
  uint8_t last_mac1[WG_MAC_LEN];
  uint8_t have_last_mac1;

  /* timers (monotonic ns deadlines, 0 = not pending) */
  uint64_t t_retransmit, t_send_keepalive, t_new_handshake, t_zero_keys, t_persistent;
  uint8_t need_another_keepalive, sent_last_minute_handshake;
  uint32_t handshake_attempts;
  uint64_t last_initiation_sent; /* monotonic ns, 0 = never */
  uint8_t hs_raced;   /* the initiation just consumed crossed one of ours still unanswered */
  uint8_t race_retry; /* the next timer retransmit may come sooner than WG_REKEY_TIMEOUT */

  /* staged packets (copies) waiting for a session */
  uint8_t *staged[WG_MAX_STAGED];
  uint16_t staged_len[WG_MAX_STAGED];
  unsigned nstaged;

  struct wg_peer_stats st;
};

/* Device-wide counters. */
struct wg_stats {
  uint64_t rx_data, tx_data;            /* transport messages */
  uint64_t rx_handshake, tx_handshake;  /* initiations + responses */
  uint64_t rx_cookie, tx_cookie;        /* cookie replies */
  uint64_t drop_malformed;              /* bad length or type */
  uint64_t drop_mac1;                   /* MAC1 did not verify: not for our key */
  uint64_t drop_unknown_key;            /* initiation decrypted to a static key we have no peer for */
  uint64_t drop_handshake;              /* handshake failed to decrypt / wrong state / replayed ts */
  uint64_t drop_ratelimited;            /* under load, valid MAC2, source over its rate */
  uint64_t drop_stale;                  /* transport for an unknown index or an expired session */
  uint64_t drop_decrypt;                /* transport that did not authenticate */
  uint64_t drop_replay;                 /* transport counter replayed or too old */
  uint64_t drop_allowed_ips;            /* inner source not in the sender's allowed IPs */
  uint64_t drop_no_session;             /* staged queue full while waiting for a handshake */
  uint64_t under_load;                  /* handshake messages seen while under load */
};

/* The most recent initiation whose static key matched no peer (for `doctor`). */
struct wg_unknown_key {
  struct wg_endpoint from;
  uint8_t pub[WG_KEY_LEN];
  uint64_t when; /* monotonic ns, 0 = none */
};

/* Sends one message (handshake, cookie, keepalive or staged data) to `to`. */
typedef void (*wg_send_fn)(void *ctx, const struct wg_endpoint *to, const uint8_t *msg, size_t len);
/* Cryptokey routing: the peer allowed to use `addr` (4 or 16 bytes) as inner source, or NULL. */
typedef struct wg_peer *(*wg_allowed_fn)(void *ctx, int family, const uint8_t *addr);

#define WG_INDEX_BUCKETS 4096
#define WG_RL_SLOTS 1024

struct wg_device {
  uint8_t priv[WG_KEY_LEN], pub[WG_KEY_LEN];
  uint8_t mac1_key[WG_HASH_LEN], cookie_key[WG_HASH_LEN];
  wg_send_fn send;
  wg_allowed_fn allowed;
  void *ctx;
  uint16_t mtu; /* inner MTU for padding */

  struct wg_peer **slots; /* NULL = free slot */
  uint32_t nslots, npeers;

  struct wg_idx_entry *idx[WG_INDEX_BUCKETS];

  /* cookie checker: secret rotated every 2 minutes */
  uint8_t cookie_secret[WG_KEY_LEN];
  uint64_t cookie_secret_time;
  /* load: handshake messages in the current second; under load while over the threshold */
  uint64_t load_window;
  uint32_t load_count, load_threshold;
  uint64_t under_load_until;
  /* per-source rate limit of handshakes processed under load (token buckets) */
  uint64_t rl_seed;
  struct {
    uint8_t addr[16];
    uint64_t tokens_time; /* ns of last refill */
    int64_t tokens;       /* in ns of budget */
  } rl[WG_RL_SLOTS];

  struct wg_unknown_key unknown;
  struct wg_stats st;
  uint8_t tmp[65536 + 64]; /* scratch for sealing staged packets */
};

/* Creates a device with the private key `priv` (clamped copy kept). `load_threshold`: handshake
 * messages per second above which the device is under load (0 = default 64). NULL on ENOMEM or when
 * crypto init fails. */
struct wg_device *wg_device_new(const uint8_t priv[WG_KEY_LEN], uint16_t mtu, wg_send_fn send,
                                wg_allowed_fn allowed, void *ctx, uint32_t load_threshold);
void wg_device_free(struct wg_device *d);

/* Adds or updates the peer with public key `pub` (psk NULL = none; ep NULL or family 0 = no
 * endpoint yet; keepalive in seconds). Changing the psk drops the peer's sessions. NULL on ENOMEM. */
struct wg_peer *wg_peer_set(struct wg_device *d, const uint8_t pub[WG_KEY_LEN],
                            const uint8_t *psk, const struct wg_endpoint *ep, uint32_t keepalive,
                            uint64_t now);
struct wg_peer *wg_peer_find(struct wg_device *d, const uint8_t pub[WG_KEY_LEN]);
static inline struct wg_peer *wg_peer_at(const struct wg_device *d, uint32_t slot) {
  return slot < d->nslots ? d->slots[slot] : NULL;
}
/* Removes the peer, wiping its keys. The caller first removes its allowed IPs. */
void wg_peer_remove(struct wg_device *d, struct wg_peer *p);

/* ---- handshake messages (exposed for tests and vectors) ---- */
int wg_create_initiation(struct wg_device *d, struct wg_peer *p, uint8_t msg[WG_INITIATION_LEN],
                         uint64_t now);
/* Returns the peer, or NULL (reason counted in d->st). */
struct wg_peer *wg_consume_initiation(struct wg_device *d, const uint8_t msg[WG_INITIATION_LEN],
                                      const struct wg_endpoint *from, uint64_t now);
int wg_create_response(struct wg_device *d, struct wg_peer *p, uint8_t msg[WG_RESPONSE_LEN]);
struct wg_peer *wg_consume_response(struct wg_device *d, const uint8_t msg[WG_RESPONSE_LEN]);
/* Derives the transport keypair from the completed handshake (initiator: becomes current;
 * responder: becomes next until the initiator's first packet). 0 or -1. */
int wg_begin_session(struct wg_device *d, struct wg_peer *p, uint64_t now);
/* MAC1/MAC2 on an outgoing handshake message to p (and remembers MAC1 for a cookie reply). */
void wg_add_macs(struct wg_peer *p, uint8_t *msg, size_t len, uint64_t now);

/* ---- the engine: what the loop calls ---- */

/* Result of wg_receive for a transport message carrying an inner packet. */
struct wg_rx {
  struct wg_peer *peer;
  uint8_t *pkt;   /* plaintext inner packet (in place, inside the message buffer) */
  size_t len;     /* plaintext length including padding */
};
enum {
  WG_RX_DROP = 0,  /* dropped (counted) */
  WG_RX_CONTROL,   /* handshake / cookie / keepalive: handled, nothing to deliver */
  WG_RX_PACKET,    /* rx->pkt is an inner IP packet whose source the peer may use */
};
/* Handles one datagram from `from` (decrypts transport data in place). */
int wg_receive(struct wg_device *d, const struct wg_endpoint *from, uint8_t *msg, size_t len,
               uint64_t now, struct wg_rx *rx);

/* The transport path of wg_receive in three phases, so a loop can decrypt a batch on several threads:
 * wg_rx_prepare (owning thread: index lookup, stale check; 0 = dropped and counted), wg_rx_decrypt
 * (any thread: reads only the key and the message), wg_rx_finish (owning thread, in arrival order:
 * replay window, rotation, timers, endpoint, allowed IPs). Between prepare and finish the owning
 * thread may only finish earlier jobs (no handshakes: they allocate keypairs). */
struct wg_rx_job {
  uint8_t *msg;
  size_t len;
  struct wg_keypair *kp;
  uint32_t index;
  uint64_t counter;
  int ok;
  /* set by the caller after prepare: the WG_AEAD_ROOM_AFTER bytes after the ciphertext may be used
   * by this job's decryption alone (wg_aead_open_room); 0 from wg_rx_prepare */
  int room;
  /* set by the caller after prepare, else NULL: decrypt out of place into out (wg_aead_open_to: the
   * 64 bytes before the ciphertext and the 63 after it are read, never written; out has the room
   * it needs), and the plaintext of wg_rx_finish is there */
  uint8_t *out;
};
int wg_rx_prepare(struct wg_device *d, uint8_t *msg, size_t len, uint64_t now,
                  struct wg_rx_job *job);
void wg_rx_decrypt(struct wg_rx_job *job);
int wg_rx_finish(struct wg_device *d, const struct wg_endpoint *from, struct wg_rx_job *job,
                 uint64_t now, struct wg_rx *rx);

/* Fast path of sending: the current keypair with a counter reserved for `n` messages, or NULL when
 * there is no usable session (then stage the packets with wg_stage). */
struct wg_keypair *wg_tx_begin(struct wg_device *d, struct wg_peer *p, unsigned n, uint64_t now,
                               uint64_t *first_counter);
/* Padded plaintext length for an inner packet of `len` bytes. */
size_t wg_padded_len(const struct wg_device *d, size_t len);
/* Seals a transport message in place: msg[16 .. 16+len) holds the plaintext (len already padded,
 * padding bytes zeroed by the caller); writes the header and the tag. Returns the message length. */
size_t wg_seal(const struct wg_keypair *kp, uint64_t counter, uint8_t *msg, size_t len);
/* The same with room around the message (wg_aead_seal_room): the 48 bytes before msg and the
 * WG_AEAD_ROOM_AFTER bytes after msg[16 + len] are scratch. */
size_t wg_seal_room(const struct wg_keypair *kp, uint64_t counter, uint8_t *msg, size_t len);
/* The same sealed out of place from src (wg_aead_seal_to: the plaintext is hdr[0..hdr_len), then
 * src[hdr_len..data_len), then zeros up to the padded len; src[-64..len+63) is read, never written):
 * msg gets the header, the ciphertext and the tag, with the same scratch as wg_seal_room. */
size_t wg_seal_to(const struct wg_keypair *kp, uint64_t counter, uint8_t *msg, const uint8_t *src,
                  size_t len, size_t data_len, const uint8_t *hdr, size_t hdr_len);
/* After the caller sent `n` data messages (`bytes` UDP payload) with kp: timers, rekeying. */
void wg_tx_done(struct wg_device *d, struct wg_peer *p, struct wg_keypair *kp, unsigned n,
                uint64_t bytes, uint64_t now);
/* Queues a copy of an inner packet until a session exists (starting a handshake). */
void wg_stage(struct wg_device *d, struct wg_peer *p, const uint8_t *pkt, size_t len, uint64_t now);
/* Sends (through dev->send) a keepalive or the staged packets. */
void wg_send_keepalive(struct wg_device *d, struct wg_peer *p, uint64_t now);
/* Starts a handshake now (rate limited to one per REKEY_TIMEOUT unless a retry). */
void wg_send_initiation(struct wg_device *d, struct wg_peer *p, int retry, uint64_t now);
/* Runs the expired timers of every peer. Call at least every 100-250 ms. */
void wg_tick(struct wg_device *d, uint64_t now);

/* ---- internals shared by the wg_*.c files ---- */
void wg_idx_add(struct wg_device *d, struct wg_idx_entry *e, struct wg_peer *p, struct wg_keypair *kp);
void wg_idx_del(struct wg_device *d, struct wg_idx_entry *e);
struct wg_idx_entry *wg_idx_find(struct wg_device *d, uint32_t index);
void wg_handshake_clear(struct wg_device *d, struct wg_peer *p);
void wg_keypairs_clear(struct wg_device *d, struct wg_peer *p);
int wg_check_mac1(const struct wg_device *d, const uint8_t *msg, size_t len);
int wg_check_mac2(struct wg_device *d, const uint8_t *msg, size_t len, const struct wg_endpoint *from,
                  uint64_t now);
void wg_send_cookie_reply(struct wg_device *d, const uint8_t *msg, size_t len, uint32_t sender,
                          const struct wg_endpoint *from, uint64_t now);
int wg_consume_cookie_reply(struct wg_device *d, const uint8_t msg[WG_COOKIE_LEN], uint64_t now);
int wg_ratelimit_allow(struct wg_device *d, const struct wg_endpoint *from, uint64_t now);
static inline uint32_t wg_le32(const uint8_t *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static inline void wg_put_le32(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); p[2] = (uint8_t)(v >> 16); p[3] = (uint8_t)(v >> 24);
}
static inline uint64_t wg_le64(const uint8_t *p) {
  return (uint64_t)wg_le32(p) | (uint64_t)wg_le32(p + 4) << 32;
}
static inline void wg_put_le64(uint8_t *p, uint64_t v) {
  wg_put_le32(p, (uint32_t)v); wg_put_le32(p + 4, (uint32_t)(v >> 32));
}

#ifdef __cplusplus
}
#endif
#endif
