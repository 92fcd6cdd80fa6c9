/*
 * Unit tests of the WireGuard core (wg_crypto.c, wg_noise.c, wg_cookie.c, wg_session.c):
 * published vectors for the primitives, then two (or three) devices talking in-process through
 * queues: handshake both ways, transport data, replay and stale-session drops, unknown keys,
 * cryptokey routing, cookies under load, rate limiting of a flooding source, and the timers.
 */
#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "testlib.h"
#include "wg.h"

static void unhex(const char *s, uint8_t *out, size_t n) {
  size_t i = 0;
  while (*s && i < n) {
    if (*s == ' ' || *s == '\n') {
      s++;
      continue;
    }
    unsigned v;
    sscanf(s, "%2x", &v);
    out[i++] = (uint8_t)v;
    s += 2;
  }
  if (i != n) {
    fprintf(stderr, "unhex: %zu of %zu bytes\n", i, n);
    abort();
  }
}

#define CHECK_HEX(buf, hex)                              \
  do {                                                   \
    uint8_t _w[sizeof(hex) / 2];                         \
    unhex(hex, _w, sizeof(_w));                          \
    CHECK(memcmp((buf), _w, sizeof(_w)) == 0);           \
  } while (0)

/* ---- vectors ------------------------------------------------------------------------------------ */

static void test_vectors(void) {
  uint8_t out[32], k[32], k3[3][32];
  for (int i = 0; i < 32; i++) k[i] = (uint8_t)i;
  /* RFC 7693 appendix B: BLAKE2s-256("abc") */
  CHECK_EQ(wg_hash2(out, "abc", 3, NULL, 0), 0);
  CHECK_HEX(out, "508c5e8c327c14e2e1a72ba34eeb452f37458b209ed63a294d999b4c86675982");
  /* split input hashes the same */
  CHECK_EQ(wg_hash2(out, "a", 1, "bc", 2), 0);
  CHECK_HEX(out, "508c5e8c327c14e2e1a72ba34eeb452f37458b209ed63a294d999b4c86675982");
  /* keyed BLAKE2s-128 and HMAC-BLAKE2s, KDF: expected values computed with CPython's hashlib and
   * hmac (an independent BLAKE2 implementation) */
  CHECK_EQ(wg_mac(out, k, 32, "weft", 4), 0);
  CHECK_HEX(out, "846b87664aaac1d055cf10d14947e0b8");
  CHECK_EQ(wg_mac(out, k, 16, "weft", 4), 0);
  CHECK_HEX(out, "6af06171d13466d31ce52e9a1c30dad5");
  CHECK_EQ(wg_hmac2(out, k, "we", 2, "ft", 2), 0);
  CHECK_HEX(out, "d89553cbc67457639e5427bdfe3b848d31f1a3b4318fafc421ab5242c23b4479");
  CHECK_EQ(wg_kdf(3, k3[0], k3[1], k3[2], k, "in", 2), 0);
  CHECK_HEX(k3[0], "540b3bf07c384a92662f1f1f22cddd3a1b1ecfd48cd6b259b95fceac5a5b736b");
  CHECK_HEX(k3[1], "c3c08a2b6876d423e74eb7cd1ba9e44b5633091c51e950adcfc8a822a51a727d");
  CHECK_HEX(k3[2], "4aec318f00a4134757316bb9cf3fe1ed4c084e9858b0e6013844afaeb7312d6c");
  /* the protocol's initial chaining key and hash, as other implementations hard-code them
   * (boringtun's INITIAL_CHAIN_KEY / INITIAL_CHAIN_HASH) */
  static const uint8_t ck[32] = {96,  226, 109, 174, 243, 39,  239, 192, 46,  195, 53,
                                 226, 160, 37,  210, 208, 22,  235, 66,  6,   248, 114,
                                 119, 245, 45,  56,  209, 152, 139, 120, 205, 54};
  static const uint8_t ch[32] = {34,  17,  179, 97,  8,   26,  197, 102, 105, 18,  67,
                                 219, 69,  138, 213, 50,  45,  156, 108, 102, 34,  147,
                                 232, 183, 14,  225, 156, 101, 186, 7,   158, 243};
  static const char C[] = "Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s";
  static const char I[] = "WireGuard v1 zx2c4 Jason@zx2c4.com";
  CHECK_EQ(wg_hash2(out, C, sizeof(C) - 1, NULL, 0), 0);
  CHECK(memcmp(out, ck, 32) == 0);
  CHECK_EQ(wg_hash2(out, ck, 32, I, sizeof(I) - 1), 0);
  CHECK(memcmp(out, ch, 32) == 0);
  /* RFC 7748 section 6.1: X25519 */
  uint8_t a[32], b[32], ap[32], bp[32], s1[32], s2[32];
  unhex("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a", a, 32);
  unhex("5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb", b, 32);
  CHECK_EQ(wg_pubkey(ap, a), 0);
  CHECK_EQ(wg_pubkey(bp, b), 0);
  CHECK_HEX(ap, "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a");
  CHECK_HEX(bp, "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f");
  CHECK_EQ(wg_dh(s1, a, bp), 0);
  CHECK_EQ(wg_dh(s2, b, ap), 0);
  CHECK_HEX(s1, "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742");
  CHECK(memcmp(s1, s2, 32) == 0);
  uint8_t zero[32] = {0};
  CHECK_EQ(wg_dh(s1, a, zero), -1); /* low-order point: refused */
  /* RFC 7539 appendix A.5: ChaCha20-Poly1305 AEAD; the nonce 00000000 0102030405060708 is
   * WireGuard's layout (32 zero bits + little-endian counter) */
  static const char A5_CT[] =
      "64a08615 75861af4 60f062c7 9be643bd 5e805cfd 345cf389 f108670a c76c8cb2 4c6cfc18 755d43ee"
      "a09ee94e 382d26b0 bdb7b73c 321b0100 d4f03b7f 355894cf 332f830e 710b97ce 98c8a84a bd0b9481"
      "14ad176e 008d33bd 60f982b1 ff37c855 9797a06e f4f0ef61 c186324e 2b350638 3606907b 6a7c02b0"
      "f9f6157b 53c867e4 b9166c76 7b804d46 a59b5216 cde7a4e9 9040c5a4 0433225e e282a1b0 a06c523e"
      "af4534d7 f83fa115 5b004771 8cbc546a 0d072b04 b3564eea 1b422273 f548271a 0bb23160 53fa7699"
      "1955ebd6 3159434e cebb4e46 6dae5a10 73a67276 27097a10 49e617d9 1d361094 fa68f0ff 77987130"
      "305beaba 2eda04df 997b714d 6c6f2c29 a6ad5cb4 022b0270 9b"
      "eead9d67 890cbb22 392336fe a1851f38";
  static const char A5_PT[] =
      "Internet-Drafts are draft documents valid for a maximum of six months and may be "
      "updated, replaced, or obsoleted by other documents at any time. It is inappropriate to "
      "use Internet-Drafts as reference material or to cite them other than as /\xe2\x80\x9cwork "
      "in progress./\xe2\x80\x9d";
  uint8_t key[32], ad[12], ct[265 + 16], pt[265 + 16];
  unhex("1c9240a5eb55d38af333888604f6b5f0473917c1402b80099dca5cbc207075c0", key, 32);
  unhex("f33388860000000000004e91", ad, 12);
  unhex(A5_CT, ct, sizeof(ct));
  CHECK_EQ(sizeof(A5_PT) - 1, 265);
  uint64_t ctr = 0x0807060504030201ULL;
  CHECK_EQ(wg_aead_open(pt, ct, sizeof(ct), ctr, key, ad, 12), 0);
  CHECK(memcmp(pt, A5_PT, 265) == 0);
  wg_aead_seal(pt, (const uint8_t *)A5_PT, 265, ctr, key, ad, 12);
  CHECK(memcmp(pt, ct, sizeof(ct)) == 0);
  ct[10] ^= 1;
  CHECK_EQ(wg_aead_open(pt, ct, sizeof(ct), ctr, key, ad, 12), -1);
  /* XChaCha20-Poly1305 round trip (cookie replies) and tamper detection */
  uint8_t xn[24] = {1}, xc[16 + 16], xp[16];
  wg_xaead_seal(xc, k, 16, xn, key, ad, 12);
  CHECK_EQ(wg_xaead_open(xp, xc, sizeof(xc), xn, key, ad, 12), 0);
  CHECK(memcmp(xp, k, 16) == 0);
  xc[0] ^= 1;
  CHECK_EQ(wg_xaead_open(xp, xc, sizeof(xc), xn, key, ad, 12), -1);
  CHECK(wg_equal("abcd", "abcd", 4));
  CHECK(!wg_equal("abcd", "abce", 4));
}

/* The per-thread contexts keep their key between messages (wg_crypto.c): messages that alternate
 * keys, lengths and counters, after a failed open too, and keys known by bytes or by identity
 * (wg_aead_*_id) in turn, must still match libsodium's independent ChaCha20-Poly1305 byte for
 * byte, both ways. */
static void seal_k(int by_id, uint8_t *out, const uint8_t *in, size_t len, uint64_t ctr,
                   const uint8_t *key, uint64_t id) {
  if (by_id) {
    wg_aead_seal_id(out, in, len, ctr, key, id);
  } else {
    wg_aead_seal(out, in, len, ctr, key, NULL, 0);
  }
}
static int open_k(int by_id, uint8_t *out, const uint8_t *in, size_t len, uint64_t ctr,
                  const uint8_t *key, uint64_t id) {
  if (by_id) return wg_aead_open_id(out, in, len, ctr, key, id);
  return wg_aead_open(out, in, len, ctr, key, NULL, 0);
}

static void test_aead_key_cache(void) {
  uint8_t keys[3][32], pt[1500], ct[1500 + 16], ref[1500 + 16], back[1500];
  uint64_t ids[3];
  for (int k = 0; k < 3; k++) {
    randombytes_buf(keys[k], 32);
    ids[k] = wg_aead_key_id();
    CHECK(ids[k] != 0 && (k == 0 || ids[k] != ids[k - 1]));
  }
  randombytes_buf(pt, sizeof(pt));
  for (int i = 0; i < 300; i++) {
    int ki = (i / 3 + (i % 5 == 0)) % 3; /* runs of one key, then switches */
    const uint8_t *key = keys[ki];
    uint64_t id = ids[ki];
    int sid = (i / 2) % 2, oid = (i / 4) % 2; /* by identity or by bytes, in every combination */
    size_t len = (size_t)(i * 37) % 1421;
    uint64_t ctr = (uint64_t)i * 0x10001ULL;
    uint8_t n[12] = {0};
    for (int b = 0; b < 8; b++) n[4 + b] = (uint8_t)(ctr >> (8 * b));
    seal_k(sid, ct, pt, len, ctr, key, id);
    crypto_aead_chacha20poly1305_ietf_encrypt_detached(ref, ref + len, NULL, pt, len, NULL, 0, NULL,
                                                       n, key);
    CHECK(memcmp(ct, ref, len + 16) == 0);
    if (i % 7 == 0) { /* a forged message under the cached key, then the genuine one */
      ct[len] ^= 0x80;
      CHECK_EQ(open_k(oid, back, ct, len + 16, ctr, key, id), -1);
      ct[len] ^= 0x80;
    }
    if (i % 11 == 0) { /* the right message under the wrong counter */
      CHECK_EQ(open_k(oid, back, ct, len + 16, ctr + 1, key, id), -1);
    }
    CHECK_EQ(open_k(oid, back, ct, len + 16, ctr, key, id), 0);
    CHECK(len == 0 || memcmp(back, pt, len) == 0);
    int other = (ki + 1) % 3;
    CHECK_EQ(open_k(oid, back, ct, len + 16, ctr, keys[other], ids[other]), -1);
  }
}

/* The Linux kernel's replay-counter self-test sequence (drivers/net/wireguard/selftest/counter.c,
 * same window of 8192 - 64 bits), with its REJECT_AFTER_MESSAGES as the limit. */
/* The "room" variants (wg_aead_seal_room / wg_aead_open_room) are the same AEAD composed from
 * ChaCha20 and Poly1305: byte for byte libsodium's ChaCha20-Poly1305 for every length (tails of
 * 0..63 bytes past whole blocks, empty messages), keys switching by identity, forged tags, ciphertext
 * and counters refused without touching the message, and the slack after the ciphertext (its tag
 * and whatever follows, here a canary) put back as it was. The buffers are exactly as large as the
 * room the functions are allowed (AddressSanitizer checks every byte outside). */
static void test_aead_room(void) {
  /* the room variants run on the provider's functions directly unless the fallback is asked for
   * (make check runs this binary both ways) */
  const char *evp = getenv("WEFT_WG_CRYPTO_EVP");
  CHECK_EQ(wg_aead_room_direct(), evp ? 0 : 1);
  /* ... and on OpenSSL's raw primitives where the process exports them (test_wg_raw, as Node does) */
  CHECK_EQ(wg_aead_room_raw(), getenv("WEFT_WG_EXPECT_RAW") && !evp ? 1 : 0);
  enum { MAXLEN = 1500 };
  uint8_t keys[2][32], pt[MAXLEN], ref[MAXLEN + 16];
  uint64_t ids[2] = {wg_aead_key_id(), wg_aead_key_id()};
  randombytes_buf(keys, sizeof(keys));
  randombytes_buf(pt, sizeof(pt));
  for (int i = 0; i < 400; i++) {
    size_t len = i < 130 ? (size_t)i : (size_t)(i * 53) % (MAXLEN + 1);
    int ki = (i / 3) % 2;
    uint64_t ctr = (uint64_t)i * 0x1000003ULL + (i % 2 ? 0xfffffffffULL : 0);
    uint8_t n[12] = {0};
    for (int b = 0; b < 8; b++) n[4 + b] = (uint8_t)(ctr >> (8 * b));
    crypto_aead_chacha20poly1305_ietf_encrypt_detached(ref, ref + len, NULL, pt, len, NULL, 0, NULL,
                                                       n, keys[ki]);
    size_t size = WG_AEAD_ROOM_BEFORE + len + WG_TAG_LEN + WG_AEAD_ROOM_AFTER;
    uint8_t *buf = malloc(size), *m = buf + WG_AEAD_ROOM_BEFORE;
    CHECK(buf != NULL);
    if (!buf) return;
    memcpy(m, pt, len);
    wg_aead_seal_room(m, len, ctr, keys[ki], ids[ki]);
    CHECK(memcmp(m, ref, len + 16) == 0);
    uint8_t canary[WG_AEAD_ROOM_AFTER];
    randombytes_buf(canary, sizeof(canary));
    memcpy(m + len + 16, canary, sizeof(canary));
    /* forgeries: a flipped bit of the tag or of the ciphertext, a wrong counter, a wrong key */
    m[len + (size_t)i % 16] ^= 0x20;
    CHECK_EQ(wg_aead_open_room(m, len + 16, ctr, keys[ki], ids[ki]), -1);
    m[len + (size_t)i % 16] ^= 0x20;
    if (len) {
      m[(size_t)i % len] ^= 1;
      CHECK_EQ(wg_aead_open_room(m, len + 16, ctr, keys[ki], ids[ki]), -1);
      m[(size_t)i % len] ^= 1;
    }
    CHECK_EQ(wg_aead_open_room(m, len + 16, ctr + 1, keys[ki], ids[ki]), -1);
    CHECK_EQ(wg_aead_open_room(m, len + 16, ctr, keys[!ki], ids[!ki]), -1);
    CHECK(memcmp(m, ref, len + 16) == 0); /* a refused message is left as it came */
    CHECK_EQ(wg_aead_open_room(m, len + 16, ctr, keys[ki], ids[ki]), 0);
    CHECK(memcmp(m, pt, len) == 0);
    CHECK(memcmp(m + len, ref + len, 16) == 0);
    CHECK(memcmp(m + len + 16, canary, sizeof(canary)) == 0);
    free(buf);
  }
}

/* wg_aead_open_to: libsodium's plaintext for every length from any bytes before the ciphertext,
 * the input never written (the 64 bytes before it, the ciphertext, the tag and what follows),
 * forgeries refused with an all-zero output and block 0's key stream wiped from the scratch in
 * front of out. Buffers exactly as large as the room allowed (AddressSanitizer). */
static void test_aead_open_to(void) {
  enum { MAXLEN = 1500 };
  uint8_t keys[2][32], pt[MAXLEN];
  uint64_t ids[2] = {wg_aead_key_id(), wg_aead_key_id()};
  randombytes_buf(keys, sizeof(keys));
  randombytes_buf(pt, sizeof(pt));
  for (int i = 0; i < 400; i++) {
    size_t len = i < 130 ? (size_t)i : (size_t)(i * 53) % (MAXLEN + 1);
    int ki = (i / 5) % 2;
    uint64_t ctr = (uint64_t)i * 0x1000007ULL + (i % 2 ? 0xfffffffffULL : 0);
    uint8_t n[12] = {0};
    for (int b = 0; b < 8; b++) n[4 + b] = (uint8_t)(ctr >> (8 * b));
    size_t size = WG_AEAD_ROOM_BEFORE + len + WG_AEAD_ROOM_AFTER;
    uint8_t *ib = malloc(size), *ob = malloc(size), *copy = malloc(size);
    CHECK(ib && ob && copy);
    if (!ib || !ob || !copy) return;
    randombytes_buf(ib, size); /* whatever precedes and follows the message in a receive buffer */
    uint8_t *in = ib + WG_AEAD_ROOM_BEFORE, *out = ob + WG_AEAD_ROOM_BEFORE;
    crypto_aead_chacha20poly1305_ietf_encrypt_detached(in, in + len, NULL, pt, len, NULL, 0, NULL,
                                                       n, keys[ki]);
    memcpy(copy, ib, size);
    CHECK_EQ(wg_aead_open_to(out, in, len + 16, ctr, keys[ki], ids[ki]), 0);
    CHECK(memcmp(out, pt, len) == 0);
    CHECK(sodium_is_zero(ob, WG_AEAD_ROOM_BEFORE));
    CHECK(memcmp(ib, copy, size) == 0);
    /* forgeries: a flipped bit of the tag or of the ciphertext, a wrong counter, a wrong key */
    in[len + (size_t)i % 16] ^= 0x20;
    CHECK_EQ(wg_aead_open_to(out, in, len + 16, ctr, keys[ki], ids[ki]), -1);
    CHECK(sodium_is_zero(ob, WG_AEAD_ROOM_BEFORE + len));
    in[len + (size_t)i % 16] ^= 0x20;
    if (len) {
      in[(size_t)i % len] ^= 1;
      CHECK_EQ(wg_aead_open_to(out, in, len + 16, ctr, keys[ki], ids[ki]), -1);
      CHECK(sodium_is_zero(ob, WG_AEAD_ROOM_BEFORE + len));
      in[(size_t)i % len] ^= 1;
    }
    CHECK_EQ(wg_aead_open_to(out, in, len + 16, ctr + 1, keys[ki], ids[ki]), -1);
    CHECK_EQ(wg_aead_open_to(out, in, len + 16, ctr, keys[!ki], ids[!ki]), -1);
    CHECK(memcmp(ib, copy, size) == 0);
    CHECK_EQ(wg_aead_open_to(out, in, len + 16, ctr, keys[ki], ids[ki]), 0);
    CHECK(memcmp(out, pt, len) == 0);
    free(ib);
    free(ob);
    free(copy);
  }
  uint8_t s[WG_AEAD_ROOM_BEFORE + 15] = {0}, o[WG_AEAD_ROOM_BEFORE + 16];
  CHECK_EQ(wg_aead_open_to(o + WG_AEAD_ROOM_BEFORE, s + WG_AEAD_ROOM_BEFORE, 15, 0, keys[0], ids[0]),
           -1); /* shorter than a tag */
}

/* wg_aead_seal_to: libsodium's ciphertext and tag of hdr || in[hdr_len..data_len) || zeros for every
 * length, header length and padding, whatever the input holds where the header and padding go and
 * around it; the input never written, block 0's key stream wiped from the scratch in front of out,
 * and what it seals opens with wg_aead_open_to. Buffers exactly as large as the room allowed
 * (AddressSanitizer). */
static void test_aead_seal_to(void) {
  enum { MAXLEN = 1500 };
  uint8_t keys[2][32], pt[MAXLEN], hdr[MAXLEN], ref[MAXLEN + 16];
  uint64_t ids[2] = {wg_aead_key_id(), wg_aead_key_id()};
  randombytes_buf(keys, sizeof(keys));
  for (int i = 0; i < 400; i++) {
    size_t len = i < 130 ? (size_t)i : (size_t)(i * 53) % (MAXLEN + 1);
    size_t pad = len ? (size_t)i % (len < 16 ? len + 1 : 16) : 0, data_len = len - pad;
    size_t hdr_len = i % 3 == 0 ? 0 : (size_t)(i * 7) % (data_len + 1);
    int ki = (i / 5) % 2;
    uint64_t ctr = (uint64_t)i * 0x1000009ULL + (i % 2 ? 0xfffffffffULL : 0);
    uint8_t n[12] = {0};
    for (int b = 0; b < 8; b++) n[4 + b] = (uint8_t)(ctr >> (8 * b));
    size_t size = WG_AEAD_ROOM_BEFORE + len + WG_AEAD_ROOM_AFTER;
    uint8_t *ib = malloc(size), *ob = malloc(size), *copy = malloc(size), *back = malloc(size);
    CHECK(ib && ob && copy && back);
    if (!ib || !ob || !copy || !back) return;
    randombytes_buf(ib, size); /* the TUN buffer: other packets' bytes around the payload */
    randombytes_buf(ob, size);
    randombytes_buf(hdr, sizeof(hdr));
    uint8_t *in = ib + WG_AEAD_ROOM_BEFORE, *out = ob + WG_AEAD_ROOM_BEFORE;
    memcpy(pt, hdr, hdr_len);
    memcpy(pt + hdr_len, in + hdr_len, data_len - hdr_len);
    memset(pt + data_len, 0, pad);
    crypto_aead_chacha20poly1305_ietf_encrypt_detached(ref, ref + len, NULL, pt, len, NULL, 0, NULL,
                                                       n, keys[ki]);
    memcpy(copy, ib, size);
    wg_aead_seal_to(out, in, len, data_len, hdr, hdr_len, ctr, keys[ki], ids[ki]);
    CHECK(memcmp(out, ref, len + 16) == 0);
    CHECK(sodium_is_zero(ob, WG_AEAD_ROOM_BEFORE));
    CHECK(memcmp(ib, copy, size) == 0);
    uint8_t *o2 = back + WG_AEAD_ROOM_BEFORE;
    CHECK_EQ(wg_aead_open_to(o2, out, len + 16, ctr, keys[ki], ids[ki]), 0);
    CHECK(len == 0 || memcmp(o2, pt, len) == 0);
    free(ib);
    free(ob);
    free(copy);
    free(back);
  }
}

static void test_replay(void) {
  static struct wg_replay r;
  const uint64_t W = WG_REPLAY_WINDOW, LIM = W + 1, REJ = UINT64_MAX - W - 1;
#define T(n, v) CHECK_EQ(wg_replay_check(&r, (n), REJ), (v))
  wg_replay_init(&r);
  T(0, 1); T(1, 1); T(1, 0); T(9, 1); T(8, 1); T(7, 1); T(7, 0); T(LIM, 1); T(LIM - 1, 1);
  T(LIM - 1, 0); T(LIM - 2, 1); T(2, 1); T(2, 0); T(LIM + 16, 1); T(3, 0); T(LIM + 16, 0);
  T(LIM * 4, 1); T(LIM * 4 - (LIM - 1), 1); T(10, 0); T(LIM * 4 - LIM, 0);
  T(LIM * 4 - (LIM + 1), 0); T(LIM * 4 - (LIM - 2), 1); T(LIM * 4 + 1 - LIM, 0); T(0, 0);
  T(REJ, 0); T(REJ - 1, 1); T(REJ, 0); T(REJ - 1, 0); T(REJ - 2, 1); T(REJ + 1, 0); T(REJ + 2, 0);
  T(REJ - 2, 0); T(REJ - 3, 1); T(0, 0);
  wg_replay_init(&r);
  for (uint64_t i = 1; i <= W; i++) T(i, 1);
  T(0, 1); T(0, 0);
  wg_replay_init(&r);
  for (uint64_t i = 2; i <= W + 1; i++) T(i, 1);
  T(1, 1); T(0, 0);
  wg_replay_init(&r);
  for (uint64_t i = W + 1; i-- > 0;) T(i, 1);
  wg_replay_init(&r);
  for (uint64_t i = W + 2; i-- > 1;) T(i, 1);
  T(0, 0);
  wg_replay_init(&r);
  for (uint64_t i = W + 1; i-- > 1;) T(i, 1);
  T(W + 1, 1); T(0, 0);
  wg_replay_init(&r);
  for (uint64_t i = W + 1; i-- > 1;) T(i, 1);
  T(0, 1); T(W + 1, 1);
#undef T
}

/* ---- in-process network --------------------------------------------------------------------------- */

struct msg {
  struct wg_endpoint from, to;
  uint8_t buf[2048];
  size_t len;
};
#define QMAX 4096
static struct msg q[QMAX];
static size_t qn;

struct node {
  struct wg_device *d;
  struct wg_endpoint ep;
  uint8_t prefix[4]; /* allowed inner sources of the OTHER side map to its peer */
  struct wg_peer *peer_for_prefix[8];
  uint8_t prefixes[8][3];
  int nprefix;
  int delivered;
  uint8_t last[2048];
  size_t last_len;
};

static void net_send(void *ctx, const struct wg_endpoint *to, const uint8_t *m, size_t len) {
  struct node *n = ctx;
  if (qn == QMAX || len > sizeof(q[0].buf)) return;
  q[qn].from = n->ep;
  q[qn].to = *to;
  memcpy(q[qn].buf, m, len);
  q[qn].len = len;
  qn++;
}

static struct wg_peer *net_allowed(void *ctx, int family, const uint8_t *addr) {
  struct node *n = ctx;
  if (family != 4) return NULL;
  for (int i = 0; i < n->nprefix; i++) {
    if (memcmp(addr, n->prefixes[i], 3) == 0) return n->peer_for_prefix[i];
  }
  return NULL;
}

static struct wg_endpoint ep4(const char *ip, uint16_t port) {
  struct wg_endpoint e;
  memset(&e, 0, sizeof(e));
  e.in4.sin_family = AF_INET;
  e.in4.sin_port = htons(port);
  inet_pton(AF_INET, ip, &e.in4.sin_addr);
  return e;
}

static void node_init(struct node *n, const char *ip, uint32_t load) {
  memset(n, 0, sizeof(*n));
  uint8_t priv[32];
  wg_genkey(priv);
  n->ep = ep4(ip, 51820);
  n->d = wg_device_new(priv, 1420, net_send, net_allowed, n, load);
  CHECK(n->d != NULL);
}

static void node_allow(struct node *n, struct wg_peer *p, uint8_t a, uint8_t b, uint8_t c) {
  n->peer_for_prefix[n->nprefix] = p;
  n->prefixes[n->nprefix][0] = a;
  n->prefixes[n->nprefix][1] = b;
  n->prefixes[n->nprefix][2] = c;
  n->nprefix++;
}

static struct node *nodes[4];
static int nnodes;
static uint64_t now_ns = 1000 * WG_NS;

/* Transport data the way the loop receives it: prepare, open out of place into a slot
 * (wg_aead_open_to, room around both buffers as the loop gives it), finish. */
static int receive_to(struct wg_device *d, const struct wg_endpoint *from, const uint8_t *m,
                      size_t len, struct wg_rx *rx) {
  static uint8_t rb[WG_AEAD_ROOM_BEFORE + 2048 + WG_AEAD_ROOM_AFTER];
  static uint8_t ob[WG_AEAD_ROOM_BEFORE + 2048 + WG_AEAD_ROOM_AFTER];
  uint8_t *msg = rb + WG_AEAD_ROOM_BEFORE;
  randombytes_buf(rb, sizeof(rb)); /* whatever surrounds it in a receive buffer */
  memcpy(msg, m, len);
  struct wg_rx_job job;
  if (!wg_rx_prepare(d, msg, len, now_ns, &job)) return WG_RX_DROP;
  CHECK(job.out == NULL);
  job.out = ob + WG_AEAD_ROOM_BEFORE;
  wg_rx_decrypt(&job);
  int r = wg_rx_finish(d, from, &job, now_ns, rx);
  if (r == WG_RX_PACKET) CHECK(rx->pkt == job.out);
  CHECK(memcmp(msg, m, len) == 0); /* the receive buffer is only read */
  return r;
}

/* Delivers queued messages until quiet; messages to unknown endpoints are lost. Every other
 * transport message takes the loop's out-of-place path (receive_to), the rest wg_receive. */
static int pump(int max) {
  static unsigned turn;
  int delivered = 0;
  while (qn && max-- > 0) {
    struct msg m = q[0];
    memmove(q, q + 1, (qn - 1) * sizeof(q[0]));
    qn--;
    for (int i = 0; i < nnodes; i++) {
      if (!wg_endpoint_equal(&nodes[i]->ep, &m.to)) continue;
      struct wg_rx rx;
      int data = m.len >= WG_DATA_MIN_LEN && m.buf[0] == WG_MSG_DATA;
      int r = data && (turn++ & 1) ? receive_to(nodes[i]->d, &m.from, m.buf, m.len, &rx)
                                   : wg_receive(nodes[i]->d, &m.from, m.buf, m.len, now_ns, &rx);
      if (r == WG_RX_PACKET) {
        nodes[i]->delivered++;
        memcpy(nodes[i]->last, rx.pkt, rx.len);
        nodes[i]->last_len = rx.len;
      }
      delivered++;
    }
  }
  return delivered;
}

static size_t ipv4(uint8_t *p, const char *src, const char *dst, const char *payload) {
  size_t pl = strlen(payload), len = 20 + pl;
  memset(p, 0, 20);
  p[0] = 0x45;
  p[2] = (uint8_t)(len >> 8);
  p[3] = (uint8_t)len;
  p[8] = 64;
  p[9] = 17;
  inet_pton(AF_INET, src, p + 12);
  inet_pton(AF_INET, dst, p + 16);
  memcpy(p + 20, payload, pl);
  return len;
}

static struct node A, B, C;
static struct wg_peer *AB, *BA; /* A's peer entry for B, B's for A */

static void setup_pair(uint32_t load_b) {
  qn = 0;
  node_init(&A, "198.18.0.1", 0);
  node_init(&B, "198.18.0.2", load_b);
  nodes[0] = &A;
  nodes[1] = &B;
  nnodes = 2;
  AB = wg_peer_set(A.d, B.d->pub, NULL, &B.ep, 0, now_ns);
  BA = wg_peer_set(B.d, A.d->pub, NULL, &A.ep, 0, now_ns);
  CHECK(AB && BA);
  node_allow(&A, AB, 10, 0, 2);
  node_allow(&B, BA, 10, 0, 1);
}

static void teardown_pair(void) {
  wg_device_free(A.d);
  wg_device_free(B.d);
  qn = 0;
}

/* Sends an inner packet from n to peer p the way the loop does: fast path or staging. */
static void send_pkt(struct node *n, struct wg_peer *p, const uint8_t *pkt, size_t len) {
  uint64_t c;
  struct wg_keypair *kp = wg_tx_begin(n->d, p, 1, now_ns, &c);
  if (!kp) {
    wg_stage(n->d, p, pkt, len, now_ns);
    return;
  }
  uint8_t buf[2048];
  size_t pl = wg_padded_len(n->d, len);
  memcpy(buf + WG_DATA_HDR_LEN, pkt, len);
  memset(buf + WG_DATA_HDR_LEN + len, 0, pl - len);
  size_t m = wg_seal(kp, c, buf, pl);
  net_send(n, &p->ep, buf, m);
  wg_tx_done(n->d, p, kp, 1, m, now_ns);
}

static void test_handshake_and_data(void) {
  setup_pair(0);
  uint8_t pkt[128];
  size_t len = ipv4(pkt, "10.0.1.2", "10.0.2.2", "hello-from-A");
  send_pkt(&A, AB, pkt, len); /* no session: staged, initiation sent */
  CHECK_EQ(AB->nstaged, 1);
  CHECK_EQ(A.d->st.tx_handshake, 1);
  pump(100);
  CHECK_EQ(B.delivered, 1);
  CHECK_EQ(B.last_len, (len + 15) & ~15u);
  CHECK(memcmp(B.last, pkt, len) == 0);
  CHECK(AB->cur && AB->cur->initiator);
  CHECK(BA->cur && !BA->cur->initiator); /* confirmed by A's data: next -> current */
  CHECK(BA->next == NULL);
  CHECK(AB->st.last_handshake_sec > 0 && BA->st.last_handshake_sec > 0);
  /* B answers on the fast path */
  len = ipv4(pkt, "10.0.2.2", "10.0.1.2", "hello-from-B");
  send_pkt(&B, BA, pkt, len);
  pump(100);
  CHECK_EQ(A.delivered, 1);
  CHECK(memcmp(A.last, pkt, len) == 0);
  /* many packets, counters advance, all delivered */
  for (int i = 0; i < 100; i++) send_pkt(&A, AB, pkt, ipv4(pkt, "10.0.1.2", "10.0.2.2", "bulk"));
  pump(1000);
  CHECK_EQ(B.delivered, 101);
  CHECK_EQ(AB->st.tx_packets, 101);
  CHECK_EQ(BA->st.rx_packets, 101);
  /* the responder's peer learnt A's endpoint; A's sessions count one handshake */
  CHECK_EQ(AB->st.handshakes, 1);
  CHECK_EQ(BA->st.handshakes, 1);
  teardown_pair();
}

static void test_responder_initiates(void) {
  setup_pair(0);
  uint8_t pkt[128];
  size_t len = ipv4(pkt, "10.0.2.7", "10.0.1.7", "B-first");
  send_pkt(&B, BA, pkt, len);
  pump(100);
  CHECK_EQ(A.delivered, 1);
  CHECK(BA->cur && BA->cur->initiator);
  teardown_pair();
}

/* Both hosts initiate as they learn of each other and the initiations cross: each consumes the
 * other's, both responses are unmatched, both hold only an unconfirmed responder session. The side
 * with the greater public key starts again after WG_RACE_RETRY, not REKEY_TIMEOUT (5 s) later. */
static void test_crossed_initiations(void) {
  setup_pair(0);
  struct node *hi = memcmp(A.d->pub, B.d->pub, WG_KEY_LEN) > 0 ? &A : &B;
  struct node *lo = hi == &A ? &B : &A;
  struct wg_peer *hi_p = hi == &A ? AB : BA, *lo_p = hi == &A ? BA : AB;
  wg_send_initiation(A.d, AB, 0, now_ns);
  wg_send_initiation(B.d, BA, 0, now_ns);
  CHECK_EQ(qn, 2);
  pump(100);
  CHECK(AB->cur == NULL && BA->cur == NULL); /* neither completed its own */
  CHECK(AB->next != NULL && BA->next != NULL);
  CHECK_EQ(A.d->st.drop_handshake + B.d->st.drop_handshake, 2); /* both responses unmatched */
  uint8_t pkt[64];
  size_t len = ipv4(pkt, "10.0.1.2", "10.0.2.2", "after-race");
  send_pkt(&A, AB, pkt, len); /* staged: no session to send with yet */
  CHECK_EQ(qn, 0);
  usleep(20000); /* a newer TAI64N timestamp for the next initiation */
  now_ns += WG_RACE_RETRY;
  wg_tick(lo->d, now_ns);
  CHECK_EQ(qn, 0); /* the smaller key only answers */
  wg_tick(hi->d, now_ns);
  CHECK_EQ(qn, 1); /* the greater key initiates again, long before REKEY_TIMEOUT */
  pump(100);
  CHECK(hi_p->cur && hi_p->cur->initiator);
  CHECK(lo_p->cur && !lo_p->cur->initiator);
  CHECK_EQ(B.delivered, 1); /* A's staged packet went out once the session was up */
  CHECK(hi_p->race_retry == 0 && hi_p->t_retransmit == 0);
  teardown_pair();
}

static void test_replay_stale_unknown(void) {
  setup_pair(0);
  uint8_t pkt[128];
  size_t len = ipv4(pkt, "10.0.1.2", "10.0.2.2", "x");
  send_pkt(&A, AB, pkt, len);
  pump(100);
  CHECK_EQ(B.delivered, 1);
  /* capture one data message and deliver it twice */
  send_pkt(&A, AB, pkt, len);
  CHECK_EQ(qn, 1);
  struct msg copy = q[0];
  pump(10);
  CHECK_EQ(B.delivered, 2);
  q[qn++] = copy;
  pump(10);
  CHECK_EQ(B.delivered, 2);
  CHECK_EQ(B.d->st.drop_replay, 1);
  CHECK_EQ(BA->st.drop_replay, 1);
  /* tampered: does not authenticate */
  send_pkt(&A, AB, pkt, len);
  q[0].buf[20] ^= 0x40;
  pump(10);
  CHECK_EQ(B.d->st.drop_decrypt, 1);
  /* unknown receiver index: stale */
  send_pkt(&A, AB, pkt, len);
  q[0].buf[4] ^= 0xff;
  pump(10);
  CHECK_EQ(B.d->st.drop_stale, 1);
  /* a session older than REJECT_AFTER_TIME: stale on both ends */
  send_pkt(&A, AB, pkt, len);
  now_ns += WG_REJECT_AFTER_TIME + WG_NS;
  pump(10);
  CHECK_EQ(B.d->st.drop_stale, 2);
  uint64_t c;
  CHECK(wg_tx_begin(A.d, AB, 1, now_ns, &c) == NULL);
  /* inner source outside the sender's allowed IPs */
  now_ns += WG_NS;
  qn = 0;
  usleep(20000); /* a new initiation needs a newer (whitened) TAI64N timestamp */
  len = ipv4(pkt, "10.0.9.9", "10.0.2.2", "spoof");
  send_pkt(&A, AB, pkt, len);
  pump(100);
  CHECK_EQ(B.delivered, 2);
  CHECK_EQ(B.d->st.drop_allowed_ips, 1);
  CHECK_EQ(AB->st.handshakes, 2);
  teardown_pair();
  /* an initiation from a key B has no peer for */
  setup_pair(0);
  node_init(&C, "198.18.0.3", 0);
  nodes[2] = &C;
  nnodes = 3;
  struct wg_peer *CB = wg_peer_set(C.d, B.d->pub, NULL, &B.ep, 0, now_ns);
  node_allow(&C, CB, 10, 0, 2);
  send_pkt(&C, CB, pkt, ipv4(pkt, "10.0.3.2", "10.0.2.2", "who"));
  pump(100);
  CHECK_EQ(B.d->st.drop_unknown_key, 1);
  CHECK(memcmp(B.d->unknown.pub, C.d->pub, 32) == 0);
  CHECK(wg_endpoint_equal(&B.d->unknown.from, &C.ep));
  CHECK_EQ(B.delivered, 0);
  /* a message for another key fails MAC1 (cheap reject) */
  uint8_t init[WG_INITIATION_LEN];
  struct wg_peer *CA = wg_peer_set(C.d, A.d->pub, NULL, &A.ep, 0, now_ns);
  CHECK_EQ(wg_create_initiation(C.d, CA, init, now_ns), 0);
  struct wg_rx rx;
  CHECK_EQ(wg_receive(B.d, &C.ep, init, sizeof(init), now_ns, &rx), WG_RX_DROP);
  CHECK_EQ(B.d->st.drop_mac1, 1);
  /* replayed initiation: same timestamp, rejected */
  qn = 0;
  CHECK_EQ(wg_create_initiation(A.d, AB, init, now_ns), 0);
  uint8_t again[WG_INITIATION_LEN];
  memcpy(again, init, sizeof(init));
  CHECK_EQ(wg_receive(B.d, &A.ep, init, sizeof(init), now_ns, &rx), WG_RX_CONTROL);
  uint64_t before = B.d->st.drop_handshake;
  now_ns += WG_NS;
  CHECK_EQ(wg_receive(B.d, &A.ep, again, sizeof(again), now_ns, &rx), WG_RX_DROP);
  CHECK_EQ(B.d->st.drop_handshake, before + 1);
  wg_device_free(C.d);
  nnodes = 2;
  teardown_pair();
}

static void test_psk(void) {
  setup_pair(0);
  uint8_t psk[32], other[32];
  wg_random(psk, 32);
  wg_random(other, 32);
  wg_peer_set(A.d, B.d->pub, psk, NULL, 0, now_ns);
  wg_peer_set(B.d, A.d->pub, psk, NULL, 0, now_ns);
  uint8_t pkt[64];
  send_pkt(&A, AB, pkt, ipv4(pkt, "10.0.1.2", "10.0.2.2", "psk"));
  pump(100);
  CHECK_EQ(B.delivered, 1);
  /* mismatching PSK: the response does not authenticate at A */
  now_ns += WG_NS;
  usleep(20000);
  wg_peer_set(B.d, A.d->pub, other, NULL, 0, now_ns);
  CHECK(BA->cur == NULL); /* sessions dropped with the key change */
  uint64_t before = A.d->st.drop_handshake;
  wg_send_initiation(B.d, BA, 0, now_ns);
  pump(100);
  CHECK_EQ(B.d->st.drop_handshake + A.d->st.drop_handshake, before + 1);
  CHECK(BA->cur == NULL);
  teardown_pair();
}

static void test_cookie_under_load(void) {
  setup_pair(4);
  /* attacker X knows B's public key (it is public) and floods initiations from one address */
  struct node X;
  node_init(&X, "198.18.0.66", 0);
  nodes[2] = &X;
  nnodes = 3;
  struct wg_peer *XB = wg_peer_set(X.d, B.d->pub, NULL, &B.ep, 0, now_ns);
  uint8_t init[WG_INITIATION_LEN];
  struct wg_rx rx;
  for (int i = 0; i < 50; i++) {
    wg_create_initiation(X.d, XB, init, now_ns);
    wg_receive(B.d, &X.ep, init, sizeof(init), now_ns, &rx);
  }
  CHECK(B.d->st.tx_cookie >= 40); /* over the threshold: cookie replies, no DH */
  CHECK_EQ(B.d->st.drop_unknown_key, 4);
  /* X learns its cookie (it receives at its address) and floods with a valid MAC2: rate-limited */
  qn = 0;
  wg_create_initiation(X.d, XB, init, now_ns);
  wg_receive(B.d, &X.ep, init, sizeof(init), now_ns, &rx);
  CHECK_EQ(qn, 1);
  CHECK_EQ(wg_receive(X.d, &B.ep, q[0].buf, q[0].len, now_ns, &rx), WG_RX_CONTROL);
  qn = 0;
  uint64_t unknown0 = B.d->st.drop_unknown_key;
  for (int i = 0; i < 50; i++) {
    wg_create_initiation(X.d, XB, init, now_ns);
    wg_receive(B.d, &X.ep, init, sizeof(init), now_ns, &rx);
  }
  CHECK_EQ(B.d->st.drop_unknown_key - unknown0, 5); /* the burst */
  CHECK_EQ(B.d->st.drop_ratelimited, 45);
  /* A, from another address, still gets through: cookie first, then MAC2 on the retry */
  qn = 0;
  uint8_t pkt[64];
  send_pkt(&A, AB, pkt, ipv4(pkt, "10.0.1.2", "10.0.2.2", "through"));
  pump(10); /* initiation -> cookie reply -> A stores the cookie */
  CHECK_EQ(B.delivered, 0);
  CHECK(AB->cookie_time != 0);
  now_ns += WG_REKEY_TIMEOUT + WG_NS / 2; /* retransmit timer; keep B under load */
  for (int i = 0; i < 10; i++) {
    wg_create_initiation(X.d, XB, init, now_ns);
    wg_receive(B.d, &X.ep, init, sizeof(init), now_ns, &rx);
  }
  qn = 0;
  wg_tick(A.d, now_ns);
  CHECK_EQ(A.d->st.tx_handshake, 2);
  pump(100);
  CHECK_EQ(B.delivered, 1);
  CHECK(B.d->st.under_load > 0);
  wg_device_free(X.d);
  nnodes = 2;
  teardown_pair();
}

static void test_timers(void) {
  setup_pair(0);
  uint8_t pkt[64];
  size_t len = ipv4(pkt, "10.0.1.2", "10.0.2.2", "t");
  /* no answer: retransmits every REKEY_TIMEOUT, gives up after REKEY_ATTEMPT_TIME */
  nnodes = 1; /* B unreachable */
  send_pkt(&A, AB, pkt, len);
  qn = 0;
  for (int i = 0; i < 25; i++) {
    now_ns += WG_REKEY_TIMEOUT + WG_NS / 2;
    wg_tick(A.d, now_ns);
  }
  CHECK_EQ(A.d->st.tx_handshake, 1 + WG_MAX_TIMER_HANDSHAKES + 1);
  CHECK_EQ(AB->nstaged, 0); /* staged packets dropped */
  CHECK_EQ(A.d->st.drop_no_session, 1);
  nnodes = 2;
  qn = 0;
  /* a session, then B (which received data and sent none) sends a keepalive after 10 s */
  usleep(20000);
  now_ns += WG_NS;
  send_pkt(&A, AB, pkt, len);
  pump(100);
  CHECK_EQ(B.delivered, 1);
  uint64_t b_tx = B.d->st.tx_data;
  now_ns += WG_KEEPALIVE_TIMEOUT + WG_NS / 10;
  wg_tick(B.d, now_ns);
  CHECK_EQ(qn, 1);
  CHECK_EQ(q[0].len, WG_DATA_MIN_LEN);
  CHECK_EQ(B.d->st.tx_data, b_tx); /* a keepalive is not data */
  pump(10);
  /* A sent data and heard nothing back for 15 s: new handshake */
  send_pkt(&A, AB, pkt, len);
  qn = 0; /* lost */
  uint64_t hs = A.d->st.tx_handshake;
  now_ns += WG_KEEPALIVE_TIMEOUT + WG_REKEY_TIMEOUT + WG_NS / 2;
  wg_tick(A.d, now_ns);
  CHECK_EQ(A.d->st.tx_handshake, hs + 1);
  qn = 0;
  /* rekey after time: the initiator's session is 120 s old, sending starts a handshake */
  usleep(20000);
  now_ns += WG_REKEY_TIMEOUT;
  AB->t_retransmit = 0;
  wg_send_initiation(A.d, AB, 0, now_ns);
  pump(100);
  CHECK(AB->cur != NULL);
  struct wg_keypair *first = AB->cur;
  now_ns += WG_REKEY_AFTER_TIME + WG_NS;
  hs = A.d->st.tx_handshake;
  usleep(20000);
  send_pkt(&A, AB, pkt, len);
  CHECK_EQ(A.d->st.tx_handshake, hs + 1);
  pump(100);
  CHECK(AB->cur != first && AB->prev == first); /* rotated, old one kept as previous */
  /* persistent keepalive */
  qn = 0;
  wg_peer_set(A.d, B.d->pub, NULL, NULL, 25, now_ns);
  wg_tick(A.d, now_ns + 1);
  CHECK_EQ(qn, 1);
  pump(10);
  now_ns += 25 * WG_NS + 1;
  wg_tick(A.d, now_ns + 1);
  CHECK_EQ(qn, 1);
  qn = 0;
  /* keys are zeroed after 3 x REJECT_AFTER_TIME without a new session */
  now_ns += 3 * WG_REJECT_AFTER_TIME + WG_NS;
  wg_peer_set(A.d, B.d->pub, NULL, NULL, 0, now_ns);
  wg_tick(A.d, now_ns);
  CHECK(AB->cur == NULL && AB->prev == NULL);
  teardown_pair();
}

static void test_padding(void) {
  setup_pair(0);
  CHECK_EQ(wg_padded_len(A.d, 0), 0);
  CHECK_EQ(wg_padded_len(A.d, 1), 16);
  CHECK_EQ(wg_padded_len(A.d, 16), 16);
  CHECK_EQ(wg_padded_len(A.d, 1419), 1420); /* never beyond the MTU */
  CHECK_EQ(wg_padded_len(A.d, 1420), 1420);
  CHECK_EQ(wg_padded_len(A.d, 1401), 1408);
  teardown_pair();
}

int main(void) {
  CHECK_EQ(wg_crypto_init(), 0);
  RUN(test_vectors);
  RUN(test_aead_key_cache);
  RUN(test_aead_room);
  RUN(test_aead_open_to);
  RUN(test_aead_seal_to);
  RUN(test_replay);
  RUN(test_padding);
  RUN(test_handshake_and_data);
  RUN(test_responder_initiates);
  RUN(test_crossed_initiations);
  RUN(test_replay_stale_unknown);
  RUN(test_psk);
  RUN(test_cookie_under_load);
  RUN(test_timers);
  TL_DONE("test_wg");
}
