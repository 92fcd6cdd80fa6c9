// N-API glue of the native rtnetlink sender (native/src/rtnl_sender.c; src/netlink/native-sender.ts is
// its one user): class RtnlSender(perSend, timeoutMs, onDone). The socket is opened by the constructor,
// i.e. in the calling thread's network namespace (wrap it in src/netns/netns.ts `inNetns`). Results
// reach JS through a threadsafe function: onDone(id, results | null) on the main thread, `results` an
// Int32Array (0, a kernel errno, or RTNL_RES_TIMEOUT / RTNL_RES_SOCKET | errno) and null when all
// succeeded. The threadsafe function keeps the process alive only while ref()'d (JS refs it while
// submissions are outstanding). Registered by addon.cc.
#include <napi.h>

#include <cerrno>
#include <cstring>
#include <new>
#include <string>

#include "napi_util.h"
#include "rtnl_sender.h"
#include "rtnl_sender_napi.h"

namespace {

using weft_napi::ErrnoError;

struct Done {
  uint64_t id;
  uint32_t count;
  int32_t *results;  // null: all succeeded
};

class RtnlSender : public Napi::ObjectWrap<RtnlSender> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "RtnlSender",
                       {InstanceMethod("submit", &RtnlSender::Submit),
                        InstanceMethod("lost", &RtnlSender::Lost),
                        InstanceMethod("ref", &RtnlSender::Ref),
                        InstanceMethod("unref", &RtnlSender::Unref),
                        InstanceMethod("close", &RtnlSender::Close)});
  }

  explicit RtnlSender(const Napi::CallbackInfo &info) : Napi::ObjectWrap<RtnlSender>(info) {
    Napi::Env env = info.Env();
    env_ = env;
    if (info.Length() < 3 || !info[0].IsNumber() || !info[1].IsNumber() || !info[2].IsFunction()) {
      weft_napi::TypeErr(env, "RtnlSender(perSend: number, timeoutMs: number, onDone: function)");
      return;
    }
    unsigned per_send = info[0].As<Napi::Number>().Uint32Value();
    unsigned timeout_ms = info[1].As<Napi::Number>().Uint32Value();
    napi_value res = Napi::String::New(env, "weft.rtnlSender");
    if (napi_create_threadsafe_function(env, info[2], nullptr, res, 0, 1, nullptr, nullptr, nullptr,
                                        Call, &tsfn_) != napi_ok) {
      tsfn_ = nullptr;
      Napi::Error::New(env, "cannot create the rtnetlink sender's threadsafe function")
          .ThrowAsJavaScriptException();
      return;
    }
    napi_unref_threadsafe_function(env, tsfn_);
    int rc = rtnl_sender_open(&s_, per_send, timeout_ms, OnDone, this);
    if (rc < 0) {
      napi_release_threadsafe_function(tsfn_, napi_tsfn_abort);
      tsfn_ = nullptr;
      ErrnoError(env, -rc, "socket", "cannot open the rtnetlink sender");
      return;
    }
    // Runs before the threadsafe function's own teardown (hooks run in reverse order).
    napi_add_env_cleanup_hook(env, Teardown, this);
    hooked_ = true;
  }

  ~RtnlSender() override { Shutdown(); }

 private:
  static void Teardown(void *arg) {
    RtnlSender *self = static_cast<RtnlSender *>(arg);
    self->hooked_ = false;
    self->Shutdown();
  }

  // Stops the thread (queued requests are reported failed), then releases the threadsafe function.
  void Shutdown() {
    if (s_ != nullptr) {
      rtnl_sender_close(s_);
      s_ = nullptr;
    }
    if (tsfn_ != nullptr) {
      napi_release_threadsafe_function(tsfn_, napi_tsfn_release);
      tsfn_ = nullptr;
    }
    if (hooked_) {
      napi_remove_env_cleanup_hook(env_, Teardown, this);
      hooked_ = false;
    }
  }

  // Sender thread (or the closing thread): never blocks, never throws.
  static void OnDone(void *ctx, uint64_t id, uint32_t count, const int32_t *results) {
    RtnlSender *self = static_cast<RtnlSender *>(ctx);
    Done *d = new (std::nothrow) Done{id, count, nullptr};
    if (d == nullptr) return;
    if (results != nullptr) {
      d->results = new (std::nothrow) int32_t[count];
      if (d->results != nullptr) memcpy(d->results, results, count * sizeof(int32_t));
    }
    if (self->tsfn_ == nullptr ||
        napi_call_threadsafe_function(self->tsfn_, d, napi_tsfn_nonblocking) != napi_ok) {
      delete[] d->results;
      delete d;
    }
  }

  // Main thread.
  static void Call(napi_env env, napi_value js_cb, void *, void *data) {
    Done *d = static_cast<Done *>(data);
    if (env != nullptr && js_cb != nullptr) {
      Napi::Env e(env);
      Napi::HandleScope scope(e);
      napi_value argv[2];
      argv[0] = Napi::Number::New(e, static_cast<double>(d->id));
      if (d->results != nullptr) {
        Napi::Int32Array a = Napi::Int32Array::New(e, d->count);
        memcpy(a.Data(), d->results, d->count * sizeof(int32_t));
        argv[1] = a;
      } else {
        argv[1] = e.Null();
      }
      weft_napi::CallFromThread(env, js_cb, 2, argv);
    }
    delete[] d->results;
    delete d;
  }

  // submit(requests: Buffer, id: number): number of requests queued; throws EINVAL / EPIPE.
  Napi::Value Submit(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    if (info.Length() < 2 || !info[0].IsBuffer() || !info[1].IsNumber()) {
      return weft_napi::TypeErr(env, "submit(requests: Buffer, id: number)");
    }
    if (s_ == nullptr) return ErrnoError(env, EPIPE, "submit", "rtnetlink sender closed");
    Napi::Buffer<uint8_t> b = info[0].As<Napi::Buffer<uint8_t>>();
    uint64_t id = static_cast<uint64_t>(info[1].As<Napi::Number>().Int64Value());
    int rc = rtnl_sender_submit(s_, id, b.Data(), b.Length());
    if (rc < 0) return ErrnoError(env, -rc, "submit", "rtnetlink sender");
    return Napi::Number::New(env, rc);
  }

  Napi::Value Lost(const Napi::CallbackInfo &info) {
    return Napi::Boolean::New(info.Env(), s_ == nullptr || rtnl_sender_lost(s_) != 0);
  }

  Napi::Value Ref(const Napi::CallbackInfo &info) {
    if (tsfn_ != nullptr) napi_ref_threadsafe_function(info.Env(), tsfn_);
    return info.Env().Undefined();
  }

  Napi::Value Unref(const Napi::CallbackInfo &info) {
    if (tsfn_ != nullptr) napi_unref_threadsafe_function(info.Env(), tsfn_);
    return info.Env().Undefined();
  }

  Napi::Value Close(const Napi::CallbackInfo &info) {
    Shutdown();
    return info.Env().Undefined();
  }

  rtnl_sender *s_ = nullptr;
  napi_threadsafe_function tsfn_ = nullptr;
  napi_env env_ = nullptr;
  bool hooked_ = false;
};

}  // namespace

void WeftRtnlSenderInit(Napi::Env env, Napi::Object exports) {
  exports.Set("RtnlSender", RtnlSender::Define(env));
}
