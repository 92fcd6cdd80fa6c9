{
  "targets": [
    {
      "target_name": "weft_native",
      "sources": ["src/addon.cc", "src/tun.c", "src/fwd_loop.c", "src/pkt.c", "src/route_table.c",
                  "src/sd_notify.c", "src/sd_notify_napi.cc",
                  "src/wg_addon.cc", "src/wg_crypto.c", "src/wg_noise.c", "src/wg_cookie.c",
                  "src/wg_session.c", "src/wg_loop.c", "src/loop_io.c",
                  "src/rtnl_sender.c", "src/rtnl_sender_napi.cc"],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")", "include"],
      "defines": ["NAPI_VERSION=8", "NAPI_DISABLE_CPP_EXCEPTIONS"],
      "cflags": ["-O2", "-Wall", "-Wextra", "-fvisibility=hidden"],
      "cflags_c": ["-std=gnu11"],
      "cflags_cc": ["-std=gnu++17"],
      "libraries": ["-lpthread", "-lsodium", "-lcrypto"]
    }
  ]
}
