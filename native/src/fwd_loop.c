/*
 * The forwarder loop (see fwd.h). One thread, epoll over the TUN fd, the UDP socket and an eventfd
 * for control. Per wakeup it reads up to BATCH packets from the TUN (super-packets of up to 64 KiB
 * with TSO), segments them and sends everything with one sendmmsg (UDP_SEGMENT per super-packet);
 * and it receives up to BATCH UDP_GRO buffers with one recvmmsg, validates every datagram, and
 * coalesces TCP segments of one flow (across the buffers of one peer) into a super-packet for a
 * single TUN write.
 *
 * Nothing in the loop ever waits for a socket: a full send socket drops (and counts) what it cannot
 * take, and every peer sends through its own socket (see "per-peer send sockets"), so a congested peer
 * costs only its own packets while receiving, other peers and route updates go on.
 *
 * Receive checks (beyond flannel): the sender is a peer, the inner source lies in a subnet routed to
 * that peer, the inner destination in this host's own subnets (fwd_set_local), and every TCP segment
 * that is coalesced has a valid checksum (the kernel takes the coalesced write as already verified).
 *
 * Buffer ownership: all buffers are preallocated in struct fwd and belong to the loop thread. A TUN
 * batch's buffers stay untouched until its datagrams are sent (segments point into them); a UDP
 * batch's buffers until its TUN writes are done. Nothing is allocated per packet.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <netinet/in.h>
#include <sched.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>

#include "fwd.h"
#include "loop_io.h"
#include "pkt.h"
#include "route_table.h"

#define MAX_MSGS 512             /* datagrams (or GSO batches) per sendmmsg flush */
#define MAX_IOV 4096
#define MAX_HDRS (4 * PKT_MAX_SEGS) /* segment header slots per flush */
#define ICMP_PER_SEC 100
#define DEFAULT_MAX_ROUTES (1u << 20)
#define TUN_TXQLEN 2048          /* packets the TUN queues for the loop (kernel default 500) */
/* TUN writes between two sched_yield()s of a receiving loop (the NAPI budget's role): one recvmmsg
 * can hold 64 GRO buffers of up to 64 datagrams each, and a loop thread at nice -10 writing 4096
 * small packets back to back overruns a receiving application it keeps from running (its socket
 * buffer holds ~250 of them): 64-byte UDP at ~35 kpps into a container on a loaded 2-vCPU host lost
 * 20-33 % at the receiver's socket; yielding every 64 writes 10-23 %, every 16: 0.1-4 %, every 4 no
 * better. A TCP stream's coalesced writes (64 KiB each) yield every ~1 MiB: no cost seen. */
#define RX_YIELD_EVERY 16

enum { CMD_SET = 1, CMD_DEL = 2, CMD_LOCAL_RESET = 3, CMD_LOCAL_ADD = 4 };
/* What a loop thread does: both directions, or (split mode, one thread each) one of them. */
enum { ROLE_ALL = 0, ROLE_TX = 1, ROLE_RX = 2 };

struct cmd {
  uint8_t op, family, len;
  uint8_t addr[16];
  uint32_t peer;
  uint16_t port;
};

/* Send socket of one peer (open addressing by peer address; ip 0 = empty slot). */
struct psock {
  uint32_t ip;
  int fd;
};

struct fwd {
  unsigned writes_since_yield; /* receiving loop: TUN writes since its last yield */
  int role;
  struct fwd *rx;   /* split mode: the receive worker (its own thread, table and queue) */
  int shared_fds;   /* a receive worker: tun_fd and udp_fd belong to the primary */
  int *fatal_once;  /* shared by both workers: on_fatal is called at most once */
  int fatal_flag;
  int tun_fd, udp_fd, ep_fd, ev_fd;
  int vnet, gso_ok;
  int reuse_ok; /* udp_fd leads a SO_REUSEPORT group that steers every datagram to it */
  uint32_t bind_ip;
  uint16_t mtu, port;
  char tun_name[IFNAMSIZ];
  pthread_t thread;
  int stop; /* atomic */
  int started;
  int nice;
  size_t max_routes;
  void (*on_fatal)(void *, int, const char *);
  void *ctx;

  struct loop_cmdq cq; /* control queue (struct cmd); its mutex also guards `fails` */

  struct rt_table *rt; /* loop thread only */
  struct fwd_stats st;
  /* own subnets: inner destinations accepted from peers (loop thread only) */
  struct fwd_prefix local[FWD_MAX_LOCAL];
  int nlocal;
  /* failed route commands, written by the loop and taken by the control thread, under cq.mu */
  struct fwd_failure fails[FWD_MAX_FAILURES];
  int nfails;
  /* per-peer send sockets (loop thread only): a full socket costs only that peer's packets */
  struct psock *ps;
  size_t ps_cap, ps_n;

  /* TUN -> UDP */
  uint8_t *tun_bufs;
  size_t tun_lens[BATCH];
  struct mmsghdr tx_msgs[MAX_MSGS];
  struct sockaddr_in tx_addr[MAX_MSGS];
  union loop_gso_ctl tx_ctl[MAX_MSGS];
  uint32_t tx_npkts[MAX_MSGS], tx_nbytes[MAX_MSGS];
  int tx_fd[MAX_MSGS];       /* socket the message leaves by (its peer's, or udp_fd) */
  uint16_t tx_seg[MAX_MSGS]; /* segment size of the message (its first datagram's length) */
  int open;                  /* index of the message that may take more segments, or -1 */
  struct iovec tx_iov[MAX_IOV];
  uint8_t *hdr_arena;
  size_t ntx, niov, nhdr;
  struct pkt_seg segs[PKT_MAX_SEGS];

  /* UDP -> TUN */
  uint8_t *udp_bufs;
  struct mmsghdr rx_msgs[BATCH];
  struct iovec rx_iov[BATCH];
  struct sockaddr_in rx_addr[BATCH];
  union loop_gro_ctl rx_ctl[BATCH];
  struct loop_run run;
  uint32_t run_peer; /* the peer whose datagrams the active run holds */
  /* The last inner (source, destination, peer) that passed the source and own-subnet checks in
   * this receive batch: the segments of one flow repeat it, and the route table cannot change
   * within a batch (commands apply between batches). Cleared at the start of every batch. */
  struct {
    int valid;
    uint8_t family;
    uint32_t peer;
    uint8_t src[16], dst[16];
  } rx_ok;

  /* ICMP */
  uint8_t icmp_buf[PKT_VNET_HDR_LEN + 640];
  time_t icmp_sec;
  unsigned icmp_budget;
};

#define ST_ADD(f, field, n) \
  __atomic_store_n(&(f)->st.field, (f)->st.field + (uint64_t)(n), __ATOMIC_RELAXED)
#define ST_SET(f, field, v) __atomic_store_n(&(f)->st.field, (uint64_t)(v), __ATOMIC_RELAXED)

static int stopping(struct fwd *f) { return __atomic_load_n(&f->stop, __ATOMIC_ACQUIRE); }

static void fatal(struct fwd *f, int err, const char *syscall) {
  ST_SET(f, fatal_errno, err);
  if (!stopping(f) && f->on_fatal && __atomic_exchange_n(f->fatal_once, 1, __ATOMIC_ACQ_REL) == 0) {
    f->on_fatal(f->ctx, err, syscall);
  }
}

/* ---- per-peer send sockets ------------------------------------------------------------------ */
/*
 * Every peer gets its own send socket, bound to the same address and port as udp_fd (SO_REUSEPORT;
 * the group's BPF program steers every received datagram to udp_fd, so these never receive). Each
 * has its own send buffer: a peer whose path is congested (a slow link, a full queue) fills only its
 * own socket, and its packets are dropped without waiting while every other peer's still leave.
 * Without SO_REUSEPORT (or when a socket cannot be made) a peer shares udp_fd.
 */

static size_t ps_slot(uint32_t ip, size_t cap) {
  uint64_t h = (uint64_t)ip * 0x9E3779B97F4A7C15ull;
  return (size_t)(h >> 32) & (cap - 1);
}

static int ps_get(const struct fwd *f, uint32_t ip) {
  if (f->ps_cap == 0 || ip == 0) return -1;
  for (size_t i = ps_slot(ip, f->ps_cap), n = 0; n < f->ps_cap; i = (i + 1) & (f->ps_cap - 1), n++) {
    if (f->ps[i].ip == ip) return f->ps[i].fd;
    if (f->ps[i].ip == 0) return -1;
  }
  return -1;
}

static void ps_insert(struct psock *tab, size_t cap, uint32_t ip, int fd) {
  size_t i = ps_slot(ip, cap);
  while (tab[i].ip != 0) i = (i + 1) & (cap - 1);
  tab[i].ip = ip;
  tab[i].fd = fd;
}

/* Rebuilds the table with room for `extra` more peers, closing the sockets of peers no route points
 * to any more. -ENOMEM leaves it unchanged. */
static int ps_rebuild(struct fwd *f, size_t extra) {
  size_t live = 0;
  for (size_t i = 0; i < f->ps_cap; i++) {
    if (f->ps[i].ip != 0 && rt_peer_refs(f->rt, f->ps[i].ip) > 0) live++;
  }
  size_t cap = 16;
  while (cap < (live + extra) * 2) cap *= 2;
  struct psock *tab = calloc(cap, sizeof(*tab));
  if (!tab) return -ENOMEM;
  for (size_t i = 0; i < f->ps_cap; i++) {
    struct psock *p = &f->ps[i];
    if (p->ip == 0) continue;
    if (rt_peer_refs(f->rt, p->ip) > 0) {
      ps_insert(tab, cap, p->ip, p->fd);
    } else {
      close(p->fd);
    }
  }
  free(f->ps);
  f->ps = tab;
  f->ps_cap = cap;
  f->ps_n = live;
  return 0;
}

static int peer_socket(struct fwd *f) {
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  int on = 1, big = LOOP_SOCK_BUF;
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(f->port),
                           .sin_addr = {.s_addr = f->bind_ip}};
  if (setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &on, sizeof(on)) < 0 ||
      bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
    close(fd);
    return -1;
  }
  if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &big, sizeof(big)) < 0) {
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &big, sizeof(big));
  }
  return fd;
}

/* After a batch of commands: a socket for every peer that has routes, none for peers without. */
static void ps_sync(struct fwd *f, const struct cmd *cmds, size_t n) {
  if (!f->reuse_ok) return;
  int changed = 0;
  for (size_t i = 0; i < n; i++) changed |= cmds[i].op == CMD_SET || cmds[i].op == CMD_DEL;
  if (!changed) return;
  size_t want = 0;
  for (size_t i = 0; i < n; i++) {
    if (cmds[i].op == CMD_SET && ps_get(f, cmds[i].peer) < 0) want++;
  }
  if (ps_rebuild(f, want) != 0) return; /* peers keep sharing udp_fd */
  for (size_t i = 0; i < n; i++) {
    uint32_t ip = cmds[i].peer;
    if (cmds[i].op != CMD_SET || ip == 0 || rt_peer_refs(f->rt, ip) == 0 || ps_get(f, ip) >= 0) {
      continue;
    }
    int fd = peer_socket(f);
    if (fd < 0) continue; /* this peer shares udp_fd */
    ps_insert(f->ps, f->ps_cap, ip, fd);
    f->ps_n++;
  }
  ST_SET(f, peer_sockets, f->ps_n);
}

/* ---- control ------------------------------------------------------------------------------- */

/* 1 if `addr` (4 or 16 bytes) of `family` lies in one of this host's own subnets. */
static int is_local(const struct fwd *f, int family, const uint8_t *addr) {
  for (int i = 0; i < f->nlocal; i++) {
    const struct fwd_prefix *p = &f->local[i];
    if (p->family != family) continue;
    int full = p->len / 8, rest = p->len % 8, same = 1;
    for (int k = 0; k < full; k++) same &= p->addr[k] == addr[k]; /* inline: no memcmp call */
    if (!same) continue;
    if (rest && ((addr[full] ^ p->addr[full]) & (uint8_t)(0xff << (8 - rest)))) continue;
    return 1;
  }
  return 0;
}

/* 1 if addr is the broadcast address (host bits all ones) of IPv4 route r, /30 or shorter: no host
 * sends from it (RFC 1812 5.3.7), and what answers it would go out as a directed broadcast on the
 * peer's subnet. Its network address stays a valid source: the peer's TUN (host traffic) has it. */
static inline int is_subnet_broadcast(const struct rt_route *r, const uint8_t *addr) {
  if (r->family != 4 || r->len > 30) return 0;
  uint32_t a, host = 0xffffffffu >> r->len;
  memcpy(&a, addr, 4);
  return (ntohl(a) & host) == host;
}

static void record_failure(struct fwd *f, const struct cmd *c, int err) {
  ST_ADD(f, commands_failed, 1);
  pthread_mutex_lock(&f->cq.mu);
  if (f->nfails < FWD_MAX_FAILURES) {
    struct fwd_failure *x = &f->fails[f->nfails++];
    memset(x, 0, sizeof(*x));
    x->family = c->family;
    x->len = c->len;
    memcpy(x->addr, c->addr, 16);
    x->err = err;
  }
  pthread_mutex_unlock(&f->cq.mu);
}

static void apply_commands(struct fwd *f) {
  if (!loop_cmdq_pending(&f->cq)) return;
  size_t n;
  pthread_mutex_lock(&f->cq.mu);
  struct cmd *cmds = loop_cmdq_take(&f->cq, &n);
  pthread_mutex_unlock(&f->cq.mu);
  for (size_t i = 0; i < n; i++) {
    struct cmd *c = &cmds[i];
    if (c->op == CMD_SET) {
      int rc = rt_set(f->rt, c->family, c->addr, c->len, c->peer, c->port);
      if (rc < 0 && f->role != ROLE_RX) record_failure(f, c, -rc); /* reported once, by the primary */
    } else if (c->op == CMD_DEL) {
      rt_del(f->rt, c->family, c->addr, c->len);
    } else if (c->op == CMD_LOCAL_RESET) {
      f->nlocal = 0;
    } else if (c->op == CMD_LOCAL_ADD && f->nlocal < FWD_MAX_LOCAL) {
      struct fwd_prefix *p = &f->local[f->nlocal++];
      p->family = c->family;
      p->len = c->len;
      memcpy(p->addr, c->addr, 16);
      loop_mask_prefix(p->addr, p->family, p->len);
    }
  }
  if (f->role != ROLE_RX) ps_sync(f, cmds, n); /* only the sending side needs peer sockets */
  ST_SET(f, routes, rt_count(f->rt));
  ST_ADD(f, commands_applied, n);
}

/* Queues n commands at once: the loop applies all of them in one batch, or none yet. */
static int queue_cmds(struct fwd *f, const struct cmd *c, size_t n) {
  return loop_cmdq_push(&f->cq, f->ev_fd, c, n, sizeof(*c), &f->st.running,
                        &f->st.commands_queued);
}

/* Split mode: every command goes to both workers (the receive worker first: a failure leaves the
 * primary, whose counters the control plane waits on, untouched). */
static int queue_all(struct fwd *f, const struct cmd *c, size_t n) {
  if (f->rx) {
    int rc = queue_cmds(f->rx, c, n);
    if (rc < 0) return rc;
  }
  return queue_cmds(f, c, n);
}

static int queue_cmd(struct fwd *f, const struct cmd *c) { return queue_all(f, c, 1); }

int fwd_set_route(struct fwd *f, int family, const uint8_t *addr, int len, uint32_t peer_ip,
                  uint16_t port) {
  if (!loop_prefix_ok(family, len)) return -EINVAL;
  struct cmd c = {.op = CMD_SET, .family = (uint8_t)family, .len = (uint8_t)len, .peer = peer_ip,
                  .port = port};
  memcpy(c.addr, addr, family == 4 ? 4 : 16);
  return queue_cmd(f, &c);
}

int fwd_del_route(struct fwd *f, int family, const uint8_t *addr, int len) {
  if (!loop_prefix_ok(family, len)) return -EINVAL;
  struct cmd c = {.op = CMD_DEL, .family = (uint8_t)family, .len = (uint8_t)len};
  memcpy(c.addr, addr, family == 4 ? 4 : 16);
  return queue_cmd(f, &c);
}

int fwd_set_local(struct fwd *f, const struct fwd_prefix *p, int n) {
  if (n < 0 || n > FWD_MAX_LOCAL) return -EINVAL;
  struct cmd c[FWD_MAX_LOCAL + 1];
  memset(c, 0, sizeof(c));
  c[0].op = CMD_LOCAL_RESET;
  for (int i = 0; i < n; i++) {
    int fam = p[i].family;
    if (!loop_prefix_ok(fam, p[i].len)) return -EINVAL;
    c[i + 1].op = CMD_LOCAL_ADD;
    c[i + 1].family = (uint8_t)fam;
    c[i + 1].len = p[i].len;
    memcpy(c[i + 1].addr, p[i].addr, fam == 4 ? 4 : 16);
  }
  return queue_all(f, c, (size_t)n + 1);
}

int fwd_take_failures(struct fwd *f, struct fwd_failure *out, int max) {
  pthread_mutex_lock(&f->cq.mu);
  int n = f->nfails < max ? f->nfails : max;
  if (n > 0) {
    memcpy(out, f->fails, (size_t)n * sizeof(*out));
    memmove(f->fails, f->fails + n, (size_t)(f->nfails - n) * sizeof(*out));
    f->nfails -= n;
  }
  pthread_mutex_unlock(&f->cq.mu);
  return n;
}

/* ---- TUN -> UDP ---------------------------------------------------------------------------- */

/*
 * Sends messages [i, end) that all leave by socket `fd`. Never waits: when the socket is full
 * (EAGAIN/ENOBUFS) the rest of them are dropped and counted, and the loop goes on. With per-peer
 * sockets that costs only this peer's packets of this flush.
 */
static void tx_send(struct fwd *f, int fd, size_t i, size_t end) {
  while (i < end) {
    int r = sendmmsg(fd, f->tx_msgs + i, (unsigned)(end - i), MSG_DONTWAIT);
    if (r > 0) {
      for (size_t k = i; k < i + (size_t)r; k++) {
        ST_ADD(f, tx_packets, f->tx_npkts[k]);
        ST_ADD(f, tx_bytes, f->tx_nbytes[k]);
        if (f->tx_npkts[k] > 1) ST_ADD(f, gso_sends, 1);
      }
      i += (size_t)r;
      continue;
    }
    int e = errno;
    if (r < 0 && e == EINTR) continue;
    if (r < 0 && (e == EAGAIN || e == ENOBUFS)) {
      uint64_t n = 0;
      for (size_t k = i; k < end; k++) n += f->tx_npkts[k];
      ST_ADD(f, drop_congested, n);
      return;
    }
    if (r < 0 && e == EIO && f->tx_npkts[i] > 1) {
      /* The route's device cannot do UDP GSO (no checksum offload): fall back for good. */
      f->gso_ok = 0;
      ST_SET(f, off_udp_gso, 0);
    }
    ST_ADD(f, drop_udp_send, f->tx_npkts[i]);
    i++;
  }
}

static void tx_flush(struct fwd *f) {
  loop_tx_prepare(f->tx_msgs, f->tx_ctl, f->tx_npkts, f->tx_seg, f->ntx);
  for (size_t i = 0; i < f->ntx;) {
    size_t end = i + 1;
    while (end < f->ntx && f->tx_fd[end] == f->tx_fd[i]) end++;
    tx_send(f, f->tx_fd[i], i, end);
    i = end;
  }
  f->ntx = f->niov = f->nhdr = 0;
  f->open = -1;
}

/* Makes room for `msgs` messages, `iovs` iovecs and `hdrs` header slots, flushing if needed. */
static void tx_reserve(struct fwd *f, size_t msgs, size_t iovs, size_t hdrs) {
  if (f->ntx + msgs > MAX_MSGS || f->niov + iovs > MAX_IOV || f->nhdr + hdrs > MAX_HDRS) {
    tx_flush(f);
  }
}

/*
 * Queues one datagram (`a` followed by `b`, b may be empty) to route `r`. With GSO, consecutive
 * datagrams to the same peer share one message as long as each has the size of the message's first
 * one (a shorter one may end it): segments of consecutive super-packets, or equal-sized small packets,
 * leave in one UDP_SEGMENT send. The caller has reserved room (tx_reserve).
 */
static void tx_add(struct fwd *f, const struct rt_route *r, void *a, size_t alen, const void *b,
                   size_t blen) {
  size_t len = alen + blen;
  size_t n = blen ? 2 : 1;
  struct iovec *iov = &f->tx_iov[f->niov];
  iov[0].iov_base = a;
  iov[0].iov_len = alen;
  if (blen) {
    iov[1].iov_base = (void *)b;
    iov[1].iov_len = blen;
  }
  f->niov += n;
  if (f->open >= 0) {
    size_t k = (size_t)f->open;
    struct msghdr *m = &f->tx_msgs[k].msg_hdr;
    if (k + 1 == f->ntx && f->tx_addr[k].sin_addr.s_addr == r->peer_ip &&
        f->tx_addr[k].sin_port == htons(r->peer_port) && len <= f->tx_seg[k] &&
        f->tx_npkts[k] < GSO_MAX_SEGS && f->tx_nbytes[k] + len <= GSO_MAX_BYTES &&
        m->msg_iov + m->msg_iovlen == iov) {
      m->msg_iovlen += n;
      f->tx_npkts[k]++;
      f->tx_nbytes[k] += (uint32_t)len;
      if (len < f->tx_seg[k]) f->open = -1; /* only the last segment may be shorter */
      return;
    }
  }
  size_t k = f->ntx++;
  int fd = ps_get(f, r->peer_ip);
  f->tx_fd[k] = fd >= 0 ? fd : f->udp_fd;
  struct sockaddr_in *sa = &f->tx_addr[k];
  sa->sin_family = AF_INET;
  sa->sin_port = htons(r->peer_port);
  sa->sin_addr.s_addr = r->peer_ip;
  struct msghdr *m = &f->tx_msgs[k].msg_hdr;
  memset(m, 0, sizeof(*m));
  m->msg_name = sa;
  m->msg_namelen = sizeof(*sa);
  m->msg_iov = iov;
  m->msg_iovlen = n;
  f->tx_seg[k] = (uint16_t)len;
  f->tx_npkts[k] = 1;
  f->tx_nbytes[k] = (uint32_t)len;
  f->open = f->gso_ok ? (int)k : -1;
}

/*
 * ICMP net-unreachable back into the TUN, rate-limited. Its source is the unreachable destination
 * itself: the TUN's own address would be a local source arriving from outside, which the kernel drops
 * as a martian (flannel's choice, so its errors never arrive).
 */
static void send_unreachable(struct fwd *f, const struct pkt_ip *ip) {
  if (ip->family != 4) return;
  time_t now = time(NULL);
  if (now != f->icmp_sec) {
    f->icmp_sec = now;
    f->icmp_budget = ICMP_PER_SEC;
  }
  if (f->icmp_budget == 0) return;
  uint32_t src;
  memcpy(&src, ip->dst, 4);
  size_t off = f->vnet ? PKT_VNET_HDR_LEN : 0;
  memset(f->icmp_buf, 0, off);
  size_t n = pkt_icmp_unreach(ip, src, f->icmp_buf + off, sizeof(f->icmp_buf) - off);
  if (n == 0) return;
  f->icmp_budget--;
  if (write(f->tun_fd, f->icmp_buf, n + off) == (ssize_t)(n + off)) ST_ADD(f, icmp_sent, 1);
}

/* Counts a TUN packet dropped for verdict v (loop_tun_gso, pkt_tso_segment). */
static void drop_tso(struct fwd *f, int v) {
  if (v == PKT_MALFORMED) {
    ST_ADD(f, drop_malformed, 1);
  } else {
    ST_ADD(f, drop_unsupported, 1);
  }
}

static void tun_packet(struct fwd *f, uint8_t *buf, size_t n) {
  struct pkt_vnet_hdr vh;
  struct pkt_ip ip;
  if (loop_tun_parse(buf, n, f->vnet, &vh, &ip) != PKT_OK) {
    ST_ADD(f, drop_malformed, 1);
    return;
  }
  const struct rt_route *r = rt_lookup(f->rt, ip.family, ip.dst);
  if (!r) {
    ST_ADD(f, drop_no_route, 1);
    send_unreachable(f, &ip);
    return;
  }
  if (pkt_dec_ttl(&ip) != PKT_OK) {
    ST_ADD(f, drop_ttl, 1);
    return;
  }
  int gso = loop_tun_gso(&vh, &ip);
  if (gso < 0) {
    drop_tso(f, -gso);
    return;
  }
  if (gso == 0) {
    tx_reserve(f, 1, 1, 0);
    tx_add(f, r, ip.p, ip.len, NULL, 0);
    return;
  }
  tx_reserve(f, PKT_MAX_SEGS, 2 * PKT_MAX_SEGS, PKT_MAX_SEGS);
  int ns = pkt_tso_segment(&ip, vh.gso_size, f->hdr_arena + f->nhdr * PKT_MAX_HDR, f->segs,
                           PKT_MAX_SEGS);
  if (ns < 0) {
    drop_tso(f, -ns);
    return;
  }
  f->nhdr += (size_t)ns;
  ST_ADD(f, tso_packets, 1);
  for (int i = 0; i < ns; i++) {
    tx_add(f, r, f->segs[i].hdr, f->segs[i].hdr_len, f->segs[i].payload, f->segs[i].payload_len);
  }
}

/* Reads up to BATCH packets, forwards them, sends. Returns -1 on a fatal TUN error. */
static int tun_batch(struct fwd *f) {
  int err;
  int n = loop_tun_read(f->tun_fd, f->tun_bufs, f->tun_lens, &err);
  if (!err) ST_ADD(f, tun_reads, n);
  for (int i = 0; i < n; i++) {
    tun_packet(f, f->tun_bufs + (size_t)i * BUF_SIZE + HEADROOM, f->tun_lens[i]);
  }
  tx_flush(f);
  if (err) {
    fatal(f, err, "read");
    return -1;
  }
  return n;
}

/* ---- UDP -> TUN ---------------------------------------------------------------------------- */

static void run_flush(struct fwd *f) {
  if (!f->run.active) return;
  f->run.active = 0;
  if (f->run.gro.bad) {
    /* a TCP segment whose checksum failed when another tried to join it: it stays alone */
    ST_ADD(f, drop_bad_csum, 1);
    return;
  }
  if (loop_run_write(&f->run, f->tun_fd, f->vnet) != 0) {
    ST_ADD(f, drop_tun_write, f->run.pkts);
    return;
  }
  ST_ADD(f, tun_writes, 1);
  if (++f->writes_since_yield >= RX_YIELD_EVERY) {
    f->writes_since_yield = 0;
    sched_yield();
  }
  ST_ADD(f, rx_packets, f->run.pkts);
  ST_ADD(f, rx_bytes, f->run.bytes);
  if (f->run.pkts > 1) ST_ADD(f, coalesced_writes, 1);
}

/* 1 if a packet with ip's addresses from peer passed the source and destination checks earlier in
 * this batch (exact match of family, peer and both addresses: the same inputs, the same verdict). */
static int rx_checked(const struct fwd *f, const struct pkt_ip *ip, uint32_t peer) {
  if (!f->rx_ok.valid || f->rx_ok.family != ip->family || f->rx_ok.peer != peer) return 0;
  size_t n = ip->family == 4 ? 4 : 16;
  uint8_t diff = 0;
  for (size_t i = 0; i < n; i++) {
    diff |= (uint8_t)((f->rx_ok.src[i] ^ ip->src[i]) | (f->rx_ok.dst[i] ^ ip->dst[i]));
  }
  return diff == 0;
}

static void rx_remember(struct fwd *f, const struct pkt_ip *ip, uint32_t peer) {
  size_t n = ip->family == 4 ? 4 : 16;
  f->rx_ok.valid = 1;
  f->rx_ok.family = ip->family;
  f->rx_ok.peer = peer;
  memcpy(f->rx_ok.src, ip->src, n);
  memcpy(f->rx_ok.dst, ip->dst, n);
}

static void rx_packet(struct fwd *f, uint8_t *p, size_t len, uint32_t peer) {
  struct pkt_ip ip;
  if (pkt_parse(p, len, 1, &ip) != PKT_OK) {
    run_flush(f);
    ST_ADD(f, drop_malformed, 1);
    return;
  }
  if (!rx_checked(f, &ip, peer)) {
    /* Safety beyond flannel: the inner source must lie in a subnet routed to the sending peer (and
     * not be that subnet's broadcast address). */
    const struct rt_route *r = rt_lookup(f->rt, ip.family, ip.src);
    if (!r || r->peer_ip != peer || is_subnet_broadcast(r, ip.src)) {
      run_flush(f);
      ST_ADD(f, drop_bad_inner_source, 1);
      return;
    }
    /* ... and its destination in this host's own subnets: a peer (or anyone spoofing one) must not
     * use this host as a relay to other peers, the LAN or link-local addresses. */
    if (!is_local(f, ip.family, ip.dst)) {
      run_flush(f);
      ST_ADD(f, drop_bad_inner_dest, 1);
      return;
    }
    rx_remember(f, &ip, peer);
  }
  if (pkt_dec_ttl(&ip) != PKT_OK) {
    run_flush(f);
    ST_ADD(f, drop_ttl, 1);
    return;
  }
  if (f->run.active && f->vnet) {
    const uint8_t *pl;
    uint16_t plen;
    int joined = pkt_gro_try(&f->run.gro, &ip, &pl, &plen);
    if (joined < 0) {
      ST_ADD(f, drop_bad_csum, 1); /* corrupted on the way; the run goes on without it */
      return;
    }
    if (joined) {
      loop_run_join(&f->run, pl, plen, ip.len);
      return;
    }
  }
  run_flush(f);
  loop_run_start(&f->run, &ip, f->vnet, 0);
}

static void udp_batch(struct fwd *f) {
  int n = loop_recvmmsg(f->udp_fd, f->rx_msgs, f->rx_iov, f->rx_ctl, sizeof(f->rx_addr[0]));
  if (n <= 0) return; /* EAGAIN, or a queued ICMP error: nothing to do */
  f->rx_ok.valid = 0;
  for (int i = 0; i < n; i++) {
    struct msghdr *m = &f->rx_msgs[i].msg_hdr;
    size_t len = f->rx_msgs[i].msg_len;
    uint8_t *base = f->udp_bufs + (size_t)i * BUF_SIZE + HEADROOM;
    size_t seg;
    size_t nseg = loop_gro_split(m, len, &seg);
    if (m->msg_flags & MSG_TRUNC || f->rx_addr[i].sin_family != AF_INET || len == 0) {
      ST_ADD(f, drop_malformed, nseg);
      continue;
    }
    if (nseg > 1) ST_ADD(f, gro_receives, 1);
    uint32_t peer = f->rx_addr[i].sin_addr.s_addr;
    if (rt_peer_refs(f->rt, peer) == 0) {
      ST_ADD(f, drop_unknown_peer, nseg);
      continue;
    }
    /* A run goes on across the batch's buffers from one peer: one UDP_SEGMENT send carries at most
     * 44 full-size datagrams (65507 bytes) and a TSO super-packet has 45 segments, so a sender's
     * sends do not line up with super-packets and about every other GRO buffer is a small tail.
     * Flushed per buffer, that was two TUN writes (two skbs for the receiving TCP) per
     * super-packet, 32 KiB per write on average; across buffers ~60 KiB, and 10 % less forwarder
     * CPU per Gbit (container to container, 8 interleaved runs). */
    if (f->run.active && peer != f->run_peer) run_flush(f);
    f->run_peer = peer;
    for (size_t off = 0; off < len; off += seg) {
      rx_packet(f, base + off, len - off < seg ? len - off : seg, peer);
    }
  }
  run_flush(f);
}

/* ---- loop and lifecycle -------------------------------------------------------------------- */

static void *loop_main(void *arg) {
  struct fwd *f = arg;
  /* The kernel's own tunnels (VXLAN) do this work in softirq context, ahead of every task; a loop
   * thread at nice 0 waits behind the host's other work for every packet (measured on a loaded
   * 2-vCPU host: TCP 1 stream 0.60-0.82 of kernel VXLAN at nice 0, 0.98-1.07 at -10). Best effort:
   * without CAP_SYS_NICE the thread keeps the caller's priority. */
  if (f->nice != 0) setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), f->nice);
  struct epoll_event evs[4];
  while (!stopping(f)) {
    apply_commands(f);
    int n = epoll_wait(f->ep_fd, evs, 4, -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      fatal(f, errno, "epoll_wait");
      break;
    }
    int tun_ready, udp_ready;
    loop_events(evs, n, f->ev_fd, &tun_ready, &udp_ready);
    if (stopping(f)) break;
    apply_commands(f); /* commands apply between batches */
    if (udp_ready) udp_batch(f);
    if (tun_ready && tun_batch(f) < 0) break;
  }
  ST_SET(f, running, 0);
  return NULL;
}

static void free_fwd(struct fwd *f) {
  if (f->ep_fd >= 0) close(f->ep_fd);
  if (f->ev_fd >= 0) close(f->ev_fd);
  if (f->udp_fd >= 0 && !f->shared_fds) close(f->udp_fd);
  if (f->tun_fd >= 0 && !f->shared_fds) close(f->tun_fd);
  free(f->tun_bufs);
  free(f->udp_bufs);
  free(f->hdr_arena);
  loop_cmdq_free(&f->cq, sizeof(struct cmd));
  for (size_t i = 0; i < f->ps_cap; i++) {
    if (f->ps[i].ip != 0) close(f->ps[i].fd);
  }
  free(f->ps);
  rt_free(f->rt);
  free(f);
}

static int setup_offloads(struct fwd *f, int tun_fd) {
  struct loop_offloads o;
  int rc = loop_setup_offloads(tun_fd, f->udp_fd, f->tun_name, &o);
  f->vnet = o.vnet;
  ST_SET(f, off_vnet_hdr, o.vnet);
  ST_SET(f, off_tso, o.tso);
  if (rc < 0) return rc;
  ST_SET(f, off_udp_gro, o.udp_gro);
  ST_SET(f, off_udp_gso, o.udp_gso);
  f->gso_ok = o.udp_gso;
  /* The TUN queues what the kernel routes into it until the loop reads it: 500 packets by default,
   * ~20 ms of 64-byte packets at 25 kpps, lost whenever the loop thread is descheduled that long on a
   * busy host. A deeper queue absorbs that (TCP is unaffected: its small-queues limit keeps it far
   * below). Best effort: a failure leaves the default. */
  struct ifreq q;
  memset(&q, 0, sizeof(q));
  memcpy(q.ifr_name, f->tun_name, IFNAMSIZ);
  if (ioctl(f->udp_fd, SIOCGIFTXQLEN, &q) == 0 && q.ifr_qlen < TUN_TXQLEN) {
    q.ifr_qlen = TUN_TXQLEN;
    ioctl(f->udp_fd, SIOCSIFTXQLEN, &q);
  }
  return 0;
}

/*
 * Binds udp_fd. It leads a SO_REUSEPORT group whose BPF program returns index 0 (udp_fd, the first
 * member) for every datagram, so the per-peer send sockets bound to the same address never receive.
 * A taken port must still fail with EADDRINUSE (another weftd, flannel): a plain socket probes the
 * port first. Without SO_REUSEPORT or the BPF program, udp_fd is a plain socket (reuse_ok = 0).
 */
static int open_udp(struct fwd *f, struct sockaddr_in *sa, const char **sc) {
  if (sa->sin_port != 0) {
    int probe = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (probe < 0) {
      *sc = "socket";
      return -errno;
    }
    int rc = bind(probe, (struct sockaddr *)sa, sizeof(*sa));
    int e = errno;
    close(probe);
    if (rc < 0) {
      *sc = "bind";
      return -e;
    }
  }
  for (int attempt = 0; attempt < 2; attempt++) {
    int reuse = attempt == 0;
    f->udp_fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (f->udp_fd < 0) {
      *sc = "socket";
      return -errno;
    }
    if (reuse) {
      int on = 1;
      struct sock_filter code[] = {BPF_STMT(BPF_RET | BPF_K, 0)};
      struct sock_fprog prog = {.len = 1, .filter = code};
      if (setsockopt(f->udp_fd, SOL_SOCKET, SO_REUSEPORT, &on, sizeof(on)) < 0 ||
          setsockopt(f->udp_fd, SOL_SOCKET, SO_ATTACH_REUSEPORT_CBPF, &prog, sizeof(prog)) < 0) {
        close(f->udp_fd);
        f->udp_fd = -1;
        continue;
      }
    }
    if (bind(f->udp_fd, (struct sockaddr *)sa, sizeof(*sa)) < 0) {
      int e = errno;
      close(f->udp_fd);
      f->udp_fd = -1;
      if (reuse) continue;
      *sc = "bind";
      return -e;
    }
    f->reuse_ok = reuse;
    return 0;
  }
  *sc = "bind";
  return -EADDRINUSE;
}

/* Creates the worker's eventfd and epoll set (its role's fds), starts its thread. */
static int start_worker(struct fwd *f, const char **sc) {
  int rc = loop_epoll_open(&f->ep_fd, &f->ev_fd, f->role == ROLE_RX ? -1 : f->tun_fd,
                           f->role == ROLE_TX ? -1 : f->udp_fd, sc);
  if (rc < 0) return rc;
  if (f->udp_bufs) {
    loop_rx_init(f->rx_msgs, f->rx_iov, f->rx_addr, sizeof(f->rx_addr[0]), f->rx_ctl, f->udp_bufs);
  }
  ST_SET(f, running, 1);
  int pe = loop_thread_start(&f->thread, loop_main, f);
  if (pe != 0) {
    ST_SET(f, running, 0);
    *sc = "pthread_create";
    return -pe;
  }
  f->started = 1;
  return 0;
}

static void stop_worker(struct fwd *f) {
  loop_thread_stop(&f->cq, &f->stop, f->ev_fd, f->thread);
  f->started = 0;
}

/*
 * Split mode (design: one thread per direction). The primary becomes the sending worker (TUN -> UDP:
 * TSO segmentation, checksums, sendmmsg) and a second worker with its own thread, route table, local
 * subnets and command queue receives (recvmmsg, checks, checksum verification, coalesced TUN
 * writes). Neither waits for the other: a TCP stream's data and its ACKs, which flow in opposite
 * directions, are handled at the same time on two cores. Both share the TUN fd and udp_fd (a TUN fd
 * takes reads and writes from different threads; a socket sends and receives concurrently).
 */
static int new_rx_worker(struct fwd *f, const char **sc) {
  struct fwd *r = calloc(1, sizeof(*r));
  if (!r) {
    *sc = "malloc";
    return -ENOMEM;
  }
  r->ep_fd = r->ev_fd = -1;
  r->open = -1;
  loop_cmdq_init(&r->cq);
  r->role = ROLE_RX;
  r->shared_fds = 1;
  r->fatal_once = f->fatal_once;
  r->on_fatal = f->on_fatal;
  r->ctx = f->ctx;
  r->nice = f->nice;
  r->tun_fd = f->tun_fd;
  r->udp_fd = f->udp_fd;
  r->vnet = f->vnet;
  r->mtu = f->mtu;
  r->port = f->port;
  r->bind_ip = f->bind_ip;
  memcpy(r->tun_name, f->tun_name, IFNAMSIZ);
  r->udp_bufs = malloc((size_t)BATCH * BUF_SIZE);
  r->rt = rt_new();
  f->rx = r;
  if (!r->udp_bufs || !r->rt) {
    *sc = "malloc";
    return -ENOMEM;
  }
  rt_set_max(r->rt, f->max_routes);
  return 0;
}

int fwd_open(const struct fwd_config *cfg, struct fwd **out, const char **sc) {
  *sc = "fwd_open";
  if (cfg->tun_fd < 0 || cfg->mtu < 68) return -EINVAL;
  struct fwd *f = calloc(1, sizeof(*f));
  if (!f) return -ENOMEM;
  f->tun_fd = f->udp_fd = f->ep_fd = f->ev_fd = -1;
  f->open = -1;
  loop_cmdq_init(&f->cq);
  f->mtu = cfg->mtu;
  f->on_fatal = cfg->on_fatal;
  f->ctx = cfg->ctx;
  int err = 0;
  f->tun_bufs = malloc((size_t)BATCH * BUF_SIZE);
  f->udp_bufs = malloc((size_t)BATCH * BUF_SIZE);
  f->hdr_arena = malloc((size_t)MAX_HDRS * PKT_MAX_HDR);
  f->rt = rt_new();
  if (!f->tun_bufs || !f->udp_bufs || !f->hdr_arena || !f->rt) {
    err = -ENOMEM;
    *sc = "malloc";
    goto fail;
  }
  f->max_routes = cfg->max_routes ? cfg->max_routes : DEFAULT_MAX_ROUTES;
  rt_set_max(f->rt, f->max_routes);
  f->fatal_once = &f->fatal_flag;
  f->nice = cfg->nice;
  f->bind_ip = cfg->bind_ip;
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(cfg->port),
                           .sin_addr = {.s_addr = cfg->bind_ip}};
  if ((err = open_udp(f, &sa, sc)) < 0) goto fail;
  socklen_t sl = sizeof(sa);
  getsockname(f->udp_fd, (struct sockaddr *)&sa, &sl);
  f->port = ntohs(sa.sin_port);
  if ((err = setup_offloads(f, cfg->tun_fd)) < 0) {
    *sc = "ioctl";
    goto fail;
  }
  if ((err = loop_set_nonblock(cfg->tun_fd)) < 0) {
    *sc = "fcntl";
    goto fail;
  }
  f->tun_fd = cfg->tun_fd;
  int threads = cfg->threads;
  if (threads == 0) threads = sysconf(_SC_NPROCESSORS_ONLN) >= 2 ? 2 : 1;
  if (threads >= 2) {
    if ((err = new_rx_worker(f, sc)) < 0) goto fail;
    f->role = ROLE_TX;
    if ((err = start_worker(f->rx, sc)) < 0) goto fail;
  }
  if ((err = start_worker(f, sc)) < 0) goto fail;
  ST_SET(f, threads, 1); /* fwd_get_stats reports 2 in split mode */
  *out = f;
  return 0;
fail:
  if (f->rx) {
    if (f->rx->started) stop_worker(f->rx);
    free_fwd(f->rx);
    f->rx = NULL;
  }
  f->tun_fd = -1; /* not taken on failure */
  free_fwd(f);
  return err;
}

static void load_stats(const struct fwd *f, struct fwd_stats *out) {
  const uint64_t *src = (const uint64_t *)&f->st;
  uint64_t *dst = (uint64_t *)out;
  for (size_t i = 0; i < sizeof(*out) / sizeof(uint64_t); i++) {
    dst[i] = __atomic_load_n(&src[i], __ATOMIC_RELAXED);
  }
}

void fwd_get_stats(struct fwd *f, struct fwd_stats *out) {
  load_stats(f, out);
  if (!f->rx) return;
  /* split mode: counters add up; gauges and command progress are the primary's, except that a
   * command counts as applied once both workers applied it and the forwarder runs while both do */
  struct fwd_stats p = *out, r;
  load_stats(f->rx, &r);
  const uint64_t *rs = (const uint64_t *)&r;
  uint64_t *o = (uint64_t *)out;
  for (size_t i = 0; i < sizeof(*out) / sizeof(uint64_t); i++) o[i] += rs[i];
  out->commands_queued = p.commands_queued;
  out->commands_applied = p.commands_applied < r.commands_applied ? p.commands_applied
                                                                  : r.commands_applied;
  out->commands_failed = p.commands_failed;
  out->routes = p.routes;
  out->peer_sockets = p.peer_sockets;
  out->off_vnet_hdr = p.off_vnet_hdr;
  out->off_tso = p.off_tso;
  out->off_udp_gso = p.off_udp_gso;
  out->off_udp_gro = p.off_udp_gro;
  out->running = p.running && r.running;
  out->fatal_errno = p.fatal_errno ? p.fatal_errno : r.fatal_errno;
  out->threads = 2;
}

uint16_t fwd_local_port(struct fwd *f) { return f->port; }

void fwd_close(struct fwd *f) {
  if (!f) return;
  stop_worker(f);
  if (f->rx) {
    stop_worker(f->rx);
    free_fwd(f->rx);
  }
  free_fwd(f);
}
