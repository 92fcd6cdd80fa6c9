// sdNotify(path, message) for addon.cc's exports (native/src/sd_notify_napi.cc).
#ifndef WEFT_SD_NOTIFY_NAPI_H
#define WEFT_SD_NOTIFY_NAPI_H
#include <napi.h>
Napi::Value WeftSdNotify(const Napi::CallbackInfo &info);
#endif
