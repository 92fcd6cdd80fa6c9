// N-API glue of the WireGuard engine (wg_loop.h): class WgDevice plus key helpers. Same rules as
// addon.cc: argument checks, Node-shaped errno errors, no C++ exceptions; the only foreign-thread
// entry is the loop's fatal-error notification through an unref'd threadsafe function.
#include <napi.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <vector>

#include "napi_util.h"
#include "wg_crypto.h"
#include "wg_loop.h"

namespace weft_wg {

namespace {

using weft_napi::ErrnoError;
using weft_napi::FamilyAddr;
using weft_napi::IsBuf;
using weft_napi::TypeErr;

// wgGenerateKey(): Buffer(32) — a fresh clamped X25519 private key (libsodium's CSPRNG).
Napi::Value GenerateKey(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  if (wg_crypto_init() < 0) return ErrnoError(env, ENOSYS, "wg_crypto_init", "crypto unavailable");
  uint8_t k[32];
  wg_genkey(k);
  Napi::Buffer<uint8_t> b = Napi::Buffer<uint8_t>::Copy(env, k, 32);
  wg_wipe(k, sizeof(k));
  return b;
}

// wgPublicKey(privateKey: Buffer(32)): Buffer(32)
Napi::Value PublicKey(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !IsBuf(info[0], 32)) return TypeErr(env, "wgPublicKey(privateKey: Buffer(32))");
  if (wg_crypto_init() < 0) return ErrnoError(env, ENOSYS, "wg_crypto_init", "crypto unavailable");
  uint8_t pub[32];
  if (wg_pubkey(pub, info[0].As<Napi::Buffer<uint8_t>>().Data()) < 0) {
    return ErrnoError(env, EINVAL, "wgPublicKey", "invalid private key");
  }
  return Napi::Buffer<uint8_t>::Copy(env, pub, 32);
}

class WgDevice : public Napi::ObjectWrap<WgDevice> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "WgDevice",
                       {InstanceMethod("setPeer", &WgDevice::SetPeer),
                        InstanceMethod("deletePeer", &WgDevice::DeletePeer),
                        InstanceMethod("initiate", &WgDevice::Initiate),
                        InstanceMethod("setAllowedIp", &WgDevice::SetAllowedIp),
                        InstanceMethod("deleteAllowedIp", &WgDevice::DeleteAllowedIp),
                        InstanceMethod("snapshot", &WgDevice::Snapshot),
                        InstanceMethod("publicKey", &WgDevice::PublicKeyOf),
                        InstanceMethod("localPort", &WgDevice::LocalPort),
                        InstanceMethod("close", &WgDevice::Close)});
  }

  // new WgDevice(tunFd, family: 4|6, bindIp: Buffer(4|16), port, mtu, privateKey: Buffer(32),
  //              loadThreshold: number, onFatal: function)
  explicit WgDevice(const Napi::CallbackInfo &info) : Napi::ObjectWrap<WgDevice>(info) {
    Napi::Env env = info.Env();
    const char *usage =
        "WgDevice(tunFd: number, family: 4|6, bindIp: Buffer(4|16), port: number, mtu: number, "
        "privateKey: Buffer(32), loadThreshold: number, onFatal: function)";
    if (info.Length() < 8 || !info[0].IsNumber() || !info[1].IsNumber() || !info[2].IsBuffer() ||
        !info[3].IsNumber() || !info[4].IsNumber() || !IsBuf(info[5], 32) || !info[6].IsNumber() ||
        !info[7].IsFunction()) {
      TypeErr(env, usage);
      return;
    }
    wgl_config cfg{};
    Napi::Buffer<uint8_t> bind;
    if (!FamilyAddr(info, 1, 2, "WgDevice", "bindIp", &cfg.family, &bind)) return;
    if (!fatal_.Create(env, info[7], "weft.wireguard.fatal", "WireGuard device")) return;
    cfg.tun_fd = info[0].As<Napi::Number>().Int32Value();
    memcpy(cfg.bind_ip, bind.Data(), bind.Length());
    cfg.port = static_cast<uint16_t>(info[3].As<Napi::Number>().Uint32Value());
    cfg.mtu = static_cast<uint16_t>(info[4].As<Napi::Number>().Uint32Value());
    memcpy(cfg.priv, info[5].As<Napi::Buffer<uint8_t>>().Data(), 32);
    cfg.load_threshold = info[6].As<Napi::Number>().Uint32Value();
    cfg.on_fatal = weft_napi::FatalNotifier::OnFatal;
    cfg.ctx = &fatal_;
    const char *syscall = "wgl_open";
    int rc = wgl_open(&cfg, &w_, &syscall);
    wg_wipe(cfg.priv, sizeof(cfg.priv));
    if (rc < 0) {
      w_ = nullptr;
      fatal_.Abort();
      ErrnoError(env, -rc, syscall, "cannot start the WireGuard device");
      return;
    }
    env_ = env;
    napi_add_env_cleanup_hook(env, Teardown, this);
  }

  ~WgDevice() override { Shutdown(true); }

 private:
  void Shutdown(bool remove_hook) {
    if (w_ != nullptr) {
      wgl_close(w_);
      w_ = nullptr;
      if (remove_hook) napi_remove_env_cleanup_hook(env_, Teardown, this);
    }
    fatal_.Release();
  }

  static void Teardown(void *arg) {
    WgDevice *self = static_cast<WgDevice *>(arg);
    if (self->w_ != nullptr) {
      wgl_close(self->w_);
      self->w_ = nullptr;
    }
    self->fatal_.Forget();  // finalized by the environment's own teardown
  }

  bool CheckOpen(Napi::Env env) {
    if (w_ != nullptr) return true;
    ErrnoError(env, ESHUTDOWN, "wireguard", "WireGuard device is closed");
    return false;
  }

  // setPeer(publicKey: Buffer(32), psk: Buffer(32)|null, epFamily: 0|4|6, epAddr: Buffer|null,
  //         epPort: number, keepalive: number)
  Napi::Value SetPeer(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    if (info.Length() < 6 || !IsBuf(info[0], 32) || !(info[1].IsNull() || IsBuf(info[1], 32)) ||
        !info[2].IsNumber() || !(info[3].IsNull() || info[3].IsBuffer()) || !info[4].IsNumber() ||
        !info[5].IsNumber()) {
      return TypeErr(env,
                     "setPeer(publicKey: Buffer(32), psk: Buffer(32)|null, epFamily: 0|4|6, "
                     "epAddr: Buffer|null, epPort: number, keepalive: number)");
    }
    int fam = info[2].As<Napi::Number>().Int32Value();
    const uint8_t *addr = nullptr;
    if (fam != 0) {
      if (!info[3].IsBuffer() || info[3].As<Napi::Buffer<uint8_t>>().Length() != (fam == 4 ? 4u : 16u)) {
        return TypeErr(env, "setPeer: epAddr must be 4 (family 4) or 16 (family 6) bytes");
      }
      addr = info[3].As<Napi::Buffer<uint8_t>>().Data();
    }
    if (!CheckOpen(env)) return env.Undefined();
    const uint8_t *psk = info[1].IsNull() ? nullptr : info[1].As<Napi::Buffer<uint8_t>>().Data();
    int rc = wgl_set_peer(w_, info[0].As<Napi::Buffer<uint8_t>>().Data(), psk, fam, addr,
                          static_cast<uint16_t>(info[4].As<Napi::Number>().Uint32Value()),
                          info[5].As<Napi::Number>().Uint32Value());
    if (rc < 0) return ErrnoError(env, -rc, "setPeer", "cannot queue peer");
    return env.Undefined();
  }

  Napi::Value DeletePeer(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    if (info.Length() < 1 || !IsBuf(info[0], 32)) return TypeErr(env, "deletePeer(publicKey: Buffer(32))");
    if (!CheckOpen(env)) return env.Undefined();
    int rc = wgl_del_peer(w_, info[0].As<Napi::Buffer<uint8_t>>().Data());
    if (rc < 0) return ErrnoError(env, -rc, "deletePeer", "cannot queue peer removal");
    return env.Undefined();
  }

  Napi::Value Initiate(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    if (info.Length() < 1 || !IsBuf(info[0], 32)) return TypeErr(env, "initiate(publicKey: Buffer(32))");
    if (!CheckOpen(env)) return env.Undefined();
    int rc = wgl_initiate(w_, info[0].As<Napi::Buffer<uint8_t>>().Data());
    if (rc < 0) return ErrnoError(env, -rc, "initiate", "cannot queue handshake");
    return env.Undefined();
  }

  // setAllowedIp(publicKey: Buffer(32), family: 4|6, addr: Buffer(4|16), prefixLen: number)
  Napi::Value SetAllowedIp(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    if (info.Length() < 4 || !IsBuf(info[0], 32) || !info[1].IsNumber() || !info[2].IsBuffer() ||
        !info[3].IsNumber()) {
      return TypeErr(env, "setAllowedIp(publicKey: Buffer(32), family: 4|6, addr: Buffer, prefixLen: number)");
    }
    int fam;
    Napi::Buffer<uint8_t> addr;
    if (!FamilyAddr(info, 1, 2, "setAllowedIp", "addr", &fam, &addr)) return env.Undefined();
    if (!CheckOpen(env)) return env.Undefined();
    int rc = wgl_set_allowed(w_, info[0].As<Napi::Buffer<uint8_t>>().Data(), fam, addr.Data(),
                             info[3].As<Napi::Number>().Int32Value());
    if (rc < 0) return ErrnoError(env, -rc, "setAllowedIp", "cannot queue allowed IP");
    return env.Undefined();
  }

  // deleteAllowedIp(family: 4|6, addr: Buffer(4|16), prefixLen: number)
  Napi::Value DeleteAllowedIp(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    if (info.Length() < 3 || !info[0].IsNumber() || !info[1].IsBuffer() || !info[2].IsNumber()) {
      return TypeErr(env, "deleteAllowedIp(family: 4|6, addr: Buffer, prefixLen: number)");
    }
    int fam;
    Napi::Buffer<uint8_t> addr;
    if (!FamilyAddr(info, 0, 1, "deleteAllowedIp", "addr", &fam, &addr)) return env.Undefined();
    if (!CheckOpen(env)) return env.Undefined();
    int rc = wgl_del_allowed(w_, fam, addr.Data(), info[2].As<Napi::Number>().Int32Value());
    if (rc < 0) return ErrnoError(env, -rc, "deleteAllowedIp", "cannot queue allowed IP removal");
    return env.Undefined();
  }

  // snapshot(): { stats: {...}, peers: [{ publicKey: Buffer, endpoint, ... }], fresh: boolean }
  Napi::Value Snapshot(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    if (!CheckOpen(env)) return env.Undefined();
    wgl_stats s{};
    std::vector<wgl_peer_info> peers(64);
    int n = wgl_snapshot(w_, &s, peers.data(), static_cast<int>(peers.size()), 1000);
    bool fresh = n >= 0;
    if (n > static_cast<int>(peers.size())) {
      peers.resize(static_cast<size_t>(n) + 16);
      n = wgl_snapshot(w_, &s, peers.data(), static_cast<int>(peers.size()), 1000);
      fresh = n >= 0;
    }
    if (n < 0) n = 0;
    if (n > static_cast<int>(peers.size())) n = static_cast<int>(peers.size());
    Napi::Object st = Napi::Object::New(env);
    weft_napi::SetTrafficStats(env, st, s);
#define F(js, c) st.Set(js, Napi::Number::New(env, static_cast<double>(s.c)))
    F("rxHandshake", rx_handshake);
    F("txHandshake", tx_handshake);
    F("rxCookie", rx_cookie);
    F("txCookie", tx_cookie);
    F("underLoad", under_load);
    F("dropNoRoute", drop_no_route);
    F("dropNoSession", drop_no_session);
    F("dropMalformed", drop_malformed);
    F("dropMac1", drop_mac1);
    F("dropUnknownKey", drop_unknown_key);
    F("dropHandshake", drop_handshake);
    F("dropRatelimited", drop_ratelimited);
    F("dropStale", drop_stale);
    F("dropDecrypt", drop_decrypt);
    F("dropReplay", drop_replay);
    F("dropAllowedIps", drop_allowed_ips);
    F("dropUnsupported", drop_unsupported);
    F("dropTunWrite", drop_tun_write);
    F("dropUdpSend", drop_udp_send);
    F("commandsQueued", commands_queued);
    F("commandsApplied", commands_applied);
    F("peers", peers);
    F("allowedIps", allowed_ips);
    weft_napi::SetOffloadStats(env, st, s);
    F("running", running);
    F("fatalErrno", fatal_errno);
#undef F
    Napi::Value unknown = env.Null();
    if (s.unknown_family != 0) {
      Napi::Object u = Napi::Object::New(env);
      u.Set("family", Napi::Number::New(env, static_cast<double>(s.unknown_family)));
      u.Set("addr", Napi::Buffer<uint8_t>::Copy(env, s.unknown_addr, s.unknown_family == 4 ? 4 : 16));
      u.Set("port", Napi::Number::New(env, static_cast<double>(s.unknown_port)));
      u.Set("publicKey", Napi::Buffer<uint8_t>::Copy(env, s.unknown_pub, 32));
      u.Set("ageMs", Napi::Number::New(env, static_cast<double>(s.unknown_age_ms)));
      unknown = u;
    }
    Napi::Array arr = Napi::Array::New(env, static_cast<size_t>(n));
    for (int i = 0; i < n; i++) {
      const wgl_peer_info &p = peers[static_cast<size_t>(i)];
      Napi::Object o = Napi::Object::New(env);
      o.Set("publicKey", Napi::Buffer<uint8_t>::Copy(env, p.pub, 32));
      o.Set("endpointFamily", Napi::Number::New(env, p.ep_family));
      o.Set("endpointAddr", p.ep_family ? Napi::Value(Napi::Buffer<uint8_t>::Copy(
                                              env, p.ep_addr, p.ep_family == 4 ? 4 : 16))
                                        : env.Null());
      o.Set("endpointPort", Napi::Number::New(env, p.ep_port));
      o.Set("hasSession", Napi::Boolean::New(env, p.has_session != 0));
      o.Set("keepalive", Napi::Number::New(env, p.keepalive));
#define P(js, c) o.Set(js, Napi::Number::New(env, static_cast<double>(p.c)))
      P("lastHandshakeSec", last_handshake_sec);
      P("rxBytes", rx_bytes);
      P("txBytes", tx_bytes);
      P("rxPackets", rx_packets);
      P("txPackets", tx_packets);
      P("handshakes", handshakes);
      P("handshakeInitiations", handshake_initiations);
      P("dropAllowedIps", drop_allowed_ips);
      P("dropReplay", drop_replay);
#undef P
      arr.Set(static_cast<uint32_t>(i), o);
    }
    Napi::Object res = Napi::Object::New(env);
    res.Set("stats", st);
    res.Set("peers", arr);
    res.Set("unknownKey", unknown);
    res.Set("fresh", Napi::Boolean::New(env, fresh));
    return res;
  }

  Napi::Value PublicKeyOf(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    if (!CheckOpen(env)) return env.Undefined();
    uint8_t pub[32];
    wgl_public_key(w_, pub);
    return Napi::Buffer<uint8_t>::Copy(env, pub, 32);
  }

  Napi::Value LocalPort(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    if (!CheckOpen(env)) return env.Undefined();
    return Napi::Number::New(env, wgl_local_port(w_));
  }

  Napi::Value Close(const Napi::CallbackInfo &info) {
    Shutdown(true);
    return info.Env().Undefined();
  }

  wgl *w_ = nullptr;
  weft_napi::FatalNotifier fatal_;
  napi_env env_ = nullptr;
};

}  // namespace

void Init(Napi::Env env, Napi::Object exports) {
  exports.Set("WgDevice", WgDevice::Define(env));
  exports.Set("wgGenerateKey", Napi::Function::New(env, GenerateKey, "wgGenerateKey"));
  exports.Set("wgPublicKey", Napi::Function::New(env, PublicKey, "wgPublicKey"));
}

}  // namespace weft_wg
