/*
 * The WireGuard primitives (whitepaper section 5.4), every one a call into a maintained library: no
 * cipher, hash or curve arithmetic is written here.
 *   HASH   BLAKE2s-256                      OpenSSL EVP_MD "BLAKE2S-256"
 *   HMAC   HMAC-BLAKE2s-256                 OpenSSL EVP_MAC "HMAC" (digest BLAKE2S-256)
 *   MAC    keyed BLAKE2s, 16-byte output    OpenSSL EVP_MAC "BLAKE2SMAC" (size 16)
 *   AEAD   ChaCha20-Poly1305 (RFC 7539)     OpenSSL EVP "ChaCha20-Poly1305" (libsodium's as fallback);
 *                                           the *_room variants: EVP "ChaCha20" + EVP_MAC "POLY1305"
 *   XAEAD  XChaCha20-Poly1305               libsodium crypto_aead_xchacha20poly1305_ietf_*
 *   DH     X25519                           libsodium crypto_scalarmult(_base)
 *   compare in constant time                libsodium sodium_memcmp
 * wg_crypto_init must succeed once before any other call (it is idempotent and thread-safe); every
 * function may then be called from any thread. No function allocates memory the caller must free.
 */
#ifndef WEFT_WG_CRYPTO_H
#define WEFT_WG_CRYPTO_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define WG_KEY_LEN 32
#define WG_HASH_LEN 32
#define WG_MAC_LEN 16
#define WG_TAG_LEN 16
#define WG_TAI64N_LEN 12
#define WG_XNONCE_LEN 24

/* 0, or -1 when libsodium or an OpenSSL algorithm is unavailable. */
int wg_crypto_init(void);

/* out = HASH(a || b); b may be NULL with blen 0. Returns 0 or -1. */
int wg_hash2(uint8_t out[WG_HASH_LEN], const void *a, size_t alen, const void *b, size_t blen);
/* out = HMAC(key, a || b). Returns 0 or -1. */
int wg_hmac2(uint8_t out[WG_HASH_LEN], const uint8_t key[WG_HASH_LEN], const void *a, size_t alen,
             const void *b, size_t blen);
/* out = MAC(key, data): keyed BLAKE2s with 16 bytes of output; keys are 32 bytes (MAC1, cookie
 * secret) or 16 (MAC2 keyed by a cookie). Returns 0 or -1. */
int wg_mac(uint8_t out[WG_MAC_LEN], const uint8_t *key, size_t keylen, const void *data,
           size_t len);
/* KDF_n (n = 1..3): t0 = HMAC(key, input); t1 = HMAC(t0, 0x1); t_i = HMAC(t0, t_{i-1} || i).
 * Outputs t1..tn into out1..outn (out2/out3 may be NULL when n is smaller). Returns 0 or -1. */
int wg_kdf(int n, uint8_t *out1, uint8_t *out2, uint8_t *out3, const uint8_t key[WG_HASH_LEN],
           const void *input, size_t len);

/* AEAD with the 96-bit nonce 0^32 || little-endian counter. out holds len + 16; in-place allowed. */
void wg_aead_seal(uint8_t *out, const uint8_t *in, size_t len, uint64_t counter,
                  const uint8_t key[WG_KEY_LEN], const uint8_t *ad, size_t adlen);
/* in holds len bytes (ciphertext + tag, len >= 16); out gets len - 16. 0, or -1 if it does not
 * authenticate (out is then unspecified). In-place allowed. */
int wg_aead_open(uint8_t *out, const uint8_t *in, size_t len, uint64_t counter,
                 const uint8_t key[WG_KEY_LEN], const uint8_t *ad, size_t adlen);
/* The same, for a key that carries an identity: key_id (nonzero) names this key alone for the life
 * of the process (wg_aead_key_id). A thread's context that already holds the key with that id skips
 * both the key setup and the comparison of key bytes, ~50 ns of a ~1.2 us 1424-byte seal here. */
void wg_aead_seal_id(uint8_t *out, const uint8_t *in, size_t len, uint64_t counter,
                     const uint8_t key[WG_KEY_LEN], uint64_t key_id);
int wg_aead_open_id(uint8_t *out, const uint8_t *in, size_t len, uint64_t counter,
                    const uint8_t key[WG_KEY_LEN], uint64_t key_id);
/* The same AEAD (empty AD, key with an identity), in place, for callers with room around the
 * message: fewer ChaCha20 calls per message (see wg_crypto.c).
 * seal: pt[-64..-1] is scratch (overwritten, then wiped: write the message header after sealing);
 *   pt[0..len) becomes the ciphertext, pt[len..len+16) the tag; the 63 bytes after pt + len must be
 *   writable (their content is left unspecified).
 * open: in holds len bytes (ciphertext + tag, len >= 16); 0 and the plaintext in place, or -1 (the
 *   tag is checked first: nothing is decrypted then). The 63 bytes after the ciphertext (its tag, and
 *   what follows) are read and written, then put back: no other thread may touch them meanwhile. */
void wg_aead_seal_room(uint8_t *pt, size_t len, uint64_t counter, const uint8_t key[WG_KEY_LEN],
                       uint64_t key_id);
int wg_aead_open_room(uint8_t *in, size_t len, uint64_t counter, const uint8_t key[WG_KEY_LEN],
                      uint64_t key_id);
/* open, out of place, in ONE ChaCha20 call: the 64 bytes before `in` are read (any content: block 0's
 *   key stream is recovered as output XOR input), as are the 63 after the ciphertext; out[-64..-1]
 *   and the 63 bytes after out + len - 16 are scratch. 0 and the plaintext at out[0..len-16), or -1
 *   (out then holds nothing but zeros). `in` is never written, so other threads may read around it. */
int wg_aead_open_to(uint8_t *out, const uint8_t *in, size_t len, uint64_t counter,
                    const uint8_t key[WG_KEY_LEN], uint64_t key_id);
/* seal, out of place, in ONE ChaCha20 call: the plaintext (len bytes, padded) is hdr[0..hdr_len),
 *   then in[hdr_len..data_len), then zeros up to len. in[-64..len+63) is read (the bytes standing
 *   for the header, the padding and the room around it may hold anything) and never written;
 *   out[-64..-1] is scratch (wiped), out[0..len) becomes the ciphertext, out[len..len+16) the tag,
 *   and the 63 bytes after out + len are scratch. */
void wg_aead_seal_to(uint8_t *out, const uint8_t *in, size_t len, size_t data_len,
                     const uint8_t *hdr, size_t hdr_len, uint64_t counter,
                     const uint8_t key[WG_KEY_LEN], uint64_t key_id);
#define WG_AEAD_ROOM_BEFORE 64
/* 1 when the room variants of the calling thread call the provider's ChaCha20 and POLY1305
 * directly, 0 when they go through EVP (a provider without those functions, or the environment
 * variable WEFT_WG_CRYPTO_EVP set when the process first used the crypto: tests of the fallback). */
int wg_aead_room_direct(void);
/* 1 when they call OpenSSL's ChaCha20 and Poly1305 primitives below the providers (found in the
 * process, e.g. Node's OpenSSL, and checked against libsodium at start; see wg_crypto.c). */
int wg_aead_room_raw(void);
#define WG_AEAD_ROOM_AFTER 63
/* A new key identity, never 0 and never handed out twice (any thread). */
uint64_t wg_aead_key_id(void);
void wg_xaead_seal(uint8_t *out, const uint8_t *in, size_t len, const uint8_t nonce[WG_XNONCE_LEN],
                   const uint8_t key[WG_KEY_LEN], const uint8_t *ad, size_t adlen);
int wg_xaead_open(uint8_t *out, const uint8_t *in, size_t len, const uint8_t nonce[WG_XNONCE_LEN],
                  const uint8_t key[WG_KEY_LEN], const uint8_t *ad, size_t adlen);

/* X25519. wg_dh returns -1 when the shared point is all zeros (a low-order public key). */
int wg_dh(uint8_t out[WG_KEY_LEN], const uint8_t priv[WG_KEY_LEN], const uint8_t pub[WG_KEY_LEN]);
int wg_pubkey(uint8_t pub[WG_KEY_LEN], const uint8_t priv[WG_KEY_LEN]);
/* A fresh clamped private key from the system's CSPRNG. */
void wg_genkey(uint8_t priv[WG_KEY_LEN]);
void wg_random(void *buf, size_t len);
uint32_t wg_random_u32(void);

/* TAI64N of the wall clock (seconds + 2^62 + 10, big endian; nanoseconds big endian, with the low 24
 * bits cleared as wireguard-go does so that the timestamp does not leak precise clock readings). */
void wg_tai64n(uint8_t out[WG_TAI64N_LEN]);

/* Constant-time equality: 1 if equal. */
int wg_equal(const void *a, const void *b, size_t len);
/* 1 if all len bytes are zero (constant time). */
int wg_is_zero(const void *a, size_t len);
/* Zeroes key material (not optimised away). */
void wg_wipe(void *p, size_t len);

#ifdef __cplusplus
}
#endif
#endif
