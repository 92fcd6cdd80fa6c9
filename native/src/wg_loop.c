/*
 * The WireGuard device loop (see wg_loop.h). One thread, epoll over the TUN fd, the UDP socket and
 * an eventfd for control, waking at least every TICK_MS for the protocol timers.
 *
 * TUN -> UDP: up to BATCH reads (TSO super-packets of up to 64 KiB with a virtio-net header) per
 * wakeup; each super-packet is segmented (pkt_tso_segment_partial), each segment copied once into a
 * slot of the send arena behind a 16-byte message header (its TCP checksum summed in that pass),
 * padded and sealed in place; consecutive equal-sized messages to one endpoint share one
 * UDP_SEGMENT send; one sendmmsg per batch.
 * UDP -> TUN: one recvmmsg of up to BATCH UDP_GRO buffers; the datagrams are handed to the protocol
 * core in rounds of RX_JOBS (decrypted into plaintext slots taken in turn from a ring, or in place
 * when larger than a slot, replay-checked, source checked against the sender's allowed IPs) and
 * consecutive TCP segments of one flow are coalesced into one TUN write (virtio GSO), also across
 * rounds.
 *
 * Buffers: all preallocated and owned by the loop thread; nothing is allocated per packet (staged
 * packets while a handshake runs are copies, bounded per peer).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/futex.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <time.h>

#include "loop_io.h"
#include "pkt.h"
#include "route_table.h"
#include "wg.h"
#include "wg_loop.h"

#define TX_SLOTS 1024          /* sealed messages per flush */
/* A TX slot: [scratch | 16-byte header | plaintext, sealed in place | tag and slack]: the scratch
 * and the header are the 64 bytes in front of the plaintext that wg_seal_room uses (see
 * wg_aead_seal_room), the slack the WG_AEAD_ROOM_AFTER bytes behind it. */
#define SLOT_SCRATCH (WG_AEAD_ROOM_BEFORE - WG_DATA_HDR_LEN)
#define TICK_MS 100
#define SEND_WAIT_MS 50
#define SEND_WAIT_ROUNDS 40
/* Transport messages decrypted per round before their packets are written to the TUN. A round's
 * plaintext is still in the cache when the TUN write copies it: rounds of up to 1024 messages (1.5 MB
 * of plaintext slots, beyond the 512 KiB L2 per core here) cost ~4 % more engine CPU per Gbit
 * (bench:wireguard, interleaved, 3 of 3 rounds). */
#define RX_JOBS 64
/* Plaintext slots, used in turn: a coalesced run (up to PKT_MAX_SEGS packets of the rounds before)
 * may stay open across rounds, so a round's RX_JOBS slots must never be ones the open run points
 * into. */
#define RX_RING (RX_JOBS + PKT_MAX_SEGS)
/* In front of the receive buffers: the 64 bytes before a ciphertext that wg_aead_open_to reads
 * (header + 48 bytes before it) stay inside the allocation for a message at a buffer's start. */
#define RX_GUARD 64
/* Around the TUN read buffers: a segment sealed from its buffer (seal_direct) reads the 64 bytes
 * before where its header would be (behind the virtio-net header and the HEADROOM, less than that
 * for the first buffer's first packet) and up to 63 + 15 bytes after its padded end (a buffer's slack
 * past the largest TUN read, not the last one's). */
#define TUN_GUARD 128
#define MAX_WORKERS 3          /* crypto helper threads besides the loop thread */
/* A round of less is sealed or opened by the loop thread alone: waking a helper (futex, IPI, two
 * context switches: ~5-10 us of CPU on a 2-vCPU VM) costs more than the half of 16 KiB of ChaCha20-
 * Poly1305 (~1.2 us per 1420 bytes) it would take over; a round of ACKs stays on one thread. */
#define PAR_MIN_BYTES (16u << 10)

/*
 * Parallel crypto: the loop thread owns all protocol state; helpers only run pure jobs (seal or open
 * one message with a key that cannot be freed meanwhile, because the loop thread waits for the round
 * to finish before it touches the protocol again). Jobs are claimed from one 64-bit ticket
 * (round id | job count | next index) with compare-and-swap, so a late helper can never claim a job
 * of a finished round; the loop thread works on the round too and then waits for `done`.
 */
struct par {
  pthread_t th[MAX_WORKERS];
  int nworkers;
  int stop;        /* atomic */
  uint32_t seq;    /* atomic futex word: bumped for every round */
  uint64_t ticket; /* atomic */
  uint32_t done;   /* atomic: jobs finished in this round */
  uint32_t id;
  void (*fn)(void *ctx, unsigned i);
  void *ctx;
};

static void futex_wait(uint32_t *w, uint32_t v) {
  syscall(SYS_futex, w, FUTEX_WAIT_PRIVATE, v, NULL, NULL, 0);
}
static void futex_wake(uint32_t *w) {
  syscall(SYS_futex, w, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
}

static void par_claim(struct par *p) {
  for (;;) {
    uint64_t v = __atomic_load_n(&p->ticket, __ATOMIC_ACQUIRE);
    unsigned i = (unsigned)(v & 0xffff), n = (unsigned)((v >> 16) & 0xffff);
    if (i >= n) return;
    if (__atomic_compare_exchange_n(&p->ticket, &v, v + 1, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
      p->fn(p->ctx, i);
      __atomic_fetch_add(&p->done, 1, __ATOMIC_RELEASE);
    }
  }
}

static void *par_main(void *arg) {
  struct par *p = arg;
  while (!__atomic_load_n(&p->stop, __ATOMIC_ACQUIRE)) {
    uint32_t s = __atomic_load_n(&p->seq, __ATOMIC_ACQUIRE);
    par_claim(p);
    if (__atomic_load_n(&p->stop, __ATOMIC_ACQUIRE)) break;
    if (__atomic_load_n(&p->seq, __ATOMIC_ACQUIRE) == s) futex_wait(&p->seq, s);
  }
  return NULL;
}

/* Runs fn(ctx, 0..n-1), spread over the helpers and the calling thread when the round carries at
 * least PAR_MIN_BYTES; returns when all ran. */
static int par_parallel(const struct par *p, unsigned n, size_t bytes) {
  return p->nworkers > 0 && bytes >= PAR_MIN_BYTES && n >= 2 && n <= 0xffff;
}

static void par_run(struct par *p, void (*fn)(void *, unsigned), void *ctx, unsigned n,
                    size_t bytes) {
  if (!par_parallel(p, n, bytes)) {
    for (unsigned i = 0; i < n; i++) fn(ctx, i);
    return;
  }
  p->fn = fn;
  p->ctx = ctx;
  __atomic_store_n(&p->done, 0, __ATOMIC_RELAXED);
  p->id++;
  __atomic_store_n(&p->ticket, ((uint64_t)p->id << 32) | ((uint64_t)n << 16), __ATOMIC_RELEASE);
  __atomic_add_fetch(&p->seq, 1, __ATOMIC_RELEASE);
  futex_wake(&p->seq);
  par_claim(p);
  unsigned spins = 0;
  while (__atomic_load_n(&p->done, __ATOMIC_ACQUIRE) < n) {
    if (++spins > 64) sched_yield(); /* a helper was preempted mid-job: give it the CPU */
  }
}

static int par_start(struct par *p, int workers) {
  memset(p, 0, sizeof(*p));
  for (int i = 0; i < workers; i++) {
    if (loop_thread_start(&p->th[i], par_main, p) != 0) break;
    p->nworkers++;
  }
  return p->nworkers;
}

static void par_stop(struct par *p) {
  __atomic_store_n(&p->stop, 1, __ATOMIC_RELEASE);
  __atomic_add_fetch(&p->seq, 1, __ATOMIC_RELEASE);
  futex_wake(&p->seq);
  for (int i = 0; i < p->nworkers; i++) pthread_join(p->th[i], NULL);
  p->nworkers = 0;
}

/*
 * Helpers: WEFT_WG_CRYPTO_THREADS if set (0-3), else one per CPU beyond the first two, at most 3.
 * On 2 vCPUs a helper only takes the CPU the traffic's own applications and kernel stacks need, and
 * every round pays for its wake (futex, IPI, context switches): measured here (2 vCPUs, TCP 1 stream
 * container to container, helpers on vs off back to back) 0.88 vs 0.70 vCPU·s per Gbit at a fixed
 * 1 Gbit/s, and at full speed 0.58 vs 0.53 vCPU·s per Gbit for the same throughput (0.30 / 0.29 vs
 * 0.31 / 0.30 of kernel VXLAN, medians of 6 interleaved rounds).
 */
static int crypto_workers(void) {
  const char *e = getenv("WEFT_WG_CRYPTO_THREADS");
  if (e && *e >= '0' && *e <= '9') {
    int n = atoi(e);
    return n > MAX_WORKERS ? MAX_WORKERS : n;
  }
  long cpus = sysconf(_SC_NPROCESSORS_ONLN);
  long n = cpus > 2 ? cpus - 2 : 0;
  return (int)(n > MAX_WORKERS ? MAX_WORKERS : n);
}

struct seal_job {
  const struct wg_keypair *kp;
  uint64_t counter;
  uint8_t *slot;
  uint32_t plen;
};

enum { CMD_PEER = 1, CMD_DEL_PEER, CMD_ALLOWED, CMD_DEL_ALLOWED, CMD_INITIATE };

struct cmd {
  uint8_t op, family, len, has_psk, ep_family;
  uint8_t pub[32], psk[32], addr[16], ep_addr[16];
  uint16_t ep_port;
  uint32_t keepalive;
};

struct prefix {
  uint8_t family, len, addr[16];
};
struct prefix_list {
  struct prefix *v;
  size_t n, cap;
};

struct wgl {
  int tun_fd, udp_fd, ep_fd, ev_fd;
  int family, vnet, gso_ok;
  uint16_t mtu, port;
  pthread_t thread;
  int stop;
  void (*on_fatal)(void *, int, const char *);
  void *ctx;
  uint8_t pub[32];

  struct loop_cmdq cq; /* control queue (struct cmd); its mutex also guards the snapshot */
  pthread_cond_t cv;
  /* snapshot exchange (under cq.mu) */
  int snap_req, snap_gen;
  struct wgl_stats snap;
  struct wgl_peer_info *snap_peers;
  int snap_npeers, snap_cap;

  /* loop thread only */
  struct wg_device *dev;
  struct rt_table *rt; /* allowed IPs: the route's peer_ip field holds the peer's slot */
  struct prefix_list *allowed; /* per slot */
  size_t allowed_cap;
  struct wgl_stats st; /* loop-owned counters (device-level wg_stats are merged at snapshot) */
  uint64_t now, last_tick;

  /* TUN -> UDP */
  uint8_t *tun_bufs, *tun_mem; /* tun_bufs = tun_mem + TUN_GUARD */
  size_t tun_lens[BATCH];
  uint8_t *hdr_arena;
  struct pkt_seg segs[PKT_MAX_SEGS];
  size_t slot_size;
  uint8_t *tx_arena; /* TX_SLOTS slots */
  size_t ntx_slots;
  struct mmsghdr tx_msgs[TX_SLOTS];
  struct iovec tx_iov[TX_SLOTS];
  struct wg_endpoint tx_addr[TX_SLOTS];
  struct seal_job seals[TX_SLOTS]; /* one per used slot, sealed just before the flush */
  struct par par;
  struct wg_rx_job rx_jobs[RX_JOBS];
  uint16_t rx_job_from[RX_JOBS]; /* recvmmsg message index (its source address) */
  unsigned n_rx_jobs;
  union loop_gso_ctl tx_ctl[TX_SLOTS];
  uint32_t tx_npkts[TX_SLOTS], tx_nbytes[TX_SLOTS];
  uint16_t tx_seg[TX_SLOTS];
  size_t ntx;
  int open;
  uint8_t stage_buf[65536];

  /* UDP -> TUN */
  uint8_t *udp_bufs, *udp_mem; /* udp_bufs = udp_mem + RX_GUARD */
  /* RX_RING plaintext slots (wg_aead_open_to: 64 bytes of scratch, plaintext, slack): a message
   * opens out of place in one ChaCha20 call, ~10 % less than in place (bench/native/wg-aead.c) */
  uint8_t *plain;
  size_t plain_slot, plain_cap; /* slot size; largest whole-block ciphertext a slot takes */
  unsigned plain_next;          /* the next slot of the RX_RING */
  struct mmsghdr rx_msgs[BATCH];
  struct iovec rx_iov[BATCH];
  struct wg_endpoint rx_addr[BATCH];
  union loop_gro_ctl rx_ctl[BATCH];
  struct loop_run run;
};

#define ST_ADD(w, field, n) ((w)->st.field += (uint64_t)(n))

static int stopping(struct wgl *w) { return __atomic_load_n(&w->stop, __ATOMIC_ACQUIRE); }

static uint64_t mono_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * WG_NS + (uint64_t)ts.tv_nsec;
}

static void fatal(struct wgl *w, int err, const char *syscall) {
  w->st.fatal_errno = (uint64_t)err;
  if (!stopping(w) && w->on_fatal) w->on_fatal(w->ctx, err, syscall);
}

/* ---- protocol callbacks ---------------------------------------------------------------------- */

static void send_one(void *ctx, const struct wg_endpoint *to, const uint8_t *msg, size_t len) {
  struct wgl *w = ctx;
  ssize_t r;
  do {
    r = sendto(w->udp_fd, msg, len, 0, &to->sa, wg_endpoint_len(to));
  } while (r < 0 && errno == EINTR);
  if (r < 0) ST_ADD(w, drop_udp_send, 1);
}

static struct wg_peer *allowed_peer(void *ctx, int family, const uint8_t *addr) {
  struct wgl *w = ctx;
  const struct rt_route *r = rt_lookup(w->rt, family, addr);
  return r ? wg_peer_at(w->dev, r->peer_ip) : NULL;
}

/* ---- control --------------------------------------------------------------------------------- */

static struct prefix_list *plist(struct wgl *w, uint32_t slot) {
  if (slot >= w->allowed_cap) {
    size_t cap = w->allowed_cap ? w->allowed_cap : 16;
    while (cap <= slot) cap *= 2;
    struct prefix_list *a = realloc(w->allowed, cap * sizeof(*a));
    if (!a) return NULL;
    memset(a + w->allowed_cap, 0, (cap - w->allowed_cap) * sizeof(*a));
    w->allowed = a;
    w->allowed_cap = cap;
  }
  return &w->allowed[slot];
}

static void plist_remove(struct prefix_list *l, const struct prefix *p) {
  for (size_t i = 0; i < l->n; i++) {
    if (l->v[i].family == p->family && l->v[i].len == p->len &&
        memcmp(l->v[i].addr, p->addr, 16) == 0) {
      l->v[i] = l->v[--l->n];
      return;
    }
  }
}

/* The slot owning exactly this prefix, or -1. */
static long exact_owner(struct wgl *w, const struct prefix *p) {
  const struct rt_route *r = rt_lookup(w->rt, p->family, p->addr);
  if (!r || r->len != p->len) return -1;
  return (long)r->peer_ip;
}

static void del_allowed(struct wgl *w, struct prefix *p) {
  loop_mask_prefix(p->addr, p->family, p->len);
  long owner = exact_owner(w, p);
  if (owner < 0) return;
  rt_del(w->rt, p->family, p->addr, p->len);
  if ((size_t)owner < w->allowed_cap) plist_remove(&w->allowed[owner], p);
}

static void apply_cmd(struct wgl *w, struct cmd *c) {
  struct wg_peer *p;
  struct prefix pf = {.family = c->family, .len = c->len};
  memcpy(pf.addr, c->addr, 16);
  switch (c->op) {
    case CMD_PEER: {
      struct wg_endpoint ep;
      memset(&ep, 0, sizeof(ep));
      if (c->ep_family == 4) {
        ep.in4.sin_family = AF_INET;
        ep.in4.sin_port = htons(c->ep_port);
        memcpy(&ep.in4.sin_addr, c->ep_addr, 4);
      } else if (c->ep_family == 6) {
        ep.in6.sin6_family = AF_INET6;
        ep.in6.sin6_port = htons(c->ep_port);
        memcpy(&ep.in6.sin6_addr, c->ep_addr, 16);
      }
      wg_peer_set(w->dev, c->pub, c->has_psk ? c->psk : NULL, c->ep_family ? &ep : NULL,
                  c->keepalive, w->now);
      break;
    }
    case CMD_DEL_PEER:
      p = wg_peer_find(w->dev, c->pub);
      if (!p) break;
      if (p->slot < w->allowed_cap) {
        struct prefix_list *l = &w->allowed[p->slot];
        for (size_t i = 0; i < l->n; i++) rt_del(w->rt, l->v[i].family, l->v[i].addr, l->v[i].len);
        l->n = 0;
      }
      wg_peer_remove(w->dev, p);
      break;
    case CMD_ALLOWED: {
      p = wg_peer_find(w->dev, c->pub);
      if (!p) break;
      loop_mask_prefix(pf.addr, pf.family, pf.len);
      long owner = exact_owner(w, &pf);
      if (owner == (long)p->slot) break;
      struct prefix_list *l = plist(w, p->slot);
      if (!l) break;
      if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 4;
        struct prefix *v = realloc(l->v, cap * sizeof(*v));
        if (!v) break;
        l->v = v;
        l->cap = cap;
      }
      if (rt_set(w->rt, pf.family, pf.addr, pf.len, p->slot, 0) < 0) break;
      if (owner >= 0 && (size_t)owner < w->allowed_cap) plist_remove(&w->allowed[owner], &pf);
      l->v[l->n++] = pf;
      break;
    }
    case CMD_DEL_ALLOWED:
      del_allowed(w, &pf);
      break;
    case CMD_INITIATE:
      p = wg_peer_find(w->dev, c->pub);
      if (p && !p->cur) wg_send_initiation(w->dev, p, 0, w->now);
      break;
  }
}

static void fill_snapshot(struct wgl *w) {
  struct wgl_stats *s = &w->snap;
  const struct wg_stats *d = &w->dev->st;
  uint64_t queued = s->commands_queued;
  *s = w->st;
  s->commands_queued = queued;
  s->tx_packets = d->tx_data; /* fast path and staged packets */
  s->tx_bytes = 0;            /* summed over peers below: data, handshakes and keepalives */
  s->rx_handshake = d->rx_handshake;
  s->tx_handshake = d->tx_handshake;
  s->rx_cookie = d->rx_cookie;
  s->tx_cookie = d->tx_cookie;
  s->under_load = d->under_load;
  s->drop_no_session = d->drop_no_session;
  s->drop_malformed += d->drop_malformed;
  s->drop_mac1 = d->drop_mac1;
  s->drop_unknown_key = d->drop_unknown_key;
  s->drop_handshake = d->drop_handshake;
  s->drop_ratelimited = d->drop_ratelimited;
  s->drop_stale = d->drop_stale;
  s->drop_decrypt = d->drop_decrypt;
  s->drop_replay = d->drop_replay;
  s->drop_allowed_ips = d->drop_allowed_ips;
  s->peers = w->dev->npeers;
  s->allowed_ips = rt_count(w->rt);
  s->running = 1;
  const struct wg_unknown_key *u = &w->dev->unknown;
  s->unknown_family = 0;
  if (u->when) {
    s->unknown_family = u->from.sa.sa_family == AF_INET6 ? 6 : 4;
    if (s->unknown_family == 4) {
      memcpy(s->unknown_addr, &u->from.in4.sin_addr, 4);
      s->unknown_port = ntohs(u->from.in4.sin_port);
    } else {
      memcpy(s->unknown_addr, &u->from.in6.sin6_addr, 16);
      s->unknown_port = ntohs(u->from.in6.sin6_port);
    }
    memcpy(s->unknown_pub, u->pub, 32);
    s->unknown_age_ms = (w->now - u->when) / 1000000;
  }
  int n = 0;
  for (uint32_t i = 0; i < w->dev->nslots; i++) {
    struct wg_peer *p = w->dev->slots[i];
    if (!p) continue;
    if (n == w->snap_cap) {
      int cap = w->snap_cap ? w->snap_cap * 2 : 16;
      struct wgl_peer_info *v = realloc(w->snap_peers, (size_t)cap * sizeof(*v));
      if (!v) break;
      w->snap_peers = v;
      w->snap_cap = cap;
    }
    struct wgl_peer_info *pi = &w->snap_peers[n++];
    memset(pi, 0, sizeof(*pi));
    memcpy(pi->pub, p->pub, 32);
    if (p->ep.sa.sa_family == AF_INET) {
      pi->ep_family = 4;
      memcpy(pi->ep_addr, &p->ep.in4.sin_addr, 4);
      pi->ep_port = ntohs(p->ep.in4.sin_port);
    } else if (p->ep.sa.sa_family == AF_INET6) {
      pi->ep_family = 6;
      memcpy(pi->ep_addr, &p->ep.in6.sin6_addr, 16);
      pi->ep_port = ntohs(p->ep.in6.sin6_port);
    }
    pi->has_session = p->cur != NULL || p->next != NULL;
    pi->keepalive = p->keepalive_sec;
    pi->last_handshake_sec = p->st.last_handshake_sec;
    pi->rx_bytes = p->st.rx_bytes;
    pi->tx_bytes = p->st.tx_bytes;
    s->tx_bytes += p->st.tx_bytes;
    pi->rx_packets = p->st.rx_packets;
    pi->tx_packets = p->st.tx_packets;
    pi->handshakes = p->st.handshakes;
    pi->handshake_initiations = p->st.handshake_initiations;
    pi->drop_allowed_ips = p->st.drop_allowed_ips;
    pi->drop_replay = p->st.drop_replay;
  }
  w->snap_npeers = n;
}

static void apply_commands(struct wgl *w) {
  if (!loop_cmdq_pending(&w->cq)) return;
  size_t n;
  pthread_mutex_lock(&w->cq.mu);
  struct cmd *cmds = loop_cmdq_take(&w->cq, &n);
  int snap = w->snap_req;
  pthread_mutex_unlock(&w->cq.mu);
  for (size_t i = 0; i < n; i++) apply_cmd(w, &cmds[i]);
  wg_wipe(cmds, n * sizeof(*cmds)); /* PSKs */
  w->st.commands_applied += n;
  if (snap) {
    pthread_mutex_lock(&w->cq.mu);
    fill_snapshot(w);
    w->snap_req = 0;
    w->snap_gen++;
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->cq.mu);
  }
}

static int queue_cmd(struct wgl *w, const struct cmd *c) {
  return loop_cmdq_push(&w->cq, w->ev_fd, c, 1, sizeof(*c), &w->snap.running,
                        &w->snap.commands_queued);
}

int wgl_set_peer(struct wgl *w, const uint8_t pub[32], const uint8_t *psk, int ep_family,
                 const uint8_t *ep_addr, uint16_t ep_port, uint32_t keepalive) {
  if (ep_family != 0 && ep_family != 4 && ep_family != 6) return -EINVAL;
  if (ep_family && ep_family != w->family) return -EAFNOSUPPORT;
  struct cmd c;
  memset(&c, 0, sizeof(c));
  c.op = CMD_PEER;
  memcpy(c.pub, pub, 32);
  if (psk) {
    c.has_psk = 1;
    memcpy(c.psk, psk, 32);
  }
  c.ep_family = (uint8_t)ep_family;
  if (ep_family) memcpy(c.ep_addr, ep_addr, ep_family == 4 ? 4 : 16);
  c.ep_port = ep_port;
  c.keepalive = keepalive;
  int rc = queue_cmd(w, &c);
  wg_wipe(&c, sizeof(c));
  return rc;
}

int wgl_del_peer(struct wgl *w, const uint8_t pub[32]) {
  struct cmd c;
  memset(&c, 0, sizeof(c));
  c.op = CMD_DEL_PEER;
  memcpy(c.pub, pub, 32);
  return queue_cmd(w, &c);
}

int wgl_initiate(struct wgl *w, const uint8_t pub[32]) {
  struct cmd c;
  memset(&c, 0, sizeof(c));
  c.op = CMD_INITIATE;
  memcpy(c.pub, pub, 32);
  return queue_cmd(w, &c);
}

static int prefix_cmd(struct wgl *w, int op, const uint8_t *pub, int family, const uint8_t *addr,
                      int len) {
  if (!loop_prefix_ok(family, len)) return -EINVAL;
  struct cmd c;
  memset(&c, 0, sizeof(c));
  c.op = (uint8_t)op;
  if (pub) memcpy(c.pub, pub, 32);
  c.family = (uint8_t)family;
  c.len = (uint8_t)len;
  memcpy(c.addr, addr, family == 4 ? 4 : 16);
  return queue_cmd(w, &c);
}

int wgl_set_allowed(struct wgl *w, const uint8_t pub[32], int family, const uint8_t *addr, int len) {
  return prefix_cmd(w, CMD_ALLOWED, pub, family, addr, len);
}

int wgl_del_allowed(struct wgl *w, int family, const uint8_t *addr, int len) {
  return prefix_cmd(w, CMD_DEL_ALLOWED, NULL, family, addr, len);
}

int wgl_snapshot(struct wgl *w, struct wgl_stats *st, struct wgl_peer_info *peers, int max_peers,
                 int timeout_ms) {
  pthread_mutex_lock(&w->cq.mu);
  int running = w->snap.running && !w->cq.closed;
  int gen = w->snap_gen, ok = 1;
  if (running) {
    w->snap_req = 1;
    __atomic_store_n(&w->cq.pending, 1, __ATOMIC_RELEASE);
    loop_wake(w->ev_fd);
    struct timespec dl;
    clock_gettime(CLOCK_REALTIME, &dl);
    dl.tv_sec += timeout_ms / 1000;
    dl.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (dl.tv_nsec >= 1000000000L) {
      dl.tv_sec++;
      dl.tv_nsec -= 1000000000L;
    }
    while (w->snap_gen == gen && w->snap.running) {
      if (pthread_cond_timedwait(&w->cv, &w->cq.mu, &dl) == ETIMEDOUT) {
        ok = 0;
        break;
      }
    }
  }
  if (st) *st = w->snap;
  int n = w->snap_npeers;
  if (peers) memcpy(peers, w->snap_peers, (size_t)(n < max_peers ? n : max_peers) * sizeof(*peers));
  pthread_mutex_unlock(&w->cq.mu);
  return ok ? n : -1;
}

/* ---- TUN -> UDP ------------------------------------------------------------------------------- */

static int wait_writable(struct wgl *w) {
  for (int i = 0; i < SEND_WAIT_ROUNDS && !stopping(w); i++) {
    struct pollfd p = {.fd = w->udp_fd, .events = POLLOUT};
    if (poll(&p, 1, SEND_WAIT_MS) > 0) return 1;
  }
  return 0;
}

static void seal_one(void *ctx, unsigned i) {
  struct seal_job *j = &((struct wgl *)ctx)->seals[i];
  wg_seal_room(j->kp, j->counter, j->slot, j->plen);
}

static void tx_flush(struct wgl *w) {
  if (w->par.nworkers) { /* else tx_segments sealed every slot already */
    size_t bytes = 0;
    for (size_t k = 0; k < w->ntx_slots; k++) bytes += w->seals[k].plen;
    par_run(&w->par, seal_one, w, (unsigned)w->ntx_slots, bytes);
  }
  loop_tx_prepare(w->tx_msgs, w->tx_ctl, w->tx_npkts, w->tx_seg, w->ntx);
  size_t i = 0;
  while (i < w->ntx) {
    int r = sendmmsg(w->udp_fd, w->tx_msgs + i, (unsigned)(w->ntx - i), 0);
    if (r > 0) {
      for (size_t k = i; k < i + (size_t)r; k++) {
        if (w->tx_npkts[k] > 1) ST_ADD(w, gso_sends, 1);
      }
      i += (size_t)r;
      continue;
    }
    int e = errno;
    if (r < 0 && e == EINTR) continue;
    if (r < 0 && (e == EAGAIN || e == ENOBUFS) && wait_writable(w)) continue;
    if (r < 0 && e == EIO && w->tx_npkts[i] > 1) {
      w->gso_ok = 0;
      w->st.off_udp_gso = 0;
    }
    ST_ADD(w, drop_udp_send, w->tx_npkts[i]);
    i++;
  }
  w->ntx = 0;
  w->ntx_slots = 0;
  w->open = -1;
}

/* Queues the sealed message in slot `s` (len bytes) to `to`, joining the open GSO message when it
 * goes to the same endpoint and has its size (a shorter one closes it). */
static void tx_add(struct wgl *w, const struct wg_endpoint *to, uint8_t *msg, size_t len) {
  struct iovec *iov = &w->tx_iov[w->ntx_slots];
  iov->iov_base = msg;
  iov->iov_len = len;
  if (w->open >= 0) {
    size_t k = (size_t)w->open;
    struct msghdr *m = &w->tx_msgs[k].msg_hdr;
    if (k + 1 == w->ntx && wg_endpoint_equal(&w->tx_addr[k], to) && len <= w->tx_seg[k] &&
        w->tx_npkts[k] < GSO_MAX_SEGS && w->tx_nbytes[k] + len <= GSO_MAX_BYTES &&
        m->msg_iov + m->msg_iovlen == iov) {
      m->msg_iovlen++;
      w->tx_npkts[k]++;
      w->tx_nbytes[k] += (uint32_t)len;
      if (len < w->tx_seg[k]) w->open = -1;
      return;
    }
  }
  size_t k = w->ntx++;
  w->tx_addr[k] = *to;
  struct msghdr *m = &w->tx_msgs[k].msg_hdr;
  memset(m, 0, sizeof(*m));
  m->msg_name = &w->tx_addr[k];
  m->msg_namelen = wg_endpoint_len(to);
  m->msg_iov = iov;
  m->msg_iovlen = 1;
  w->tx_seg[k] = (uint16_t)len;
  w->tx_npkts[k] = 1;
  w->tx_nbytes[k] = (uint32_t)len;
  w->open = w->gso_ok ? (int)k : -1;
}

/* Copies a segment (header, payload) to dst; a TSO segment's TCP checksum is summed in the same
 * pass over the payload (pkt_tso_segment_partial left it to us). */
static void seg_copy(uint8_t *dst, const struct pkt_seg *g) {
  memcpy(dst, g->hdr, g->hdr_len);
  if (g->csum_off) {
    uint64_t sum = pkt_csum_copy(dst + g->hdr_len, g->payload, g->payload_len, 0);
    pkt_tso_finish_csum(dst, g->csum_off, sum);
  } else if (g->payload_len) {
    memcpy(dst + g->hdr_len, g->payload, g->payload_len);
  }
}

/*
 * Seals segment g (len bytes, padded to plen) into slot at once, straight from where it lies: the
 * payload in the TUN read buffer (its TCP checksum summed there first, read only), the header given
 * apart (wg_seal_to). Without crypto helpers a segment is sealed while it is in the L1 cache from
 * the checksum pass, and never copied. Copying every segment into its slot first (the helpers' way:
 * they seal at the flush, when hdr_arena already holds the next TSO packet's headers) was 8.6-9.1 %
 * of the sending thread's profile samples (the checksumming copy, its tail, the padding memset);
 * the read-only checksum pass and the fixups that replace it are ~5 %. Whole engine, 25 interleaved
 * pairs on a loaded machine: -0.009 +- 0.008 vCPU·s per Gbit (~2 %, within the noise).
 */
static void seal_direct(const struct wg_keypair *kp, uint64_t counter, uint8_t *slot,
                        struct pkt_seg *g, size_t len, size_t plen) {
  if (!g->payload) { /* a packet sent as it is: header and data are one */
    wg_seal_to(kp, counter, slot, g->hdr, plen, len, NULL, 0);
    return;
  }
  if (g->csum_off) {
    pkt_tso_finish_csum(g->hdr, g->csum_off, pkt_csum_partial(g->payload, g->payload_len, 0));
  }
  wg_seal_to(kp, counter, slot, g->payload - g->hdr_len, plen, len, g->hdr, g->hdr_len);
}

/* Seals n segments (a: header, b: payload) for peer p; stages them when there is no session. */
static void tx_segments(struct wgl *w, struct wg_peer *p, struct pkt_seg *segs, int n) {
  if (!p->ep.sa.sa_family) {
    ST_ADD(w, drop_no_route, n);
    return;
  }
  if (w->ntx_slots + (size_t)n > TX_SLOTS) tx_flush(w);
  uint64_t c;
  struct wg_keypair *kp = wg_tx_begin(w->dev, p, (unsigned)n, w->now, &c);
  if (!kp) {
    for (int i = 0; i < n; i++) {
      size_t len = segs[i].hdr_len + (size_t)segs[i].payload_len;
      seg_copy(w->stage_buf, &segs[i]);
      wg_stage(w->dev, p, w->stage_buf, len, w->now);
    }
    return;
  }
  uint64_t bytes = 0;
  for (int i = 0; i < n; i++) {
    uint8_t *slot = w->tx_arena + w->ntx_slots * w->slot_size + SLOT_SCRATCH;
    struct pkt_seg *g = &segs[i];
    size_t len = g->hdr_len + (size_t)g->payload_len;
    size_t plen = wg_padded_len(w->dev, len);
    if (!w->par.nworkers) {
      seal_direct(kp, c + (uint64_t)i, slot, g, len, plen);
    } else {
      uint8_t *pt = slot + WG_DATA_HDR_LEN;
      seg_copy(pt, g);
      memset(pt + len, 0, plen - len);
      struct seal_job *j = &w->seals[w->ntx_slots];
      j->kp = kp;
      j->counter = c + (uint64_t)i;
      j->slot = slot;
      j->plen = (uint32_t)plen;
    }
    size_t m = WG_DATA_HDR_LEN + plen + WG_TAG_LEN; /* sealed, or sealed in tx_flush */
    tx_add(w, &p->ep, slot, m);
    w->ntx_slots++;
    bytes += m;
  }
  wg_tx_done(w->dev, p, kp, (unsigned)n, bytes, w->now);
}

/* Counts a TUN packet dropped for verdict v (loop_tun_gso, pkt_tso_segment). */
static void drop_tso(struct wgl *w, int v) {
  if (v == PKT_MALFORMED) {
    ST_ADD(w, drop_malformed, 1);
  } else {
    ST_ADD(w, drop_unsupported, 1);
  }
}

static void tun_packet(struct wgl *w, uint8_t *buf, size_t n) {
  struct pkt_vnet_hdr vh;
  struct pkt_ip ip;
  if (loop_tun_parse(buf, n, w->vnet, &vh, &ip) != PKT_OK) {
    ST_ADD(w, drop_malformed, 1);
    return;
  }
  const struct rt_route *r = rt_lookup(w->rt, ip.family, ip.dst);
  struct wg_peer *peer = r ? wg_peer_at(w->dev, r->peer_ip) : NULL;
  if (!peer) {
    ST_ADD(w, drop_no_route, 1);
    return;
  }
  int gso = loop_tun_gso(&vh, &ip);
  if (gso < 0) {
    drop_tso(w, -gso);
    return;
  }
  if (gso == 0) {
    struct pkt_seg one = {.hdr = ip.p, .hdr_len = (uint16_t)(ip.len > 65535 ? 0 : ip.len),
                          .payload = NULL, .payload_len = 0};
    if (ip.len > w->mtu) { /* larger than the device MTU: cannot happen from a sane TUN */
      ST_ADD(w, drop_malformed, 1);
      return;
    }
    tx_segments(w, peer, &one, 1);
    return;
  }
  int ns = pkt_tso_segment_partial(&ip, vh.gso_size, w->hdr_arena, w->segs, PKT_MAX_SEGS);
  if (ns < 0) {
    drop_tso(w, -ns);
    return;
  }
  for (int i = 0; i < ns; i++) {
    if ((size_t)w->segs[i].hdr_len + w->segs[i].payload_len > w->mtu) {
      ST_ADD(w, drop_malformed, ns);
      return;
    }
  }
  ST_ADD(w, tso_packets, 1);
  tx_segments(w, peer, w->segs, ns);
}

static int tun_batch(struct wgl *w) {
  int err;
  int n = loop_tun_read(w->tun_fd, w->tun_bufs, w->tun_lens, &err);
  ST_ADD(w, tun_reads, n);
  for (int i = 0; i < n; i++) tun_packet(w, w->tun_bufs + (size_t)i * BUF_SIZE + HEADROOM, w->tun_lens[i]);
  tx_flush(w);
  if (err) {
    fatal(w, err, "read");
    return -1;
  }
  return n;
}

/* ---- UDP -> TUN ------------------------------------------------------------------------------- */

static void run_flush(struct wgl *w) {
  if (!w->run.active) return;
  w->run.active = 0;
  if (loop_run_write(&w->run, w->tun_fd, w->vnet) != 0) {
    ST_ADD(w, drop_tun_write, w->run.pkts);
    return;
  }
  ST_ADD(w, tun_writes, 1);
  ST_ADD(w, rx_packets, w->run.pkts);
  if (w->run.pkts > 1) ST_ADD(w, coalesced_writes, 1);
}

static void rx_inner(struct wgl *w, uint8_t *p, size_t len) {
  struct pkt_ip ip;
  if (pkt_parse(p, len, 1, &ip) != PKT_OK) {
    run_flush(w);
    ST_ADD(w, drop_malformed, 1);
    return;
  }
  if (w->run.active && w->vnet) {
    const uint8_t *pl;
    uint16_t plen;
    if (pkt_gro_try(&w->run.gro, &ip, &pl, &plen)) {
      loop_run_join(&w->run, pl, plen, ip.len);
      return;
    }
  }
  run_flush(w);
  loop_run_start(&w->run, &ip, w->vnet, 1); /* trusted: every packet here passed its Poly1305 tag */
}

static void open_one(void *ctx, unsigned i) { wg_rx_decrypt(&((struct wgl *)ctx)->rx_jobs[i]); }

/* Decrypts the pending transport messages (in parallel), then finishes them in arrival order. */
static void rx_jobs_flush(struct wgl *w) {
  unsigned n = w->n_rx_jobs;
  if (n == 0) return;
  w->n_rx_jobs = 0;
  size_t bytes = 0;
  int all_out = 1;
  for (unsigned k = 0; k < n; k++) {
    bytes += w->rx_jobs[k].len;
    all_out &= w->rx_jobs[k].out != NULL;
  }
  /* In parallel, only out-of-place jobs: one opening in place writes bytes the next one reads
   * (the slack after a message, the 48 bytes before the next one's header). Rare jobs without a
   * slot (larger than the MTU) make the round sequential, in arrival order. */
  if (!all_out) bytes = 0;
  par_run(&w->par, open_one, w, n, bytes);
  for (unsigned k = 0; k < n; k++) {
    struct wg_rx rx;
    int r = wg_rx_finish(w->dev, &w->rx_addr[w->rx_job_from[k]], &w->rx_jobs[k], w->now, &rx);
    if (r == WG_RX_PACKET) {
      rx_inner(w, rx.pkt, rx.len);
    } else {
      run_flush(w); /* nothing is coalesced across a dropped or keepalive message */
    }
  }
  /* the open run stays: its packets are in slots that the next round does not take (RX_RING), or
   * in the receive buffers, which udp_batch writes out before it receives again */
}

static void udp_batch(struct wgl *w) {
  int n = loop_recvmmsg(w->udp_fd, w->rx_msgs, w->rx_iov, w->rx_ctl, sizeof(w->rx_addr[0]));
  if (n <= 0) return;
  w->now = mono_ns();
  for (int i = 0; i < n; i++) {
    struct msghdr *m = &w->rx_msgs[i].msg_hdr;
    size_t len = w->rx_msgs[i].msg_len;
    uint8_t *base = w->udp_bufs + (size_t)i * BUF_SIZE + HEADROOM;
    size_t seg;
    size_t nseg = loop_gro_split(m, len, &seg);
    if (m->msg_flags & MSG_TRUNC || len == 0) {
      ST_ADD(w, drop_malformed, nseg);
      continue;
    }
    if (nseg > 1) ST_ADD(w, gro_receives, 1);
    ST_ADD(w, rx_bytes, len);
    for (size_t off = 0; off < len; off += seg) {
      size_t l = len - off < seg ? len - off : seg;
      uint8_t *msg = base + off;
      if (msg[0] == WG_MSG_DATA) {
        if (w->n_rx_jobs == RX_JOBS) rx_jobs_flush(w);
        struct wg_rx_job *job = &w->rx_jobs[w->n_rx_jobs];
        if (wg_rx_prepare(w->dev, msg, l, w->now, job)) {
          /* the slack behind it stays in this receive buffer */
          job->room = off + l + WG_AEAD_ROOM_AFTER <= BUF_SIZE - HEADROOM;
          size_t whole = (l - WG_DATA_OVERHEAD + 63) & ~(size_t)63;
          if (job->room && whole <= w->plain_cap) {
            job->out = w->plain + (size_t)w->plain_next * w->plain_slot + WG_AEAD_ROOM_BEFORE;
            if (++w->plain_next == RX_RING) w->plain_next = 0;
          }
          w->rx_job_from[w->n_rx_jobs++] = (uint16_t)i;
        }
        continue;
      }
      /* a control message: everything before it first, in order (handshakes allocate keypairs) */
      rx_jobs_flush(w);
      run_flush(w);
      struct wg_rx rx;
      wg_receive(w->dev, &w->rx_addr[i], msg, l, w->now, &rx);
    }
  }
  rx_jobs_flush(w);
  run_flush(w);
}

/* ---- loop and lifecycle ----------------------------------------------------------------------- */

static void *loop_main(void *arg) {
  struct wgl *w = arg;
  struct epoll_event evs[4];
  while (!stopping(w)) {
    w->now = mono_ns();
    apply_commands(w);
    if (w->now - w->last_tick >= TICK_MS * 1000000ULL) {
      w->last_tick = w->now;
      wg_tick(w->dev, w->now);
    }
    int n = epoll_wait(w->ep_fd, evs, 4, TICK_MS);
    if (n < 0) {
      if (errno == EINTR) continue;
      fatal(w, errno, "epoll_wait");
      break;
    }
    int tun_ready, udp_ready;
    loop_events(evs, n, w->ev_fd, &tun_ready, &udp_ready);
    if (stopping(w)) break;
    w->now = mono_ns();
    apply_commands(w);
    if (udp_ready) udp_batch(w);
    w->now = mono_ns();
    if (tun_ready && tun_batch(w) < 0) break;
  }
  pthread_mutex_lock(&w->cq.mu);
  w->snap.running = 0;
  w->snap.fatal_errno = w->st.fatal_errno;
  pthread_cond_broadcast(&w->cv);
  pthread_mutex_unlock(&w->cq.mu);
  return NULL;
}

static void free_wgl(struct wgl *w) {
  par_stop(&w->par);
  if (w->ep_fd >= 0) close(w->ep_fd);
  if (w->ev_fd >= 0) close(w->ev_fd);
  if (w->udp_fd >= 0) close(w->udp_fd);
  if (w->tun_fd >= 0) close(w->tun_fd);
  free(w->tun_mem);
  free(w->udp_mem);
  free(w->plain);
  free(w->hdr_arena);
  free(w->tx_arena);
  loop_cmdq_free(&w->cq, sizeof(struct cmd)); /* wiped: PSKs */
  free(w->snap_peers);
  for (size_t i = 0; i < w->allowed_cap; i++) free(w->allowed[i].v);
  free(w->allowed);
  wg_device_free(w->dev);
  rt_free(w->rt);
  pthread_cond_destroy(&w->cv);
  free(w);
}

static int setup_offloads(struct wgl *w, int tun_fd) {
  struct loop_offloads o;
  int rc = loop_setup_offloads(tun_fd, w->udp_fd, NULL, &o);
  w->vnet = o.vnet;
  w->st.off_vnet_hdr = (uint64_t)o.vnet;
  w->st.off_tso = (uint64_t)o.tso;
  if (rc < 0) return rc;
  w->st.off_udp_gro = (uint64_t)o.udp_gro;
  w->st.off_udp_gso = (uint64_t)o.udp_gso;
  w->gso_ok = o.udp_gso;
  return 0;
}

int wgl_open(const struct wgl_config *cfg, struct wgl **out, const char **sc) {
  *sc = "wgl_open";
  if (cfg->tun_fd < 0 || cfg->mtu < 68 || (cfg->family != 4 && cfg->family != 6)) return -EINVAL;
  struct wgl *w = calloc(1, sizeof(*w));
  if (!w) return -ENOMEM;
  w->tun_fd = w->udp_fd = w->ep_fd = w->ev_fd = -1;
  w->open = -1;
  w->family = cfg->family;
  w->mtu = cfg->mtu;
  w->on_fatal = cfg->on_fatal;
  w->ctx = cfg->ctx;
  loop_cmdq_init(&w->cq);
  pthread_cond_init(&w->cv, NULL);
  int err = 0;
  w->slot_size =
      (SLOT_SCRATCH + WG_DATA_HDR_LEN + (size_t)cfg->mtu + WG_AEAD_ROOM_AFTER + 63) & ~(size_t)63;
  w->tun_mem = calloc(1, TUN_GUARD + (size_t)BATCH * BUF_SIZE + TUN_GUARD);
  w->tun_bufs = w->tun_mem ? w->tun_mem + TUN_GUARD : NULL;
  w->udp_mem = calloc(1, RX_GUARD + (size_t)BATCH * BUF_SIZE);
  w->udp_bufs = w->udp_mem ? w->udp_mem + RX_GUARD : NULL;
  w->plain_cap = ((size_t)cfg->mtu + 63) & ~(size_t)63;
  w->plain_slot = WG_AEAD_ROOM_BEFORE + w->plain_cap;
  w->plain = malloc(RX_RING * w->plain_slot);
  w->hdr_arena = malloc((size_t)PKT_MAX_SEGS * PKT_MAX_HDR);
  w->tx_arena = malloc(TX_SLOTS * w->slot_size);
  w->rt = rt_new();
  w->dev = wg_device_new(cfg->priv, cfg->mtu, send_one, allowed_peer, w, cfg->load_threshold);
  if (!w->tun_bufs || !w->udp_bufs || !w->plain || !w->hdr_arena || !w->tx_arena || !w->rt ||
      !w->dev) {
    err = -ENOMEM;
    *sc = w->dev ? "malloc" : "wg_device_new";
    goto fail;
  }
  memcpy(w->pub, w->dev->pub, 32);
  int af = cfg->family == 4 ? AF_INET : AF_INET6;
  w->udp_fd = socket(af, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (w->udp_fd < 0) {
    err = -errno;
    *sc = "socket";
    goto fail;
  }
  struct wg_endpoint sa;
  memset(&sa, 0, sizeof(sa));
  if (af == AF_INET) {
    sa.in4.sin_family = AF_INET;
    sa.in4.sin_port = htons(cfg->port);
    memcpy(&sa.in4.sin_addr, cfg->bind_ip, 4);
  } else {
    int only = 1;
    setsockopt(w->udp_fd, IPPROTO_IPV6, IPV6_V6ONLY, &only, sizeof(only));
    sa.in6.sin6_family = AF_INET6;
    sa.in6.sin6_port = htons(cfg->port);
    memcpy(&sa.in6.sin6_addr, cfg->bind_ip, 16);
  }
  if (bind(w->udp_fd, &sa.sa, wg_endpoint_len(&sa)) < 0) {
    err = -errno;
    *sc = "bind";
    goto fail;
  }
  socklen_t sl = sizeof(sa);
  getsockname(w->udp_fd, &sa.sa, &sl);
  w->port = ntohs(af == AF_INET ? sa.in4.sin_port : sa.in6.sin6_port);
  if ((err = setup_offloads(w, cfg->tun_fd)) < 0) {
    *sc = "ioctl";
    goto fail;
  }
  if ((err = loop_set_nonblock(cfg->tun_fd)) < 0) {
    *sc = "fcntl";
    goto fail;
  }
  if ((err = loop_epoll_open(&w->ep_fd, &w->ev_fd, cfg->tun_fd, w->udp_fd, sc)) < 0) goto fail;
  loop_rx_init(w->rx_msgs, w->rx_iov, w->rx_addr, sizeof(w->rx_addr[0]), w->rx_ctl, w->udp_bufs);
  par_start(&w->par, crypto_workers());
  w->st.running = 1;
  w->snap = w->st;
  w->tun_fd = cfg->tun_fd;
  int pe = loop_thread_start(&w->thread, loop_main, w);
  if (pe != 0) {
    w->tun_fd = -1;
    err = -pe;
    *sc = "pthread_create";
    goto fail;
  }
  *out = w;
  return 0;
fail:
  if (w->tun_fd == cfg->tun_fd) w->tun_fd = -1;
  free_wgl(w);
  return err;
}

void wgl_public_key(struct wgl *w, uint8_t pub[32]) { memcpy(pub, w->pub, 32); }
uint16_t wgl_local_port(struct wgl *w) { return w->port; }

void wgl_close(struct wgl *w) {
  if (!w) return;
  loop_thread_stop(&w->cq, &w->stop, w->ev_fd, w->thread);
  free_wgl(w);
}
