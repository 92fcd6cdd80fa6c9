/* Packet logic of the forwarder (see pkt.h). No I/O, no allocation. */
#include "pkt.h"

#include <arpa/inet.h>
#include <string.h>

#define TCP_FIN 0x01
#define TCP_SYN 0x02
#define TCP_RST 0x04
#define TCP_PSH 0x08
#define TCP_ACK 0x10
#define TCP_URG 0x20
#define TCP_ECE 0x40
#define TCP_CWR 0x80

static inline uint16_t rd16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }
static inline uint32_t rd32(const uint8_t *p) {
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}
static inline void wr16(uint8_t *p, uint16_t v) {
  p[0] = (uint8_t)(v >> 8);
  p[1] = (uint8_t)v;
}
static inline void wr32(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)(v >> 24);
  p[1] = (uint8_t)(v >> 16);
  p[2] = (uint8_t)(v >> 8);
  p[3] = (uint8_t)v;
}

/* 32-bit words into a 64-bit accumulator: folds to the same 16-bit ones' complement sum. */
static uint64_t csum_scalar(const uint8_t *p, size_t len, uint64_t sum) {
  while (len >= 32) {
    uint32_t w[8];
    memcpy(w, p, 32);
    sum += (uint64_t)w[0] + w[1] + w[2] + w[3] + w[4] + w[5] + w[6] + w[7];
    p += 32;
    len -= 32;
  }
  while (len >= 4) {
    uint32_t w;
    memcpy(&w, p, 4);
    sum += w;
    p += 4;
    len -= 4;
  }
  if (len >= 2) {
    uint16_t w;
    memcpy(&w, p, 2);
    sum += w;
    p += 2;
    len -= 2;
  }
  if (len) {
    uint16_t w = 0;
    memcpy(&w, p, 1); /* odd tail padded with a zero byte, in memory order */
    sum += w;
  }
  return sum;
}

#if defined(__x86_64__)
#include <immintrin.h>
/*
 * The same sum, 64 bytes per step with AVX2: the 32-bit words are widened into 64-bit lanes (no
 * carries lost: a lane gains < 2^33 per step, a 64 KiB packet has 1024 steps). Checksums of every
 * forwarded byte (TSO segments out, coalesced segments in) were the forwarder's largest user-space
 * cost; this is ~3x the scalar loop.
 */
__attribute__((target("avx2"))) static uint64_t csum_avx2(const uint8_t *p, size_t len,
                                                           uint64_t sum) {
  if (len < 128) return csum_scalar(p, len, sum);
  const __m256i zero = _mm256_setzero_si256();
  __m256i acc0 = zero, acc1 = zero;
  while (len >= 64) {
    __m256i a = _mm256_loadu_si256((const __m256i *)(const void *)p);
    __m256i b = _mm256_loadu_si256((const __m256i *)(const void *)(p + 32));
    acc0 = _mm256_add_epi64(acc0, _mm256_unpacklo_epi32(a, zero));
    acc1 = _mm256_add_epi64(acc1, _mm256_unpackhi_epi32(a, zero));
    acc0 = _mm256_add_epi64(acc0, _mm256_unpacklo_epi32(b, zero));
    acc1 = _mm256_add_epi64(acc1, _mm256_unpackhi_epi32(b, zero));
    p += 64;
    len -= 64;
  }
  /* the tail's whole 32-bit words in at most two masked loads (lanes past the end are not read) */
  while (len >= 4) {
    size_t words = len >= 32 ? 8 : len / 4;
    __m256i mask = _mm256_cmpgt_epi32(_mm256_set1_epi32((int)words),
                                      _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
    __m256i a = _mm256_maskload_epi32((const int *)(const void *)p, mask);
    acc0 = _mm256_add_epi64(acc0, _mm256_unpacklo_epi32(a, zero));
    acc1 = _mm256_add_epi64(acc1, _mm256_unpackhi_epi32(a, zero));
    p += words * 4;
    len -= words * 4;
  }
  uint64_t lane[4];
  _mm256_storeu_si256((__m256i *)(void *)lane, _mm256_add_epi64(acc0, acc1));
  _mm256_zeroupper(); /* the callers are SSE code */
  /* fold each lane to 32 bits first so that the sum below cannot overflow */
  for (int i = 0; i < 4; i++) sum += (lane[i] & 0xffffffffu) + (lane[i] >> 32);
  return len ? csum_scalar(p, len, sum) : sum; /* the last 0-3 bytes */
}

static int use_avx2 = -1;
#endif

uint64_t pkt_csum_partial(const void *data, size_t len, uint64_t sum) {
  const uint8_t *p = (const uint8_t *)data;
#if defined(__x86_64__)
  int avx2 = __atomic_load_n(&use_avx2, __ATOMIC_RELAXED);
  if (avx2 < 0) {
    __builtin_cpu_init();
    avx2 = __builtin_cpu_supports("avx2") ? 1 : 0;
    __atomic_store_n(&use_avx2, avx2, __ATOMIC_RELAXED);
  }
  if (avx2) return csum_avx2(p, len, sum);
#endif
  return csum_scalar(p, len, sum);
}

uint16_t pkt_csum_fold(uint64_t sum) {
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return (uint16_t)sum;
}

#if defined(__x86_64__)
/* csum_avx2 with a store of every 64 bytes it loads. */
__attribute__((target("avx2"))) static uint64_t csum_copy_avx2(uint8_t *d, const uint8_t *p,
                                                                size_t len, uint64_t sum) {
  const __m256i zero = _mm256_setzero_si256();
  __m256i acc0 = zero, acc1 = zero;
  while (len >= 64) {
    __m256i a = _mm256_loadu_si256((const __m256i *)(const void *)p);
    __m256i b = _mm256_loadu_si256((const __m256i *)(const void *)(p + 32));
    _mm256_storeu_si256((__m256i *)(void *)d, a);
    _mm256_storeu_si256((__m256i *)(void *)(d + 32), b);
    acc0 = _mm256_add_epi64(acc0, _mm256_unpacklo_epi32(a, zero));
    acc1 = _mm256_add_epi64(acc1, _mm256_unpackhi_epi32(a, zero));
    acc0 = _mm256_add_epi64(acc0, _mm256_unpacklo_epi32(b, zero));
    acc1 = _mm256_add_epi64(acc1, _mm256_unpackhi_epi32(b, zero));
    p += 64;
    d += 64;
    len -= 64;
  }
  if (len >= 32) {
    __m256i a = _mm256_loadu_si256((const __m256i *)(const void *)p);
    _mm256_storeu_si256((__m256i *)(void *)d, a);
    acc0 = _mm256_add_epi64(acc0, _mm256_unpacklo_epi32(a, zero));
    acc1 = _mm256_add_epi64(acc1, _mm256_unpackhi_epi32(a, zero));
    p += 32;
    d += 32;
    len -= 32;
  }
  uint64_t lane[4];
  _mm256_storeu_si256((__m256i *)(void *)lane, _mm256_add_epi64(acc0, acc1));
  _mm256_zeroupper(); /* memcpy and the scalar tail below are SSE code */
  for (int i = 0; i < 4; i++) sum += (lane[i] & 0xffffffffu) + (lane[i] >> 32);
  memcpy(d, p, len);
  return csum_scalar(p, len, sum);
}
#endif

uint64_t pkt_csum_copy(void *dst, const void *src, size_t len, uint64_t sum) {
#if defined(__x86_64__)
  if (len >= 128 && __atomic_load_n(&use_avx2, __ATOMIC_RELAXED) == 1) {
    return csum_copy_avx2((uint8_t *)dst, (const uint8_t *)src, len, sum);
  }
#endif
  memcpy(dst, src, len);
  return pkt_csum_partial(dst, len, sum); /* also decides use_avx2 the first time */
}

static inline uint16_t native16(uint16_t host_value) { return htons(host_value); }

uint64_t pkt_pseudo_sum(const struct pkt_ip *ip, uint32_t l4len) {
  uint64_t sum;
  if (ip->family == 4) {
    uint32_t s, d; /* two words each: no call per address for every segment's checksum */
    memcpy(&s, ip->src, 4);
    memcpy(&d, ip->dst, 4);
    sum = (uint64_t)s + d;
  } else {
    sum = pkt_csum_partial(ip->src, 16, 0);
    sum = pkt_csum_partial(ip->dst, 16, sum);
    sum += native16((uint16_t)(l4len >> 16));
  }
  sum += native16(ip->proto);
  sum += native16((uint16_t)l4len);
  return sum;
}

void pkt_ipv4_fix_csum(uint8_t *iph, unsigned hlen) {
  iph[10] = iph[11] = 0;
  uint16_t c = (uint16_t)~pkt_csum_fold(pkt_csum_partial(iph, hlen, 0));
  memcpy(iph + 10, &c, 2);
}

int pkt_ipv4_csum_ok(const uint8_t *iph, unsigned hlen) {
  return pkt_csum_fold(pkt_csum_partial(iph, hlen, 0)) == 0xffff;
}

int pkt_l4_csum_ok(const struct pkt_ip *ip) {
  uint32_t l4len = ip->len - ip->hlen;
  uint64_t sum = pkt_csum_partial(ip->p + ip->hlen, l4len, 0);
  if (!(ip->family == 4 && ip->proto == 1)) sum += pkt_pseudo_sum(ip, l4len);
  return pkt_csum_fold(sum) == 0xffff;
}

int pkt_parse(uint8_t *buf, size_t len, int check_csum, struct pkt_ip *o) {
  memset(o, 0, sizeof(*o));
  if (len < 1) return PKT_MALFORMED;
  unsigned version = buf[0] >> 4;
  if (version == 4) {
    if (len < 20) return PKT_MALFORMED;
    unsigned ihl = (buf[0] & 0x0f) * 4u;
    if (ihl < 20 || ihl > len) return PKT_MALFORMED;
    unsigned tot = rd16(buf + 2);
    if (tot < ihl || tot > len) return PKT_MALFORMED;
    if (check_csum && !pkt_ipv4_csum_ok(buf, ihl)) return PKT_MALFORMED;
    uint16_t frag_off = rd16(buf + 6);
    o->p = buf;
    o->len = tot;
    o->family = 4;
    o->proto = buf[9];
    o->hlen = (uint16_t)ihl;
    o->frag = (frag_off & 0x3fff) != 0;
    o->nonfirst = (frag_off & 0x1fff) != 0;
    o->src = buf + 12;
    o->dst = buf + 16;
    return PKT_OK;
  }
  if (version == 6) {
    if (len < 40) return PKT_MALFORMED;
    unsigned plen = rd16(buf + 4);
    if (plen == 0 || 40u + plen > len) return PKT_MALFORMED;
    o->p = buf;
    o->len = 40u + plen;
    o->family = 6;
    o->proto = buf[6];
    o->hlen = 40;
    o->src = buf + 8;
    o->dst = buf + 24;
    return PKT_OK;
  }
  return PKT_MALFORMED;
}

/* RFC 1624 eqn. 3: HC' = ~(~HC + ~m + m'), all in the same (native) word order. */
static void csum_replace16(uint8_t *check, const uint8_t *old_word, const uint8_t *new_word) {
  uint16_t hc, m, m2;
  memcpy(&hc, check, 2);
  memcpy(&m, old_word, 2);
  memcpy(&m2, new_word, 2);
  uint64_t sum = (uint16_t)~hc;
  sum += (uint16_t)~m;
  sum += m2;
  uint16_t out = (uint16_t)~pkt_csum_fold(sum);
  memcpy(check, &out, 2);
}

int pkt_dec_ttl(struct pkt_ip *ip) {
  if (ip->family == 4) {
    uint8_t *p = ip->p;
    if (p[8] <= 1) return PKT_TTL_EXPIRED;
    uint8_t old[2] = {p[8], p[9]};
    p[8]--;
    csum_replace16(p + 10, old, p + 8);
    return PKT_OK;
  }
  if (ip->p[7] <= 1) return PKT_TTL_EXPIRED;
  ip->p[7]--;
  return PKT_OK;
}

void pkt_vnet_read(const uint8_t *b, struct pkt_vnet_hdr *h) {
  h->flags = b[0];
  h->gso_type = b[1];
  memcpy(&h->hdr_len, b + 2, 2);
  memcpy(&h->gso_size, b + 4, 2);
  memcpy(&h->csum_start, b + 6, 2);
  memcpy(&h->csum_offset, b + 8, 2);
}

void pkt_vnet_write(uint8_t *b, const struct pkt_vnet_hdr *h) {
  b[0] = h->flags;
  b[1] = h->gso_type;
  memcpy(b + 2, &h->hdr_len, 2);
  memcpy(b + 4, &h->gso_size, 2);
  memcpy(b + 6, &h->csum_start, 2);
  memcpy(b + 8, &h->csum_offset, 2);
}

int pkt_finish_csum(uint8_t *pkt, uint32_t len, unsigned csum_start, unsigned csum_offset) {
  if (csum_start >= len || csum_offset > len - csum_start || len - csum_start - csum_offset < 2) {
    return PKT_MALFORMED;
  }
  /* The field holds the pseudo-header sum (CHECKSUM_PARTIAL): summing over it completes the sum. */
  uint16_t c = (uint16_t)~pkt_csum_fold(pkt_csum_partial(pkt + csum_start, len - csum_start, 0));
  if (c == 0 && csum_offset == 6) c = 0xffff; /* UDP: a zero result is sent as all ones */
  memcpy(pkt + csum_start + csum_offset, &c, 2);
  return PKT_OK;
}

/* TCP header length of a parsed TCP packet, or 0 when it does not fit. */
static unsigned tcp_hlen(const struct pkt_ip *ip) {
  if (ip->proto != 6 || ip->len < ip->hlen + 20u) return 0;
  unsigned thlen = (ip->p[ip->hlen + 12] >> 4) * 4u;
  if (thlen < 20 || ip->hlen + thlen > ip->len) return 0;
  return thlen;
}

static int tso_segment(const struct pkt_ip *ip, unsigned mss, uint8_t *arena, struct pkt_seg *segs,
                       int max_segs, int partial) {
  if (ip->proto != 6) return -PKT_UNSUPPORTED; /* also IPv6 with extension headers */
  if (ip->family == 4 && ip->frag) return -PKT_MALFORMED;
  unsigned thlen = tcp_hlen(ip);
  if (thlen == 0 || mss == 0) return -PKT_MALFORMED;
  unsigned hdr = ip->hlen + thlen;
  if (hdr > PKT_MAX_HDR) return -PKT_UNSUPPORTED;
  unsigned payload = ip->len - hdr;
  unsigned n = payload == 0 ? 1 : (payload + mss - 1) / mss;
  if (n > (unsigned)max_segs) return -PKT_UNSUPPORTED;
  const uint8_t *th0 = ip->p + ip->hlen;
  uint32_t seq0 = rd32(th0 + 4);
  uint8_t flags = th0[13];
  uint16_t id0 = rd16(ip->p + 4);
  for (unsigned i = 0; i < n; i++) {
    uint8_t *h = arena + (size_t)i * PKT_MAX_HDR;
    unsigned off = i * mss;
    unsigned plen = payload - off < mss ? payload - off : mss;
    if (payload == 0) plen = 0;
    memcpy(h, ip->p, hdr);
    unsigned iplen = hdr + plen;
    if (ip->family == 4) {
      wr16(h + 2, (uint16_t)iplen);
      wr16(h + 4, (uint16_t)(id0 + i));
      pkt_ipv4_fix_csum(h, ip->hlen);
    } else {
      wr16(h + 4, (uint16_t)(iplen - 40));
    }
    uint8_t *th = h + ip->hlen;
    wr32(th + 4, seq0 + off);
    uint8_t f = flags;
    if (i != n - 1) f &= (uint8_t)~(TCP_FIN | TCP_PSH);
    if (i != 0) f &= (uint8_t)~TCP_CWR;
    th[13] = f;
    th[16] = th[17] = 0;
    struct pkt_ip seg = *ip;
    seg.src = h + (ip->src - ip->p);
    seg.dst = h + (ip->dst - ip->p);
    uint64_t sum = pkt_pseudo_sum(&seg, thlen + plen);
    sum = pkt_csum_partial(th, thlen, sum);
    if (!partial) sum = pkt_csum_partial(ip->p + hdr + off, plen, sum);
    uint16_t c = partial ? pkt_csum_fold(sum) : (uint16_t)~pkt_csum_fold(sum);
    memcpy(th + 16, &c, 2);
    segs[i].hdr = h;
    segs[i].hdr_len = (uint16_t)hdr;
    segs[i].payload = ip->p + hdr + off;
    segs[i].payload_len = (uint16_t)plen;
    segs[i].csum_off = partial ? (uint16_t)(ip->hlen + 16) : 0;
  }
  return (int)n;
}

int pkt_tso_segment(const struct pkt_ip *ip, unsigned mss, uint8_t *arena, struct pkt_seg *segs,
                    int max_segs) {
  return tso_segment(ip, mss, arena, segs, max_segs, 0);
}

int pkt_tso_segment_partial(const struct pkt_ip *ip, unsigned mss, uint8_t *arena,
                            struct pkt_seg *segs, int max_segs) {
  return tso_segment(ip, mss, arena, segs, max_segs, 1);
}

void pkt_tso_finish_csum(uint8_t *hdr, uint16_t csum_off, uint64_t payload_sum) {
  uint16_t c;
  memcpy(&c, hdr + csum_off, 2);
  c = (uint16_t)~pkt_csum_fold(payload_sum + c);
  memcpy(hdr + csum_off, &c, 2);
}

/* 1 if n bytes (a multiple of 4: TCP options) are equal; inline, where a call to memcmp for a few
 * bytes of every received segment cost ~1 % of the receiving loop's CPU in perf. */
static inline int words_equal(const uint8_t *a, const uint8_t *b, unsigned n) {
  uint32_t diff = 0;
  for (unsigned i = 0; i + 4 <= n; i += 4) {
    uint32_t x, y;
    memcpy(&x, a + i, 4);
    memcpy(&y, b + i, 4);
    diff |= x ^ y;
  }
  return diff == 0;
}

/* A TCP segment that may start or join a coalesced run: plain header, ACK (maybe PSH), data. */
static unsigned gro_candidate(const struct pkt_ip *ip) {
  if (ip->family == 4 && (ip->hlen != 20 || ip->frag)) return 0;
  unsigned thlen = tcp_hlen(ip);
  if (thlen == 0) return 0;
  uint8_t f = ip->p[ip->hlen + 13];
  if ((f & (uint8_t) ~(TCP_ACK | TCP_PSH)) != 0 || !(f & TCP_ACK)) return 0;
  if (ip->len - ip->hlen - thlen == 0) return 0;
  return thlen;
}

void pkt_gro_start(struct pkt_gro *g, const struct pkt_ip *first) {
  memset(g, 0, sizeof(*g));
  g->first = *first;
  g->count = 1;
  g->total = first->len;
  unsigned thlen = gro_candidate(first);
  if (!thlen) {
    g->closed = 1;
    return;
  }
  const uint8_t *th = first->p + first->hlen;
  g->tcp = 1;
  g->thlen = (uint16_t)thlen;
  g->mss = (uint16_t)(first->len - first->hlen - thlen);
  g->next_seq = rd32(th + 4) + g->mss;
  g->psh = (th[13] & TCP_PSH) != 0;
  g->closed = g->psh;
}

int pkt_gro_try(struct pkt_gro *g, const struct pkt_ip *n, const uint8_t **payload,
                uint16_t *plen) {
  if (!g->tcp || g->closed || g->count >= PKT_MAX_SEGS) return 0;
  const struct pkt_ip *f = &g->first;
  if (n->family != f->family) return 0;
  unsigned thlen = gro_candidate(n);
  if (thlen != g->thlen) return 0;
  const uint8_t *a = f->p, *b = n->p;
  if (f->family == 4) {
    /* tos, DF, ttl, protocol, addresses */
    if (a[1] != b[1] || (a[6] & 0x40) != (b[6] & 0x40) || a[8] != b[8]) return 0;
    if (memcmp(a + 12, b + 12, 8) != 0) return 0;
  } else {
    if (memcmp(a, b, 4) != 0 || a[7] != b[7] || memcmp(a + 8, b + 8, 32) != 0) return 0;
  }
  const uint8_t *ta = a + f->hlen, *tb = b + n->hlen;
  if (memcmp(ta, tb, 4) != 0 || memcmp(ta + 8, tb + 8, 4) != 0) return 0; /* ports, ack */
  if (thlen > 20 && !words_equal(ta + 20, tb + 20, thlen - 20)) return 0; /* options */
  if (rd32(tb + 4) != g->next_seq) return 0;
  unsigned len = n->len - n->hlen - thlen;
  if (len > g->mss || g->total + len > 65535) return 0;
  /* Coalesced data is handed over as CHECKSUM_PARTIAL, which the kernel never verifies again. */
  if (!g->trusted) {
    if (!g->verified) {
      if (!pkt_l4_csum_ok(f)) {
        g->bad = 1;
        g->closed = 1;
        return 0;
      }
      g->verified = 1;
    }
    if (!pkt_l4_csum_ok(n)) return -PKT_BAD_CSUM;
  }
  g->next_seq += len;
  g->total += len;
  g->count++;
  g->psh = (tb[13] & TCP_PSH) != 0;
  if (len < g->mss || g->psh) g->closed = 1;
  *payload = tb + thlen;
  *plen = (uint16_t)len;
  return 1;
}

void pkt_gro_finish(struct pkt_gro *g, struct pkt_vnet_hdr *vh) {
  memset(vh, 0, sizeof(*vh));
  if (g->count < 2) return;
  uint8_t *p = g->first.p;
  if (g->first.family == 4) {
    wr16(p + 2, (uint16_t)g->total);
    pkt_ipv4_fix_csum(p, g->first.hlen);
  } else {
    wr16(p + 4, (uint16_t)(g->total - 40));
  }
  uint8_t *th = p + g->first.hlen;
  if (g->psh) th[13] |= TCP_PSH;
  /* CHECKSUM_PARTIAL: the field carries the folded pseudo-header sum, not complemented. */
  uint16_t c = pkt_csum_fold(pkt_pseudo_sum(&g->first, g->total - g->first.hlen));
  memcpy(th + 16, &c, 2);
  g->first.len = g->total;
  vh->flags = PKT_VNET_F_NEEDS_CSUM;
  vh->gso_type = g->first.family == 4 ? PKT_VNET_GSO_TCPV4 : PKT_VNET_GSO_TCPV6;
  vh->hdr_len = (uint16_t)(g->first.hlen + g->thlen);
  vh->gso_size = g->mss;
  vh->csum_start = g->first.hlen;
  vh->csum_offset = 16;
}

size_t pkt_icmp_unreach(const struct pkt_ip *o, uint32_t src, uint8_t *out, size_t cap) {
  if (o->family != 4 || o->nonfirst) return 0;
  if (o->proto == 1) {
    if (o->len < o->hlen + 1u) return 0;
    uint8_t type = o->p[o->hlen];
    if (type == 3 || type == 4 || type == 5 || type == 11 || type == 12) return 0;
  }
  const uint8_t *s = o->src, *d = o->dst;
  if (rd32(s) == 0 || s[0] >= 224 || s[0] == 127) return 0;
  if (rd32(d) == 0 || d[0] >= 224) return 0; /* unspecified, multicast, broadcast */
  size_t quote = o->len < o->hlen + 8u ? o->len : o->hlen + 8u;
  size_t total = 20 + 8 + quote;
  if (total > cap) return 0;
  memset(out, 0, 28);
  out[0] = 0x45;
  out[1] = 0xc0;
  wr16(out + 2, (uint16_t)total);
  out[8] = 64;
  out[9] = 1;
  memcpy(out + 12, &src, 4);
  memcpy(out + 16, s, 4);
  pkt_ipv4_fix_csum(out, 20);
  out[20] = 3;
  out[21] = 0;
  memcpy(out + 28, o->p, quote);
  uint16_t c = (uint16_t)~pkt_csum_fold(pkt_csum_partial(out + 20, 8 + quote, 0));
  memcpy(out + 22, &c, 2);
  return total;
}
