// Thin N-API glue (docs/design.md C9): argument checks, Node-shaped errno errors ({code, errno, syscall}),
// no C++ exceptions (NAPI_DISABLE_CPP_EXCEPTIONS). The only foreign-thread entry is the forwarder's
// fatal-error notification, which goes through a threadsafe function and never throws.
#include <napi.h>

#include <cerrno>
#include <cstring>
#include <linux/if.h>
#include <sched.h>
#include <sys/file.h>

#include "fwd.h"
#include "napi_util.h"
#include "rtnl_sender_napi.h"
#include "sd_notify_napi.h"
#include "tun.h"

namespace weft_wg {
void Init(Napi::Env env, Napi::Object exports);  // wg_addon.cc: the WireGuard engine
}

namespace {

using weft_napi::ErrnoError;
using weft_napi::ErrnoName;
using weft_napi::FamilyAddr;
using weft_napi::TypeErr;

// openTun(name: string, vnetHdr: boolean, multiQueue: boolean, persist?: boolean): { fd, name }
Napi::Value OpenTun(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  if (info.Length() < 3 || !info[0].IsString() || !info[1].IsBoolean() || !info[2].IsBoolean()) {
    return TypeErr(env, "openTun(name: string, vnetHdr: boolean, multiQueue: boolean)");
  }
  std::string name = info[0].As<Napi::String>().Utf8Value();
  int flags = 0;
  if (info[1].As<Napi::Boolean>().Value()) flags |= WEFT_TUN_VNET_HDR;
  if (info[2].As<Napi::Boolean>().Value()) flags |= WEFT_TUN_MULTI_QUEUE;
  if (info.Length() > 3 && info[3].IsBoolean() && info[3].As<Napi::Boolean>().Value()) {
    flags |= WEFT_TUN_PERSIST;
  }
  char out[IFNAMSIZ] = {0};
  const char *syscall = "open";
  int fd = weft_tun_open(name.c_str(), flags, out, &syscall);
  if (fd < 0) return ErrnoError(env, -fd, syscall, "cannot open TUN device " + name);
  Napi::Object res = Napi::Object::New(env);
  res.Set("fd", Napi::Number::New(env, fd));
  res.Set("name", Napi::String::New(env, out));
  return res;
}

// setns(fd: number, nstype: number): void — switches the *calling thread* (the JS main thread) into
// the namespace behind fd. Callers keep the switch window synchronous (docs/design.md C14).
Napi::Value SetNs(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsNumber() || !info[1].IsNumber()) {
    return TypeErr(env, "setns(fd: number, nstype: number)");
  }
  int fd = info[0].As<Napi::Number>().Int32Value();
  int nstype = info[1].As<Napi::Number>().Int32Value();
  if (setns(fd, nstype) != 0) return ErrnoError(env, errno, "setns", "cannot enter namespace");
  return env.Undefined();
}

// tryFlock(fd: number, exclusive: boolean): boolean -- flock(2) with LOCK_NB: true taken, false held
// elsewhere (EWOULDBLOCK); other errors throw. weftd's side of the CNI state lock (src/cni/lock.ts): the
// event loop polls instead of blocking in the kernel.
Napi::Value TryFlock(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsNumber() || !info[1].IsBoolean()) {
    return TypeErr(env, "tryFlock(fd: number, exclusive: boolean)");
  }
  int fd = info[0].As<Napi::Number>().Int32Value();
  int op = (info[1].As<Napi::Boolean>().Value() ? LOCK_EX : LOCK_SH) | LOCK_NB;
  for (;;) {
    if (flock(fd, op) == 0) return Napi::Boolean::New(env, true);
    if (errno == EWOULDBLOCK) return Napi::Boolean::New(env, false);
    if (errno != EINTR) return ErrnoError(env, errno, "flock", "cannot lock");
  }
}

// ---- Forwarder ------------------------------------------------------------------------------
// Owns one struct fwd (fwd.h). Lifecycle: constructed = running; close() (or the finalizer, or the
// environment's teardown) stops and joins the loop thread before anything is freed. A fatal loop
// error reaches JS through a threadsafe function (unref'd: it never keeps the process alive); the
// callback runs on the main thread and any exception it throws goes to 'uncaughtException'.
class Forwarder : public Napi::ObjectWrap<Forwarder> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "Forwarder",
                       {InstanceMethod("setRoute", &Forwarder::SetRoute),
                        InstanceMethod("deleteRoute", &Forwarder::DeleteRoute),
                        InstanceMethod("setLocalSubnets", &Forwarder::SetLocalSubnets),
                        InstanceMethod("takeFailures", &Forwarder::TakeFailures),
                        InstanceMethod("stats", &Forwarder::Stats),
                        InstanceMethod("localPort", &Forwarder::LocalPort),
                        InstanceMethod("close", &Forwarder::Close)});
  }

  // new Forwarder(tunFd: number, bindIp: Buffer(4), port: number, mtu: number, onFatal: Function,
  //               maxRoutes?: number, threads?: number, nice?: number)
  explicit Forwarder(const Napi::CallbackInfo &info) : Napi::ObjectWrap<Forwarder>(info) {
    Napi::Env env = info.Env();
    if (info.Length() < 5 || !info[0].IsNumber() || !info[1].IsBuffer() || !info[2].IsNumber() ||
        !info[3].IsNumber() || !info[4].IsFunction() ||
        info[1].As<Napi::Buffer<uint8_t>>().Length() != 4) {
      TypeErr(env,
              "Forwarder(tunFd: number, bindIp: Buffer(4), port: number, mtu: number, "
              "onFatal: function)");
      return;
    }
    if (!fatal_.Create(env, info[4], "weft.forwarder.fatal", "forwarder")) return;
    fwd_config cfg{};
    cfg.tun_fd = info[0].As<Napi::Number>().Int32Value();
    memcpy(&cfg.bind_ip, info[1].As<Napi::Buffer<uint8_t>>().Data(), 4);
    cfg.port = static_cast<uint16_t>(info[2].As<Napi::Number>().Uint32Value());
    cfg.mtu = static_cast<uint16_t>(info[3].As<Napi::Number>().Uint32Value());
    cfg.on_fatal = weft_napi::FatalNotifier::OnFatal;
    cfg.ctx = &fatal_;
    if (info.Length() > 5 && info[5].IsNumber()) cfg.max_routes = info[5].As<Napi::Number>().Uint32Value();
    if (info.Length() > 6 && info[6].IsNumber()) cfg.threads = info[6].As<Napi::Number>().Int32Value();
    if (info.Length() > 7 && info[7].IsNumber()) cfg.nice = info[7].As<Napi::Number>().Int32Value();
    const char *syscall = "fwd_open";
    int rc = fwd_open(&cfg, &fwd_, &syscall);
    if (rc < 0) {
      fwd_ = nullptr;
      fatal_.Abort();
      ErrnoError(env, -rc, syscall, "cannot start the forwarder");
      return;
    }
    env_ = env;
    napi_add_env_cleanup_hook(env, Teardown, this);
  }

  ~Forwarder() override { Shutdown(true); }

 private:
  // Stops the loop (joins the thread), then releases the threadsafe function. Idempotent.
  void Shutdown(bool remove_hook) {
    if (fwd_ != nullptr) {
      fwd_close(fwd_);
      fwd_ = nullptr;
      if (remove_hook) napi_remove_env_cleanup_hook(env_, Teardown, this);
    }
    fatal_.Release();
  }

  static void Teardown(void *arg) {
    Forwarder *self = static_cast<Forwarder *>(arg);
    if (self->fwd_ != nullptr) {
      fwd_close(self->fwd_);  // join before the environment (and the threadsafe function) goes
      self->fwd_ = nullptr;
    }
    self->fatal_.Forget();  // finalized by the environment's own teardown
  }

  bool CheckOpen(Napi::Env env) {
    if (fwd_ != nullptr) return true;
    ErrnoError(env, ESHUTDOWN, "forwarder", "forwarder is closed");
    return false;
  }

  // setRoute(family: 4|6, addr: Buffer(4|16), prefixLen: number, peerIp: Buffer(4), port: number)
  Napi::Value SetRoute(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    if (info.Length() < 5 || !info[0].IsNumber() || !info[1].IsBuffer() || !info[2].IsNumber() ||
        !info[3].IsBuffer() || !info[4].IsNumber() ||
        info[3].As<Napi::Buffer<uint8_t>>().Length() != 4) {
      return TypeErr(env,
                     "setRoute(family: 4|6, addr: Buffer, prefixLen: number, peerIp: Buffer(4), "
                     "port: number)");
    }
    int family;
    Napi::Buffer<uint8_t> addr;
    if (!FamilyAddr(info, 0, 1, "setRoute", "addr", &family, &addr)) return env.Undefined();
    if (!CheckOpen(env)) return env.Undefined();
    uint32_t peer;
    memcpy(&peer, info[3].As<Napi::Buffer<uint8_t>>().Data(), 4);
    int rc = fwd_set_route(fwd_, family, addr.Data(), info[2].As<Napi::Number>().Int32Value(), peer,
                           static_cast<uint16_t>(info[4].As<Napi::Number>().Uint32Value()));
    if (rc < 0) return ErrnoError(env, -rc, "setRoute", "cannot queue route");
    return env.Undefined();
  }

  // deleteRoute(family: 4|6, addr: Buffer(4|16), prefixLen: number)
  Napi::Value DeleteRoute(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    if (info.Length() < 3 || !info[0].IsNumber() || !info[1].IsBuffer() || !info[2].IsNumber()) {
      return TypeErr(env, "deleteRoute(family: 4|6, addr: Buffer, prefixLen: number)");
    }
    int family;
    Napi::Buffer<uint8_t> addr;
    if (!FamilyAddr(info, 0, 1, "deleteRoute", "addr", &family, &addr)) return env.Undefined();
    if (!CheckOpen(env)) return env.Undefined();
    int rc = fwd_del_route(fwd_, family, addr.Data(), info[2].As<Napi::Number>().Int32Value());
    if (rc < 0) return ErrnoError(env, -rc, "deleteRoute", "cannot queue route deletion");
    return env.Undefined();
  }

  // setLocalSubnets(prefixes: Buffer): 18 bytes per prefix (family 4|6, length, 16 address bytes).
  Napi::Value SetLocalSubnets(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    if (info.Length() < 1 || !info[0].IsBuffer() ||
        info[0].As<Napi::Buffer<uint8_t>>().Length() % 18 != 0 ||
        info[0].As<Napi::Buffer<uint8_t>>().Length() / 18 > FWD_MAX_LOCAL) {
      return TypeErr(env, "setLocalSubnets(prefixes: Buffer of at most 16 x 18 bytes)");
    }
    if (!CheckOpen(env)) return env.Undefined();
    auto b = info[0].As<Napi::Buffer<uint8_t>>();
    fwd_prefix p[FWD_MAX_LOCAL];
    int n = static_cast<int>(b.Length() / 18);
    for (int i = 0; i < n; i++) {
      p[i].family = b.Data()[i * 18];
      p[i].len = b.Data()[i * 18 + 1];
      memcpy(p[i].addr, b.Data() + i * 18 + 2, 16);
    }
    int rc = fwd_set_local(fwd_, p, n);
    if (rc < 0) return ErrnoError(env, -rc, "setLocalSubnets", "cannot queue local subnets");
    return env.Undefined();
  }

  // takeFailures(): [{family, addr: Buffer(16), prefixLen, code, errno}] of route commands the loop
  // could not apply, oldest first (each reported once).
  Napi::Value TakeFailures(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    Napi::Array out = Napi::Array::New(env);
    if (fwd_ == nullptr) return out;
    fwd_failure fl[FWD_MAX_FAILURES];
    int n = fwd_take_failures(fwd_, fl, FWD_MAX_FAILURES);
    for (int i = 0; i < n; i++) {
      Napi::Object o = Napi::Object::New(env);
      o.Set("family", Napi::Number::New(env, fl[i].family));
      o.Set("addr", Napi::Buffer<uint8_t>::Copy(env, fl[i].addr, 16));
      o.Set("prefixLen", Napi::Number::New(env, fl[i].len));
      o.Set("code", Napi::String::New(env, ErrnoName(fl[i].err)));
      o.Set("errno", Napi::Number::New(env, -fl[i].err));
      out.Set(static_cast<uint32_t>(i), o);
    }
    return out;
  }

  Napi::Value Stats(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    if (!CheckOpen(env)) return env.Undefined();
    fwd_stats s{};
    fwd_get_stats(fwd_, &s);
    Napi::Object o = Napi::Object::New(env);
    weft_napi::SetTrafficStats(env, o, s);
    WEFT_STAT("icmpSent", icmp_sent);
    WEFT_STAT("dropNoRoute", drop_no_route);
    WEFT_STAT("dropUnknownPeer", drop_unknown_peer);
    WEFT_STAT("dropBadInnerSource", drop_bad_inner_source);
    WEFT_STAT("dropMalformed", drop_malformed);
    WEFT_STAT("dropTtl", drop_ttl);
    WEFT_STAT("dropUnsupported", drop_unsupported);
    WEFT_STAT("dropTunWrite", drop_tun_write);
    WEFT_STAT("dropUdpSend", drop_udp_send);
    WEFT_STAT("dropBadInnerDest", drop_bad_inner_dest);
    WEFT_STAT("dropBadChecksum", drop_bad_csum);
    WEFT_STAT("dropCongested", drop_congested);
    WEFT_STAT("commandsFailed", commands_failed);
    WEFT_STAT("peerSockets", peer_sockets);
    WEFT_STAT("commandsQueued", commands_queued);
    WEFT_STAT("commandsApplied", commands_applied);
    WEFT_STAT("routes", routes);
    weft_napi::SetOffloadStats(env, o, s);
    WEFT_STAT("threads", threads);
    WEFT_STAT("running", running);
    WEFT_STAT("fatalErrno", fatal_errno);
    return o;
  }

  Napi::Value LocalPort(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    if (!CheckOpen(env)) return env.Undefined();
    return Napi::Number::New(env, fwd_local_port(fwd_));
  }

  // close(): stops and joins the loop thread, closes the TUN fd and the socket. Idempotent.
  Napi::Value Close(const Napi::CallbackInfo &info) {
    Shutdown(true);
    return info.Env().Undefined();
  }

  fwd *fwd_ = nullptr;
  weft_napi::FatalNotifier fatal_;
  napi_env env_ = nullptr;
};

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("Forwarder", Forwarder::Define(env));
  exports.Set("openTun", Napi::Function::New(env, OpenTun, "openTun"));
  exports.Set("setns", Napi::Function::New(env, SetNs, "setns"));
  exports.Set("tryFlock", Napi::Function::New(env, TryFlock, "tryFlock"));
  exports.Set("sdNotify", Napi::Function::New(env, WeftSdNotify, "sdNotify"));
  weft_wg::Init(env, exports);
  WeftRtnlSenderInit(env, exports);
  return exports;
}

}  // namespace

NODE_API_MODULE(weft_native, Init)
