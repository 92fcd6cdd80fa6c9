/*
 * The WireGuard engine around the handshake: device and peers, transport data (counters, replay
 * window, padding), key rotation, staged packets and the timers (whitepaper 6, with wireguard-go's
 * timer semantics). One thread owns a device (see wg.h).
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "wg.h"

static const char LABEL_MAC1[] = "mac1----";
static const char LABEL_COOKIE[] = "cookie--";

#define JITTER_MAX_NS (334 * 1000000ULL)
static uint64_t jitter(void) { return (uint64_t)(wg_random_u32() % 334) * 1000000ULL; }

/* ---- replay window (RFC 6479) ------------------------------------------------------------------ */

void wg_replay_init(struct wg_replay *r) { memset(r, 0, sizeof(*r)); }

int wg_replay_check(struct wg_replay *r, uint64_t counter, uint64_t limit) {
  if (counter >= limit) return 0;
  uint64_t block = counter >> 6;
  if (counter > r->last) {
    uint64_t cur = r->last >> 6;
    uint64_t diff = block - cur;
    if (diff > WG_REPLAY_BLOCKS) diff = WG_REPLAY_BLOCKS;
    for (uint64_t i = 1; i <= diff; i++) r->bits[(cur + i) & (WG_REPLAY_BLOCKS - 1)] = 0;
    r->last = counter;
  } else if (r->last - counter > WG_REPLAY_WINDOW) {
    return 0;
  }
  uint64_t *w = &r->bits[block & (WG_REPLAY_BLOCKS - 1)];
  uint64_t bit = 1ULL << (counter & 63);
  if (*w & bit) return 0;
  *w |= bit;
  return 1;
}

/* ---- endpoints --------------------------------------------------------------------------------- */

socklen_t wg_endpoint_len(const struct wg_endpoint *e) {
  return e->sa.sa_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
}

int wg_endpoint_equal(const struct wg_endpoint *a, const struct wg_endpoint *b) {
  if (a->sa.sa_family != b->sa.sa_family) return 0;
  if (a->sa.sa_family == AF_INET) {
    return a->in4.sin_port == b->in4.sin_port && a->in4.sin_addr.s_addr == b->in4.sin_addr.s_addr;
  }
  if (a->sa.sa_family == AF_INET6) {
    return a->in6.sin6_port == b->in6.sin6_port &&
           memcmp(&a->in6.sin6_addr, &b->in6.sin6_addr, 16) == 0;
  }
  return 1;
}

/* ---- device and peers -------------------------------------------------------------------------- */

struct wg_device *wg_device_new(const uint8_t priv[WG_KEY_LEN], uint16_t mtu, wg_send_fn send,
                                wg_allowed_fn allowed, void *ctx, uint32_t load_threshold) {
  if (wg_crypto_init() < 0) return NULL;
  struct wg_device *d = calloc(1, sizeof(*d));
  if (!d) return NULL;
  memcpy(d->priv, priv, WG_KEY_LEN);
  d->priv[0] &= 248;
  d->priv[31] = (uint8_t)((d->priv[31] & 127) | 64);
  if (wg_pubkey(d->pub, d->priv) < 0 ||
      wg_hash2(d->mac1_key, LABEL_MAC1, 8, d->pub, WG_KEY_LEN) < 0 ||
      wg_hash2(d->cookie_key, LABEL_COOKIE, 8, d->pub, WG_KEY_LEN) < 0) {
    wg_wipe(d, sizeof(*d));
    free(d);
    return NULL;
  }
  d->mtu = mtu;
  d->send = send;
  d->allowed = allowed;
  d->ctx = ctx;
  d->load_threshold = load_threshold ? load_threshold : 64;
  wg_random(&d->rl_seed, sizeof(d->rl_seed));
  return d;
}

static void staged_clear(struct wg_device *d, struct wg_peer *p, int count_drops) {
  for (unsigned i = 0; i < p->nstaged; i++) free(p->staged[i]);
  if (count_drops) d->st.drop_no_session += p->nstaged;
  p->nstaged = 0;
}

static void peer_zero(struct wg_device *d, struct wg_peer *p) {
  wg_keypairs_clear(d, p);
  wg_handshake_clear(d, p);
}

void wg_peer_remove(struct wg_device *d, struct wg_peer *p) {
  peer_zero(d, p);
  staged_clear(d, p, 0);
  d->slots[p->slot] = NULL;
  d->npeers--;
  wg_wipe(p, sizeof(*p));
  free(p);
}

void wg_device_free(struct wg_device *d) {
  if (!d) return;
  for (uint32_t i = 0; i < d->nslots; i++) {
    if (d->slots[i]) wg_peer_remove(d, d->slots[i]);
  }
  free(d->slots);
  wg_wipe(d, sizeof(*d));
  free(d);
}

struct wg_peer *wg_peer_find(struct wg_device *d, const uint8_t pub[WG_KEY_LEN]) {
  struct wg_peer *found = NULL;
  for (uint32_t i = 0; i < d->nslots; i++) {
    struct wg_peer *p = d->slots[i];
    if (p && wg_equal(p->pub, pub, WG_KEY_LEN)) found = p;
  }
  return found;
}

struct wg_peer *wg_peer_set(struct wg_device *d, const uint8_t pub[WG_KEY_LEN], const uint8_t *psk,
                            const struct wg_endpoint *ep, uint32_t keepalive, uint64_t now) {
  static const uint8_t zero[WG_KEY_LEN];
  struct wg_peer *p = wg_peer_find(d, pub);
  if (!p) {
    uint32_t slot = 0;
    while (slot < d->nslots && d->slots[slot]) slot++;
    if (slot == d->nslots) {
      uint32_t cap = d->nslots ? d->nslots * 2 : 16;
      struct wg_peer **s = realloc(d->slots, cap * sizeof(*s));
      if (!s) return NULL;
      memset(s + d->nslots, 0, (cap - d->nslots) * sizeof(*s));
      d->slots = s;
      d->nslots = cap;
    }
    p = calloc(1, sizeof(*p));
    if (!p) return NULL;
    memcpy(p->pub, pub, WG_KEY_LEN);
    p->slot = slot;
    p->ss_ok = wg_dh(p->ss, d->priv, pub) == 0;
    if (wg_hash2(p->mac1_key, LABEL_MAC1, 8, pub, WG_KEY_LEN) < 0 ||
        wg_hash2(p->cookie_key, LABEL_COOKIE, 8, pub, WG_KEY_LEN) < 0) {
      free(p);
      return NULL;
    }
    d->slots[slot] = p;
    d->npeers++;
  }
  const uint8_t *k = psk ? psk : zero;
  if (!wg_equal(p->psk, k, WG_KEY_LEN)) {
    memcpy(p->psk, k, WG_KEY_LEN);
    peer_zero(d, p); /* sessions made with the old key are no longer valid */
  }
  if (ep && ep->sa.sa_family) p->ep = *ep;
  uint32_t old = p->keepalive_sec;
  p->keepalive_sec = keepalive;
  if (keepalive && keepalive != old && p->ep.sa.sa_family) p->t_persistent = now ? now : 1;
  if (!keepalive) p->t_persistent = 0;
  return p;
}

/* ---- timers (wireguard-go's timers.go) ---------------------------------------------------------- */

static void t_any_sent(struct wg_peer *p) { p->t_send_keepalive = 0; }
static void t_any_received(struct wg_peer *p) { p->t_new_handshake = 0; }
static void t_traversal(struct wg_peer *p, uint64_t now) {
  if (p->keepalive_sec) p->t_persistent = now + (uint64_t)p->keepalive_sec * WG_NS;
}
static void t_data_sent(struct wg_peer *p, uint64_t now) {
  if (!p->t_new_handshake) p->t_new_handshake = now + WG_KEEPALIVE_TIMEOUT + WG_REKEY_TIMEOUT + jitter();
}
static void t_data_received(struct wg_peer *p, uint64_t now) {
  if (!p->t_send_keepalive) {
    p->t_send_keepalive = now + WG_KEEPALIVE_TIMEOUT;
  } else {
    p->need_another_keepalive = 1;
  }
}
static void t_handshake_complete(struct wg_peer *p) {
  p->t_retransmit = 0;
  p->race_retry = 0;
  p->handshake_attempts = 0;
  p->sent_last_minute_handshake = 0;
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  p->st.last_handshake_sec = (uint64_t)ts.tv_sec;
}
static void t_session_derived(struct wg_peer *p, uint64_t now) {
  p->t_zero_keys = now + 3 * WG_REJECT_AFTER_TIME;
}

void wg_send_initiation(struct wg_device *d, struct wg_peer *p, int retry, uint64_t now) {
  if (!retry) p->handshake_attempts = 0;
  if (!p->ep.sa.sa_family || !p->ss_ok) return;
  if (p->last_initiation_sent && now - p->last_initiation_sent < WG_REKEY_TIMEOUT &&
      !(retry && p->race_retry))
    return;
  p->race_retry = 0;
  uint8_t msg[WG_INITIATION_LEN];
  if (wg_create_initiation(d, p, msg, now) < 0) return;
  p->last_initiation_sent = now ? now : 1;
  t_traversal(p, now);
  t_any_sent(p);
  d->send(d->ctx, &p->ep, msg, sizeof(msg));
  d->st.tx_handshake++;
  p->st.handshake_initiations++;
  p->st.tx_bytes += sizeof(msg);
  p->t_retransmit = now + WG_REKEY_TIMEOUT + jitter();
}

/* ---- sending ------------------------------------------------------------------------------------- */

struct wg_keypair *wg_tx_begin(struct wg_device *d, struct wg_peer *p, unsigned n, uint64_t now,
                               uint64_t *first_counter) {
  (void)d;
  struct wg_keypair *kp = p->cur;
  if (!kp || now - kp->created >= WG_REJECT_AFTER_TIME ||
      kp->send_counter + n >= WG_REJECT_AFTER_MESSAGES) {
    return NULL;
  }
  *first_counter = kp->send_counter;
  kp->send_counter += n;
  return kp;
}

size_t wg_padded_len(const struct wg_device *d, size_t len) {
  size_t mtu = d->mtu, last = len;
  if (mtu == 0) return (len + 15) & ~(size_t)15;
  if (last > mtu) last %= mtu;
  size_t padded = (last + 15) & ~(size_t)15;
  if (padded > mtu) padded = mtu;
  return len + (padded > last ? padded - last : 0);
}

size_t wg_seal(const struct wg_keypair *kp, uint64_t counter, uint8_t *msg, size_t len) {
  msg[0] = WG_MSG_DATA;
  msg[1] = msg[2] = msg[3] = 0;
  wg_put_le32(msg + 4, kp->remote_index);
  wg_put_le64(msg + 8, counter);
  wg_aead_seal_id(msg + WG_DATA_HDR_LEN, msg + WG_DATA_HDR_LEN, len, counter, kp->send_key,
                  kp->send_id);
  return WG_DATA_HDR_LEN + len + WG_TAG_LEN;
}

size_t wg_seal_room(const struct wg_keypair *kp, uint64_t counter, uint8_t *msg, size_t len) {
  wg_aead_seal_room(msg + WG_DATA_HDR_LEN, len, counter, kp->send_key, kp->send_id);
  msg[0] = WG_MSG_DATA; /* after sealing: the header was scratch */
  msg[1] = msg[2] = msg[3] = 0;
  wg_put_le32(msg + 4, kp->remote_index);
  wg_put_le64(msg + 8, counter);
  return WG_DATA_HDR_LEN + len + WG_TAG_LEN;
}

size_t wg_seal_to(const struct wg_keypair *kp, uint64_t counter, uint8_t *msg, const uint8_t *src,
                  size_t len, size_t data_len, const uint8_t *hdr, size_t hdr_len) {
  wg_aead_seal_to(msg + WG_DATA_HDR_LEN, src, len, data_len, hdr, hdr_len, counter, kp->send_key,
                  kp->send_id);
  msg[0] = WG_MSG_DATA; /* after sealing: the header was scratch */
  msg[1] = msg[2] = msg[3] = 0;
  wg_put_le32(msg + 4, kp->remote_index);
  wg_put_le64(msg + 8, counter);
  return WG_DATA_HDR_LEN + len + WG_TAG_LEN;
}

static void keep_key_fresh_sending(struct wg_device *d, struct wg_peer *p, uint64_t now) {
  struct wg_keypair *kp = p->cur;
  if (kp && kp->initiator &&
      (kp->send_counter > WG_REKEY_AFTER_MESSAGES || now - kp->created > WG_REKEY_AFTER_TIME)) {
    wg_send_initiation(d, p, 0, now);
  }
}

void wg_tx_done(struct wg_device *d, struct wg_peer *p, struct wg_keypair *kp, unsigned n,
                uint64_t bytes, uint64_t now) {
  (void)kp;
  p->st.tx_packets += n;
  p->st.tx_bytes += bytes;
  d->st.tx_data += n;
  t_traversal(p, now);
  t_any_sent(p);
  if (n) t_data_sent(p, now);
  keep_key_fresh_sending(d, p, now);
}

static void send_staged(struct wg_device *d, struct wg_peer *p, uint64_t now) {
  if (!p->nstaged) return;
  uint64_t c;
  struct wg_keypair *kp = wg_tx_begin(d, p, p->nstaged, now, &c);
  if (!kp) {
    wg_send_initiation(d, p, 0, now);
    return;
  }
  unsigned data = 0;
  uint64_t bytes = 0;
  for (unsigned i = 0; i < p->nstaged; i++) {
    size_t len = p->staged_len[i], plen = len ? wg_padded_len(d, len) : 0;
    if (len) memcpy(d->tmp + WG_DATA_HDR_LEN, p->staged[i], len);
    memset(d->tmp + WG_DATA_HDR_LEN + len, 0, plen - len);
    size_t m = wg_seal(kp, c + i, d->tmp, plen);
    d->send(d->ctx, &p->ep, d->tmp, m);
    bytes += m;
    if (len) data++;
    free(p->staged[i]);
  }
  p->nstaged = 0;
  p->st.tx_packets += data;
  p->st.tx_bytes += bytes;
  d->st.tx_data += data;
  t_traversal(p, now);
  t_any_sent(p);
  if (data) t_data_sent(p, now);
  keep_key_fresh_sending(d, p, now);
}

void wg_stage(struct wg_device *d, struct wg_peer *p, const uint8_t *pkt, size_t len, uint64_t now) {
  if (len > 65535) return;
  if (p->nstaged == WG_MAX_STAGED) { /* drop the oldest, as wireguard-go does */
    free(p->staged[0]);
    memmove(p->staged, p->staged + 1, (WG_MAX_STAGED - 1) * sizeof(p->staged[0]));
    memmove(p->staged_len, p->staged_len + 1, (WG_MAX_STAGED - 1) * sizeof(p->staged_len[0]));
    p->nstaged--;
    d->st.drop_no_session++;
  }
  uint8_t *copy = malloc(len ? len : 1);
  if (!copy) {
    d->st.drop_no_session++;
    return;
  }
  if (len) memcpy(copy, pkt, len);
  p->staged[p->nstaged] = copy;
  p->staged_len[p->nstaged] = (uint16_t)len;
  p->nstaged++;
  send_staged(d, p, now);
}

void wg_send_keepalive(struct wg_device *d, struct wg_peer *p, uint64_t now) {
  if (p->nstaged == 0) {
    wg_stage(d, p, NULL, 0, now);
  } else {
    send_staged(d, p, now);
  }
}

/* ---- receiving ------------------------------------------------------------------------------------ */

static void update_endpoint(struct wg_peer *p, const struct wg_endpoint *from) {
  if (from && from->sa.sa_family) p->ep = *from; /* roaming, as WireGuard does */
}

/* Counts handshake messages per second; under load for a second once over the threshold. */
static int under_load(struct wg_device *d, uint64_t now) {
  uint64_t sec = now / WG_NS;
  if (sec != d->load_window) {
    d->load_window = sec;
    d->load_count = 0;
  }
  if (++d->load_count > d->load_threshold) d->under_load_until = now + WG_NS;
  return now < d->under_load_until;
}

static int handle_handshake(struct wg_device *d, const struct wg_endpoint *from, uint8_t *msg,
                            size_t len, uint64_t now) {
  if (!wg_check_mac1(d, msg, len)) {
    d->st.drop_mac1++;
    return WG_RX_DROP;
  }
  if (under_load(d, now)) {
    d->st.under_load++;
    if (!wg_check_mac2(d, msg, len, from, now)) {
      wg_send_cookie_reply(d, msg, len, wg_le32(msg + 4), from, now);
      return WG_RX_CONTROL;
    }
    if (!wg_ratelimit_allow(d, from, now)) {
      d->st.drop_ratelimited++;
      return WG_RX_DROP;
    }
  }
  d->st.rx_handshake++;
  if (msg[0] == WG_MSG_INITIATION) {
    struct wg_peer *p = wg_consume_initiation(d, msg, from, now);
    if (!p) return WG_RX_DROP;
    p->st.rx_bytes += len;
    t_traversal(p, now);
    t_any_received(p);
    update_endpoint(p, from);
    uint8_t resp[WG_RESPONSE_LEN];
    if (wg_create_response(d, p, resp) < 0 || wg_begin_session(d, p, now) < 0) {
      d->st.drop_handshake++;
      return WG_RX_DROP;
    }
    t_session_derived(p, now);
    t_traversal(p, now);
    t_any_sent(p);
    d->send(d->ctx, &p->ep, resp, sizeof(resp));
    d->st.tx_handshake++;
    p->st.tx_bytes += sizeof(resp);
    if (p->hs_raced && memcmp(d->pub, p->pub, WG_KEY_LEN) > 0) {
      /* Crossed initiations (both hosts initiate as they learn of each other, wg-sink.ts): each
       * consumed the other's, so neither can complete its own and both hold only a responder
       * session that waits for the other's first data. Left alone, both retry after REKEY_TIMEOUT
       * (5 s without traffic). The side with the greater public key starts again shortly instead;
       * the other just answers. A confirmed session cancels it (t_handshake_complete). */
      p->race_retry = 1;
      p->t_retransmit = now + WG_RACE_RETRY;
    }
    p->hs_raced = 0;
    return WG_RX_CONTROL;
  }
  struct wg_peer *p = wg_consume_response(d, msg);
  if (!p) return WG_RX_DROP;
  p->st.rx_bytes += len;
  update_endpoint(p, from);
  t_traversal(p, now);
  t_any_received(p);
  if (wg_begin_session(d, p, now) < 0) {
    d->st.drop_handshake++;
    return WG_RX_DROP;
  }
  t_session_derived(p, now);
  t_handshake_complete(p);
  wg_send_keepalive(d, p, now); /* confirms the session to the responder, or sends staged data */
  return WG_RX_CONTROL;
}

int wg_rx_prepare(struct wg_device *d, uint8_t *msg, size_t len, uint64_t now,
                  struct wg_rx_job *job) {
  if (len < WG_DATA_MIN_LEN || msg[0] != WG_MSG_DATA || msg[1] || msg[2] || msg[3]) {
    d->st.drop_malformed++;
    return 0;
  }
  uint32_t index = wg_le32(msg + 4);
  struct wg_idx_entry *ie = wg_idx_find(d, index);
  uint64_t counter = wg_le64(msg + 8);
  if (!ie || !ie->kp) {
    d->st.drop_stale++;
    return 0;
  }
  struct wg_keypair *kp = ie->kp;
  if (now - kp->created >= WG_REJECT_AFTER_TIME || counter >= WG_REJECT_AFTER_MESSAGES) {
    d->st.drop_stale++;
    return 0;
  }
  job->msg = msg;
  job->len = len;
  job->kp = kp;
  job->index = index;
  job->counter = counter;
  job->ok = 0;
  job->room = 0;
  job->out = NULL;
  return 1;
}

void wg_rx_decrypt(struct wg_rx_job *job) {
  uint8_t *plain = job->msg + WG_DATA_HDR_LEN;
  size_t len = job->len - WG_DATA_HDR_LEN;
  if (job->out) {
    job->ok = wg_aead_open_to(job->out, plain, len, job->counter, job->kp->recv_key,
                              job->kp->recv_id) == 0;
  } else if (job->room) {
    job->ok = wg_aead_open_room(plain, len, job->counter, job->kp->recv_key, job->kp->recv_id) == 0;
  } else {
    job->ok = wg_aead_open_id(plain, plain, len, job->counter, job->kp->recv_key,
                              job->kp->recv_id) == 0;
  }
}

int wg_rx_finish(struct wg_device *d, const struct wg_endpoint *from, struct wg_rx_job *job,
                 uint64_t now, struct wg_rx *rx) {
  if (!job->ok) {
    d->st.drop_decrypt++;
    return WG_RX_DROP;
  }
  /* An earlier message of the same batch may have rotated this keypair out (and freed it): the
   * index must still name it. Nothing allocates keypairs between prepare and finish. */
  struct wg_idx_entry *ie = wg_idx_find(d, job->index);
  if (!ie || ie->kp != job->kp) {
    d->st.drop_stale++;
    return WG_RX_DROP;
  }
  struct wg_keypair *kp = job->kp;
  struct wg_peer *p = kp->peer;
  uint8_t *plain = job->out ? job->out : job->msg + WG_DATA_HDR_LEN;
  size_t len = job->len;
  if (!wg_replay_check(&kp->replay, job->counter, WG_REJECT_AFTER_MESSAGES)) {
    d->st.drop_replay++;
    p->st.drop_replay++;
    return WG_RX_DROP;
  }
  d->st.rx_data++;
  p->st.rx_bytes += len;
  if (kp == p->next) { /* the initiator confirmed the session: rotate (ReceivedWithKeypair) */
    if (p->prev) {
      wg_idx_del(d, &p->prev->ie);
      wg_wipe(p->prev, sizeof(*p->prev));
      free(p->prev);
    }
    p->prev = p->cur;
    p->cur = kp;
    p->next = NULL;
    t_handshake_complete(p);
    send_staged(d, p, now);
  }
  /* keepKeyFreshReceiving */
  if (p->cur && p->cur->initiator && !p->sent_last_minute_handshake &&
      now - p->cur->created > WG_REJECT_AFTER_TIME - WG_KEEPALIVE_TIMEOUT - WG_REKEY_TIMEOUT) {
    p->sent_last_minute_handshake = 1;
    wg_send_initiation(d, p, 0, now);
  }
  t_traversal(p, now);
  t_any_received(p);
  update_endpoint(p, from);
  size_t plen = len - WG_DATA_HDR_LEN - WG_TAG_LEN;
  if (plen == 0) return WG_RX_CONTROL; /* keepalive */
  t_data_received(p, now);
  /* cryptokey routing: the inner source must be one of the peer's allowed IPs */
  int family = plain[0] >> 4;
  const uint8_t *src;
  if (family == 4 && plen >= 20) {
    src = plain + 12;
    if (((size_t)plain[2] << 8 | plain[3]) > plen) goto malformed;
  } else if (family == 6 && plen >= 40) {
    src = plain + 8;
    if (((size_t)plain[4] << 8 | plain[5]) + 40 > plen) goto malformed;
  } else {
    goto malformed;
  }
  if (!d->allowed || d->allowed(d->ctx, family, src) != p) {
    d->st.drop_allowed_ips++;
    p->st.drop_allowed_ips++;
    return WG_RX_DROP;
  }
  p->st.rx_packets++;
  rx->peer = p;
  rx->pkt = plain;
  rx->len = plen;
  return WG_RX_PACKET;
malformed:
  d->st.drop_malformed++;
  return WG_RX_DROP;
}

static int handle_data(struct wg_device *d, const struct wg_endpoint *from, uint8_t *msg, size_t len,
                       uint64_t now, struct wg_rx *rx) {
  struct wg_rx_job job;
  if (!wg_rx_prepare(d, msg, len, now, &job)) return WG_RX_DROP;
  wg_rx_decrypt(&job);
  return wg_rx_finish(d, from, &job, now, rx);
}

int wg_receive(struct wg_device *d, const struct wg_endpoint *from, uint8_t *msg, size_t len,
               uint64_t now, struct wg_rx *rx) {
  if (len < 4 || msg[1] || msg[2] || msg[3]) {
    d->st.drop_malformed++;
    return WG_RX_DROP;
  }
  switch (msg[0]) {
    case WG_MSG_INITIATION:
    case WG_MSG_RESPONSE:
      if (len != (msg[0] == WG_MSG_INITIATION ? WG_INITIATION_LEN : WG_RESPONSE_LEN)) break;
      return handle_handshake(d, from, msg, len, now);
    case WG_MSG_COOKIE:
      if (len != WG_COOKIE_LEN) break;
      if (wg_consume_cookie_reply(d, msg, now) < 0) {
        d->st.drop_handshake++;
        return WG_RX_DROP;
      }
      d->st.rx_cookie++;
      return WG_RX_CONTROL;
    case WG_MSG_DATA:
      if (len < WG_DATA_MIN_LEN) break;
      return handle_data(d, from, msg, len, now, rx);
  }
  d->st.drop_malformed++;
  return WG_RX_DROP;
}

/* ---- timers -------------------------------------------------------------------------------------- */

static void peer_tick(struct wg_device *d, struct wg_peer *p, uint64_t now) {
  if (p->t_retransmit && now >= p->t_retransmit) {
    p->t_retransmit = 0;
    if (p->handshake_attempts > WG_MAX_TIMER_HANDSHAKES) {
      p->t_send_keepalive = 0;
      staged_clear(d, p, 1);
      if (!p->t_zero_keys) p->t_zero_keys = now + 3 * WG_REJECT_AFTER_TIME;
    } else {
      p->handshake_attempts++;
      wg_send_initiation(d, p, 1, now);
    }
  }
  if (p->t_send_keepalive && now >= p->t_send_keepalive) {
    p->t_send_keepalive = 0;
    wg_send_keepalive(d, p, now);
    if (p->need_another_keepalive) {
      p->need_another_keepalive = 0;
      p->t_send_keepalive = now + WG_KEEPALIVE_TIMEOUT;
    }
  }
  if (p->t_new_handshake && now >= p->t_new_handshake) {
    p->t_new_handshake = 0;
    wg_send_initiation(d, p, 0, now);
  }
  if (p->t_zero_keys && now >= p->t_zero_keys) {
    p->t_zero_keys = 0;
    peer_zero(d, p);
  }
  if (p->t_persistent && now >= p->t_persistent) {
    p->t_persistent = 0;
    if (p->keepalive_sec) wg_send_keepalive(d, p, now);
  }
}

void wg_tick(struct wg_device *d, uint64_t now) {
  for (uint32_t i = 0; i < d->nslots; i++) {
    if (d->slots[i]) peer_tick(d, d->slots[i], now);
  }
}
