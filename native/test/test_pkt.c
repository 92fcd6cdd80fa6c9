/* Unit tests of native/src/pkt.c: checksums, parsing (malformed input), TTL, TSO segmentation,
 * coalescing (and the round trip segment -> coalesce -> segment), ICMP unreachable. */
#include <arpa/inet.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pkt.h"
#include "testlib.h"

/* Reference checksum: RFC 1071 over big-endian 16-bit words, written independently of pkt.c. */
static uint32_t ref_sum(const uint8_t *p, size_t len, uint32_t sum) {
  for (size_t i = 0; i + 1 < len; i += 2) sum += (uint32_t)(p[i] << 8 | p[i + 1]);
  if (len & 1) sum += (uint32_t)p[len - 1] << 8;
  return sum;
}
static uint16_t ref_fold(uint32_t s) {
  while (s >> 16) s = (s & 0xffff) + (s >> 16);
  return (uint16_t)s;
}
static int ref_ipv4_ok(const uint8_t *p) { return ref_fold(ref_sum(p, (p[0] & 15) * 4u, 0)) == 0xffff; }
/* Verifies the TCP/UDP checksum of a flat IPv4/IPv6 packet with the reference implementation. */
static int ref_l4_ok(const uint8_t *p) {
  uint32_t s;
  size_t hlen, len;
  uint8_t proto;
  if ((p[0] >> 4) == 4) {
    hlen = (p[0] & 15) * 4u;
    len = (size_t)(p[2] << 8 | p[3]);
    proto = p[9];
    s = ref_sum(p + 12, 8, 0);
  } else {
    hlen = 40;
    len = 40 + (size_t)(p[4] << 8 | p[5]);
    proto = p[6];
    s = ref_sum(p + 8, 32, 0);
  }
  s += proto + (uint32_t)(len - hlen);
  s = ref_sum(p + hlen, len - hlen, s);
  return ref_fold(s) == 0xffff;
}

static uint8_t tcp_payload(size_t i) { return (uint8_t)(i * 7 + 3); }

/* Builds an IPv4 (or IPv6) TCP packet with correct checksums; returns its length. */
static size_t build_tcp(uint8_t *b, int v6, uint32_t seq, uint8_t flags, size_t payload,
                        size_t payload_off, int opts) {
  size_t hlen = v6 ? 40 : 20, thlen = opts ? 32 : 20;
  size_t len = hlen + thlen + payload;
  memset(b, 0, hlen + thlen);
  if (v6) {
    b[0] = 0x60;
    b[4] = (uint8_t)((len - 40) >> 8);
    b[5] = (uint8_t)(len - 40);
    b[6] = 6;
    b[7] = 64;
    b[8] = 0xfd;
    b[23] = 1;
    b[24] = 0xfd;
    b[39] = 2;
  } else {
    b[0] = 0x45;
    b[2] = (uint8_t)(len >> 8);
    b[3] = (uint8_t)len;
    b[4] = 0x12;
    b[5] = 0x34;
    b[6] = 0x40; /* DF */
    b[8] = 64;
    b[9] = 6;
    uint8_t src[4] = {10, 244, 1, 2}, dst[4] = {10, 244, 2, 2};
    memcpy(b + 12, src, 4);
    memcpy(b + 16, dst, 4);
  }
  uint8_t *t = b + hlen;
  t[0] = 0x9c;
  t[1] = 0x40;
  t[2] = 0x14;
  t[3] = 0x51;
  t[4] = (uint8_t)(seq >> 24);
  t[5] = (uint8_t)(seq >> 16);
  t[6] = (uint8_t)(seq >> 8);
  t[7] = (uint8_t)seq;
  t[8] = 0xaa;
  t[11] = 0x01;
  t[12] = (uint8_t)((thlen / 4) << 4);
  t[13] = flags;
  t[14] = 0xff;
  if (opts) {
    t[20] = 1;
    t[21] = 1;
    t[22] = 8;
    t[23] = 10;
    t[27] = 0x42;
  }
  for (size_t i = 0; i < payload; i++) t[thlen + i] = tcp_payload(payload_off + i);
  if (!v6) {
    uint32_t s = ref_sum(b, 20, 0);
    uint16_t c = (uint16_t)~ref_fold(s);
    b[10] = (uint8_t)(c >> 8);
    b[11] = (uint8_t)c;
  }
  uint32_t s = v6 ? ref_sum(b + 8, 32, 0) : ref_sum(b + 12, 8, 0);
  s += 6 + (uint32_t)(thlen + payload);
  s = ref_sum(t, thlen + payload, s);
  uint16_t c = (uint16_t)~ref_fold(s);
  t[16] = (uint8_t)(c >> 8);
  t[17] = (uint8_t)c;
  return len;
}

static void test_checksum(void) {
  uint8_t buf[300];
  for (size_t i = 0; i < sizeof(buf); i++) buf[i] = (uint8_t)(rand() & 0xff);
  for (size_t len = 0; len < 200; len++) {
    for (size_t off = 0; off < 3; off++) {
      uint16_t mine = pkt_csum_fold(pkt_csum_partial(buf + off, len, 0));
      uint16_t ref = ref_fold(ref_sum(buf + off, len, 0));
      uint8_t m[2];
      memcpy(m, &mine, 2); /* native word order -> memory order must be network order */
      CHECK_EQ((m[0] << 8 | m[1]), ref == 0xffff && mine == 0 ? 0 : ref);
    }
  }
  /* long buffers (the vectorized path), all-ones worst case for carries, odd offsets and lengths */
  static uint8_t big[70000];
  for (int round = 0; round < 2; round++) {
    for (size_t i = 0; i < sizeof(big); i++) big[i] = round ? 0xff : (uint8_t)(rand() & 0xff);
    for (size_t len = 100; len < 66000; len = len * 3 / 2 + 7) {
      for (size_t off = 0; off < 3; off++) {
        uint16_t mine = pkt_csum_fold(pkt_csum_partial(big + off, len, 0));
        uint16_t ref = ref_fold(ref_sum(big + off, len, 0));
        uint8_t m[2];
        memcpy(m, &mine, 2);
        CHECK_EQ((m[0] << 8 | m[1]), ref == 0xffff && mine == 0 ? 0 : ref);
      }
    }
  }
  /* RFC 1071 section 3 example: 00 01 f2 03 f4 f5 f6 f7 sums to ddf2 */
  uint8_t ex[8] = {0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7};
  uint16_t f = pkt_csum_fold(pkt_csum_partial(ex, 8, 0));
  uint8_t m[2];
  memcpy(m, &f, 2);
  CHECK_EQ(m[0], 0xdd);
  CHECK_EQ(m[1], 0xf2);
}

static void test_parse_malformed(void) {
  uint8_t b[2000];
  struct pkt_ip ip;
  size_t len = build_tcp(b, 0, 1, 0x10, 100, 0, 0);
  CHECK_EQ(pkt_parse(b, len, 1, &ip), PKT_OK);
  CHECK_EQ(ip.len, len);
  CHECK_EQ(ip.hlen, 20);
  CHECK_EQ(ip.proto, 6);
  CHECK_EQ(ip.frag, 0);
  /* trailing bytes beyond tot_len are ignored */
  CHECK_EQ(pkt_parse(b, len + 10, 1, &ip), PKT_OK);
  CHECK_EQ(ip.len, len);
  /* truncated */
  CHECK_EQ(pkt_parse(b, 0, 1, &ip), PKT_MALFORMED);
  CHECK_EQ(pkt_parse(b, 19, 1, &ip), PKT_MALFORMED);
  CHECK_EQ(pkt_parse(b, len - 1, 1, &ip), PKT_MALFORMED); /* tot_len > received */
  /* IHL < 5 */
  uint8_t c[2000];
  for (int ihl = 0; ihl < 5; ihl++) {
    memcpy(c, b, len);
    c[0] = (uint8_t)(0x40 | ihl);
    CHECK_EQ(pkt_parse(c, len, 0, &ip), PKT_MALFORMED);
  }
  /* IHL beyond the buffer */
  memcpy(c, b, len);
  c[0] = 0x4f;
  CHECK_EQ(pkt_parse(c, 40, 0, &ip), PKT_MALFORMED);
  /* tot_len < IHL */
  memcpy(c, b, len);
  c[2] = 0;
  c[3] = 10;
  CHECK_EQ(pkt_parse(c, len, 0, &ip), PKT_MALFORMED);
  /* bad header checksum: rejected only when checked */
  memcpy(c, b, len);
  c[10] ^= 0x55;
  CHECK_EQ(pkt_parse(c, len, 1, &ip), PKT_MALFORMED);
  CHECK_EQ(pkt_parse(c, len, 0, &ip), PKT_OK);
  /* bad version */
  memcpy(c, b, len);
  c[0] = 0x55;
  CHECK_EQ(pkt_parse(c, len, 0, &ip), PKT_MALFORMED);
  /* fragments */
  memcpy(c, b, len);
  c[6] = 0x20; /* MF, offset 0 */
  c[7] = 0;
  pkt_ipv4_fix_csum(c, 20);
  CHECK_EQ(pkt_parse(c, len, 1, &ip), PKT_OK);
  CHECK_EQ(ip.frag, 1);
  CHECK_EQ(ip.nonfirst, 0);
  c[6] = 0x00;
  c[7] = 0x10; /* offset 16*8 */
  pkt_ipv4_fix_csum(c, 20);
  CHECK_EQ(pkt_parse(c, len, 1, &ip), PKT_OK);
  CHECK_EQ(ip.frag, 1);
  CHECK_EQ(ip.nonfirst, 1);
  /* IPv6 */
  len = build_tcp(b, 1, 1, 0x10, 100, 0, 0);
  CHECK_EQ(pkt_parse(b, len, 1, &ip), PKT_OK);
  CHECK_EQ(ip.family, 6);
  CHECK_EQ(ip.len, len);
  CHECK_EQ(pkt_parse(b, 39, 1, &ip), PKT_MALFORMED);
  CHECK_EQ(pkt_parse(b, len - 1, 1, &ip), PKT_MALFORMED);
  memcpy(c, b, len);
  c[4] = c[5] = 0; /* jumbogram / zero payload length */
  CHECK_EQ(pkt_parse(c, len, 1, &ip), PKT_MALFORMED);
}

static void test_ttl(void) {
  uint8_t b[200];
  struct pkt_ip ip;
  for (int ttl = 2; ttl < 256; ttl += 37) {
    size_t len = build_tcp(b, 0, 1, 0x10, 10, 0, 0);
    b[8] = (uint8_t)ttl;
    pkt_ipv4_fix_csum(b, 20);
    CHECK_EQ(pkt_parse(b, len, 1, &ip), PKT_OK);
    CHECK_EQ(pkt_dec_ttl(&ip), PKT_OK);
    CHECK_EQ(b[8], ttl - 1);
    CHECK(ref_ipv4_ok(b));
    CHECK(pkt_ipv4_csum_ok(b, 20));
  }
  size_t len = build_tcp(b, 0, 1, 0x10, 10, 0, 0);
  b[8] = 1;
  pkt_ipv4_fix_csum(b, 20);
  CHECK_EQ(pkt_parse(b, len, 1, &ip), PKT_OK);
  CHECK_EQ(pkt_dec_ttl(&ip), PKT_TTL_EXPIRED);
  CHECK_EQ(b[8], 1);
  b[8] = 0;
  CHECK_EQ(pkt_dec_ttl(&ip), PKT_TTL_EXPIRED);
  len = build_tcp(b, 1, 1, 0x10, 10, 0, 0);
  CHECK_EQ(pkt_parse(b, len, 1, &ip), PKT_OK);
  CHECK_EQ(pkt_dec_ttl(&ip), PKT_OK);
  CHECK_EQ(b[7], 63);
  b[7] = 1;
  CHECK_EQ(pkt_dec_ttl(&ip), PKT_TTL_EXPIRED);
}

static uint8_t big[70000], arena[PKT_MAX_SEGS * PKT_MAX_HDR], flat[PKT_MAX_SEGS][2000];
static struct pkt_seg segs[PKT_MAX_SEGS];

/* Segments a super-packet and checks every segment; copies them flat into `flat`. */
static int segment_and_check(int v6, size_t payload, unsigned mss, uint8_t flags, int opts) {
  size_t len = build_tcp(big, v6, 0xfffff000u, flags, payload, 0, opts);
  struct pkt_ip ip;
  CHECK_EQ(pkt_parse(big, len, 1, &ip), PKT_OK);
  int n = pkt_tso_segment(&ip, mss, arena, segs, PKT_MAX_SEGS);
  int want = payload == 0 ? 1 : (int)((payload + mss - 1) / mss);
  CHECK_EQ(n, want);
  size_t off = 0;
  for (int i = 0; i < n; i++) {
    uint8_t *f = flat[i];
    memcpy(f, segs[i].hdr, segs[i].hdr_len);
    memcpy(f + segs[i].hdr_len, segs[i].payload, segs[i].payload_len);
    size_t flen = segs[i].hdr_len + segs[i].payload_len;
    struct pkt_ip sp;
    CHECK_EQ(pkt_parse(f, flen, 1, &sp), PKT_OK);
    CHECK_EQ(sp.len, flen);
    if (!v6) {
      CHECK(ref_ipv4_ok(f));
      CHECK_EQ(f[4] << 8 | f[5], (0x1234 + i) & 0xffff);
    }
    CHECK(ref_l4_ok(f));
    CHECK(pkt_l4_csum_ok(&sp));
    const uint8_t *t = f + (v6 ? 40 : 20);
    uint32_t seq = (uint32_t)t[4] << 24 | (uint32_t)t[5] << 16 | (uint32_t)t[6] << 8 | t[7];
    CHECK_EQ(seq, (uint32_t)(0xfffff000u + off)); /* wraps around 2^32 */
    uint8_t fl = t[13];
    if (i != n - 1) CHECK_EQ(fl & 0x09, 0); /* no FIN/PSH but on the last */
    if (i == n - 1) CHECK_EQ(fl & 0x09, flags & 0x09);
    if (i != 0) CHECK_EQ(fl & 0x80, 0); /* CWR only on the first */
    if (i == 0) CHECK_EQ(fl & 0x80, flags & 0x80);
    CHECK(segs[i].payload_len <= mss);
    if (i != n - 1) CHECK_EQ(segs[i].payload_len, mss);
    for (size_t k = 0; k < segs[i].payload_len; k++) {
      if (segs[i].payload[k] != tcp_payload(off + k)) {
        CHECK(0 && "payload bytes");
        break;
      }
    }
    off += segs[i].payload_len;
  }
  CHECK_EQ(off, payload);
  /* the partial variant finished while copying (the WireGuard engine's way): the same bytes */
  static uint8_t arena_p[PKT_MAX_SEGS * PKT_MAX_HDR], fp[2000];
  static struct pkt_seg segs_p[PKT_MAX_SEGS];
  CHECK_EQ(pkt_tso_segment_partial(&ip, mss, arena_p, segs_p, PKT_MAX_SEGS), n);
  for (int i = 0; i < n; i++) {
    CHECK_EQ(segs[i].csum_off, 0);
    CHECK_EQ(segs_p[i].csum_off, (v6 ? 40 : 20) + 16);
    CHECK_EQ(segs_p[i].hdr_len, segs[i].hdr_len);
    CHECK_EQ(segs_p[i].payload_len, segs[i].payload_len);
    memcpy(fp, segs_p[i].hdr, segs_p[i].hdr_len);
    uint64_t sum =
        pkt_csum_copy(fp + segs_p[i].hdr_len, segs_p[i].payload, segs_p[i].payload_len, 0);
    pkt_tso_finish_csum(fp, segs_p[i].csum_off, sum);
    CHECK(memcmp(fp, flat[i], segs[i].hdr_len + segs[i].payload_len) == 0);
  }
  return n;
}

/* pkt_csum_copy = memcpy + pkt_csum_partial, for every length around the vector steps and any
 * alignment of source and destination. */
static void test_csum_copy(void) {
  static uint8_t src[4200], dst[4200], ref[4200];
  for (size_t i = 0; i < sizeof(src); i++) src[i] = (uint8_t)rand();
  for (size_t len = 0; len < 1600; len += (len < 300 ? 1 : 37)) {
    for (unsigned a = 0; a < 4; a++) {
      unsigned so = (a * 7) % 33, doff = (a * 13) % 33;
      memset(dst, 0xa5, sizeof(dst));
      memcpy(ref, dst, sizeof(ref));
      memcpy(ref + doff, src + so, len);
      uint64_t seed = (uint64_t)a * 0x1234567;
      uint64_t got = pkt_csum_copy(dst + doff, src + so, len, seed);
      CHECK_EQ(pkt_csum_fold(got), pkt_csum_fold(pkt_csum_partial(src + so, len, seed)));
      CHECK(memcmp(dst, ref, sizeof(dst)) == 0);
    }
  }
}

static void test_tso(void) {
  segment_and_check(0, 10000, 1400, 0x10 | 0x08 | 0x01 | 0x80, 0);
  segment_and_check(0, 65535 - 40, 1432, 0x18, 0);
  segment_and_check(0, 1400, 1400, 0x18, 1);
  segment_and_check(0, 1, 1400, 0x18, 1);
  segment_and_check(0, 0, 1400, 0x11, 0);
  segment_and_check(1, 30001, 1380, 0x18, 1);
  /* errors: not TCP, fragment, bad TCP header length, too many segments */
  size_t len = build_tcp(big, 0, 1, 0x10, 5000, 0, 0);
  struct pkt_ip ip;
  CHECK_EQ(pkt_parse(big, len, 1, &ip), PKT_OK);
  CHECK_EQ(pkt_tso_segment(&ip, 100, arena, segs, 10), -PKT_UNSUPPORTED);
  CHECK_EQ(pkt_tso_segment(&ip, 0, arena, segs, PKT_MAX_SEGS), -PKT_MALFORMED);
  struct pkt_ip bad = ip;
  bad.proto = 17;
  CHECK_EQ(pkt_tso_segment(&bad, 1400, arena, segs, PKT_MAX_SEGS), -PKT_UNSUPPORTED);
  bad = ip;
  bad.frag = 1;
  CHECK_EQ(pkt_tso_segment(&bad, 1400, arena, segs, PKT_MAX_SEGS), -PKT_MALFORMED);
  big[20 + 12] = 0x40; /* data offset 4 words < 5 */
  CHECK_EQ(pkt_tso_segment(&ip, 1400, arena, segs, PKT_MAX_SEGS), -PKT_MALFORMED);
  big[20 + 12] = 0xf0; /* 60 bytes header, but packet truncated to 50 */
  struct pkt_ip small = ip;
  small.len = 50;
  CHECK_EQ(pkt_tso_segment(&small, 1400, arena, segs, PKT_MAX_SEGS), -PKT_MALFORMED);
}

/* Segments, coalesces the segments back into one super-packet, checks it, segments it again. */
static void test_gro_roundtrip(int v6, size_t payload, unsigned mss, int opts) {
  int n = segment_and_check(v6, payload, mss, 0x18, opts);
  struct pkt_ip ips[PKT_MAX_SEGS];
  static uint8_t orig[PKT_MAX_SEGS][2000];
  memcpy(orig, flat, sizeof(orig));
  for (int i = 0; i < n; i++) {
    size_t flen = (size_t)(flat[i][0] >> 4 == 4 ? (flat[i][2] << 8 | flat[i][3])
                                                : 40 + (flat[i][4] << 8 | flat[i][5]));
    CHECK_EQ(pkt_parse(flat[i], flen, 1, &ips[i]), PKT_OK);
  }
  struct pkt_gro g;
  pkt_gro_start(&g, &ips[0]);
  static uint8_t super[70000];
  size_t hdr = (v6 ? 40 : 20) + (opts ? 32 : 20);
  size_t pos = ips[0].len;
  for (int i = 1; i < n; i++) {
    const uint8_t *p;
    uint16_t pl;
    CHECK_EQ(pkt_gro_try(&g, &ips[i], &p, &pl), 1);
    memcpy(super + pos, p, pl);
    pos += pl;
  }
  CHECK_EQ(g.count, n);
  struct pkt_vnet_hdr vh;
  pkt_gro_finish(&g, &vh);
  memcpy(super, ips[0].p, ips[0].len); /* first packet (header rewritten in place) */
  CHECK_EQ(pos, hdr + payload);
  if (n == 1) {
    CHECK_EQ(vh.gso_type, PKT_VNET_GSO_NONE);
    CHECK_EQ(vh.flags, 0);
    return;
  }
  CHECK_EQ(vh.gso_type, v6 ? PKT_VNET_GSO_TCPV6 : PKT_VNET_GSO_TCPV4);
  CHECK_EQ(vh.flags, PKT_VNET_F_NEEDS_CSUM);
  CHECK_EQ(vh.gso_size, mss);
  CHECK_EQ(vh.hdr_len, hdr);
  CHECK_EQ(vh.csum_start, v6 ? 40 : 20);
  CHECK_EQ(vh.csum_offset, 16);
  struct pkt_ip sp;
  CHECK_EQ(pkt_parse(super, pos, 1, &sp), PKT_OK);
  CHECK_EQ(sp.len, pos);
  if (!v6) CHECK(ref_ipv4_ok(super));
  CHECK_EQ(super[hdr - (opts ? 32 : 20) + 13], 0x18); /* PSH of the last segment */
  /* What the kernel does with CHECKSUM_PARTIAL: finish the checksum, then it must verify. */
  CHECK_EQ(pkt_finish_csum(super, (uint32_t)pos, vh.csum_start, vh.csum_offset), PKT_OK);
  CHECK(ref_l4_ok(super));
  /* The round trip: segmenting the super-packet again gives the original segments. */
  static uint8_t arena2[PKT_MAX_SEGS * PKT_MAX_HDR];
  static struct pkt_seg segs2[PKT_MAX_SEGS];
  int n2 = pkt_tso_segment(&sp, vh.gso_size, arena2, segs2, PKT_MAX_SEGS);
  CHECK_EQ(n2, n);
  for (int i = 0; i < n2 && i < n; i++) {
    CHECK_EQ(segs2[i].payload_len + segs2[i].hdr_len, ips[i].len);
    CHECK(memcmp(segs2[i].payload, orig[i] + hdr, segs2[i].payload_len) == 0);
    /* IP and TCP headers equal (ids, lengths, seq, flags, checksums) */
    CHECK(memcmp(segs2[i].hdr, orig[i], hdr) == 0);
  }
}

static void test_gro_rules(void) {
  static uint8_t a[2000], b[2000];
  struct pkt_ip pa, pb;
  struct pkt_gro g;
  const uint8_t *p;
  uint16_t pl;
  size_t la = build_tcp(a, 0, 1000, 0x10, 1000, 0, 0);
#define RESET_B(seq, flags, n, opts) \
  pkt_parse(b, build_tcp(b, 0, seq, flags, n, 0, opts), 1, &pb)
  pkt_parse(a, la, 1, &pa);
  /* contiguous: merges */
  pkt_gro_start(&g, &pa);
  RESET_B(2000, 0x10, 1000, 0);
  CHECK_EQ(pkt_gro_try(&g, &pb, &p, &pl), 1);
  CHECK_EQ(pl, 1000);
  /* gap in sequence */
  pkt_gro_start(&g, &pa);
  RESET_B(2001, 0x10, 1000, 0);
  CHECK_EQ(pkt_gro_try(&g, &pb, &p, &pl), 0);
  /* larger than the first (mss) */
  pkt_gro_start(&g, &pa);
  RESET_B(2000, 0x10, 1001, 0);
  CHECK_EQ(pkt_gro_try(&g, &pb, &p, &pl), 0);
  /* shorter one closes the run */
  pkt_gro_start(&g, &pa);
  RESET_B(2000, 0x10, 500, 0);
  CHECK_EQ(pkt_gro_try(&g, &pb, &p, &pl), 1);
  RESET_B(2500, 0x10, 500, 0);
  CHECK_EQ(pkt_gro_try(&g, &pb, &p, &pl), 0);
  /* PSH closes the run */
  pkt_gro_start(&g, &pa);
  RESET_B(2000, 0x18, 1000, 0);
  CHECK_EQ(pkt_gro_try(&g, &pb, &p, &pl), 1);
  RESET_B(3000, 0x10, 1000, 0);
  CHECK_EQ(pkt_gro_try(&g, &pb, &p, &pl), 0);
  /* SYN, FIN, RST, URG, ECE/CWR never merge */
  const uint8_t bad_flags[] = {0x12, 0x11, 0x14, 0x30, 0x50, 0x90, 0x00};
  for (size_t i = 0; i < sizeof(bad_flags); i++) {
    pkt_gro_start(&g, &pa);
    RESET_B(2000, bad_flags[i], 1000, 0);
    CHECK_EQ(pkt_gro_try(&g, &pb, &p, &pl), 0);
  }
  /* pure ACK (no payload) */
  pkt_gro_start(&g, &pa);
  RESET_B(2000, 0x10, 0, 0);
  CHECK_EQ(pkt_gro_try(&g, &pb, &p, &pl), 0);
  /* different options */
  pkt_gro_start(&g, &pa);
  RESET_B(2000, 0x10, 1000, 1);
  CHECK_EQ(pkt_gro_try(&g, &pb, &p, &pl), 0);
  /* different ports, ack, addresses, ttl, tos */
  const int offs[] = {20 + 1, 20 + 9, 15, 19, 8, 1};
  for (size_t i = 0; i < sizeof(offs) / sizeof(offs[0]); i++) {
    pkt_gro_start(&g, &pa);
    RESET_B(2000, 0x10, 1000, 0);
    b[offs[i]] ^= 1;
    pkt_ipv4_fix_csum(b, 20);
    CHECK_EQ(pkt_gro_try(&g, &pb, &p, &pl), 0);
  }
  /* IP options (IHL 6) are not coalesced; fragments neither */
  pkt_gro_start(&g, &pa);
  RESET_B(2000, 0x10, 1000, 0);
  b[6] |= 0x20;
  pkt_parse(b, pb.len, 0, &pb);
  CHECK_EQ(pkt_gro_try(&g, &pb, &p, &pl), 0);
  /* a run never exceeds 65535 bytes */
  pkt_gro_start(&g, &pa);
  int merged = 0;
  for (uint32_t s = 2000; s < 200000; s += 1000) {
    RESET_B(s, 0x10, 1000, 0);
    if (!pkt_gro_try(&g, &pb, &p, &pl)) break;
    merged++;
  }
  CHECK_EQ(g.total <= 65535, 1);
  CHECK_EQ(merged, (65535 - 1040) / 1000);
  /* UDP or ICMP packets start a closed run of one */
  a[9] = 17;
  pkt_ipv4_fix_csum(a, 20);
  pkt_parse(a, la, 1, &pa);
  pkt_gro_start(&g, &pa);
  RESET_B(2000, 0x10, 1000, 0);
  CHECK_EQ(pkt_gro_try(&g, &pb, &p, &pl), 0);
  struct pkt_vnet_hdr vh;
  pkt_gro_finish(&g, &vh);
  CHECK_EQ(vh.gso_type, 0);
  CHECK_EQ(vh.flags, 0);
#undef RESET_B
}

/*
 * Coalesced runs are handed to the kernel as CHECKSUM_PARTIAL, which it never verifies: a segment
 * with a corrupted payload must never join one (it is refused with -PKT_BAD_CSUM, the run goes on),
 * and a corrupted first segment stays alone and is marked bad.
 */
static void test_gro_checksums(void) {
  for (int v6 = 0; v6 <= 1; v6++) {
    static uint8_t a[2000], b[2000], c[2000];
    struct pkt_ip pa, pb, pc;
    struct pkt_gro g;
    struct pkt_vnet_hdr vh;
    const uint8_t *p;
    uint16_t pl;
    size_t hl = v6 ? 40 : 20;
    size_t la = build_tcp(a, v6, 1000, 0x10, 1000, 0, 0);
    size_t lb = build_tcp(b, v6, 2000, 0x10, 1000, 1000, 0);
    size_t lc = build_tcp(c, v6, 2000, 0x10, 1000, 1000, 0);
    CHECK_EQ(pkt_parse(a, la, 1, &pa), PKT_OK);
    CHECK_EQ(pkt_parse(c, lc, 1, &pc), PKT_OK);
    /* positive control: intact segments merge */
    CHECK_EQ(pkt_parse(b, lb, 1, &pb), PKT_OK);
    pkt_gro_start(&g, &pa);
    CHECK_EQ(pkt_gro_try(&g, &pb, &p, &pl), 1);
    CHECK_EQ(g.verified, 1);
    /* one flipped payload bit in the second segment: refused, the run goes on with a good copy */
    b[hl + 20 + 500] ^= 0x04;
    pkt_gro_start(&g, &pa);
    CHECK_EQ(pkt_gro_try(&g, &pb, &p, &pl), -PKT_BAD_CSUM);
    CHECK_EQ(g.count, 1);
    CHECK_EQ(pkt_gro_try(&g, &pc, &p, &pl), 1);
    CHECK_EQ(g.count, 2);
    pkt_gro_finish(&g, &vh);
    CHECK_EQ(vh.flags, PKT_VNET_F_NEEDS_CSUM);
    /* a corrupted first segment: nothing joins it, it is marked bad and handed over untouched */
    pkt_parse(a, build_tcp(a, v6, 1000, 0x10, 1000, 0, 0), 1, &pa);
    a[hl + 20 + 7] ^= 0x80;
    uint8_t copy[2000];
    memcpy(copy, a, la);
    pkt_gro_start(&g, &pa);
    CHECK_EQ(pkt_gro_try(&g, &pc, &p, &pl), 0);
    CHECK_EQ(g.bad, 1);
    CHECK_EQ(g.count, 1);
    pkt_gro_finish(&g, &vh);
    CHECK_EQ(vh.flags, 0);
    CHECK_EQ(vh.gso_type, PKT_VNET_GSO_NONE);
    CHECK(memcmp(copy, a, la) == 0);
    /* a corrupted TCP header field (the window) is caught the same way */
    pkt_parse(b, build_tcp(b, v6, 2000, 0x10, 1000, 1000, 0), 1, &pb);
    pkt_parse(a, build_tcp(a, v6, 1000, 0x10, 1000, 0, 0), 1, &pa);
    b[hl + 15] ^= 0x10;
    pkt_gro_start(&g, &pa);
    CHECK_EQ(pkt_gro_try(&g, &pb, &p, &pl), -PKT_BAD_CSUM);
  }
}

static void test_finish_csum(void) {
  uint8_t b[200];
  size_t len = build_tcp(b, 0, 5, 0x18, 77, 0, 0);
  struct pkt_ip ip;
  pkt_parse(b, len, 1, &ip);
  /* turn it into CHECKSUM_PARTIAL: the field holds the pseudo-header sum */
  uint16_t c = pkt_csum_fold(pkt_pseudo_sum(&ip, (uint32_t)(len - 20)));
  memcpy(b + 20 + 16, &c, 2);
  CHECK(!ref_l4_ok(b));
  CHECK_EQ(pkt_finish_csum(b, (uint32_t)len, 20, 16), PKT_OK);
  CHECK(ref_l4_ok(b));
  CHECK_EQ(pkt_finish_csum(b, (uint32_t)len, (unsigned)len, 16), PKT_MALFORMED);
  CHECK_EQ(pkt_finish_csum(b, (uint32_t)len, 20, (unsigned)len), PKT_MALFORMED);
  CHECK_EQ(pkt_finish_csum(b, (uint32_t)len, (unsigned)len - 1, 0), PKT_MALFORMED);
}

static void test_icmp(void) {
  uint8_t b[2000], out[600];
  struct pkt_ip ip;
  size_t len = build_tcp(b, 0, 5, 0x02, 100, 0, 0);
  pkt_parse(b, len, 1, &ip);
  uint32_t src = htonl(0x0af40100); /* 10.244.1.0 */
  size_t n = pkt_icmp_unreach(&ip, src, out, sizeof(out));
  CHECK_EQ(n, 20 + 8 + 28);
  struct pkt_ip ic;
  CHECK_EQ(pkt_parse(out, n, 1, &ic), PKT_OK);
  CHECK_EQ(ic.proto, 1);
  CHECK(memcmp(out + 16, b + 12, 4) == 0); /* back to the sender */
  CHECK(memcmp(out + 12, &src, 4) == 0);
  CHECK_EQ(out[20], 3);
  CHECK_EQ(out[21], 0);
  CHECK(memcmp(out + 28, b, 28) == 0);
  CHECK(pkt_l4_csum_ok(&ic));
  CHECK_EQ(ref_fold(ref_sum(out + 20, n - 20, 0)), 0xffff);
  CHECK_EQ(pkt_icmp_unreach(&ip, src, out, 40), 0); /* no room */
  /* never about an ICMP error */
  uint8_t e[100];
  memcpy(e, out, n);
  CHECK_EQ(pkt_parse(e, n, 1, &ic), PKT_OK);
  CHECK_EQ(pkt_icmp_unreach(&ic, src, out, sizeof(out)), 0);
  /* but about an echo request */
  e[20] = 8;
  CHECK_EQ(pkt_parse(e, n, 1, &ic), PKT_OK);
  CHECK(pkt_icmp_unreach(&ic, src, out, sizeof(out)) > 0);
  /* never about a non-first fragment; about a first one yes */
  b[6] = 0;
  b[7] = 1;
  pkt_ipv4_fix_csum(b, 20);
  pkt_parse(b, len, 1, &ip);
  CHECK_EQ(pkt_icmp_unreach(&ip, src, out, sizeof(out)), 0);
  b[6] = 0x20;
  b[7] = 0;
  pkt_ipv4_fix_csum(b, 20);
  pkt_parse(b, len, 1, &ip);
  CHECK(pkt_icmp_unreach(&ip, src, out, sizeof(out)) > 0);
  /* never to an unspecified / multicast source or for a multicast destination */
  b[12] = 0, b[13] = 0, b[14] = 0, b[15] = 0;
  pkt_ipv4_fix_csum(b, 20);
  pkt_parse(b, len, 1, &ip);
  CHECK_EQ(pkt_icmp_unreach(&ip, src, out, sizeof(out)), 0);
  b[12] = 10, b[13] = 1, b[16] = 239;
  pkt_ipv4_fix_csum(b, 20);
  pkt_parse(b, len, 1, &ip);
  CHECK_EQ(pkt_icmp_unreach(&ip, src, out, sizeof(out)), 0);
  /* not for IPv6 */
  len = build_tcp(b, 1, 5, 0x02, 10, 0, 0);
  pkt_parse(b, len, 1, &ip);
  CHECK_EQ(pkt_icmp_unreach(&ip, src, out, sizeof(out)), 0);
}

static void test_vnet(void) {
  struct pkt_vnet_hdr h = {1, 4, 60, 1400, 40, 16}, r;
  uint8_t b[PKT_VNET_HDR_LEN];
  pkt_vnet_write(b, &h);
  pkt_vnet_read(b, &r);
  CHECK(memcmp(&h, &r, sizeof(h)) == 0);
  CHECK_EQ(b[0], 1);
  CHECK_EQ(b[1], 4);
}

int main(void) {
  srand(42);
  RUN(test_checksum);
  RUN(test_parse_malformed);
  RUN(test_ttl);
  RUN(test_tso);
  RUN(test_csum_copy);
  test_gro_roundtrip(0, 20000, 1400, 0);
  test_gro_roundtrip(0, 65535 - 60, 1432, 1);
  test_gro_roundtrip(1, 30000, 1380, 1);
  test_gro_roundtrip(0, 900, 1400, 0);
  RUN(test_gro_rules);
  RUN(test_gro_checksums);
  RUN(test_finish_csum);
  RUN(test_icmp);
  RUN(test_vnet);
  TL_DONE("test_pkt");
}
