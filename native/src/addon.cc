// Module entry: exports the Endpoint class and quiche's version.
#include <napi.h>
#include <quiche.h>

#include "endpoint.h"

namespace {

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("Endpoint", harrier::Endpoint::Init(env));
  exports.Set("quicheVersion", Napi::String::New(env, quiche_version()));
  return exports;
}

}  // namespace

NODE_API_MODULE(harrier_native, Init)
