/*
 * Fuzz target of the forwarder's packet paths on raw bytes, in libFuzzer form
 * (LLVMFuzzerTestOneInput). Byte 0 picks the path:
 *   even: receive — a UDP_GRO buffer (segment size from bytes 1-2) split into datagrams, each parsed,
 *         TTL-decremented and coalesced exactly as fwd_loop.c's rx path does;
 *   odd:  send — a virtio-net header (bytes 1-10) and a TUN packet: checksum completion or TSO
 *         segmentation, plus ICMP unreachable for the packet.
 * `make fuzz` runs it under libFuzzer when clang is installed (FUZZ_SECONDS, default 30); without
 * clang, and in `make check`, the driver below feeds it deterministic random inputs.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pkt.h"

static uint8_t arena[PKT_MAX_SEGS * PKT_MAX_HDR];
static struct pkt_seg segs[PKT_MAX_SEGS];

static void rx_path(uint8_t *buf, size_t len, size_t seg) {
  struct pkt_gro g;
  int active = 0;
  size_t total = 0;
  for (size_t off = 0; off < len; off += seg) {
    size_t l = len - off < seg ? len - off : seg;
    struct pkt_ip ip;
    if (pkt_parse(buf + off, l, 1, &ip) != PKT_OK || pkt_dec_ttl(&ip) != PKT_OK) continue;
    const uint8_t *pl;
    uint16_t plen;
    int r = active ? pkt_gro_try(&g, &ip, &pl, &plen) : 0;
    if (r > 0) {
      if (pl < buf || pl + plen > buf + len) abort();
      if (!g.verified || g.bad) abort(); /* nothing joins an unverified or bad first packet */
      total += plen;
      continue;
    }
    if (r < 0) {
      if (r != -PKT_BAD_CSUM || pkt_l4_csum_ok(&ip)) abort();
      continue; /* dropped; the run goes on */
    }
    if (active) {
      struct pkt_vnet_hdr vh;
      pkt_gro_finish(&g, &vh);
      if (g.total > 65535 || g.total != total) abort();
      if (g.bad && g.count != 1) abort();
    }
    pkt_gro_start(&g, &ip);
    total = ip.len;
    active = 1;
  }
  if (active) {
    struct pkt_vnet_hdr vh;
    pkt_gro_finish(&g, &vh);
    if (g.total > 65535 || g.total != total) abort();
  }
}

static void tx_path(uint8_t *buf, size_t len) {
  if (len < PKT_VNET_HDR_LEN) return;
  struct pkt_vnet_hdr vh;
  pkt_vnet_read(buf, &vh);
  struct pkt_ip ip;
  if (pkt_parse(buf + PKT_VNET_HDR_LEN, len - PKT_VNET_HDR_LEN, 0, &ip) != PKT_OK) return;
  uint8_t icmp[600];
  if (pkt_icmp_unreach(&ip, 0x0100000a, icmp, sizeof(icmp)) > sizeof(icmp)) abort();
  if (pkt_dec_ttl(&ip) != PKT_OK) return;
  int gso = vh.gso_type & ~PKT_VNET_GSO_ECN;
  if (gso == PKT_VNET_GSO_NONE) {
    if (vh.flags & PKT_VNET_F_NEEDS_CSUM) pkt_finish_csum(ip.p, ip.len, vh.csum_start, vh.csum_offset);
    return;
  }
  int n = pkt_tso_segment(&ip, vh.gso_size, arena, segs, PKT_MAX_SEGS);
  size_t sum = 0;
  for (int i = 0; i < n; i++) {
    if (segs[i].payload < ip.p || segs[i].payload + segs[i].payload_len > ip.p + ip.len) abort();
    sum += segs[i].payload_len;
  }
  if (n > 0 && sum + segs[0].hdr_len != ip.len) abort();
  /* the partial variant finished while copying (the WireGuard engine's TX) yields the same bytes */
  static uint8_t arena_p[PKT_MAX_SEGS * PKT_MAX_HDR];
  static uint8_t a[PKT_MAX_HDR + 65536], b[PKT_MAX_HDR + 65536];
  static struct pkt_seg segs_p[PKT_MAX_SEGS];
  if (pkt_tso_segment_partial(&ip, vh.gso_size, arena_p, segs_p, PKT_MAX_SEGS) != n) abort();
  for (int i = 0; i < n; i++) {
    memcpy(a, segs[i].hdr, segs[i].hdr_len);
    memcpy(a + segs[i].hdr_len, segs[i].payload, segs[i].payload_len);
    memcpy(b, segs_p[i].hdr, segs_p[i].hdr_len);
    uint64_t s = pkt_csum_copy(b + segs_p[i].hdr_len, segs_p[i].payload, segs_p[i].payload_len, 0);
    pkt_tso_finish_csum(b, segs_p[i].csum_off, s);
    if (memcmp(a, b, (size_t)segs[i].hdr_len + segs[i].payload_len) != 0) abort();
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 3) return 0;
  /* an exact-size copy: AddressSanitizer sees any access past the input */
  size_t len = size - 3;
  uint8_t *buf = malloc(len ? len : 1);
  memcpy(buf, data + 3, len);
  if ((data[0] & 1) == 0) {
    size_t seg = (size_t)(data[1] | data[2] << 8);
    rx_path(buf, len, seg == 0 ? (len ? len : 1) : seg);
  } else {
    tx_path(buf, len);
  }
  free(buf);
  return 0;
}

#ifndef WEFT_LIBFUZZER
/* Standalone driver: random inputs, half of them starting from a valid TCP/IPv4 packet. */
#include <stdio.h>

static uint64_t rng = 88172645463325252ull;
static uint32_t rnd(void) {
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return (uint32_t)rng;
}

int main(int argc, char **argv) {
  long iters = argc > 1 ? atol(argv[1]) : 100000;
  static uint8_t in[4096];
  for (long it = 0; it < iters; it++) {
    size_t size = 3 + rnd() % (sizeof(in) - 3);
    for (size_t i = 0; i < size; i++) in[i] = (uint8_t)rnd();
    if (rnd() & 1) {
      /* plausible start: IPv4/TCP (after the vnet header on the send path) */
      size_t o = (in[0] & 1) ? 3 + PKT_VNET_HDR_LEN : 3;
      if (size > o + 40) {
        size_t l = size - o;
        in[o] = 0x45;
        in[o + 2] = (uint8_t)(l >> 8);
        in[o + 3] = (uint8_t)l;
        in[o + 9] = 6;
        in[o + 8] = 64;
        in[o + 32] = 0x50;
        pkt_ipv4_fix_csum(in + o, 20);
      }
      if (!(in[0] & 1)) {
        in[1] = (uint8_t)(size - 3);
        in[2] = (uint8_t)((size - 3) >> 8);
      }
    }
    LLVMFuzzerTestOneInput(in, size);
  }
  printf("fuzz_paths: %ld inputs, no crash\n", iters);
  return 0;
}
#endif
