// A dedicated rtnetlink sender thread (rtnl_sender.c): JS hands it already encoded route / neighbour /
// FDB requests; the thread sends them in order, many per sendmsg(2), reads the answers itself and
// reports one result per request. See the comment at the top of rtnl_sender.c.
#ifndef WEFT_RTNL_SENDER_H
#define WEFT_RTNL_SENDER_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

// Result codes beside the kernel's positive errno (0 = success): the request got no answer before its
// deadline, or the socket failed (the low 16 bits hold the errno of the failure, e.g. ENOBUFS).
#define RTNL_RES_TIMEOUT 0x10000
#define RTNL_RES_SOCKET 0x20000

struct rtnl_sender;

// Called on the sender thread when every request of submission `id` has a result. `results` has
// `count` entries (0, a kernel errno, or RTNL_RES_* | errno) and is NULL when all succeeded; it stays
// owned by the sender (copy it before returning).
typedef void (*rtnl_done_fn)(void *ctx, uint64_t id, uint32_t count, const int32_t *results);

// Opens a NETLINK_ROUTE socket in the calling thread's network namespace and starts the thread.
// `per_send`: requests per datagram (1..256); `timeout_ms`: the deadline of one datagram's answers.
// Returns 0 or a negative errno.
int rtnl_sender_open(struct rtnl_sender **out, unsigned per_send, unsigned timeout_ms,
                     rtnl_done_fn done, void *ctx);

// Queues `len` bytes of complete netlink requests (each nlmsghdr-framed and 4-byte aligned) as
// submission `id`. The sender overwrites each request's sequence number, port and NLM_F_ACK flag.
// Returns the number of requests queued, or a negative errno (-EINVAL: malformed framing; -EPIPE: the
// socket is lost or the sender closed).
int rtnl_sender_submit(struct rtnl_sender *s, uint64_t id, const void *buf, size_t len);

// 1 once the socket has failed (every later submission fails with -EPIPE; open a new sender).
int rtnl_sender_lost(struct rtnl_sender *s);

// Stops and joins the thread; queued requests are reported with RTNL_RES_SOCKET | ESHUTDOWN. Then
// frees everything. Safe to call once.
void rtnl_sender_close(struct rtnl_sender *s);

#ifdef __cplusplus
}
#endif
#endif
