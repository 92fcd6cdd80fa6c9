/*
 * Longest-prefix-match route table of the forwarder: destination subnet (IPv4 or IPv6) -> peer public
 * IPv4 address and UDP port. Owned by ONE thread (the forwarder loop): no locking inside.
 *
 * Structure: one open-addressing hash keyed by (family, prefix length, masked address), plus per
 * family the list of prefix lengths in use, longest first. A lookup probes one hash slot per length
 * in use (usually one or two: every lease has the same length), never scans routes. A second hash
 * counts routes per peer address, for "is this a known peer" on the receive path.
 *
 * Ownership: rt_new allocates, rt_free frees; rt_set may allocate (grow) and fails with -ENOMEM
 * leaving the table unchanged. Pointers returned by rt_lookup are valid until the next rt_set/rt_del.
 */
#ifndef WEFT_ROUTE_TABLE_H
#define WEFT_ROUTE_TABLE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

struct rt_route {
  uint8_t family; /* 4 or 6 */
  uint8_t len;    /* prefix length */
  uint8_t addr[16];
  uint32_t peer_ip;   /* IPv4, network byte order */
  uint16_t peer_port; /* host byte order */
};

struct rt_table;

struct rt_table *rt_new(void);
void rt_free(struct rt_table *t);
/* Adds or replaces the route for addr/len (host bits are ignored). 0, -EINVAL, -ENOMEM, or -ENOSPC
 * when a new route would exceed the limit set by rt_set_max. The table is unchanged on failure. */
int rt_set(struct rt_table *t, int family, const uint8_t *addr, int len, uint32_t peer_ip,
           uint16_t peer_port);
/* Removes the route for addr/len. 0 or -ENOENT. */
int rt_del(struct rt_table *t, int family, const uint8_t *addr, int len);
/* Longest prefix match for a 4- or 16-byte address, or NULL. */
const struct rt_route *rt_lookup(const struct rt_table *t, int family, const uint8_t *addr);
/* Number of routes whose peer is `peer_ip` (network order): 0 = not a known peer. */
unsigned rt_peer_refs(const struct rt_table *t, uint32_t peer_ip);
size_t rt_count(const struct rt_table *t);
/* Limits the table to `max` routes (0 = no limit); replacing an existing route always works. */
void rt_set_max(struct rt_table *t, size_t max);

#ifdef __cplusplus
}
#endif
#endif
