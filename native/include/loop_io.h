/*
 * Plumbing shared by the two packet loops, the UDP forwarder (fwd_loop.c) and the WireGuard engine
 * (wg_loop.c): sizes of the preallocated batches, the control command queue (mutex, growing queue,
 * eventfd wake), epoll and thread start, UDP socket and TUN offload setup, recvmmsg with UDP_GRO,
 * sendmmsg with UDP_SEGMENT and the coalesced TUN write.
 *
 * The setup and control functions live in loop_io.c; what runs per batch or per packet is static
 * inline here, so the loops' hot paths cost what they did when each file had its own copy. Nothing
 * here allocates per packet or touches a loop's counters: callers count from the return values.
 */
#ifndef WEFT_LOOP_IO_H
#define WEFT_LOOP_IO_H

#include <errno.h>
#include <linux/if.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "pkt.h"

#ifndef SOL_UDP
#define SOL_UDP 17
#endif
#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103
#endif
#ifndef UDP_GRO
#define UDP_GRO 104
#endif

#define BATCH 64               /* TUN reads and recvmmsg messages per wakeup */
#define BUF_SIZE (65536 + 128) /* one super-packet or one GRO receive, plus headroom */
#define HEADROOM 16            /* in front of every packet (room for a virtio-net header) */
#define GSO_MAX_BYTES 65000    /* payload of one UDP_SEGMENT send (below the 64 KiB IP limit) */
#define GSO_MAX_SEGS 64        /* UDP_MAX_SEGMENTS on older kernels */
/* Bytes read from the TUN per wakeup: bounds how long a loop works on one direction, so that
 * ACKs arriving the other way (UDP -> TUN) wait for at most a few super-packets' worth of
 * segmentation. */
#define TX_BUDGET (256u << 10)
#define LOOP_SOCK_BUF (4 << 20) /* SO_SNDBUF/SO_RCVBUF (the kernel doubles it) */

/* epoll data of a loop's three fds */
enum { EV_TUN = 0, EV_UDP = 1, EV_CTL = 2 };

/* ---- control command queue ------------------------------------------------------------------ */
/*
 * Filled by the control thread under `mu`, swapped out whole by the loop thread (which then applies
 * the commands without the lock). Elements are the caller's own command struct (`size` bytes).
 * `mu` may guard more of the caller's state (failures, snapshots).
 */
struct loop_cmdq {
  pthread_mutex_t mu;
  void *q, *work;
  size_t qlen, qcap, work_cap;
  int pending; /* atomic */
  int closed;  /* under mu: no more commands (the loop is stopping) */
};

void loop_cmdq_init(struct loop_cmdq *q);
/* Frees both buffers (wiped first: commands may carry keys) and the mutex. */
void loop_cmdq_free(struct loop_cmdq *q, size_t size);
/* Queues n commands of `size` bytes at once and wakes the loop through ev_fd: all of them are
 * applied in one batch. -ESHUTDOWN once closed or when *running (atomic) is 0, -ENOMEM. Adds n to
 * *queued (under mu). */
int loop_cmdq_push(struct loop_cmdq *q, int ev_fd, const void *cmds, size_t n, size_t size,
                   const uint64_t *running, uint64_t *queued);
/* With mu held: takes the queued commands (*n of them; valid until the next take). */
void *loop_cmdq_take(struct loop_cmdq *q, size_t *n);

static inline int loop_cmdq_pending(struct loop_cmdq *q) {
  return __atomic_load_n(&q->pending, __ATOMIC_ACQUIRE);
}

/* 1 if family is 4 or 6 and len a prefix length of it. */
static inline int loop_prefix_ok(int family, int len) {
  return (family == 4 || family == 6) && len >= 0 && len <= (family == 4 ? 32 : 128);
}

/* Clears the bits of addr (16 bytes; IPv4 in the first 4) beyond the prefix length. */
void loop_mask_prefix(uint8_t addr[16], int family, int len);

/* Wakes the loop (EAGAIN only when the counter is saturated: the loop is awake anyway). */
static inline void loop_wake(int ev_fd) {
  uint64_t one = 1;
  ssize_t w = write(ev_fd, &one, sizeof(one));
  (void)w;
}

/* ---- setup and lifecycle -------------------------------------------------------------------- */

/* Creates the eventfd and the epoll set over fds[EV_TUN], fds[EV_UDP] (either may be -1: not
 * watched) and the eventfd. -errno with *sc naming the call. */
int loop_epoll_open(int *ep_fd, int *ev_fd, int tun_fd, int udp_fd, const char **sc);
/* Sets O_NONBLOCK on fd; -errno. */
int loop_set_nonblock(int fd);
/* pthread_create with every signal blocked (a loop thread never handles signals); its error. */
int loop_thread_start(pthread_t *t, void *(*fn)(void *), void *arg);
/* Closes the queue to commands, sets *stop, wakes the thread and joins it. */
void loop_thread_stop(struct loop_cmdq *q, int *stop, int ev_fd, pthread_t t);

struct loop_offloads {
  int vnet;    /* the TUN carries virtio-net headers */
  int tso;     /* ... and takes TSO super-packets */
  int udp_gro; /* udp_fd receives with UDP_GRO */
  int udp_gso; /* udp_fd sends with UDP_SEGMENT */
};
/* TUN offloads (virtio-net header size, TSO) and the UDP socket's buffers, UDP_GRO and a
 * UDP_SEGMENT probe. name (IFNAMSIZ, may be NULL) gets the TUN's name. -errno from the TUN
 * ioctls. */
int loop_setup_offloads(int tun_fd, int udp_fd, char *name, struct loop_offloads *o);

/* ---- UDP -> TUN ----------------------------------------------------------------------------- */

union loop_gro_ctl {
  char buf[CMSG_SPACE(sizeof(int))];
  struct cmsghdr align;
};

/* Points BATCH receive messages at their buffers (BUF_SIZE apart, after HEADROOM), source address
 * slots (addr_size apart) and control buffers. */
void loop_rx_init(struct mmsghdr *msgs, struct iovec *iov, void *addrs, size_t addr_size,
                  union loop_gro_ctl *ctl, uint8_t *bufs);

/* One recvmmsg of up to BATCH messages (never waits); its result (<= 0: nothing to do). */
static inline int loop_recvmmsg(int fd, struct mmsghdr *msgs, struct iovec *iov,
                                union loop_gro_ctl *ctl, socklen_t addr_size) {
  for (int i = 0; i < BATCH; i++) {
    struct msghdr *m = &msgs[i].msg_hdr;
    m->msg_namelen = addr_size;
    m->msg_controllen = sizeof(ctl[i].buf);
    m->msg_flags = 0;
    iov[i].iov_len = BUF_SIZE - HEADROOM;
  }
  int n;
  do {
    n = recvmmsg(fd, msgs, BATCH, MSG_DONTWAIT, NULL);
  } while (n < 0 && errno == EINTR);
  return n;
}

/* The datagram size of a received buffer of len bytes (UDP_GRO: several datagrams of *seg bytes,
 * the last maybe shorter); returns how many datagrams it holds (1 for an empty one). */
static inline size_t loop_gro_split(struct msghdr *m, size_t len, size_t *seg) {
  size_t s = 0;
  for (struct cmsghdr *c = CMSG_FIRSTHDR(m); c; c = CMSG_NXTHDR(m, c)) {
    if (c->cmsg_level == SOL_UDP && c->cmsg_type == UDP_GRO) {
      int g;
      memcpy(&g, CMSG_DATA(c), sizeof(g));
      if (g > 0) s = (size_t)g;
    }
  }
  if (s == 0 || s > len) s = len;
  *seg = s;
  return len == 0 ? 1 : (len + s - 1) / s;
}

/*
 * A run: consecutive TCP segments of one flow coalesced into one TUN write (virtio GSO), or a single
 * packet. The caller starts it, joins packets to it (pkt_gro_try) and writes it.
 */
struct loop_run {
  struct pkt_gro gro;
  int active;
  uint32_t pkts, bytes;
  uint8_t vnet_hdr[PKT_VNET_HDR_LEN];
  struct iovec iov[PKT_MAX_SEGS + 2];
  int niov;
};

/* Starts a run with ip (the previous one must be written). trusted: see pkt_gro. */
static inline void loop_run_start(struct loop_run *r, const struct pkt_ip *ip, int vnet,
                                  int trusted) {
  r->active = 1;
  r->niov = 0;
  if (vnet) {
    pkt_gro_start(&r->gro, ip);
    r->gro.trusted = (uint8_t)trusted;
    r->iov[r->niov].iov_base = r->vnet_hdr;
    r->iov[r->niov].iov_len = PKT_VNET_HDR_LEN;
    r->niov++;
  }
  r->iov[r->niov].iov_base = ip->p;
  r->iov[r->niov].iov_len = ip->len;
  r->niov++;
  r->pkts = 1;
  r->bytes = ip->len;
}

/* Appends a packet that pkt_gro_try joined (its payload; ip_len: the whole packet's length). */
static inline void loop_run_join(struct loop_run *r, const uint8_t *pl, uint16_t plen,
                                 size_t ip_len) {
  r->iov[r->niov].iov_base = (void *)pl;
  r->iov[r->niov].iov_len = plen;
  r->niov++;
  r->pkts++;
  r->bytes += (uint32_t)ip_len;
}

/* Writes the run to the TUN in one writev (with its virtio-net header); 0 when all of it went. */
static inline int loop_run_write(struct loop_run *r, int tun_fd, int vnet) {
  ssize_t want = 0;
  if (vnet) {
    struct pkt_vnet_hdr vh;
    pkt_gro_finish(&r->gro, &vh);
    pkt_vnet_write(r->vnet_hdr, &vh);
  }
  for (int i = 0; i < r->niov; i++) want += (ssize_t)r->iov[i].iov_len;
  ssize_t w;
  do {
    w = writev(tun_fd, r->iov, r->niov);
  } while (w < 0 && errno == EINTR);
  return w == want ? 0 : -1;
}

/* ---- TUN -> UDP ----------------------------------------------------------------------------- */

/* Reads up to BATCH packets (at most TX_BUDGET bytes) into bufs (BUF_SIZE apart, after HEADROOM),
 * their lengths into lens; returns how many. *err: errno of a read that failed (0: none). */
static inline int loop_tun_read(int tun_fd, uint8_t *bufs, size_t *lens, int *err) {
  int n = 0;
  size_t bytes = 0;
  *err = 0;
  while (n < BATCH && bytes < TX_BUDGET) {
    ssize_t r = read(tun_fd, bufs + (size_t)n * BUF_SIZE + HEADROOM, BUF_SIZE - HEADROOM);
    if (r < 0) {
      if (errno == EINTR) continue;
      if (errno != EAGAIN) *err = errno;
      break;
    }
    if (r == 0) break;
    lens[n++] = (size_t)r;
    bytes += (size_t)r;
  }
  return n;
}

/* Parses a packet read from the TUN (behind its virtio-net header when vnet; vh is zeroed
 * otherwise): PKT_OK or PKT_MALFORMED. */
static inline int loop_tun_parse(uint8_t *buf, size_t n, int vnet, struct pkt_vnet_hdr *vh,
                                 struct pkt_ip *ip) {
  memset(vh, 0, sizeof(*vh));
  uint8_t *p = buf;
  size_t len = n;
  if (vnet) {
    if (n < PKT_VNET_HDR_LEN) return PKT_MALFORMED;
    pkt_vnet_read(buf, vh);
    p += PKT_VNET_HDR_LEN;
    len -= PKT_VNET_HDR_LEN;
  }
  return pkt_parse(p, len, 0, ip) == PKT_OK ? PKT_OK : PKT_MALFORMED;
}

/* What to do with a parsed TUN packet: 0 = send it as it is (its checksum finished where the TUN
 * left it partial), 1 = a TCP super-packet to segment (pkt_tso_segment), or the verdict to drop it
 * with (PKT_MALFORMED, PKT_UNSUPPORTED) negated. */
static inline int loop_tun_gso(const struct pkt_vnet_hdr *vh, struct pkt_ip *ip) {
  int gso = vh->gso_type & ~PKT_VNET_GSO_ECN;
  if (gso == PKT_VNET_GSO_NONE) {
    if ((vh->flags & PKT_VNET_F_NEEDS_CSUM) &&
        pkt_finish_csum(ip->p, ip->len, vh->csum_start, vh->csum_offset) != PKT_OK) {
      return -PKT_MALFORMED;
    }
    return 0;
  }
  if (gso != PKT_VNET_GSO_TCPV4 && gso != PKT_VNET_GSO_TCPV6) return -PKT_UNSUPPORTED;
  return 1;
}

union loop_gso_ctl {
  char buf[CMSG_SPACE(sizeof(uint16_t))];
  struct cmsghdr align;
};

/* Gives every message of several datagrams (npkts > 1) its UDP_SEGMENT size seg (GSO), and the
 * others no control message. */
static inline void loop_tx_prepare(struct mmsghdr *msgs, union loop_gso_ctl *ctl,
                                   const uint32_t *npkts, const uint16_t *seg, size_t n) {
  for (size_t k = 0; k < n; k++) {
    struct msghdr *m = &msgs[k].msg_hdr;
    if (npkts[k] < 2) {
      m->msg_control = NULL;
      m->msg_controllen = 0;
      continue;
    }
    m->msg_control = ctl[k].buf;
    m->msg_controllen = sizeof(ctl[k].buf);
    struct cmsghdr *c = CMSG_FIRSTHDR(m);
    c->cmsg_level = SOL_UDP;
    c->cmsg_type = UDP_SEGMENT;
    c->cmsg_len = CMSG_LEN(sizeof(uint16_t));
    memcpy(CMSG_DATA(c), &seg[k], sizeof(uint16_t));
  }
}

/* ---- the loop ------------------------------------------------------------------------------- */

/* Which of the loop's fds epoll_wait reported ready; drains the eventfd when it was. */
static inline void loop_events(const struct epoll_event *evs, int n, int ev_fd, int *tun_ready,
                               int *udp_ready) {
  *tun_ready = *udp_ready = 0;
  for (int i = 0; i < n; i++) {
    if (evs[i].data.u32 == EV_TUN) *tun_ready = 1;
    if (evs[i].data.u32 == EV_UDP) *udp_ready = 1;
    if (evs[i].data.u32 == EV_CTL) {
      uint64_t v;
      ssize_t r = read(ev_fd, &v, sizeof(v));
      (void)r;
    }
  }
}

#endif
