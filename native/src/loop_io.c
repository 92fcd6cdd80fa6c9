/*
 * Setup and control plumbing shared by the forwarder loop and the WireGuard loop (see loop_io.h).
 * Nothing here runs per packet.
 */
#define _GNU_SOURCE
#include "loop_io.h"

#include <fcntl.h>
#include <linux/if_tun.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>

/* ---- control command queue ------------------------------------------------------------------ */

void loop_cmdq_init(struct loop_cmdq *q) {
  memset(q, 0, sizeof(*q));
  pthread_mutex_init(&q->mu, NULL);
}

void loop_cmdq_free(struct loop_cmdq *q, size_t size) {
  if (q->q) explicit_bzero(q->q, q->qcap * size);
  if (q->work) explicit_bzero(q->work, q->work_cap * size);
  free(q->q);
  free(q->work);
  q->q = q->work = NULL;
  pthread_mutex_destroy(&q->mu);
}

int loop_cmdq_push(struct loop_cmdq *q, int ev_fd, const void *cmds, size_t n, size_t size,
                   const uint64_t *running, uint64_t *queued) {
  pthread_mutex_lock(&q->mu);
  if (q->closed || !__atomic_load_n(running, __ATOMIC_RELAXED)) {
    pthread_mutex_unlock(&q->mu);
    return -ESHUTDOWN;
  }
  if (q->qlen + n > q->qcap) {
    size_t cap = q->qcap ? q->qcap : 64;
    while (cap < q->qlen + n) cap *= 2;
    void *b = realloc(q->q, cap * size);
    if (!b) {
      pthread_mutex_unlock(&q->mu);
      return -ENOMEM;
    }
    q->q = b;
    q->qcap = cap;
  }
  if (n) memcpy((char *)q->q + q->qlen * size, cmds, n * size);
  q->qlen += n;
  __atomic_store_n(&q->pending, 1, __ATOMIC_RELEASE);
  __atomic_store_n(queued, *queued + n, __ATOMIC_RELAXED);
  pthread_mutex_unlock(&q->mu);
  loop_wake(ev_fd);
  return 0;
}

void *loop_cmdq_take(struct loop_cmdq *q, size_t *n) {
  void *cmds = q->q;
  size_t cap = q->qcap;
  *n = q->qlen;
  q->q = q->work;
  q->qcap = q->work_cap;
  q->qlen = 0;
  q->work = cmds;
  q->work_cap = cap;
  __atomic_store_n(&q->pending, 0, __ATOMIC_RELEASE);
  return cmds;
}

void loop_mask_prefix(uint8_t addr[16], int family, int len) {
  int bytes = family == 4 ? 4 : 16;
  for (int i = 0; i < 16; i++) {
    int bits = len - i * 8;
    addr[i] &= i >= bytes || bits <= 0 ? 0 : bits >= 8 ? 0xff : (uint8_t)(0xff << (8 - bits));
  }
}

/* ---- setup and lifecycle -------------------------------------------------------------------- */

int loop_epoll_open(int *ep_fd, int *ev_fd, int tun_fd, int udp_fd, const char **sc) {
  *ev_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  *ep_fd = epoll_create1(EPOLL_CLOEXEC);
  if (*ev_fd < 0 || *ep_fd < 0) {
    *sc = *ev_fd < 0 ? "eventfd" : "epoll_create1";
    return -errno;
  }
  struct epoll_event ev = {.events = EPOLLIN};
  int fds[3] = {[EV_TUN] = tun_fd, [EV_UDP] = udp_fd, [EV_CTL] = *ev_fd};
  for (uint32_t i = 0; i < 3; i++) {
    if (fds[i] < 0) continue;
    ev.data.u32 = i;
    if (epoll_ctl(*ep_fd, EPOLL_CTL_ADD, fds[i], &ev) < 0) {
      *sc = "epoll_ctl";
      return -errno;
    }
  }
  return 0;
}

int loop_set_nonblock(int fd) {
  int fl = fcntl(fd, F_GETFL);
  if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) return -errno;
  return 0;
}

int loop_thread_start(pthread_t *t, void *(*fn)(void *), void *arg) {
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  int pe = pthread_create(t, NULL, fn, arg);
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  return pe;
}

void loop_thread_stop(struct loop_cmdq *q, int *stop, int ev_fd, pthread_t t) {
  pthread_mutex_lock(&q->mu);
  q->closed = 1;
  pthread_mutex_unlock(&q->mu);
  __atomic_store_n(stop, 1, __ATOMIC_RELEASE);
  loop_wake(ev_fd);
  pthread_join(t, NULL);
}

int loop_setup_offloads(int tun_fd, int udp_fd, char *name, struct loop_offloads *o) {
  memset(o, 0, sizeof(*o));
  struct ifreq ifr;
  memset(&ifr, 0, sizeof(ifr));
  if (ioctl(tun_fd, TUNGETIFF, &ifr) < 0) return -errno;
  if (name) {
    memcpy(name, ifr.ifr_name, IFNAMSIZ);
    name[IFNAMSIZ - 1] = 0;
  }
  o->vnet = (ifr.ifr_flags & IFF_VNET_HDR) != 0;
  if (o->vnet) {
    int sz = PKT_VNET_HDR_LEN;
    if (ioctl(tun_fd, TUNSETVNETHDRSZ, &sz) < 0) return -errno;
    if (ioctl(tun_fd, TUNSETOFFLOAD, (unsigned long)(TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6)) == 0) {
      o->tso = 1;
    } else {
      ioctl(tun_fd, TUNSETOFFLOAD, (unsigned long)TUN_F_CSUM);
    }
  }
  int big = LOOP_SOCK_BUF;
  if (setsockopt(udp_fd, SOL_SOCKET, SO_RCVBUFFORCE, &big, sizeof(big)) < 0) {
    setsockopt(udp_fd, SOL_SOCKET, SO_RCVBUF, &big, sizeof(big));
  }
  if (setsockopt(udp_fd, SOL_SOCKET, SO_SNDBUFFORCE, &big, sizeof(big)) < 0) {
    setsockopt(udp_fd, SOL_SOCKET, SO_SNDBUF, &big, sizeof(big));
  }
  int on = 1;
  if (setsockopt(udp_fd, SOL_UDP, UDP_GRO, &on, sizeof(on)) == 0) o->udp_gro = 1;
  int probe = 1000, off = 0;
  if (setsockopt(udp_fd, SOL_UDP, UDP_SEGMENT, &probe, sizeof(probe)) == 0) {
    setsockopt(udp_fd, SOL_UDP, UDP_SEGMENT, &off, sizeof(off));
    o->udp_gso = 1;
  }
  return 0;
}

/* ---- UDP -> TUN ----------------------------------------------------------------------------- */

void loop_rx_init(struct mmsghdr *msgs, struct iovec *iov, void *addrs, size_t addr_size,
                  union loop_gro_ctl *ctl, uint8_t *bufs) {
  for (int i = 0; i < BATCH; i++) {
    iov[i].iov_base = bufs + (size_t)i * BUF_SIZE + HEADROOM;
    struct msghdr *m = &msgs[i].msg_hdr;
    m->msg_name = (char *)addrs + (size_t)i * addr_size;
    m->msg_iov = &iov[i];
    m->msg_iovlen = 1;
    m->msg_control = ctl[i].buf;
  }
}
