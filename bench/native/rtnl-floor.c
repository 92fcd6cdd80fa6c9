/*
 * rtnl-floor: the kernel's own floor for programming N VXLAN peers, the anchor of bench/netlink.ts.
 *
 * Sends exactly the entries weft's vxlan backend programs per peer i (src/backend-vxlan/programmer.ts,
 * src/netlink/encode.ts): a permanent neighbour S.0 lladdr M (AF_INET, NUD_PERMANENT), an FDB entry
 * M dst P (AF_BRIDGE, NTF_SELF, NUD_PERMANENT) and a route S via S.0 dev <vxlan> onlink (RTPROT_STATIC,
 * main table), all with NLM_F_CREATE|NLM_F_REPLACE, in three phases (all neighbours, all FDB entries,
 * all routes) like weft; `del` removes them (routes, FDB, neighbours). The peer addressing is the
 * bench's: S = 10.(100 + (i >> 8)).(i & 255).0/24, M = 0e:42:00:00:(i >> 8):(i & 255),
 * P = 198.18.(1 + (i >> 8)).(i & 255).
 *
 * Batched rtnetlink: BATCH messages per sendmsg(2), at most WINDOW messages unacknowledged, ACKs read in
 * bulk with recvmmsg(2). `ack=all` asks an ACK for every message (what iproute2 does); `ack=last` asks
 * one per sendmsg (NLM_F_ACK on its last message only; the kernel still answers every failed message,
 * in order, so the last ACK proves the whole datagram was processed).
 *
 * Runs in the caller's network namespace (bench: `ip netns exec`). Prints one JSON line:
 *   {"ms": <wall time of the programming>, "cpuMs": <its CPU time, user + system>, "messages": N*3,
 *    "errors": <kernel rejections>,
 *    "neighMs", "fdbMs", "routeMs": <each phase>}
 * Usage: rtnl-floor add|del <ifindex> <peers> [first] [batch] [window] [all|last]
 * Build: cc -O2 -o rtnl-floor rtnl-floor.c
 */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/neighbour.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_BATCH 1024
#define MSG_MAX 64
#define RECV_VEC 128

static int fd;
static uint32_t seq = 1;
static long unacked; /* messages sent whose final ACK has not been read */
static long errors;
static int ack_all = 1;
static unsigned char sendbuf[MAX_BATCH * MSG_MAX];
static size_t sendlen;
static int inbatch;
static int batch = 64, window = 256;
/* per outstanding datagram: how many messages its last ACK acknowledges (ack=last) */
static uint32_t lastseq_ring[65536];
static int ring_count_ring[65536];
static unsigned ring_head, ring_tail;

static void die(const char *what) {
  perror(what);
  exit(1);
}

static void add_attr(struct nlmsghdr *h, unsigned short type, const void *data, unsigned short len) {
  struct rtattr *a = (struct rtattr *)((char *)h + NLMSG_ALIGN(h->nlmsg_len));
  a->rta_type = type;
  a->rta_len = RTA_LENGTH(len);
  memcpy(RTA_DATA(a), data, len);
  h->nlmsg_len = NLMSG_ALIGN(h->nlmsg_len) + RTA_ALIGN(a->rta_len);
}

static void read_acks(int block_until_below) {
  static unsigned char bufs[RECV_VEC][256];
  static struct iovec iov[RECV_VEC];
  static struct mmsghdr mm[RECV_VEC];
  while (unacked > block_until_below) {
    for (int i = 0; i < RECV_VEC; i++) {
      iov[i].iov_base = bufs[i];
      iov[i].iov_len = sizeof bufs[i];
      memset(&mm[i].msg_hdr, 0, sizeof mm[i].msg_hdr);
      mm[i].msg_hdr.msg_iov = &iov[i];
      mm[i].msg_hdr.msg_iovlen = 1;
    }
    int n = recvmmsg(fd, mm, RECV_VEC, MSG_WAITFORONE, NULL);
    if (n < 0) {
      if (errno == EINTR) continue;
      die("recvmmsg");
    }
    for (int i = 0; i < n; i++) {
      struct nlmsghdr *h = (struct nlmsghdr *)bufs[i];
      size_t len = mm[i].msg_len;
      for (; NLMSG_OK(h, len); h = NLMSG_NEXT(h, len)) {
        if (h->nlmsg_type != NLMSG_ERROR) continue;
        struct nlmsgerr *e = NLMSG_DATA(h);
        if (e->error != 0) errors++;
        if (ack_all) {
          unacked--;
        } else if (h->nlmsg_seq == lastseq_ring[ring_tail % 65536]) {
          unacked -= ring_count_ring[ring_tail % 65536];
          ring_tail++;
        }
      }
    }
  }
}

static void flush(void) {
  if (inbatch == 0) return;
  struct sockaddr_nl kernel = {.nl_family = AF_NETLINK};
  struct iovec iov = {sendbuf, sendlen};
  struct msghdr m = {.msg_name = &kernel, .msg_namelen = sizeof kernel, .msg_iov = &iov, .msg_iovlen = 1};
  if (!ack_all) {
    lastseq_ring[ring_head % 65536] = seq - 1;
    ring_count_ring[ring_head % 65536] = inbatch;
    ring_head++;
  }
  unacked += inbatch;
  while (sendmsg(fd, &m, 0) < 0) {
    if (errno != EINTR) die("sendmsg");
  }
  sendlen = 0;
  inbatch = 0;
  read_acks(window - batch);
}

static struct nlmsghdr *begin(unsigned short type, unsigned short flags, int last_of_batch) {
  struct nlmsghdr *h = (struct nlmsghdr *)(sendbuf + sendlen);
  memset(h, 0, MSG_MAX);
  h->nlmsg_len = NLMSG_LENGTH(0);
  h->nlmsg_type = type;
  h->nlmsg_flags = NLM_F_REQUEST | flags | ((ack_all || last_of_batch) ? NLM_F_ACK : 0);
  h->nlmsg_seq = seq++;
  return h;
}

static void end(struct nlmsghdr *h) {
  sendlen += NLMSG_ALIGN(h->nlmsg_len);
  if (++inbatch == batch) flush();
}

static void ndmsg_hdr(struct nlmsghdr *h, int family, int ifindex, int state, int flags) {
  struct ndmsg *nd = NLMSG_DATA(h);
  nd->ndm_family = family;
  nd->ndm_ifindex = ifindex;
  nd->ndm_state = state;
  nd->ndm_flags = flags;
  h->nlmsg_len = NLMSG_LENGTH(sizeof *nd);
}

int main(int argc, char **argv) {
  if (argc < 4) {
    fprintf(stderr, "usage: %s add|del <ifindex> <peers> [first] [batch] [window] [all|last]\n", argv[0]);
    return 2;
  }
  int del = strcmp(argv[1], "del") == 0;
  int ifindex = atoi(argv[2]);
  long peers = atol(argv[3]);
  long first = argc > 4 ? atol(argv[4]) : 0;
  if (argc > 5) batch = atoi(argv[5]);
  if (argc > 6) window = atoi(argv[6]);
  if (argc > 7) ack_all = strcmp(argv[7], "last") != 0;
  if (batch < 1 || batch > MAX_BATCH || window < batch || first + peers > 65535) {
    fprintf(stderr, "bad batch/window/peers\n");
    return 2;
  }
  fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
  if (fd < 0) die("socket");
  int rcv = 1 << 20; /* what weft's bulk socket asks for */
  setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcv, sizeof rcv);
  struct sockaddr_nl local = {.nl_family = AF_NETLINK};
  if (bind(fd, (struct sockaddr *)&local, sizeof local) < 0) die("bind");

  struct rusage r0, r1;
  getrusage(RUSAGE_SELF, &r0);
  struct timespec t0, t1, tp;
  double phase_ms[3];
  clock_gettime(CLOCK_MONOTONIC, &t0);
  tp = t0;
  /* phases: add = neigh, fdb, route; del = route, fdb, neigh */
  for (int phase = 0; phase < 3; phase++) {
    int what = del ? 2 - phase : phase; /* 0 neigh, 1 fdb, 2 route */
    for (long k = 0; k < peers; k++) {
      long i = first + k;
      uint8_t gw[4] = {10, (uint8_t)(100 + (i >> 8)), (uint8_t)(i & 255), 0};
      uint8_t mac[6] = {0x0e, 0x42, 0, 0, (uint8_t)((i >> 8) & 255), (uint8_t)(i & 255)};
      uint8_t pub[4] = {198, 18, (uint8_t)(1 + (i >> 8)), (uint8_t)(i & 255)};
      int last = (inbatch + 1 == batch) || k + 1 == peers;
      struct nlmsghdr *h;
      if (what == 0) {
        h = begin(del ? RTM_DELNEIGH : RTM_NEWNEIGH, del ? 0 : NLM_F_CREATE | NLM_F_REPLACE, last);
        ndmsg_hdr(h, AF_INET, ifindex, del ? 0 : NUD_PERMANENT, 0);
        add_attr(h, NDA_DST, gw, 4);
        if (!del) add_attr(h, NDA_LLADDR, mac, 6);
      } else if (what == 1) {
        h = begin(del ? RTM_DELNEIGH : RTM_NEWNEIGH, del ? 0 : NLM_F_CREATE | NLM_F_REPLACE, last);
        ndmsg_hdr(h, AF_BRIDGE, ifindex, del ? 0 : NUD_PERMANENT, NTF_SELF);
        add_attr(h, NDA_LLADDR, mac, 6);
        add_attr(h, NDA_DST, pub, 4);
      } else {
        h = begin(del ? RTM_DELROUTE : RTM_NEWROUTE, del ? 0 : NLM_F_CREATE | NLM_F_REPLACE, last);
        struct rtmsg *r = NLMSG_DATA(h);
        r->rtm_family = AF_INET;
        r->rtm_dst_len = 24;
        r->rtm_table = RT_TABLE_MAIN;
        if (del) {
          r->rtm_scope = RT_SCOPE_NOWHERE;
        } else {
          r->rtm_protocol = RTPROT_STATIC;
          r->rtm_scope = RT_SCOPE_UNIVERSE;
          r->rtm_type = RTN_UNICAST;
          r->rtm_flags = RTNH_F_ONLINK;
        }
        h->nlmsg_len = NLMSG_LENGTH(sizeof *r);
        add_attr(h, RTA_DST, gw, 4);
        add_attr(h, RTA_GATEWAY, gw, 4);
        add_attr(h, RTA_OIF, &ifindex, 4);
      }
      end(h);
    }
    flush(); /* a phase ends with its last datagram; its ACKs are read before the next phase */
    read_acks(0);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    phase_ms[what] = (t1.tv_sec - tp.tv_sec) * 1e3 + (t1.tv_nsec - tp.tv_nsec) / 1e6;
    tp = t1;
  }
  clock_gettime(CLOCK_MONOTONIC, &t1);
  double ms = (t1.tv_sec - t0.tv_sec) * 1e3 + (t1.tv_nsec - t0.tv_nsec) / 1e6;
  getrusage(RUSAGE_SELF, &r1);
  double cpu_ms = (r1.ru_utime.tv_sec - r0.ru_utime.tv_sec + r1.ru_stime.tv_sec - r0.ru_stime.tv_sec) * 1e3 +
                  (r1.ru_utime.tv_usec - r0.ru_utime.tv_usec + r1.ru_stime.tv_usec - r0.ru_stime.tv_usec) / 1e3;
  printf("{\"ms\": %.3f, \"cpuMs\": %.3f, \"messages\": %ld, \"errors\": %ld, \"neighMs\": %.3f, "
         "\"fdbMs\": %.3f, \"routeMs\": %.3f}\n",
         ms, cpu_ms, peers * 3, errors, phase_ms[0], phase_ms[1], phase_ms[2]);
  return 0;
}
