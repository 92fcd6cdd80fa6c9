// RtnlSender for addon.cc's exports (native/src/rtnl_sender_napi.cc).
#ifndef WEFT_RTNL_SENDER_NAPI_H
#define WEFT_RTNL_SENDER_NAPI_H
#include <napi.h>
void WeftRtnlSenderInit(Napi::Env env, Napi::Object exports);
#endif
