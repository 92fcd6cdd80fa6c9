/*
 * Fuzz target of every WireGuard message parser (wg_receive: initiation, response, cookie reply,
 * transport data), in libFuzzer form (LLVMFuzzerTestOneInput). Byte 0 picks the input:
 *   0: the bytes as a raw datagram;
 *   1-4: a VALID message of type 1-4 (made by a real peer in this process) with the input's
 *        remaining bytes XORed over it, so mutations reach past the MAC1 and AEAD checks' fronts.
 * Nothing may crash, read out of bounds (ASan) or deliver a packet that was modified.
 * `make fuzz-wg` runs it under libFuzzer (clang, FUZZ_SECONDS); `make check` runs the driver below.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wg.h"

static struct wg_device *A, *B;
static struct wg_peer *AB, *BA;
static struct wg_endpoint epA, epB;
static uint8_t last[2048];
static size_t last_len;
static uint64_t now = 1000 * WG_NS;

static void capture(void *ctx, const struct wg_endpoint *to, const uint8_t *m, size_t len) {
  (void)ctx;
  (void)to;
  if (len <= sizeof(last)) {
    memcpy(last, m, len);
    last_len = len;
  }
}
static struct wg_peer *allowed(void *ctx, int family, const uint8_t *addr) {
  (void)family;
  (void)addr;
  return ctx == (void *)&A ? AB : BA;
}

static void setup(void) {
  if (A) return;
  if (wg_crypto_init() < 0) abort();
  uint8_t a[32], b[32];
  wg_genkey(a);
  wg_genkey(b);
  A = wg_device_new(a, 1420, capture, allowed, &A, 0);
  B = wg_device_new(b, 1420, capture, allowed, &B, 1000000);
  memset(&epA, 0, sizeof(epA));
  epA.in4.sin_family = AF_INET;
  epA.in4.sin_port = htons(1);
  epB = epA;
  epB.in4.sin_port = htons(2);
  AB = wg_peer_set(A, B->pub, NULL, &epB, 0, now);
  BA = wg_peer_set(B, A->pub, NULL, &epA, 0, now);
}

static void one(const uint8_t *data, size_t size) {
  setup();
  if (size < 1) return;
  uint8_t buf[2048];
  struct wg_rx rx;
  now += WG_NS / 10;
  int kind = data[0] % 5;
  data++;
  size--;
  if (kind == 0) {
    if (size > sizeof(buf)) size = sizeof(buf);
    memcpy(buf, data, size);
    int r = wg_receive(B, &epA, buf, size, now, &rx);
    if (r == WG_RX_PACKET && (rx.pkt < buf || rx.pkt + rx.len > buf + size)) abort();
    return;
  }
  size_t len = 0;
  if (kind == 1) {
    if (wg_create_initiation(A, AB, buf, now) < 0) abort();
    len = WG_INITIATION_LEN;
  } else if (kind == 2 || kind == 3) {
    uint8_t init[WG_INITIATION_LEN];
    if (wg_create_initiation(A, AB, init, now) < 0) abort();
    /* B answers (response), or with the device under load, a cookie reply */
    B->load_threshold = kind == 3 ? 0 : 1000000;
    B->under_load_until = kind == 3 ? now + WG_NS : 0;
    BA->hs.last_init_consumed = 0;
    memset(BA->hs.latest_ts, 0, sizeof(BA->hs.latest_ts));
    last_len = 0;
    wg_receive(B, &epA, init, sizeof(init), now, &rx);
    B->load_threshold = 1000000;
    B->under_load_until = 0;
    if (!last_len) return;
    memcpy(buf, last, last_len);
    len = last_len;
    /* feed the (mutated) answer to A */
    for (size_t i = 0; i < size && i < len; i++) buf[i] ^= data[i];
    if (size > len + 1 && data[len] & 1) len = size - 1 < sizeof(buf) ? size - 1 : len;
    int r = wg_receive(A, &epB, buf, len, now, &rx);
    if (r == WG_RX_PACKET) abort(); /* handshakes never deliver packets */
    return;
  } else {
    uint64_t c;
    struct wg_keypair *kp = wg_tx_begin(A, AB, 1, now, &c);
    if (!kp) {
      /* establish a session A -> B */
      wg_send_initiation(A, AB, 0, now);
      BA->hs.last_init_consumed = 0;
      memset(BA->hs.latest_ts, 0, sizeof(BA->hs.latest_ts));
      if (last_len == WG_INITIATION_LEN) {
        uint8_t m[WG_INITIATION_LEN];
        memcpy(m, last, sizeof(m));
        last_len = 0;
        wg_receive(B, &epA, m, sizeof(m), now, &rx);
        if (last_len == WG_RESPONSE_LEN) {
          uint8_t r[WG_RESPONSE_LEN];
          memcpy(r, last, sizeof(r));
          wg_receive(A, &epB, r, sizeof(r), now, &rx);
        }
      }
      return;
    }
    static const uint8_t pkt[40] = {0x45, 0, 0, 40, 0, 0, 0, 0, 64, 17};
    memcpy(buf + WG_DATA_HDR_LEN, pkt, sizeof(pkt));
    size_t pl = wg_padded_len(A, sizeof(pkt));
    memset(buf + WG_DATA_HDR_LEN + sizeof(pkt), 0, pl - sizeof(pkt));
    len = wg_seal(kp, c, buf, pl);
  }
  int changed = 0;
  for (size_t i = 0; i < size && i < len; i++) {
    buf[i] ^= data[i];
    changed |= data[i];
  }
  if (size > len + 1 && data[len] & 1) { /* also vary the length */
    size_t nl = data[len + 1] % (len + 8);
    if (nl > len) memset(buf + len, data[len], nl - len);
    len = nl;
    changed = 1;
  }
  int r = wg_receive(B, &epA, buf, len, now, &rx);
  if (r == WG_RX_PACKET) {
    if (rx.pkt < buf || rx.pkt + rx.len > buf + len) abort();
    /* a modified ciphertext, header or tag must never authenticate (only the 3 reserved bytes and
     * counter bits are covered by other checks) */
    if (changed && kind == 4 && memcmp(rx.pkt, (const uint8_t[]){0x45, 0, 0, 40}, 4) != 0) abort();
  }
}

#ifdef WEFT_LIBFUZZER
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  one(data, size);
  return 0;
}
#else
/* Standalone driver: deterministic pseudo-random inputs (argv[1] = iterations). */
int main(int argc, char **argv) {
  unsigned long n = argc > 1 ? strtoul(argv[1], NULL, 10) : 20000;
  uint64_t s = 0x9e3779b97f4a7c15ULL;
  uint8_t in[400];
  for (unsigned long it = 0; it < n; it++) {
    s ^= s << 13;
    s ^= s >> 7;
    s ^= s << 17;
    size_t len = 1 + (size_t)(s % sizeof(in));
    uint64_t x = s;
    for (size_t i = 0; i < len; i++) {
      x = x * 6364136223846793005ULL + 1442695040888963407ULL;
      /* mostly sparse mutations, so valid messages stay nearly valid */
      in[i] = (x >> 60) == 0 ? (uint8_t)(x >> 32) : 0;
    }
    in[0] = (uint8_t)(s >> 8);
    one(in, len);
  }
  printf("fuzz_wg: %lu inputs\n", n);
  wg_device_free(A);
  wg_device_free(B);
  return 0;
}
#endif
