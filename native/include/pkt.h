/*
 * Packet logic of the UDP forwarder, pure C without I/O (unit-tested in native/test): validation of
 * IPv4/IPv6 packets, Internet checksums, TTL/hop-limit decrement, TSO super-packet segmentation (TUN ->
 * UDP), coalescing of TCP segments into a super-packet (UDP -> TUN) and ICMP net-unreachable.
 *
 * Buffer ownership: no function here allocates or frees. Functions that modify a packet say so; all
 * pointers they fill (segment headers, payload pointers) point into buffers the caller owns and must
 * keep alive until the result is used.
 */
#ifndef WEFT_PKT_H
#define WEFT_PKT_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Largest IP + TCP header we handle (60 + 60) rounded up: the per-segment header slot size. */
#define PKT_MAX_HDR 128
/* virtio-net header as TUN with IFF_VNET_HDR reads/writes it (host byte order, 10 bytes). */
#define PKT_VNET_HDR_LEN 10
/* Upper bound on segments produced from one super-packet (64 KiB / 536-byte MSS, rounded up). */
#define PKT_MAX_SEGS 128

#define PKT_VNET_F_NEEDS_CSUM 1
#define PKT_VNET_F_DATA_VALID 2
#define PKT_VNET_GSO_NONE 0
#define PKT_VNET_GSO_TCPV4 1
#define PKT_VNET_GSO_UDP 3
#define PKT_VNET_GSO_TCPV6 4
#define PKT_VNET_GSO_ECN 0x80

struct pkt_vnet_hdr {
  uint8_t flags;
  uint8_t gso_type;
  uint16_t hdr_len;
  uint16_t gso_size;
  uint16_t csum_start;
  uint16_t csum_offset;
};

/* Why a packet was not forwarded. PKT_OK (0) means it was. */
enum pkt_verdict {
  PKT_OK = 0,
  PKT_MALFORMED = 1,      /* truncated, bad version/IHL/lengths, bad IPv4 header checksum */
  PKT_TTL_EXPIRED = 2,    /* TTL / hop limit would reach 0 */
  PKT_UNSUPPORTED = 3,    /* a GSO type or header layout the forwarder does not segment */
  PKT_BAD_CSUM = 4,       /* a TCP segment to be coalesced failed its checksum */
};

/* A parsed IP packet (pointers into the caller's buffer). */
struct pkt_ip {
  uint8_t *p;        /* start of the IP header */
  uint32_t len;      /* total length from the IP header (trailing bytes beyond it are ignored) */
  uint8_t family;    /* 4 or 6 */
  uint8_t proto;     /* next protocol (IPv6: the fixed header's next header) */
  uint16_t hlen;     /* IP header length (IPv6: 40) */
  uint8_t frag;      /* IPv4: 1 if MF set or offset != 0 */
  uint8_t nonfirst;  /* IPv4: 1 if fragment offset != 0 */
  const uint8_t *src;
  const uint8_t *dst;
};

/* --- checksums (RFC 1071, computed over native 16-bit words; results stored with memcpy) --- */
uint64_t pkt_csum_partial(const void *data, size_t len, uint64_t sum);
/* Folds to 16 bits, not complemented. */
uint16_t pkt_csum_fold(uint64_t sum);
/* pkt_csum_partial of src while copying it to dst (len bytes, no overlap): one pass over the bytes
 * where a copy and a checksum would read them twice. */
uint64_t pkt_csum_copy(void *dst, const void *src, size_t len, uint64_t sum);
/* Pseudo-header sum (not folded) for `proto` over `len` bytes of L4 data. */
uint64_t pkt_pseudo_sum(const struct pkt_ip *ip, uint32_t l4len);
/* IPv4 header checksum computed over `hlen` bytes with the checksum field taken as zero; writes it. */
void pkt_ipv4_fix_csum(uint8_t *iph, unsigned hlen);
/* 1 if the IPv4 header checksum over `hlen` bytes is valid. */
int pkt_ipv4_csum_ok(const uint8_t *iph, unsigned hlen);
/* Full L4 checksum verification (TCP/UDP/ICMP) of a parsed packet; 1 if valid. */
int pkt_l4_csum_ok(const struct pkt_ip *ip);

/*
 * Validates the IP packet in buf[0..len) and fills *out. IPv4: version 4, IHL >= 5, header within
 * len, tot_len >= IHL*4 and <= len, header checksum valid if `check_csum`. IPv6: version 6, 40 bytes,
 * payload length != 0 (no jumbograms) and within len. Returns PKT_OK or PKT_MALFORMED.
 */
int pkt_parse(uint8_t *buf, size_t len, int check_csum, struct pkt_ip *out);

/* Decrements the IPv4 TTL (incremental checksum update, RFC 1624) or IPv6 hop limit, in place.
 * Returns PKT_TTL_EXPIRED (packet unchanged) when the value is <= 1. */
int pkt_dec_ttl(struct pkt_ip *ip);

/* Reads/writes a virtio-net header (host byte order, as TUN uses on little-endian hosts). */
void pkt_vnet_read(const uint8_t *buf, struct pkt_vnet_hdr *h);
void pkt_vnet_write(uint8_t *buf, const struct pkt_vnet_hdr *h);

/*
 * Completes a CHECKSUM_PARTIAL packet from TUN (virtio NEEDS_CSUM without GSO): sums from csum_start
 * to the end and stores the complemented result at csum_start + csum_offset. Modifies `ip` in place.
 * Returns PKT_OK or PKT_MALFORMED (offsets outside the packet).
 */
int pkt_finish_csum(uint8_t *pkt, uint32_t len, unsigned csum_start, unsigned csum_offset);

/* One output segment: a header in the caller's arena plus a payload slice of the super-packet. */
struct pkt_seg {
  uint8_t *hdr;
  uint16_t hdr_len;
  const uint8_t *payload;
  uint16_t payload_len;
  /* pkt_tso_segment_partial only: offset in hdr of the TCP checksum the caller finishes, else 0 */
  uint16_t csum_off;
};

/*
 * TSO: splits the TCP super-packet `ip` into segments of at most `mss` payload bytes. Each segment's
 * IP + TCP header is written to arena + i * PKT_MAX_HDR (arena must hold max_segs slots): IPv4 id =
 * id + i, total/payload length, header checksum, TCP sequence number, FIN/PSH only on the last
 * segment and CWR only on the first, full TCP checksum. The payload is not copied: segs[i].payload
 * points into `ip`. Returns the number of segments (>= 1), or -PKT_MALFORMED / -PKT_UNSUPPORTED.
 * Does not modify `ip`.
 */
int pkt_tso_segment(const struct pkt_ip *ip, unsigned mss, uint8_t *arena, struct pkt_seg *segs,
                    int max_segs);
/* The same, but a segment's TCP checksum field holds the folded sum of its pseudo-header and TCP
 * header (not complemented; segs[i].csum_off names it): the caller, which copies the payload
 * anyway, finishes it with pkt_tso_finish_csum(hdr, pkt_csum_copy(..., payload, ..., 0)). */
int pkt_tso_segment_partial(const struct pkt_ip *ip, unsigned mss, uint8_t *arena,
                            struct pkt_seg *segs, int max_segs);
/* Stores ~fold(partial field + payload_sum) at hdr + csum_off (hdr: a partial segment's header). */
void pkt_tso_finish_csum(uint8_t *hdr, uint16_t csum_off, uint64_t payload_sum);

/*
 * Coalescing (receive side). A run starts with pkt_gro_start on a packet; pkt_gro_try appends the
 * next packet if it continues the same TCP flow (same addresses, ports, IP header fields, TCP options
 * and ACK, contiguous sequence, only ACK/PSH flags, full-size segments except a possibly shorter
 * last one, total <= 65535) and returns 1, else 0. pkt_gro_finish rewrites the first packet's header
 * in place (length, IP checksum, PSH of the last, TCP checksum = pseudo-header sum for
 * CHECKSUM_PARTIAL) and fills the virtio-net header for a single TUN write of: first packet, then the
 * payloads of the others. Runs of one packet get a zero (GSO_NONE) virtio header, packet untouched.
 *
 * Checksums: the kernel takes CHECKSUM_PARTIAL as already valid, so every segment that goes into a
 * coalesced run has its full TCP checksum verified here first. The first packet is verified when the
 * second would join (a run of one is handed over untouched, with no checksum flags: the kernel
 * verifies it): if it is bad, `bad` is set and nothing joins (0). A joining packet with a bad checksum
 * is not appended and pkt_gro_try returns -PKT_BAD_CSUM (the caller drops it; the run goes on).
 * A caller whose packets were already authenticated end to end (the WireGuard engine: each one passed
 * its Poly1305 tag, so it is exactly what the peer sent) sets `trusted` after pkt_gro_start and skips
 * that pass over the data, as the kernel's WireGuard marks decrypted packets CHECKSUM_UNNECESSARY.
 */
struct pkt_gro {
  struct pkt_ip first;
  uint16_t thlen;      /* TCP header length of the first packet */
  uint16_t mss;        /* payload size of the first packet: every merged one but the last */
  uint32_t next_seq;   /* sequence number the next packet must have */
  uint32_t total;      /* total IP length of the super-packet so far */
  uint16_t count;      /* packets in the run */
  uint8_t closed;      /* a short or PSH segment was appended: nothing more may follow */
  uint8_t tcp;         /* first packet is a mergeable TCP segment */
  uint8_t psh;         /* last appended packet carried PSH */
  uint8_t verified;    /* the first packet's TCP checksum was verified */
  uint8_t bad;         /* ... and failed: the run is this packet alone, to be dropped */
  uint8_t trusted;     /* set by the caller after start: authenticated packets, no verification */
};
void pkt_gro_start(struct pkt_gro *g, const struct pkt_ip *first);
/* On success (1), *payload and *plen are the slice of `next` to append after the previous ones;
 * 0 = does not continue the run; -PKT_BAD_CSUM = continues it but its checksum is bad. */
int pkt_gro_try(struct pkt_gro *g, const struct pkt_ip *next, const uint8_t **payload,
                uint16_t *plen);
void pkt_gro_finish(struct pkt_gro *g, struct pkt_vnet_hdr *vh);

/*
 * Builds an ICMPv4 destination-unreachable (type 3, code 0 "net unreachable") for the IPv4 packet
 * `orig`, from `src` (network order) to the packet's source, into out[0..cap). Quotes the original IP
 * header plus 8 bytes. Returns the length, or 0 when no error may be sent: orig is not IPv4, is an
 * ICMP error, a non-first fragment, its source is unspecified, multicast, broadcast or loopback, or
 * its destination is unspecified, multicast or broadcast.
 */
size_t pkt_icmp_unreach(const struct pkt_ip *orig, uint32_t src, uint8_t *out, size_t cap);

#ifdef __cplusplus
}
#endif
#endif
