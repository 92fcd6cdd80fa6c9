/*
 * MAC1/MAC2 and cookie replies (whitepaper 5.3, 5.4.7), and the per-source rate limit applied to
 * handshakes while the device is under load. Under load a handshake message must carry a MAC2
 * made with a cookie for its source address (proof that the sender receives at that address);
 * without it the device answers with a cookie reply (cheap: no Diffie-Hellman) instead of doing the
 * handshake. Sources with a valid MAC2 are then limited to 20 handshakes per second each (burst
 * 5, wireguard-go's numbers), so one flooding address cannot starve the others.
 *
 * Cookie reply (64): type 3 | 3 reserved | receiver | nonce 24 | encrypted cookie 16+16
 */
#include <string.h>

#include "wg.h"

#define RL_COST ((int64_t)(WG_NS / 20))
#define RL_BURST 5

/* Address bytes a cookie is bound to: IP and port. */
static size_t src_bytes(const struct wg_endpoint *e, uint8_t out[18]) {
  if (e->sa.sa_family == AF_INET6) {
    memcpy(out, &e->in6.sin6_addr, 16);
    memcpy(out + 16, &e->in6.sin6_port, 2);
    return 18;
  }
  memcpy(out, &e->in4.sin_addr, 4);
  memcpy(out + 4, &e->in4.sin_port, 2);
  return 6;
}

void wg_add_macs(struct wg_peer *p, uint8_t *msg, size_t len, uint64_t now) {
  uint8_t *mac1 = msg + len - 2 * WG_MAC_LEN, *mac2 = msg + len - WG_MAC_LEN;
  wg_mac(mac1, p->mac1_key, WG_HASH_LEN, msg, len - 2 * WG_MAC_LEN);
  memcpy(p->last_mac1, mac1, WG_MAC_LEN);
  p->have_last_mac1 = 1;
  if (p->cookie_time && now - p->cookie_time < WG_COOKIE_REFRESH_TIME) {
    wg_mac(mac2, p->cookie, WG_MAC_LEN, msg, len - WG_MAC_LEN);
  } else {
    memset(mac2, 0, WG_MAC_LEN);
  }
}

int wg_check_mac1(const struct wg_device *d, const uint8_t *msg, size_t len) {
  uint8_t mac[WG_MAC_LEN];
  if (wg_mac(mac, d->mac1_key, WG_HASH_LEN, msg, len - 2 * WG_MAC_LEN) < 0) return 0;
  return wg_equal(mac, msg + len - 2 * WG_MAC_LEN, WG_MAC_LEN);
}

static void cookie_for(struct wg_device *d, const struct wg_endpoint *from, uint64_t now,
                       uint8_t cookie[WG_MAC_LEN]) {
  if (!d->cookie_secret_time || now - d->cookie_secret_time >= WG_COOKIE_REFRESH_TIME) {
    wg_random(d->cookie_secret, sizeof(d->cookie_secret));
    d->cookie_secret_time = now ? now : 1;
  }
  uint8_t src[18];
  size_t n = src_bytes(from, src);
  wg_mac(cookie, d->cookie_secret, WG_KEY_LEN, src, n);
}

int wg_check_mac2(struct wg_device *d, const uint8_t *msg, size_t len,
                  const struct wg_endpoint *from, uint64_t now) {
  uint8_t cookie[WG_MAC_LEN], mac[WG_MAC_LEN];
  cookie_for(d, from, now, cookie);
  if (wg_mac(mac, cookie, WG_MAC_LEN, msg, len - WG_MAC_LEN) < 0) return 0;
  return wg_equal(mac, msg + len - WG_MAC_LEN, WG_MAC_LEN);
}

void wg_send_cookie_reply(struct wg_device *d, const uint8_t *msg, size_t len, uint32_t sender,
                          const struct wg_endpoint *from, uint64_t now) {
  uint8_t reply[WG_COOKIE_LEN], cookie[WG_MAC_LEN];
  memset(reply, 0, sizeof(reply));
  reply[0] = WG_MSG_COOKIE;
  wg_put_le32(reply + 4, sender);
  wg_random(reply + 8, WG_XNONCE_LEN);
  cookie_for(d, from, now, cookie);
  wg_xaead_seal(reply + 32, cookie, WG_MAC_LEN, reply + 8, d->cookie_key,
                msg + len - 2 * WG_MAC_LEN, WG_MAC_LEN);
  d->send(d->ctx, from, reply, sizeof(reply));
  d->st.tx_cookie++;
}

int wg_consume_cookie_reply(struct wg_device *d, const uint8_t msg[WG_COOKIE_LEN], uint64_t now) {
  struct wg_idx_entry *ie = wg_idx_find(d, wg_le32(msg + 4));
  if (!ie) return -1;
  struct wg_peer *p = ie->peer;
  uint8_t cookie[WG_MAC_LEN];
  if (!p->have_last_mac1) return -1;
  if (wg_xaead_open(cookie, msg + 32, WG_MAC_LEN + WG_TAG_LEN, msg + 8, p->cookie_key, p->last_mac1,
                    WG_MAC_LEN) < 0) {
    return -1;
  }
  memcpy(p->cookie, cookie, WG_MAC_LEN);
  p->cookie_time = now ? now : 1;
  p->have_last_mac1 = 0;
  return 0;
}

int wg_ratelimit_allow(struct wg_device *d, const struct wg_endpoint *from, uint64_t now) {
  uint8_t addr[16] = {0};
  if (from->sa.sa_family == AF_INET6) {
    memcpy(addr, &from->in6.sin6_addr, 16);
  } else {
    memcpy(addr, &from->in4.sin_addr, 4);
  }
  /* keyed slot choice: which sources share a slot is not predictable from outside */
  uint64_t h = d->rl_seed;
  for (int i = 0; i < 16; i++) h = (h ^ addr[i]) * 0x100000001b3ULL;
  unsigned s = (unsigned)(h >> 32) % WG_RL_SLOTS;
  if (memcmp(d->rl[s].addr, addr, 16) != 0 || d->rl[s].tokens_time == 0) {
    memcpy(d->rl[s].addr, addr, 16);
    d->rl[s].tokens = RL_COST * RL_BURST;
    d->rl[s].tokens_time = now;
  }
  int64_t t = d->rl[s].tokens + (int64_t)(now - d->rl[s].tokens_time);
  if (t > RL_COST * RL_BURST) t = RL_COST * RL_BURST;
  d->rl[s].tokens_time = now;
  if (t >= (int64_t)RL_COST) {
    d->rl[s].tokens = t - (int64_t)RL_COST;
    return 1;
  }
  d->rl[s].tokens = t;
  return 0;
}
