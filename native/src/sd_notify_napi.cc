// N-API glue of weft_sd_notify (native/include/sd_notify.h): sdNotify(path, message) throws an
// errno-shaped Error on failure. Kept out of addon.cc, which only registers it.
#include <napi.h>

#include <cstring>
#include <string>

#include "sd_notify.h"
#include "sd_notify_napi.h"

Napi::Value WeftSdNotify(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsString() || !info[1].IsString()) {
    Napi::TypeError::New(env, "sdNotify(path: string, message: string)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  std::string path = info[0].As<Napi::String>().Utf8Value();
  std::string msg = info[1].As<Napi::String>().Utf8Value();
  int rc = weft_sd_notify(path.c_str(), msg.data(), msg.size());
  if (rc < 0) {
    Napi::Error e = Napi::Error::New(env, std::string("sd_notify to ") + path + ": " + strerror(-rc));
    e.Set("errno", Napi::Number::New(env, -rc));
    e.ThrowAsJavaScriptException();
  }
  return env.Undefined();
}
