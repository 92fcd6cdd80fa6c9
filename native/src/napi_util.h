// Helpers shared by the N-API bindings (addon.cc: TUN, setns, Forwarder; wg_addon.cc: WgDevice;
// rtnl_sender_napi.cc: RtnlSender): Node-shaped errno errors ({code, errno, syscall}), argument
// checks, the counters both loops report, calls into JS from a threadsafe function, and the hand-off
// of a loop thread's fatal error to JS. No C++ exceptions
// (NAPI_DISABLE_CPP_EXCEPTIONS).
#ifndef WEFT_NAPI_UTIL_H
#define WEFT_NAPI_UTIL_H

#include <napi.h>

#include <cerrno>
#include <cstring>
#include <new>
#include <string>

namespace weft_napi {

// The errno's symbolic name as glibc spells it ("EPIPE"), or "EUNKNOWN".
inline const char *ErrnoName(int err) {
  const char *name = strerrorname_np(err);
  return name != nullptr ? name : "EUNKNOWN";
}

// "what: syscall CODE (text)" with code, errno (negative, as libuv's) and syscall set.
inline Napi::Error MakeErrnoError(Napi::Env env, int err, const char *syscall,
                                  const std::string &what) {
  std::string msg = what + ": " + syscall + " " + ErrnoName(err) + " (" + strerror(err) + ")";
  Napi::Error e = Napi::Error::New(env, msg);
  e.Set("code", Napi::String::New(env, ErrnoName(err)));
  e.Set("errno", Napi::Number::New(env, -err));
  e.Set("syscall", Napi::String::New(env, syscall));
  return e;
}

inline Napi::Value ErrnoError(Napi::Env env, int err, const char *syscall, const std::string &what) {
  MakeErrnoError(env, err, syscall, what).ThrowAsJavaScriptException();
  return env.Undefined();
}

inline Napi::Value TypeErr(Napi::Env env, const char *msg) {
  Napi::TypeError::New(env, msg).ThrowAsJavaScriptException();
  return env.Undefined();
}

inline bool IsBuf(const Napi::Value &v, size_t len) {
  return v.IsBuffer() && v.As<Napi::Buffer<uint8_t>>().Length() == len;
}

// info[fi] is a family (4|6) and info[ai] an address Buffer of its length (4|16); else a TypeError
// "<op>: family must be 4 or 6 and <addr> 4 or 16 bytes" is thrown and false returned.
inline bool FamilyAddr(const Napi::CallbackInfo &info, size_t fi, size_t ai, const char *op,
                       const char *addr_name, int *family, Napi::Buffer<uint8_t> *addr) {
  *family = info[fi].As<Napi::Number>().Int32Value();
  *addr = info[ai].As<Napi::Buffer<uint8_t>>();
  if ((*family == 4 || *family == 6) && addr->Length() == (*family == 4 ? 4u : 16u)) return true;
  std::string msg = std::string(op) + ": family must be 4 or 6 and " + addr_name + " 4 or 16 bytes";
  TypeErr(info.Env(), msg.c_str());
  return false;
}

// The counters both loops keep under the same names (s: fwd_stats or wgl_stats), set on o in the
// order JS has always seen them: the traffic ones first ...
#define WEFT_STAT(js, c) o.Set(js, Napi::Number::New(env, static_cast<double>(s.c)))
template <class S>
void SetTrafficStats(Napi::Env env, Napi::Object o, const S &s) {
  WEFT_STAT("txPackets", tx_packets);
  WEFT_STAT("txBytes", tx_bytes);
  WEFT_STAT("rxPackets", rx_packets);
  WEFT_STAT("rxBytes", rx_bytes);
  WEFT_STAT("tunReads", tun_reads);
  WEFT_STAT("tunWrites", tun_writes);
  WEFT_STAT("tsoPackets", tso_packets);
  WEFT_STAT("gsoSends", gso_sends);
  WEFT_STAT("groReceives", gro_receives);
  WEFT_STAT("coalescedWrites", coalesced_writes);
}

// ... and the offload flags after the loop's own.
template <class S>
void SetOffloadStats(Napi::Env env, Napi::Object o, const S &s) {
  WEFT_STAT("offVnetHdr", off_vnet_hdr);
  WEFT_STAT("offTso", off_tso);
  WEFT_STAT("offUdpGso", off_udp_gso);
  WEFT_STAT("offUdpGro", off_udp_gro);
}

// Calls a threadsafe function's JS callback (main thread): an exception it throws goes to
// 'uncaughtException' instead of being lost.
inline void CallFromThread(napi_env env, napi_value js_cb, size_t argc, napi_value *argv) {
  napi_value undefined;
  napi_get_undefined(env, &undefined);
  if (napi_call_function(env, undefined, js_cb, argc, argv, nullptr) == napi_pending_exception) {
    napi_value ex;
    napi_get_and_clear_last_exception(env, &ex);
    napi_fatal_exception(env, ex);
  }
}

// A loop thread's fatal error, handed to a JS callback on the main thread through a threadsafe
// function (unref'd: it never keeps the process alive). The callback gets an errno error
// "<owner> stopped: ..."; an exception it throws goes to 'uncaughtException'.
class FatalNotifier {
 public:
  // Main thread: creates the threadsafe function over cb; false (a JS error thrown) if it cannot.
  bool Create(Napi::Env env, Napi::Value cb, const char *resource, const char *owner) {
    owner_ = owner;
    napi_value res = Napi::String::New(env, resource);
    if (napi_create_threadsafe_function(env, cb, nullptr, res, 0, 1, nullptr, nullptr, this, Call,
                                        &tsfn_) != napi_ok) {
      tsfn_ = nullptr;
      std::string msg = std::string("cannot create the ") + owner + "'s threadsafe function";
      Napi::Error::New(env, msg).ThrowAsJavaScriptException();
      return false;
    }
    napi_unref_threadsafe_function(env, tsfn_);
    return true;
  }

  // Loop thread (the loop's on_fatal, ctx = this): never blocks, never throws.
  static void OnFatal(void *ctx, int err, const char *syscall) {
    FatalNotifier *self = static_cast<FatalNotifier *>(ctx);
    Info *fi = new (std::nothrow) Info{err, syscall, self->owner_};
    if (fi == nullptr) return;
    if (napi_call_threadsafe_function(self->tsfn_, fi, napi_tsfn_nonblocking) != napi_ok) delete fi;
  }

  // The loop did not start: drops the threadsafe function at once.
  void Abort() { Drop(napi_tsfn_abort); }
  // The loop is joined: releases it. Idempotent.
  void Release() { Drop(napi_tsfn_release); }
  // The environment tears down (and finalizes it itself).
  void Forget() { tsfn_ = nullptr; }

 private:
  struct Info {
    int err;
    const char *syscall;
    const char *owner;
  };

  void Drop(napi_threadsafe_function_release_mode mode) {
    if (tsfn_ == nullptr) return;
    napi_release_threadsafe_function(tsfn_, mode);
    tsfn_ = nullptr;
  }

  // Main thread.
  static void Call(napi_env env, napi_value js_cb, void *, void *data) {
    Info *fi = static_cast<Info *>(data);
    if (env != nullptr && js_cb != nullptr) {
      Napi::Env e(env);
      Napi::HandleScope scope(e);
      Napi::Error err = MakeErrnoError(e, fi->err, fi->syscall, std::string(fi->owner) + " stopped");
      napi_value argv[1] = {err.Value()};
      CallFromThread(env, js_cb, 1, argv);
    }
    delete fi;
  }

  napi_threadsafe_function tsfn_ = nullptr;
  const char *owner_ = "";
};

}  // namespace weft_napi

#endif
