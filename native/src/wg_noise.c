/*
 * The Noise_IKpsk2 handshake of WireGuard (whitepaper 5.4.2-5.4.4) and the receiver-index table.
 * Message layouts (little-endian indices):
 *   initiation (148): type 1 | 3 reserved | sender | ephemeral 32 | static 32+16 | timestamp 12+16 |
 *                     mac1 16 | mac2 16
 *   response   (92):  type 2 | 3 reserved | sender | receiver | ephemeral 32 | empty 0+16 | mac1 | mac2
 */
#include <stdlib.h>
#include <string.h>

#include "wg.h"

static const char CONSTRUCTION[] = "Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s";
static const char IDENTIFIER[] = "WireGuard v1 zx2c4 Jason@zx2c4.com";

/* C0 = HASH(CONSTRUCTION), H0 = HASH(C0 || IDENTIFIER). */
static int initial_chain(uint8_t c[WG_HASH_LEN], uint8_t h[WG_HASH_LEN]) {
  if (wg_hash2(c, CONSTRUCTION, sizeof(CONSTRUCTION) - 1, NULL, 0) < 0) return -1;
  return wg_hash2(h, c, WG_HASH_LEN, IDENTIFIER, sizeof(IDENTIFIER) - 1);
}

static int mix_hash(uint8_t h[WG_HASH_LEN], const void *data, size_t len) {
  return wg_hash2(h, h, WG_HASH_LEN, data, len);
}

/* ---- index table --------------------------------------------------------------------------- */

static unsigned bucket(uint32_t index) { return (index * 2654435761u) >> 20 & (WG_INDEX_BUCKETS - 1); }

struct wg_idx_entry *wg_idx_find(struct wg_device *d, uint32_t index) {
  for (struct wg_idx_entry *e = d->idx[bucket(index)]; e; e = e->next) {
    if (e->index == index) return e;
  }
  return NULL;
}

void wg_idx_add(struct wg_device *d, struct wg_idx_entry *e, struct wg_peer *p,
                struct wg_keypair *kp) {
  if (e->linked) wg_idx_del(d, e);
  uint32_t index;
  do {
    index = wg_random_u32();
  } while (index == 0 || wg_idx_find(d, index));
  e->index = index;
  e->peer = p;
  e->kp = kp;
  unsigned b = bucket(index);
  e->next = d->idx[b];
  d->idx[b] = e;
  e->linked = 1;
}

/* Moves a registered index to another entry (the handshake's index becomes the keypair's). */
static void idx_swap(struct wg_device *d, struct wg_idx_entry *from, struct wg_idx_entry *to,
                     struct wg_peer *p, struct wg_keypair *kp) {
  uint32_t index = from->index;
  wg_idx_del(d, from);
  to->index = index;
  to->peer = p;
  to->kp = kp;
  unsigned b = bucket(index);
  to->next = d->idx[b];
  d->idx[b] = to;
  to->linked = 1;
}

void wg_idx_del(struct wg_device *d, struct wg_idx_entry *e) {
  if (!e->linked) return;
  for (struct wg_idx_entry **pp = &d->idx[bucket(e->index)]; *pp; pp = &(*pp)->next) {
    if (*pp == e) {
      *pp = e->next;
      break;
    }
  }
  e->linked = 0;
  e->next = NULL;
}

void wg_handshake_clear(struct wg_device *d, struct wg_peer *p) {
  struct wg_handshake *hs = &p->hs;
  wg_idx_del(d, &hs->ie);
  wg_wipe(hs->hash, sizeof(hs->hash));
  wg_wipe(hs->chain, sizeof(hs->chain));
  wg_wipe(hs->eph_priv, sizeof(hs->eph_priv));
  wg_wipe(hs->remote_eph, sizeof(hs->remote_eph));
  hs->remote_index = 0;
  hs->state = WG_HS_ZEROED;
}

/* ---- initiation ------------------------------------------------------------------------------ */

int wg_create_initiation(struct wg_device *d, struct wg_peer *p, uint8_t msg[WG_INITIATION_LEN],
                         uint64_t now) {
  struct wg_handshake *hs = &p->hs;
  uint8_t k[WG_KEY_LEN], dh[WG_KEY_LEN], eph_pub[WG_KEY_LEN], ts[WG_TAI64N_LEN];
  int rc = -1;
  if (!p->ss_ok) return -1;
  wg_handshake_clear(d, p);
  if (initial_chain(hs->chain, hs->hash) < 0 || mix_hash(hs->hash, p->pub, WG_KEY_LEN) < 0) goto out;
  wg_genkey(hs->eph_priv);
  if (wg_pubkey(eph_pub, hs->eph_priv) < 0) goto out;
  memset(msg, 0, WG_INITIATION_LEN);
  msg[0] = WG_MSG_INITIATION;
  wg_idx_add(d, &hs->ie, p, NULL);
  wg_put_le32(msg + 4, hs->ie.index);
  memcpy(msg + 8, eph_pub, WG_KEY_LEN);
  if (wg_kdf(1, hs->chain, NULL, NULL, hs->chain, eph_pub, WG_KEY_LEN) < 0) goto out;
  if (mix_hash(hs->hash, eph_pub, WG_KEY_LEN) < 0) goto out;
  /* static */
  if (wg_dh(dh, hs->eph_priv, p->pub) < 0) goto out;
  if (wg_kdf(2, hs->chain, k, NULL, hs->chain, dh, WG_KEY_LEN) < 0) goto out;
  wg_aead_seal(msg + 40, d->pub, WG_KEY_LEN, 0, k, hs->hash, WG_HASH_LEN);
  if (mix_hash(hs->hash, msg + 40, WG_KEY_LEN + WG_TAG_LEN) < 0) goto out;
  /* timestamp */
  if (wg_kdf(2, hs->chain, k, NULL, hs->chain, p->ss, WG_KEY_LEN) < 0) goto out;
  wg_tai64n(ts);
  wg_aead_seal(msg + 88, ts, WG_TAI64N_LEN, 0, k, hs->hash, WG_HASH_LEN);
  if (mix_hash(hs->hash, msg + 88, WG_TAI64N_LEN + WG_TAG_LEN) < 0) goto out;
  hs->state = WG_HS_INITIATION_CREATED;
  wg_add_macs(p, msg, WG_INITIATION_LEN, now);
  rc = 0;
out:
  if (rc < 0) wg_handshake_clear(d, p);
  wg_wipe(k, sizeof(k));
  wg_wipe(dh, sizeof(dh));
  return rc;
}

static int ts_after(const uint8_t a[WG_TAI64N_LEN], const uint8_t b[WG_TAI64N_LEN]) {
  return memcmp(a, b, WG_TAI64N_LEN) > 0; /* big-endian: byte order = time order */
}

/* Secrets a received handshake message is worked with (chaining key, hash, keys): wiped as one. */
struct consume_tmp {
  uint8_t c[WG_HASH_LEN], h[WG_HASH_LEN], k[WG_KEY_LEN], t[WG_HASH_LEN], dh[WG_KEY_LEN];
};

/* A consumed message's chaining key and hash become p's handshake's, with the sender's index and
 * `state`; the secrets are wiped. Returns p. */
static struct wg_peer *consume_done(struct wg_peer *p, struct consume_tmp *x, const uint8_t *msg,
                                    enum wg_hs_state state) {
  struct wg_handshake *hs = &p->hs;
  memcpy(hs->chain, x->c, WG_HASH_LEN);
  memcpy(hs->hash, x->h, WG_HASH_LEN);
  hs->remote_index = wg_le32(msg + 4);
  hs->state = state;
  wg_wipe(x, sizeof(*x));
  return p;
}

struct wg_peer *wg_consume_initiation(struct wg_device *d, const uint8_t msg[WG_INITIATION_LEN],
                                      const struct wg_endpoint *from, uint64_t now) {
  struct consume_tmp x;
  uint8_t *c = x.c, *h = x.h, *k = x.k, *dh = x.dh, spub[WG_KEY_LEN], ts[WG_TAI64N_LEN];
  const uint8_t *e = msg + 8;
  struct wg_peer *p = NULL;
  if (initial_chain(c, h) < 0 || mix_hash(h, d->pub, WG_KEY_LEN) < 0) goto out;
  if (wg_kdf(1, c, NULL, NULL, c, e, WG_KEY_LEN) < 0 || mix_hash(h, e, WG_KEY_LEN) < 0) goto out;
  if (wg_dh(dh, d->priv, e) < 0) goto bad;
  if (wg_kdf(2, c, k, NULL, c, dh, WG_KEY_LEN) < 0) goto out;
  if (wg_aead_open(spub, msg + 40, WG_KEY_LEN + WG_TAG_LEN, 0, k, h, WG_HASH_LEN) < 0) goto bad;
  if (mix_hash(h, msg + 40, WG_KEY_LEN + WG_TAG_LEN) < 0) goto out;
  p = wg_peer_find(d, spub);
  if (!p) {
    d->st.drop_unknown_key++;
    if (from) d->unknown.from = *from;
    memcpy(d->unknown.pub, spub, WG_KEY_LEN);
    d->unknown.when = now ? now : 1;
    goto out;
  }
  if (!p->ss_ok) goto bad;
  if (wg_kdf(2, c, k, NULL, c, p->ss, WG_KEY_LEN) < 0) goto out;
  if (wg_aead_open(ts, msg + 88, WG_TAI64N_LEN + WG_TAG_LEN, 0, k, h, WG_HASH_LEN) < 0) goto bad;
  if (mix_hash(h, msg + 88, WG_TAI64N_LEN + WG_TAG_LEN) < 0) goto out;
  /* replayed or too frequent initiations are rejected (whitepaper 5.1) */
  if (!ts_after(ts, p->hs.latest_ts)) goto bad;
  if (p->hs.last_init_consumed && now - p->hs.last_init_consumed <= WG_HANDSHAKE_INITIATION_RATE) {
    goto bad;
  }
  struct wg_handshake *hs = &p->hs;
  p->hs_raced = hs->state == WG_HS_INITIATION_CREATED;
  wg_handshake_clear(d, p);
  memcpy(hs->remote_eph, e, WG_KEY_LEN);
  memcpy(hs->latest_ts, ts, WG_TAI64N_LEN);
  hs->last_init_consumed = now ? now : 1;
  return consume_done(p, &x, msg, WG_HS_INITIATION_CONSUMED);
bad:
  d->st.drop_handshake++;
out:
  wg_wipe(&x, sizeof(x));
  return NULL;
}

/* ---- response -------------------------------------------------------------------------------- */

int wg_create_response(struct wg_device *d, struct wg_peer *p, uint8_t msg[WG_RESPONSE_LEN]) {
  struct wg_handshake *hs = &p->hs;
  uint8_t k[WG_KEY_LEN], t[WG_HASH_LEN], dh[WG_KEY_LEN], eph_pub[WG_KEY_LEN];
  int rc = -1;
  if (hs->state != WG_HS_INITIATION_CONSUMED) return -1;
  memset(msg, 0, WG_RESPONSE_LEN);
  msg[0] = WG_MSG_RESPONSE;
  wg_idx_add(d, &hs->ie, p, NULL);
  wg_put_le32(msg + 4, hs->ie.index);
  wg_put_le32(msg + 8, hs->remote_index);
  wg_genkey(hs->eph_priv);
  if (wg_pubkey(eph_pub, hs->eph_priv) < 0) goto out;
  memcpy(msg + 12, eph_pub, WG_KEY_LEN);
  if (wg_kdf(1, hs->chain, NULL, NULL, hs->chain, eph_pub, WG_KEY_LEN) < 0) goto out;
  if (mix_hash(hs->hash, eph_pub, WG_KEY_LEN) < 0) goto out;
  if (wg_dh(dh, hs->eph_priv, hs->remote_eph) < 0) goto out;
  if (wg_kdf(1, hs->chain, NULL, NULL, hs->chain, dh, WG_KEY_LEN) < 0) goto out;
  if (wg_dh(dh, hs->eph_priv, p->pub) < 0) goto out;
  if (wg_kdf(1, hs->chain, NULL, NULL, hs->chain, dh, WG_KEY_LEN) < 0) goto out;
  if (wg_kdf(3, hs->chain, t, k, hs->chain, p->psk, WG_KEY_LEN) < 0) goto out;
  if (mix_hash(hs->hash, t, WG_HASH_LEN) < 0) goto out;
  wg_aead_seal(msg + 44, NULL, 0, 0, k, hs->hash, WG_HASH_LEN);
  if (mix_hash(hs->hash, msg + 44, WG_TAG_LEN) < 0) goto out;
  hs->state = WG_HS_RESPONSE_CREATED;
  wg_add_macs(p, msg, WG_RESPONSE_LEN, 0);
  rc = 0;
out:
  if (rc < 0) wg_handshake_clear(d, p);
  wg_wipe(k, sizeof(k));
  wg_wipe(t, sizeof(t));
  wg_wipe(dh, sizeof(dh));
  return rc;
}

struct wg_peer *wg_consume_response(struct wg_device *d, const uint8_t msg[WG_RESPONSE_LEN]) {
  struct consume_tmp x;
  uint8_t *c = x.c, *h = x.h, *k = x.k, *t = x.t, *dh = x.dh, empty[1];
  const uint8_t *e = msg + 12;
  struct wg_idx_entry *ie = wg_idx_find(d, wg_le32(msg + 8));
  if (!ie || ie->kp || ie->peer->hs.state != WG_HS_INITIATION_CREATED) goto bad;
  struct wg_peer *p = ie->peer;
  struct wg_handshake *hs = &p->hs;
  memcpy(c, hs->chain, WG_HASH_LEN);
  memcpy(h, hs->hash, WG_HASH_LEN);
  if (wg_kdf(1, c, NULL, NULL, c, e, WG_KEY_LEN) < 0 || mix_hash(h, e, WG_KEY_LEN) < 0) goto bad;
  if (wg_dh(dh, hs->eph_priv, e) < 0) goto bad;
  if (wg_kdf(1, c, NULL, NULL, c, dh, WG_KEY_LEN) < 0) goto bad;
  if (wg_dh(dh, d->priv, e) < 0) goto bad;
  if (wg_kdf(1, c, NULL, NULL, c, dh, WG_KEY_LEN) < 0) goto bad;
  if (wg_kdf(3, c, t, k, c, p->psk, WG_KEY_LEN) < 0) goto bad;
  if (mix_hash(h, t, WG_HASH_LEN) < 0) goto bad;
  if (wg_aead_open(empty, msg + 44, WG_TAG_LEN, 0, k, h, WG_HASH_LEN) < 0) goto bad;
  if (mix_hash(h, msg + 44, WG_TAG_LEN) < 0) goto bad;
  return consume_done(p, &x, msg, WG_HS_RESPONSE_CONSUMED);
bad:
  d->st.drop_handshake++;
  wg_wipe(&x, sizeof(x));
  return NULL;
}

/* ---- session --------------------------------------------------------------------------------- */

static void keypair_free(struct wg_device *d, struct wg_keypair *kp) {
  if (!kp) return;
  wg_idx_del(d, &kp->ie);
  wg_wipe(kp, sizeof(*kp));
  free(kp);
}

void wg_keypairs_clear(struct wg_device *d, struct wg_peer *p) {
  keypair_free(d, p->prev);
  keypair_free(d, p->cur);
  keypair_free(d, p->next);
  p->prev = p->cur = p->next = NULL;
}

int wg_begin_session(struct wg_device *d, struct wg_peer *p, uint64_t now) {
  struct wg_handshake *hs = &p->hs;
  int initiator;
  if (hs->state == WG_HS_RESPONSE_CONSUMED) {
    initiator = 1;
  } else if (hs->state == WG_HS_RESPONSE_CREATED) {
    initiator = 0;
  } else {
    return -1;
  }
  struct wg_keypair *kp = calloc(1, sizeof(*kp));
  if (!kp) return -1;
  int rc = initiator ? wg_kdf(2, kp->send_key, kp->recv_key, NULL, hs->chain, NULL, 0)
                     : wg_kdf(2, kp->recv_key, kp->send_key, NULL, hs->chain, NULL, 0);
  if (rc < 0) {
    wg_wipe(kp, sizeof(*kp));
    free(kp);
    return -1;
  }
  kp->send_id = wg_aead_key_id();
  kp->recv_id = wg_aead_key_id();
  wg_replay_init(&kp->replay);
  kp->created = now;
  kp->initiator = (uint8_t)initiator;
  kp->peer = p;
  kp->remote_index = hs->remote_index;
  idx_swap(d, &hs->ie, &kp->ie, p, kp);
  kp->local_index = kp->ie.index;
  wg_handshake_clear(d, p);
  /* rotation as wireguard-go's BeginSymmetricSession */
  if (initiator) {
    if (p->next) {
      keypair_free(d, p->prev);
      p->prev = p->next;
      p->next = NULL;
      keypair_free(d, p->cur);
    } else {
      keypair_free(d, p->prev);
      p->prev = p->cur;
    }
    p->cur = kp;
  } else {
    keypair_free(d, p->next);
    p->next = kp;
    keypair_free(d, p->prev);
    p->prev = NULL;
  }
  p->st.handshakes++;
  return 0;
}
