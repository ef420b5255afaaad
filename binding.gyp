{
  "targets": [
    {
      "target_name": "harrier_native",
      "sources": [
        "native/src/addon.cc",
        "native/src/endpoint.cc",
        "native/src/udp.cc",
        "native/src/token.cc"
      ],
      "include_dirs": [
        "<!(node -p \"require('node-addon-api').include_dir\")",
        "build/quiche/include"
      ],
      "defines": ["NAPI_VERSION=8", "NAPI_DISABLE_CPP_EXCEPTIONS", "NODE_ADDON_API_DISABLE_DEPRECATED"],
      "cflags_cc!": ["-fno-exceptions", "-std=gnu++17"],
      "cflags_cc": ["-std=c++17", "-O2", "-Wall", "-Wno-unused-parameter"],
      "libraries": [
        "<(module_root_dir)/build/quiche/libharrier_quiche.a",
        "-lpthread", "-ldl", "-lm"
      ],
      "ldflags": [
        "-Wl,--exclude-libs,ALL",
        "-Wl,-Bsymbolic",
        "-Wl,--gc-sections"
      ]
    }
  ]
}
