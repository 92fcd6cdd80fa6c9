/*
 * Bounded mutation fuzzing of the packet logic the forwarder runs on hostile input (receive path:
 * parse, TTL, coalescing; send path: checksum completion, segmentation; ICMP). Every packet lives in
 * a malloc'd buffer of its exact length, so AddressSanitizer (see Makefile) flags any read or write
 * past it; invariants are CHECKed. Deterministic seed; FUZZ_ITERS overrides the iteration count.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pkt.h"
#include "testlib.h"

static uint64_t rng = 0x9E3779B97F4A7C15ull;
static uint32_t rnd(void) {
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return (uint32_t)(rng >> 11);
}
static uint32_t below(uint32_t n) { return n ? rnd() % n : 0; }

/* A plausible packet (so mutations reach deep code), then 0-8 random byte changes. */
static size_t make_packet(uint8_t *b, size_t cap) {
  int v6 = below(3) == 0;
  uint8_t proto = below(4) == 0 ? (below(2) ? 17 : 1) : 6;
  size_t hlen = v6 ? 40 : 20 + 4 * below(3) * (below(4) == 0);
  size_t thlen = proto == 6 ? 20 + 4 * below(11) : 8;
  size_t payload = below(4) == 0 ? below(20) : below(3000);
  size_t len = hlen + thlen + payload;
  if (len > cap) len = cap;
  for (size_t i = 0; i < len; i++) b[i] = (uint8_t)rnd();
  if (v6) {
    b[0] = 0x60;
    b[4] = (uint8_t)((len - 40) >> 8);
    b[5] = (uint8_t)(len - 40);
    b[6] = proto;
    b[7] = (uint8_t)below(3);
  } else {
    b[0] = (uint8_t)(0x40 | (hlen / 4));
    b[2] = (uint8_t)(len >> 8);
    b[3] = (uint8_t)len;
    b[6] = below(4) == 0 ? (uint8_t)rnd() : 0x40;
    b[7] = below(4) == 0 ? (uint8_t)rnd() : 0;
    b[8] = (uint8_t)below(4);
    b[9] = proto;
    pkt_ipv4_fix_csum(b, (unsigned)hlen);
  }
  if (proto == 6 && hlen + 13 < len) {
    b[hlen + 12] = (uint8_t)((thlen / 4) << 4);
    b[hlen + 13] = below(2) ? 0x10 : (uint8_t)rnd();
  }
  int flips = (int)below(9);
  for (int i = 0; i < flips; i++) b[below((uint32_t)len)] = (uint8_t)rnd();
  if (below(8) == 0) len = below((uint32_t)len + 1); /* truncate */
  return len;
}

static uint8_t *dup_exact(const uint8_t *src, size_t len) {
  uint8_t *p = malloc(len ? len : 1);
  memcpy(p, src, len);
  return p;
}

static uint8_t arena[PKT_MAX_SEGS * PKT_MAX_HDR];
static struct pkt_seg segs[PKT_MAX_SEGS];

static void fuzz_one(void) {
  static uint8_t scratch[70000], scratch2[70000];
  size_t len = make_packet(scratch, sizeof(scratch));
  uint8_t *p = dup_exact(scratch, len);
  struct pkt_ip ip;
  int rc = pkt_parse(p, len, (int)below(2), &ip);
  if (rc == PKT_OK) {
    CHECK(ip.len <= len);
    CHECK(ip.hlen <= ip.len);
    /* send path */
    unsigned mss = below(4) == 0 ? below(100) : 500 + below(1500);
    int n = pkt_tso_segment(&ip, mss, arena, segs, PKT_MAX_SEGS);
    if (n > 0) {
      size_t total = 0;
      for (int i = 0; i < n; i++) {
        CHECK(segs[i].hdr_len <= PKT_MAX_HDR);
        CHECK(segs[i].payload >= ip.p && segs[i].payload + segs[i].payload_len <= ip.p + ip.len);
        total += segs[i].payload_len;
      }
      CHECK_EQ(total + segs[0].hdr_len, ip.len);
    }
    uint8_t icmp[600];
    size_t il = pkt_icmp_unreach(&ip, 0x0100000a, icmp, below(2) ? sizeof(icmp) : below(80));
    CHECK(il <= sizeof(icmp));
    pkt_finish_csum(p, ip.len, below((uint32_t)ip.len + 70), below(80));
    pkt_dec_ttl(&ip);
    /* receive path: coalesce with a second packet (a mutated copy, or fresh) */
    size_t len2 = below(2) ? len : make_packet(scratch2, sizeof(scratch2));
    if (len2 == len) memcpy(scratch2, p, len);
    if (ip.family == 4 && len2 >= 8 && below(2)) {
      /* continue the sequence as a well-behaved sender would */
      size_t th = ip.hlen;
      if (th + 8 <= len2 && ip.proto == 6 && th + 20 <= ip.len) {
        uint32_t seq = (uint32_t)scratch2[th + 4] << 24 | (uint32_t)scratch2[th + 5] << 16 |
                       (uint32_t)scratch2[th + 6] << 8 | scratch2[th + 7];
        unsigned thl = (scratch2[th + 12] >> 4) * 4u;
        seq += ip.len > th + thl ? (uint32_t)(ip.len - th - thl) : 0;
        scratch2[th + 4] = (uint8_t)(seq >> 24);
        scratch2[th + 5] = (uint8_t)(seq >> 16);
        scratch2[th + 6] = (uint8_t)(seq >> 8);
        scratch2[th + 7] = (uint8_t)seq;
      }
    }
    uint8_t *q = dup_exact(scratch2, len2);
    struct pkt_ip ip2;
    struct pkt_gro g;
    pkt_gro_start(&g, &ip);
    if (pkt_parse(q, len2, 0, &ip2) == PKT_OK) {
      const uint8_t *pl;
      uint16_t plen;
      int r = pkt_gro_try(&g, &ip2, &pl, &plen);
      CHECK(r == 1 || r == 0 || r == -PKT_BAD_CSUM);
      if (r > 0) {
        CHECK(pl >= q && pl + plen <= q + len2);
        CHECK(g.total <= 65535);
      }
    }
    struct pkt_vnet_hdr vh;
    pkt_gro_finish(&g, &vh);
    if (vh.gso_type) CHECK(vh.hdr_len <= ip.len && vh.gso_size > 0);
    free(q);
  }
  free(p);
}

/* A GRO receive buffer: datagrams of `seg` bytes back to back, split and parsed as the loop does. */
static void fuzz_gro_buffer(void) {
  static uint8_t buf[65536];
  size_t seg = 20 + below(1500), len = 0;
  while (len + seg <= sizeof(buf) && below(50) != 0) {
    size_t n = make_packet(buf + len, seg);
    if (n < seg) memset(buf + len + n, 0, seg - n);
    len += seg;
  }
  if (below(2) && len) len -= below((uint32_t)seg);
  uint8_t *p = dup_exact(buf, len);
  struct pkt_gro g;
  int active = 0;
  for (size_t off = 0; off < len; off += seg) {
    size_t l = len - off < seg ? len - off : seg;
    struct pkt_ip ip;
    if (pkt_parse(p + off, l, 1, &ip) != PKT_OK) continue;
    const uint8_t *pl;
    uint16_t plen;
    if (active && pkt_gro_try(&g, &ip, &pl, &plen) != 0) continue;
    if (active) {
      struct pkt_vnet_hdr vh;
      pkt_gro_finish(&g, &vh);
    }
    pkt_gro_start(&g, &ip);
    active = 1;
  }
  free(p);
}

int main(void) {
  const char *env = getenv("FUZZ_ITERS");
  long iters = env ? atol(env) : 200000;
  for (long i = 0; i < iters; i++) {
    fuzz_one();
    if (i % 16 == 0) fuzz_gro_buffer();
  }
  TL_DONE("test_fuzz");
}
