// Thin N-API glue (design.md C9): argument checks, Node-shaped errno errors ({code, errno, syscall}),
// no C++ exceptions (NAPI_DISABLE_CPP_EXCEPTIONS), nothing runs on a libuv or foreign thread here.
#include <napi.h>

#include <cerrno>
#include <cstring>
#include <linux/if.h>
#include <sched.h>

#include "tun.h"

namespace {

const char *ErrnoName(int err) {
  switch (err) {
    case EPERM: return "EPERM";
    case ENOENT: return "ENOENT";
    case EACCES: return "EACCES";
    case EBUSY: return "EBUSY";
    case EEXIST: return "EEXIST";
    case ENODEV: return "ENODEV";
    case EINVAL: return "EINVAL";
    case EMFILE: return "EMFILE";
    case ENFILE: return "ENFILE";
    case ENOMEM: return "ENOMEM";
    case EBADFD: return "EBADFD";
    case EBADF: return "EBADF";
    default: return "EUNKNOWN";
  }
}

Napi::Value ErrnoError(Napi::Env env, int err, const char *syscall, const std::string &what) {
  std::string msg = what + ": " + syscall + " " + ErrnoName(err) + " (" + strerror(err) + ")";
  Napi::Error e = Napi::Error::New(env, msg);
  e.Set("code", Napi::String::New(env, ErrnoName(err)));
  e.Set("errno", Napi::Number::New(env, -err));
  e.Set("syscall", Napi::String::New(env, syscall));
  e.ThrowAsJavaScriptException();
  return env.Undefined();
}

// openTun(name: string, vnetHdr: boolean, multiQueue: boolean): { fd: number, name: string }
Napi::Value OpenTun(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  if (info.Length() < 3 || !info[0].IsString() || !info[1].IsBoolean() || !info[2].IsBoolean()) {
    Napi::TypeError::New(env, "openTun(name: string, vnetHdr: boolean, multiQueue: boolean)")
        .ThrowAsJavaScriptException();
    return env.Undefined();
  }
  std::string name = info[0].As<Napi::String>().Utf8Value();
  int flags = 0;
  if (info[1].As<Napi::Boolean>().Value()) flags |= WEFT_TUN_VNET_HDR;
  if (info[2].As<Napi::Boolean>().Value()) flags |= WEFT_TUN_MULTI_QUEUE;
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
// the namespace behind fd. Callers keep the switch window synchronous (design.md C14).
Napi::Value SetNs(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsNumber() || !info[1].IsNumber()) {
    Napi::TypeError::New(env, "setns(fd: number, nstype: number)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  int fd = info[0].As<Napi::Number>().Int32Value();
  int nstype = info[1].As<Napi::Number>().Int32Value();
  if (setns(fd, nstype) != 0) return ErrnoError(env, errno, "setns", "cannot enter namespace");
  return env.Undefined();
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("openTun", Napi::Function::New(env, OpenTun, "openTun"));
  exports.Set("setns", Napi::Function::New(env, SetNs, "setns"));
  return exports;
}

}  // namespace

NODE_API_MODULE(weft_native, Init)
