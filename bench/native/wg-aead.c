/*
 * wg-aead: ns per ChaCha20-Poly1305 seal/open of one WireGuard transport message (empty AD), the
 * ways native/src/wg_crypto.c could compose it from the maintained libraries:
 *   room      wg_aead_seal_room / wg_aead_open_room (OpenSSL ChaCha20 + Poly1305, in place)
 *   to        wg_aead_open_to (the same, out of place in one ChaCha20 call: the engine's open)
 *   evp       wg_aead_seal_id / wg_aead_open_id (OpenSSL's combined ChaCha20-Poly1305, key kept)
 *   sodium    libsodium's crypto_aead_chacha20poly1305_ietf_{encrypt,decrypt}_detached
 * Every variant checks its output against libsodium's (seal) or its success (open) first.
 *
 * Usage: wg-aead [bytes=1424] [iterations=200000]
 * Build: cc -O2 -I../../native/include -o wg-aead wg-aead.c ../../native/src/wg_crypto.c \
 *          -lsodium -lcrypto -lpthread
 */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "wg_crypto.h"

static double now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts); /* CPU time: the machine may be shared */
  return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static void nonce96(uint8_t n[12], uint64_t c) {
  memset(n, 0, 4);
  for (int i = 0; i < 8; i++) n[4 + i] = (uint8_t)(c >> (8 * i));
}

int main(int argc, char **argv) {
  size_t len = argc > 1 ? strtoul(argv[1], NULL, 10) : 1424;
  long iters = argc > 2 ? strtol(argv[2], NULL, 10) : 200000;
  if (wg_crypto_init() < 0 || len > 65536 || iters <= 0) return 2;
  uint8_t key[WG_KEY_LEN], n[12];
  wg_random(key, sizeof(key));
  uint64_t id = wg_aead_key_id();
  size_t cap = WG_AEAD_ROOM_BEFORE + len + WG_TAG_LEN + WG_AEAD_ROOM_AFTER + 64;
  uint8_t *buf = malloc(cap), *ref = malloc(len + WG_TAG_LEN), *pt = malloc(len);
  uint8_t *m = buf + WG_AEAD_ROOM_BEFORE;
  wg_random(pt, len);

  /* correctness: every variant seals to libsodium's bytes and opens back */
  nonce96(n, 7);
  crypto_aead_chacha20poly1305_ietf_encrypt_detached(ref, ref + len, NULL, pt, len, NULL, 0, NULL,
                                                     n, key);
  memcpy(m, pt, len);
  wg_aead_seal_room(m, len, 7, key, id);
  if (memcmp(m, ref, len + WG_TAG_LEN) != 0) return fprintf(stderr, "room seal differs\n"), 1;
  if (wg_aead_open_room(m, len + WG_TAG_LEN, 7, key, id) != 0 || memcmp(m, pt, len) != 0)
    return fprintf(stderr, "room open failed\n"), 1;
  wg_aead_seal_id(m, pt, len, 7, key, id);
  if (memcmp(m, ref, len + WG_TAG_LEN) != 0) return fprintf(stderr, "evp seal differs\n"), 1;

  double t0, t;
  printf("{\"bytes\": %zu", len);
  t0 = now_ns();
  for (long i = 0; i < iters; i++) wg_aead_seal_room(m, len, (uint64_t)i, key, id);
  t = (now_ns() - t0) / (double)iters;
  printf(", \"room_seal_ns\": %.0f", t);
  t0 = now_ns();
  for (long i = 0; i < iters; i++) {
    memcpy(m, ref, len + WG_TAG_LEN);
    if (wg_aead_open_room(m, len + WG_TAG_LEN, 7, key, id) != 0) return 1;
  }
  printf(", \"room_open_ns\": %.0f", (now_ns() - t0) / (double)iters);
  uint8_t *obuf = malloc(cap), *o = obuf + WG_AEAD_ROOM_BEFORE;
  memcpy(m, ref, len + WG_TAG_LEN);
  if (wg_aead_open_to(o, m, len + WG_TAG_LEN, 7, key, id) != 0 || memcmp(o, pt, len) != 0)
    return fprintf(stderr, "open_to failed\n"), 1;
  t0 = now_ns();
  for (long i = 0; i < iters; i++) {
    memcpy(m, ref, len + WG_TAG_LEN); /* as the others: the same copy in every loop */
    if (wg_aead_open_to(o, m, len + WG_TAG_LEN, 7, key, id) != 0) return 1;
  }
  printf(", \"to_open_ns\": %.0f", (now_ns() - t0) / (double)iters);
  free(obuf);
  t0 = now_ns();
  for (long i = 0; i < iters; i++) wg_aead_seal_id(m, m, len, (uint64_t)i, key, id);
  printf(", \"evp_seal_ns\": %.0f", (now_ns() - t0) / (double)iters);
  t0 = now_ns();
  for (long i = 0; i < iters; i++) {
    memcpy(m, ref, len + WG_TAG_LEN);
    if (wg_aead_open_id(m, m, len + WG_TAG_LEN, 7, key, id) != 0) return 1;
  }
  printf(", \"evp_open_ns\": %.0f", (now_ns() - t0) / (double)iters);
  t0 = now_ns();
  for (long i = 0; i < iters; i++) {
    nonce96(n, (uint64_t)i);
    crypto_aead_chacha20poly1305_ietf_encrypt_detached(m, m + len, NULL, m, len, NULL, 0, NULL, n,
                                                       key);
  }
  printf(", \"sodium_seal_ns\": %.0f", (now_ns() - t0) / (double)iters);
  nonce96(n, 7);
  t0 = now_ns();
  for (long i = 0; i < iters; i++) {
    memcpy(m, ref, len + WG_TAG_LEN);
    if (crypto_aead_chacha20poly1305_ietf_decrypt_detached(m, NULL, m, len, m + len, NULL, 0, n,
                                                           key) != 0)
      return 1;
  }
  printf(", \"sodium_open_ns\": %.0f", (now_ns() - t0) / (double)iters);
  t0 = now_ns();
  for (long i = 0; i < iters; i++) memcpy(m, ref, len + WG_TAG_LEN);
  printf(", \"memcpy_ns\": %.0f}\n", (now_ns() - t0) / (double)iters);
  free(buf);
  free(ref);
  free(pt);
  return 0;
}
