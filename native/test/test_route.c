/* Unit tests of native/src/route_table.c: longest prefix match, replace, delete, peers, scale. */
#include <arpa/inet.h>
#include <errno.h>
#include <string.h>

#include "route_table.h"
#include "testlib.h"

static uint32_t ip(const char *s) {
  struct in_addr a;
  inet_pton(AF_INET, s, &a);
  return a.s_addr;
}
static const uint8_t *b4(const char *s) {
  static uint8_t buf[8][4];
  static int k;
  uint8_t *b = buf[k++ & 7];
  inet_pton(AF_INET, s, b);
  return b;
}
static const uint8_t *b6(const char *s) {
  static uint8_t buf[8][16];
  static int k;
  uint8_t *b = buf[k++ & 7];
  inet_pton(AF_INET6, s, b);
  return b;
}
static uint32_t peer_of(struct rt_table *t, const char *dst) {
  const struct rt_route *r = rt_lookup(t, 4, b4(dst));
  return r ? r->peer_ip : 0;
}

static void test_lpm(void) {
  struct rt_table *t = rt_new();
  CHECK(t != NULL);
  CHECK(rt_lookup(t, 4, b4("10.1.2.3")) == NULL);
  CHECK_EQ(rt_set(t, 4, b4("10.0.0.0"), 8, ip("198.18.0.1"), 8285), 0);
  CHECK_EQ(rt_set(t, 4, b4("10.1.0.0"), 16, ip("198.18.0.2"), 8285), 0);
  CHECK_EQ(rt_set(t, 4, b4("10.1.2.99"), 24, ip("198.18.0.3"), 9000), 0); /* host bits ignored */
  CHECK_EQ(rt_count(t), 3);
  CHECK_EQ(peer_of(t, "10.1.2.3"), ip("198.18.0.3"));
  CHECK_EQ(rt_lookup(t, 4, b4("10.1.2.3"))->peer_port, 9000);
  CHECK_EQ(rt_lookup(t, 4, b4("10.1.2.3"))->len, 24);
  CHECK_EQ(peer_of(t, "10.1.3.3"), ip("198.18.0.2"));
  CHECK_EQ(peer_of(t, "10.200.3.3"), ip("198.18.0.1"));
  CHECK_EQ(peer_of(t, "11.0.0.1"), 0);
  CHECK_EQ(rt_del(t, 4, b4("10.1.2.0"), 24), 0);
  CHECK_EQ(peer_of(t, "10.1.2.3"), ip("198.18.0.2"));
  CHECK_EQ(rt_del(t, 4, b4("10.1.2.0"), 24), -ENOENT);
  CHECK_EQ(rt_del(t, 4, b4("10.1.0.0"), 24), -ENOENT); /* same address, other length */
  /* replace keeps one route and moves the peer reference */
  CHECK_EQ(rt_set(t, 4, b4("10.1.0.0"), 16, ip("198.18.0.4"), 8285), 0);
  CHECK_EQ(rt_count(t), 2);
  CHECK_EQ(rt_peer_refs(t, ip("198.18.0.2")), 0);
  CHECK_EQ(rt_peer_refs(t, ip("198.18.0.4")), 1);
  CHECK_EQ(rt_peer_refs(t, ip("198.18.0.1")), 1);
  /* a default route and a host route */
  CHECK_EQ(rt_set(t, 4, b4("0.0.0.0"), 0, ip("198.18.0.9"), 1), 0);
  CHECK_EQ(rt_set(t, 4, b4("10.1.9.9"), 32, ip("198.18.0.8"), 1), 0);
  CHECK_EQ(peer_of(t, "8.8.8.8"), ip("198.18.0.9"));
  CHECK_EQ(peer_of(t, "10.1.9.9"), ip("198.18.0.8"));
  CHECK_EQ(peer_of(t, "10.1.9.8"), ip("198.18.0.4"));
  /* invalid */
  CHECK_EQ(rt_set(t, 4, b4("10.0.0.0"), 33, 1, 1), -EINVAL);
  CHECK_EQ(rt_set(t, 4, b4("10.0.0.0"), -1, 1, 1), -EINVAL);
  CHECK_EQ(rt_set(t, 5, b4("10.0.0.0"), 8, 1, 1), -EINVAL);
  CHECK_EQ(rt_del(t, 6, b6("::"), 129), -EINVAL);
  rt_free(t);
}

static void test_v6(void) {
  struct rt_table *t = rt_new();
  CHECK_EQ(rt_set(t, 6, b6("fd00:10:244:1::"), 64, ip("198.18.0.1"), 8285), 0);
  CHECK_EQ(rt_set(t, 6, b6("fd00:10:244::"), 48, ip("198.18.0.2"), 8285), 0);
  CHECK_EQ(rt_set(t, 4, b4("10.244.1.0"), 24, ip("198.18.0.3"), 8285), 0);
  CHECK_EQ(rt_lookup(t, 6, b6("fd00:10:244:1::5"))->peer_ip, ip("198.18.0.1"));
  CHECK_EQ(rt_lookup(t, 6, b6("fd00:10:244:2::5"))->peer_ip, ip("198.18.0.2"));
  CHECK(rt_lookup(t, 6, b6("fd00:10:245::1")) == NULL);
  /* families never mix: 10.244.1.0 as the first bytes of an IPv6 address does not match */
  CHECK(rt_lookup(t, 6, b6("a00:f401::")) == NULL);
  CHECK_EQ(rt_peer_refs(t, ip("198.18.0.1")), 1);
  CHECK_EQ(rt_del(t, 6, b6("fd00:10:244:1::"), 64), 0);
  CHECK_EQ(rt_lookup(t, 6, b6("fd00:10:244:1::5"))->peer_ip, ip("198.18.0.2"));
  CHECK_EQ(rt_peer_refs(t, ip("198.18.0.1")), 0);
  rt_free(t);
}

static void test_scale(void) {
  struct rt_table *t = rt_new();
  /* 10.(i/256).(i%256).0/24 -> 198.18.(i/256).(i%256) for 20000 routes, delete every other one */
  enum { N = 20000 };
  for (uint32_t i = 0; i < N; i++) {
    uint8_t a[4] = {10, (uint8_t)(i >> 8), (uint8_t)i, 0};
    CHECK_EQ(rt_set(t, 4, a, 24, htonl(0xc6120000u | i), 8285), 0);
  }
  CHECK_EQ(rt_count(t), N);
  int bad = 0;
  for (uint32_t i = 0; i < N; i++) {
    uint8_t a[4] = {10, (uint8_t)(i >> 8), (uint8_t)i, 77};
    const struct rt_route *r = rt_lookup(t, 4, a);
    if (!r || r->peer_ip != htonl(0xc6120000u | i)) bad++;
    if (rt_peer_refs(t, htonl(0xc6120000u | i)) != 1) bad++;
  }
  CHECK_EQ(bad, 0);
  for (uint32_t i = 0; i < N; i += 2) {
    uint8_t a[4] = {10, (uint8_t)(i >> 8), (uint8_t)i, 0};
    CHECK_EQ(rt_del(t, 4, a, 24), 0);
  }
  CHECK_EQ(rt_count(t), N / 2);
  for (uint32_t i = 0; i < N; i++) {
    uint8_t a[4] = {10, (uint8_t)(i >> 8), (uint8_t)i, 1};
    const struct rt_route *r = rt_lookup(t, 4, a);
    if ((i % 2 == 0) != (r == NULL)) bad++;
  }
  CHECK_EQ(bad, 0);
  /* churn: delete and re-add many times (tombstones must not fill the table) */
  for (int round = 0; round < 50; round++) {
    for (uint32_t i = 0; i < 1000; i++) {
      uint8_t a[4] = {11, (uint8_t)(i >> 8), (uint8_t)i, 0};
      if (rt_set(t, 4, a, 24, 1, 1) != 0) bad++;
    }
    for (uint32_t i = 0; i < 1000; i++) {
      uint8_t a[4] = {11, (uint8_t)(i >> 8), (uint8_t)i, 0};
      if (rt_del(t, 4, a, 24) != 0) bad++;
    }
  }
  CHECK_EQ(bad, 0);
  CHECK_EQ(rt_count(t), N / 2);
  CHECK_EQ(rt_peer_refs(t, 1), 0);
  rt_free(t);
}

/* A full table refuses new routes with -ENOSPC and stays unchanged; replacing still works. */
static void test_limit(void) {
  struct rt_table *t = rt_new();
  rt_set_max(t, 2);
  CHECK_EQ(rt_set(t, 4, b4("10.1.0.0"), 16, ip("198.18.0.1"), 8285), 0);
  CHECK_EQ(rt_set(t, 6, b6("fd00::"), 64, ip("198.18.0.1"), 8285), 0);
  CHECK_EQ(rt_set(t, 4, b4("10.2.0.0"), 16, ip("198.18.0.2"), 8285), -ENOSPC);
  CHECK_EQ(rt_count(t), 2);
  CHECK_EQ(peer_of(t, "10.2.0.1"), 0);
  CHECK_EQ(rt_peer_refs(t, ip("198.18.0.2")), 0);
  CHECK_EQ(rt_set(t, 4, b4("10.1.0.0"), 16, ip("198.18.0.3"), 8285), 0);
  CHECK_EQ(peer_of(t, "10.1.0.1"), ip("198.18.0.3"));
  CHECK_EQ(rt_del(t, 6, b6("fd00::"), 64), 0);
  CHECK_EQ(rt_set(t, 4, b4("10.2.0.0"), 16, ip("198.18.0.2"), 8285), 0);
  rt_free(t);
}

int main(void) {
  RUN(test_lpm);
  RUN(test_limit);
  RUN(test_v6);
  RUN(test_scale);
  TL_DONE("test_route");
}
