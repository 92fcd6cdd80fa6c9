/* Unit tests of the rtnetlink sender thread (rtnl_sender.c) against the kernel, inside a private
 * network namespace of this test process only (unshare(CLONE_NEWNET): nothing outside it is touched,
 * and it disappears with the process). Needs root; with CI=true a missing capability fails the test.
 * Checks: framing validation; many requests in order with a kernel error reported at its index; a
 * request the kernel never acknowledges timing out without disturbing the next; close() failing what
 * was queued. Built with ASan/UBSan like the other native tests. */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "rtnl_sender.h"
#include "testlib.h"

#define MAXSUB 8
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static int ndone;
static uint64_t done_id[MAXSUB];
static uint32_t done_count[MAXSUB];
static int32_t *done_res[MAXSUB]; /* NULL: all succeeded */

static void on_done(void *ctx, uint64_t id, uint32_t count, const int32_t *results) {
  (void)ctx;
  pthread_mutex_lock(&mu);
  if (ndone < MAXSUB) {
    done_id[ndone] = id;
    done_count[ndone] = count;
    done_res[ndone] = NULL;
    if (results) {
      done_res[ndone] = malloc(count * sizeof(int32_t));
      memcpy(done_res[ndone], results, count * sizeof(int32_t));
    }
    ndone++;
  }
  pthread_mutex_unlock(&mu);
}

static int wait_done(int want) {
  for (int i = 0; i < 5000; i++) {
    pthread_mutex_lock(&mu);
    int n = ndone;
    pthread_mutex_unlock(&mu);
    if (n >= want) return n;
    usleep(1000);
  }
  return ndone;
}

static void reset_done(void) {
  for (int i = 0; i < ndone; i++) free(done_res[i]);
  ndone = 0;
}

/* RTM_NEWROUTE 10.(i>>8).(i&255).0/24 dev <oif> (scope link, main table) at buf+off; returns the end. */
static size_t route_msg(uint8_t *buf, size_t off, int i, int oif) {
  struct nlmsghdr *h = (struct nlmsghdr *)(buf + off);
  memset(h, 0, 44);
  h->nlmsg_len = 44;
  h->nlmsg_type = RTM_NEWROUTE;
  h->nlmsg_flags = NLM_F_REQUEST | NLM_F_CREATE | NLM_F_REPLACE;
  struct rtmsg *r = NLMSG_DATA(h);
  r->rtm_family = AF_INET;
  r->rtm_dst_len = 24;
  r->rtm_table = RT_TABLE_MAIN;
  r->rtm_protocol = RTPROT_STATIC;
  r->rtm_scope = RT_SCOPE_LINK;
  r->rtm_type = RTN_UNICAST;
  struct rtattr *a = (struct rtattr *)(buf + off + 28);
  a->rta_len = 8;
  a->rta_type = RTA_DST;
  uint8_t *d = RTA_DATA(a);
  d[0] = 10, d[1] = (uint8_t)(i >> 8), d[2] = (uint8_t)i, d[3] = 0;
  a = (struct rtattr *)(buf + off + 36);
  a->rta_len = 8;
  a->rta_type = RTA_OIF;
  memcpy(RTA_DATA(a), &oif, 4);
  return off + 44;
}

static void test_framing(struct rtnl_sender *s) {
  uint8_t buf[64] = {0};
  CHECK_EQ(rtnl_sender_submit(s, 1, buf, 0), -EINVAL);
  CHECK_EQ(rtnl_sender_submit(s, 1, buf, 6), -EINVAL);
  ((struct nlmsghdr *)buf)->nlmsg_len = 8; /* shorter than a header */
  CHECK_EQ(rtnl_sender_submit(s, 1, buf, 16), -EINVAL);
  ((struct nlmsghdr *)buf)->nlmsg_len = 60; /* longer than what was given */
  CHECK_EQ(rtnl_sender_submit(s, 1, buf, 16), -EINVAL);
}

static void test_order_and_errors(struct rtnl_sender *s) {
  enum { N = 300, BAD = 137 };
  static uint8_t buf[N * 44];
  size_t off = 0;
  for (int i = 0; i < N; i++) off = route_msg(buf, off, i, i == BAD ? 99999 : 1 /* lo */);
  /* Two submissions: the sender batches across them and reports each one. */
  size_t half = 150 * 44;
  reset_done();
  CHECK_EQ(rtnl_sender_submit(s, 7, buf, half), 150);
  CHECK_EQ(rtnl_sender_submit(s, 8, buf + half, off - half), N - 150);
  CHECK_EQ(wait_done(2), 2);
  CHECK_EQ(done_id[0], 7);
  CHECK_EQ(done_id[1], 8);
  CHECK_EQ(done_count[0], 150);
  CHECK(done_res[0] != NULL);
  if (done_res[0]) {
    int bad = 0;
    for (int i = 0; i < 150; i++)
      if (done_res[0][i] != 0) bad++;
    CHECK_EQ(bad, 1);
    CHECK_EQ(done_res[0][BAD], ENODEV);
  }
  CHECK(done_res[1] == NULL);
  /* A delete of a route that never existed fails with ESRCH at its index; the next one succeeds. */
  uint8_t two[88];
  route_msg(two, 0, 250 * 256, 1); /* 10.250.0.0/24: never added */
  ((struct nlmsghdr *)two)->nlmsg_type = RTM_DELROUTE;
  ((struct nlmsghdr *)two)->nlmsg_flags = NLM_F_REQUEST;
  route_msg(two, 44, 1, 1);
  reset_done();
  CHECK_EQ(rtnl_sender_submit(s, 9, two, sizeof two), 2);
  CHECK_EQ(wait_done(1), 1);
  CHECK(done_res[0] != NULL);
  if (done_res[0]) {
    CHECK_EQ(done_res[0][0], ESRCH);
    CHECK_EQ(done_res[0][1], 0);
  }
}

static void test_timeout(struct rtnl_sender *s) {
  /* An RTM_GETLINK dump: answered with link messages and NLMSG_DONE, never an NLMSG_ERROR. */
  uint8_t dump[32] = {0};
  struct nlmsghdr *h = (struct nlmsghdr *)dump;
  h->nlmsg_len = 32;
  h->nlmsg_type = RTM_GETLINK;
  h->nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
  reset_done();
  CHECK_EQ(rtnl_sender_submit(s, 10, dump, 32), 1);
  CHECK_EQ(wait_done(1), 1);
  CHECK(done_res[0] != NULL);
  if (done_res[0]) CHECK_EQ(done_res[0][0], RTNL_RES_TIMEOUT | ETIMEDOUT);
  uint8_t buf[44];
  route_msg(buf, 0, 3000, 1);
  CHECK_EQ(rtnl_sender_submit(s, 11, buf, 44), 1);
  CHECK_EQ(wait_done(2), 2);
  CHECK(done_res[1] == NULL); /* the dump's late answers did not answer this one */
}

static void test_close_fails_queued(void) {
  struct rtnl_sender *s = NULL;
  CHECK_EQ(rtnl_sender_open(&s, 64, 1000, on_done, NULL), 0);
  enum { N = 4000 };
  static uint8_t buf[N * 44];
  size_t off = 0;
  for (int i = 0; i < N; i++) off = route_msg(buf, off, i + 4096, 1);
  reset_done();
  CHECK_EQ(rtnl_sender_submit(s, 12, buf, off), N);
  rtnl_sender_close(s); /* joins the thread; reports what it did not send */
  CHECK_EQ(ndone, 1);
  if (ndone == 1 && done_res[0]) {
    int lost = 0, first = -1;
    for (int i = 0; i < N; i++)
      if (done_res[0][i] != 0) {
        if (first < 0) first = i;
        lost++;
        CHECK_EQ(done_res[0][i] & RTNL_RES_SOCKET, RTNL_RES_SOCKET);
      }
    CHECK_EQ(lost, first < 0 ? 0 : N - first); /* answered ones first, in order */
  }
  reset_done();
}

static int lo_up(void) {
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  if (fd < 0) return -1;
  struct ifreq ifr = {0};
  strcpy(ifr.ifr_name, "lo");
  int rc = ioctl(fd, SIOCGIFFLAGS, &ifr);
  ifr.ifr_flags |= IFF_UP;
  if (rc == 0) rc = ioctl(fd, SIOCSIFFLAGS, &ifr);
  close(fd);
  return rc;
}

int main(void) {
  if (unshare(CLONE_NEWNET) != 0 || lo_up() != 0) {
    const char *ci = getenv("CI");
    fprintf(stderr, "test_rtnl_sender: needs root (a private netns): %s\n", strerror(errno));
    return ci && strcmp(ci, "true") == 0 ? 1 : 0;
  }
  struct rtnl_sender *s = NULL;
  CHECK_EQ(rtnl_sender_open(&s, 0, 100, on_done, NULL), -EINVAL);
  CHECK_EQ(rtnl_sender_open(&s, 64, 100, on_done, NULL), 0);
  test_framing(s);
  test_order_and_errors(s);
  test_timeout(s);
  rtnl_sender_close(s);
  RUN(test_close_fails_queued);
  TL_DONE("test_rtnl_sender");
}
