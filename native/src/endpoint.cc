#include "endpoint.h"

#include <string.h>
#include <time.h>

#include <cmath>

namespace harrier {

namespace {

constexpr size_t kLocalCidLen = 16;
constexpr size_t kMaxDatagram = 65535;
constexpr size_t kReadChunk = 256 * 1024;
constexpr size_t kMaxExtraCids = 4;
constexpr size_t kFlushHighWater = 2 * 1024 * 1024;
constexpr uint8_t kMaxHelloPings = 8;       // HandshakePing: while the ClientHello is incomplete
constexpr uint8_t kMaxUnansweredPings = 3;  // HandshakePing: per space, then its PTO goes first

uint64_t NowNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return uint64_t(ts.tv_sec) * 1000000000ull + uint64_t(ts.tv_nsec);
}

uint64_t UnixSeconds() { return static_cast<uint64_t>(time(nullptr)); }

std::string Key(const uint8_t* p, size_t n) { return std::string(reinterpret_cast<const char*>(p), n); }

std::string Hex(const uint8_t* p, size_t n) {
  static const char* digits = "0123456789abcdef";
  std::string s;
  for (size_t i = 0; i < n; i++) {
    s.push_back(digits[p[i] >> 4]);
    s.push_back(digits[p[i] & 15]);
  }
  return s;
}

// Stream IDs and error codes are u64 on the wire: numbers while exact, BigInt beyond 2^53.
Napi::Value U64(Napi::Env env, uint64_t v) {
  if (v <= 9007199254740991ull) return Napi::Number::New(env, static_cast<double>(v));
  return Napi::BigInt::New(env, v);
}

uint64_t ToU64(const Napi::Value& v) {
  if (v.IsBigInt()) {
    bool lossless;
    return v.As<Napi::BigInt>().Uint64Value(&lossless);
  }
  if (v.IsNumber()) {
    double d = v.As<Napi::Number>().DoubleValue();
    return d < 0 ? 0 : static_cast<uint64_t>(d);
  }
  return 0;
}

void ThrowCode(Napi::Env env, const std::string& code, const std::string& message) {
  Napi::Error e = Napi::Error::New(env, message);
  e.Set("code", Napi::String::New(env, code));
  e.ThrowAsJavaScriptException();
}

uint64_t OptU64(const Napi::Object& o, const char* name, uint64_t dflt) {
  Napi::Value v = o.Get(name);
  return v.IsNumber() || v.IsBigInt() ? ToU64(v) : dflt;
}

bool OptBool(const Napi::Object& o, const char* name, bool dflt) {
  Napi::Value v = o.Get(name);
  return v.IsBoolean() ? v.As<Napi::Boolean>().Value() : dflt;
}

std::string OptString(const Napi::Object& o, const char* name) {
  Napi::Value v = o.Get(name);
  return v.IsString() ? v.As<Napi::String>().Utf8Value() : std::string();
}

// ALPN protocol list in TLS wire form (length-prefixed).
std::string AlpnWire(const Napi::Object& o) {
  std::string wire;
  Napi::Value v = o.Get("alpn");
  if (!v.IsArray()) return wire;
  Napi::Array a = v.As<Napi::Array>();
  for (uint32_t i = 0; i < a.Length(); i++) {
    std::string p = a.Get(i).As<Napi::String>().Utf8Value();
    if (p.empty() || p.size() > 255) continue;
    wire.push_back(static_cast<char>(p.size()));
    wire += p;
  }
  return wire;
}

// Transport parameters shared by the server and client configurations.
bool ApplyTransport(Napi::Env env, quiche_config* cfg, const Napi::Object& o) {
  std::string alpn = AlpnWire(o);
  if (alpn.empty()) {
    ThrowCode(env, "HARRIER_ERR_INVALID_ARG", "alpn must list at least one protocol");
    return false;
  }
  quiche_config_set_application_protos(cfg, reinterpret_cast<const uint8_t*>(alpn.data()), alpn.size());
  quiche_config_set_max_idle_timeout(cfg, OptU64(o, "maxIdleTimeout", 30000));
  size_t payload = OptU64(o, "maxUdpPayloadSize", 1350);
  quiche_config_set_max_recv_udp_payload_size(cfg, OptU64(o, "maxRecvUdpPayloadSize", 65527));
  quiche_config_set_max_send_udp_payload_size(cfg, payload);
  quiche_config_set_initial_max_data(cfg, OptU64(o, "initialMaxData", 16 * 1024 * 1024));
  uint64_t stream_data = OptU64(o, "initialMaxStreamData", 1024 * 1024);
  quiche_config_set_initial_max_stream_data_bidi_local(cfg, OptU64(o, "initialMaxStreamDataBidiLocal", stream_data));
  quiche_config_set_initial_max_stream_data_bidi_remote(cfg, OptU64(o, "initialMaxStreamDataBidiRemote", stream_data));
  quiche_config_set_initial_max_stream_data_uni(cfg, OptU64(o, "initialMaxStreamDataUni", stream_data));
  quiche_config_set_initial_max_streams_bidi(cfg, OptU64(o, "initialMaxStreamsBidi", 100));
  quiche_config_set_initial_max_streams_uni(cfg, OptU64(o, "initialMaxStreamsUni", 100));
  quiche_config_set_max_stream_window(cfg, OptU64(o, "maxStreamWindow", 16 * 1024 * 1024));
  quiche_config_set_max_connection_window(cfg, OptU64(o, "maxConnectionWindow", 24 * 1024 * 1024));
  quiche_config_set_disable_active_migration(cfg, OptBool(o, "disableActiveMigration", false));
  quiche_config_set_active_connection_id_limit(cfg, kMaxExtraCids + 1);
  quiche_config_discover_pmtu(cfg, false);
  quiche_config_grease(cfg, OptBool(o, "grease", true));
  if (OptBool(o, "datagrams", false)) {
    size_t q = OptU64(o, "datagramQueueLength", 1024);
    quiche_config_enable_dgram(cfg, true, q, q);
  }
  if (OptBool(o, "earlyData", false)) quiche_config_enable_early_data(cfg);
  std::string cc = OptString(o, "congestionControl");
  if (!cc.empty() && quiche_config_set_cc_algorithm_name(cfg, cc.c_str()) != 0) {
    ThrowCode(env, "HARRIER_ERR_INVALID_ARG", "unknown congestion control algorithm: " + cc);
    return false;
  }
  std::string keylog = OptString(o, "keylogFile");
  if (!keylog.empty()) quiche_config_log_keys(cfg);
  return true;
}

}  // namespace

Napi::Function Endpoint::Init(Napi::Env env) {
  return DefineClass(env, "Endpoint", {
      InstanceMethod<&Endpoint::Listen>("listen"),
      InstanceMethod<&Endpoint::Connect>("connect"),
      InstanceMethod<&Endpoint::StreamWrite>("streamWrite"),
      InstanceMethod<&Endpoint::StreamShutdown>("streamShutdown"),
      InstanceMethod<&Endpoint::StreamPause>("streamPause"),
      InstanceMethod<&Endpoint::StreamCapacity>("streamCapacity"),
      InstanceMethod<&Endpoint::DatagramSend>("datagramSend"),
      InstanceMethod<&Endpoint::ConnClose>("connClose"),
      InstanceMethod<&Endpoint::ConnStats>("connStats"),
      InstanceMethod<&Endpoint::ConnSession>("connSession"),
      InstanceMethod<&Endpoint::EndpointStats>("stats"),
      InstanceMethod<&Endpoint::CloseAll>("closeAll"),
      InstanceMethod<&Endpoint::Close>("close"),
      InstanceMethod<&Endpoint::Ref>("ref"),
  });
}

// new Endpoint(options, onEvents)
Endpoint::Endpoint(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Endpoint>(info), env_(info.Env()) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsObject() || !info[1].IsFunction()) {
    ThrowCode(env, "HARRIER_ERR_INVALID_ARG", "new Endpoint(options, onEvents)");
    return;
  }
  Napi::Object o = info[0].As<Napi::Object>();
  on_events_ = Napi::Persistent(info[1].As<Napi::Function>());
  async_context_ = std::make_unique<Napi::AsyncContext>(env, "HarrierQuicEndpoint");
  qlog_dir_ = OptString(o, "qlogDir");
  keylog_path_ = OptString(o, "keylogFile");
  retry_ = OptBool(o, "retry", false);
  retry_lifetime_s_ = OptU64(o, "retryTokenLifetime", 10);
  max_connections_ = OptU64(o, "maxConnections", 0);

  Napi::Value server = o.Get("server");
  if (server.IsObject()) {
    Napi::Object s = server.As<Napi::Object>();
    server_config_ = quiche_config_new(QUICHE_PROTOCOL_VERSION);
    std::string cert = OptString(s, "certFile"), key = OptString(s, "keyFile");
    if (quiche_config_load_cert_chain_from_pem_file(server_config_, cert.c_str()) != 0) {
      ThrowCode(env, "HARRIER_ERR_TLS_CERT", "cannot load the PEM certificate chain from " + cert);
      return;
    }
    if (quiche_config_load_priv_key_from_pem_file(server_config_, key.c_str()) != 0) {
      ThrowCode(env, "HARRIER_ERR_TLS_KEY", "cannot load the PEM private key from " + key);
      return;
    }
    if (!ApplyTransport(env, server_config_, o)) return;
    quiche_config_set_max_amplification_factor(server_config_, 3);  // RFC 9000 §8.1
    Napi::Value tk = s.Get("ticketKey");
    if (tk.IsBuffer()) {
      Napi::Buffer<uint8_t> b = tk.As<Napi::Buffer<uint8_t>>();
      if (quiche_config_set_ticket_key(server_config_, b.Data(), b.Length()) != 0) {
        ThrowCode(env, "HARRIER_ERR_INVALID_ARG", "ticketKey must be 48 bytes");
        return;
      }
    }
  }
  Napi::Value client = o.Get("client");
  if (client.IsObject()) {
    Napi::Object c = client.As<Napi::Object>();
    client_config_ = quiche_config_new(QUICHE_PROTOCOL_VERSION);
    if (!ApplyTransport(env, client_config_, o)) return;
    quiche_config_verify_peer(client_config_, OptBool(c, "verifyPeer", false));
    std::string ca = OptString(c, "caFile");
    if (!ca.empty() && quiche_config_load_verify_locations_from_file(client_config_, ca.c_str()) != 0) {
      ThrowCode(env, "HARRIER_ERR_TLS_CERT", "cannot load CA certificates from " + ca);
      return;
    }
  }
  if (!server_config_ && !client_config_) {
    ThrowCode(env, "HARRIER_ERR_INVALID_ARG", "options need `server` and/or `client`");
    return;
  }
  send_scratch_.resize(kMaxDatagram);
  read_scratch_.resize(kReadChunk);

  uv_loop_t* loop = nullptr;
  napi_get_uv_event_loop(env, &loop);
  timer_ = new uv_timer_t;
  uv_timer_init(loop, timer_);
  timer_->data = this;
  idle_ = new uv_idle_t;
  uv_idle_init(loop, idle_);
  idle_->data = this;
}

Endpoint::~Endpoint() {
  for (auto& kv : by_handle_) {
    quiche_conn_free(kv.second->q);
    delete kv.second;
  }
  by_handle_.clear();
  by_cid_.clear();
  if (poll_) uv_close(reinterpret_cast<uv_handle_t*>(poll_), [](uv_handle_t* h) { delete reinterpret_cast<uv_poll_t*>(h); });
  if (timer_) uv_close(reinterpret_cast<uv_handle_t*>(timer_), [](uv_handle_t* h) { delete reinterpret_cast<uv_timer_t*>(h); });
  if (idle_) uv_close(reinterpret_cast<uv_handle_t*>(idle_), [](uv_handle_t* h) { delete reinterpret_cast<uv_idle_t*>(h); });
  socket_.Close();
  if (server_config_) quiche_config_free(server_config_);
  if (client_config_) quiche_config_free(client_config_);
}

// listen(host, port, ipv6Only) -> { host, port }
Napi::Value Endpoint::Listen(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (socket_.fd() >= 0) {
    ThrowCode(env, "HARRIER_ERR_INVALID_STATE", "endpoint is already bound");
    return env.Undefined();
  }
  std::string host = info[0].As<Napi::String>().Utf8Value();
  int port = info[1].As<Napi::Number>().Int32Value();
  bool v6only = info.Length() > 2 && info[2].IsBoolean() && info[2].As<Napi::Boolean>().Value();
  sockaddr_storage addr;
  socklen_t len;
  if (!ParseAddress(host, port, &addr, &len)) {
    ThrowCode(env, "HARRIER_ERR_INVALID_ARG", "not an IP address: " + host);
    return env.Undefined();
  }
  int buffer = info.Length() > 3 && info[3].IsNumber() ? info[3].As<Napi::Number>().Int32Value() : 8 << 20;
  if (!BindSocket(env, addr, len, v6only, buffer)) return env.Undefined();
  Napi::Object r = Napi::Object::New(env);
  const sockaddr* local = reinterpret_cast<const sockaddr*>(&socket_.local());
  r.Set("host", AddressHost(local));
  r.Set("port", AddressPort(local));
  r.Set("gso", socket_.gso_enabled());
  return r;
}

bool Endpoint::BindSocket(Napi::Env env, const sockaddr_storage& addr, socklen_t len, bool v6only, int buffer) {
  int err = socket_.Bind(addr, len, v6only, buffer);
  if (err != 0) {
    const sockaddr* sa = reinterpret_cast<const sockaddr*>(&addr);
    ThrowCode(env, err == EADDRINUSE ? "EADDRINUSE" : "HARRIER_ERR_SOCKET",
              "cannot bind UDP [" + AddressHost(sa) + "]:" + std::to_string(AddressPort(sa)) + ": " + strerror(err));
    return false;
  }
  uv_loop_t* loop = nullptr;
  napi_get_uv_event_loop(env, &loop);
  poll_ = new uv_poll_t;
  uv_poll_init_socket(loop, poll_, socket_.fd());
  poll_->data = this;
  uv_poll_start(poll_, UV_READABLE, OnPoll);
  if (!referenced_) uv_unref(reinterpret_cast<uv_handle_t*>(poll_));
  return true;
}

// connect(host, port, serverName, session?) -> connection handle
Napi::Value Endpoint::Connect(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!client_config_) {
    ThrowCode(env, "HARRIER_ERR_INVALID_STATE", "endpoint was created without client options");
    return env.Undefined();
  }
  std::string host = info[0].As<Napi::String>().Utf8Value();
  int port = info[1].As<Napi::Number>().Int32Value();
  std::string sni = info[2].IsString() ? info[2].As<Napi::String>().Utf8Value() : std::string();
  sockaddr_storage peer;
  socklen_t peer_len;
  if (!ParseAddress(host, port, &peer, &peer_len)) {
    ThrowCode(env, "HARRIER_ERR_INVALID_ARG", "not an IP address: " + host);
    return env.Undefined();
  }
  if (socket_.fd() < 0) {
    // A client endpoint that was not bound explicitly gets an ephemeral port.
    sockaddr_storage any;
    socklen_t any_len;
    ParseAddress(peer.ss_family == AF_INET6 ? "::" : "0.0.0.0", 0, &any, &any_len);
    if (!BindSocket(env, any, any_len, false, 8 << 20)) return env.Undefined();
  }
  uint8_t scid[kLocalCidLen];
  RandomBytes(scid, sizeof(scid));
  quiche_conn* q = quiche_connect(sni.empty() ? nullptr : sni.c_str(), scid, sizeof(scid),
                                  reinterpret_cast<const sockaddr*>(&socket_.local()), socket_.local_len(),
                                  reinterpret_cast<const sockaddr*>(&peer), peer_len, client_config_);
  if (!q) {
    ThrowCode(env, "HARRIER_ERR_CONNECT", "quiche refused to create the connection");
    return env.Undefined();
  }
  if (info.Length() > 3 && info[3].IsBuffer()) {
    Napi::Buffer<uint8_t> s = info[3].As<Napi::Buffer<uint8_t>>();
    quiche_conn_set_session(q, s.Data(), s.Length());
  }
  Conn* c = Register(q, scid, sizeof(scid), false, Hex(scid, sizeof(scid)));
  c->peer = peer;
  c->peer_len = peer_len;
  MarkDirty(c);
  ScheduleFlush();
  return Napi::Number::New(env, c->handle);
}

Conn* Endpoint::Find(const Napi::CallbackInfo& info, size_t index) {
  if (info.Length() <= index || !info[index].IsNumber()) return nullptr;
  auto it = by_handle_.find(info[index].As<Napi::Number>().Uint32Value());
  if (it == by_handle_.end() || it->second->closed) return nullptr;
  return it->second;
}

// streamWrite(conn, streamId, data: Buffer|undefined, fin) -> bytes accepted, or a quiche error (< 0)
Napi::Value Endpoint::StreamWrite(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Conn* c = Find(info, 0);
  if (!c) return Napi::Number::New(env, QUICHE_ERR_INVALID_STATE);
  uint64_t sid = ToU64(info[1]);
  static const uint8_t kNothing = 0;  // quiche's FFI makes a slice: never pass NULL
  const uint8_t* data = &kNothing;
  size_t len = 0;
  if (info[2].IsTypedArray()) {
    Napi::Uint8Array a = info[2].As<Napi::Uint8Array>();
    len = a.ByteLength();
    if (len > 0) data = a.Data();
  }
  bool fin = info[3].ToBoolean().Value();
  // quiche 0.30 completes a stream once its data is acknowledged even if a FIN sent alone
  // is still queued, and then never sends that FIN: such a FIN must leave before any ACK
  // is processed (HandlePacket flushes the connection first).
  if (len == 0 && fin) c->bare_fin = true;
  uint64_t err = 0;
  ssize_t n = quiche_conn_stream_send(c->q, sid, data, len, fin, &err);
  if (n == QUICHE_ERR_DONE) n = 0;
  bool limited = n == QUICHE_ERR_STREAM_LIMIT;
  if (limited) {
    // A stream of ours beyond the peer's MAX_STREAMS: it waits (JS queues the bytes) and is
    // reported writable once the peer allows it (not through `blocked`: quiche has no such
    // stream yet, so its capacity cannot be asked).
    c->over_limit.insert(sid);
    n = 0;
  }
  if (n == QUICHE_ERR_STREAM_STOPPED && c->stops_reported.insert(sid).second) {
    Event e{kEvStopSending, c->handle};
    e.stream = sid;
    e.code = err;
    events_.push_back(std::move(e));
    c->blocked.erase(sid);
    ScheduleFlush();
  } else if (!limited && n >= 0 && static_cast<size_t>(n) < len) {
    c->blocked.insert(sid);
  }
  MarkDirty(c);
  ScheduleFlush();
  return Napi::Number::New(env, static_cast<double>(n));
}

// streamShutdown(conn, streamId, direction 0=read (STOP_SENDING) | 1=write (RESET_STREAM), code)
Napi::Value Endpoint::StreamShutdown(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Conn* c = Find(info, 0);
  if (!c) return Napi::Number::New(env, QUICHE_ERR_INVALID_STATE);
  uint64_t sid = ToU64(info[1]);
  int dir = info[2].As<Napi::Number>().Int32Value();
  int rc = quiche_conn_stream_shutdown(c->q, sid, dir == 0 ? QUICHE_SHUTDOWN_READ : QUICHE_SHUTDOWN_WRITE,
                                       ToU64(info[3]));
  if (dir == 1) {
    c->blocked.erase(sid);
    c->over_limit.erase(sid);
  }
  if (dir == 0) c->paused.erase(sid);
  MarkDirty(c);
  ScheduleFlush();
  return Napi::Number::New(env, rc);
}

// streamPause(conn, streamId, paused): a paused stream is not read, so its flow-control
// window stays closed and the peer waits.
Napi::Value Endpoint::StreamPause(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Conn* c = Find(info, 0);
  if (!c) return env.Undefined();
  uint64_t sid = ToU64(info[1]);
  if (info[2].ToBoolean().Value()) {
    c->paused.insert(sid);
  } else if (c->paused.erase(sid)) {
    MarkDirty(c);
    ScheduleFlush();
  }
  return env.Undefined();
}

// streamCapacity(conn, streamId) -> bytes that a write would accept now, or an error (< 0)
Napi::Value Endpoint::StreamCapacity(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Conn* c = Find(info, 0);
  if (!c) return Napi::Number::New(env, QUICHE_ERR_INVALID_STATE);
  return Napi::Number::New(env, static_cast<double>(quiche_conn_stream_capacity(c->q, ToU64(info[1]))));
}

// datagramSend(conn, data) -> bytes queued, or an error (< 0)
Napi::Value Endpoint::DatagramSend(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Conn* c = Find(info, 0);
  if (!c || !info[1].IsTypedArray()) return Napi::Number::New(env, QUICHE_ERR_INVALID_STATE);
  Napi::Uint8Array a = info[1].As<Napi::Uint8Array>();
  ssize_t n = quiche_conn_dgram_send(c->q, a.Data(), a.ByteLength());
  MarkDirty(c);
  ScheduleFlush();
  return Napi::Number::New(env, static_cast<double>(n));
}

// connClose(conn, isApp, code, reason)
Napi::Value Endpoint::ConnClose(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Conn* c = Find(info, 0);
  if (!c) return Napi::Number::New(env, QUICHE_ERR_INVALID_STATE);
  std::string reason = info[3].IsString() ? info[3].As<Napi::String>().Utf8Value() : std::string();
  int rc = quiche_conn_close(c->q, info[1].ToBoolean().Value(), ToU64(info[2]),
                             reinterpret_cast<const uint8_t*>(reason.data()), reason.size());
  MarkDirty(c);
  ScheduleFlush();
  return Napi::Number::New(env, rc);
}

// connStats(conn) -> { rtt, minRtt, cwnd, sent, recv, lost, ... } | undefined
Napi::Value Endpoint::ConnStats(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Conn* c = Find(info, 0);
  if (!c) return env.Undefined();
  quiche_stats s;
  quiche_conn_stats(c->q, &s);
  Napi::Object r = Napi::Object::New(env);
  r.Set("packetsSent", static_cast<double>(s.sent));
  r.Set("packetsReceived", static_cast<double>(s.recv));
  r.Set("packetsLost", static_cast<double>(s.lost));
  r.Set("packetsRetransmitted", static_cast<double>(s.retrans));
  r.Set("bytesSent", static_cast<double>(s.sent_bytes));
  r.Set("bytesReceived", static_cast<double>(s.recv_bytes));
  r.Set("bytesLost", static_cast<double>(s.lost_bytes));
  r.Set("datagramsSent", static_cast<double>(s.dgram_sent));
  r.Set("datagramsReceived", static_cast<double>(s.dgram_recv));
  r.Set("paths", static_cast<double>(s.paths_count));
  quiche_path_stats p;
  if (quiche_conn_path_stats(c->q, 0, &p) == 0) {
    r.Set("rtt", p.rtt / 1e6);
    r.Set("minRtt", p.min_rtt / 1e6);
    r.Set("rttVar", p.rttvar / 1e6);
    r.Set("cwnd", static_cast<double>(p.cwnd));
    r.Set("pmtu", static_cast<double>(p.pmtu));
    r.Set("deliveryRate", static_cast<double>(p.delivery_rate));
    r.Set("peerAddress", AddressHost(reinterpret_cast<const sockaddr*>(&p.peer_addr)));
    r.Set("peerPort", AddressPort(reinterpret_cast<const sockaddr*>(&p.peer_addr)));
  }
  r.Set("established", quiche_conn_is_established(c->q));
  r.Set("resumed", quiche_conn_is_resumed(c->q));
  return r;
}

// connSession(conn) -> Buffer (a TLS session for resumption) | undefined
Napi::Value Endpoint::ConnSession(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Conn* c = Find(info, 0);
  if (!c) return env.Undefined();
  const uint8_t* p = nullptr;
  size_t n = 0;
  quiche_conn_session(c->q, &p, &n);
  if (!p || n == 0) return env.Undefined();
  return Napi::Buffer<uint8_t>::Copy(env, p, n);
}

Napi::Value Endpoint::EndpointStats(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object r = Napi::Object::New(env);
  r.Set("connections", static_cast<double>(by_handle_.size()));
  r.Set("connectionIds", static_cast<double>(by_cid_.size()));
  r.Set("packetsReceived", static_cast<double>(packets_in_));
  r.Set("packetsDropped", static_cast<double>(packets_dropped_));
  r.Set("versionNegotiationsSent", static_cast<double>(vn_sent_));
  r.Set("retriesSent", static_cast<double>(retry_sent_));
  r.Set("tokensRejected", static_cast<double>(token_rejected_));
  r.Set("acceptFailed", static_cast<double>(accept_failed_));
  r.Set("connectionsAccepted", static_cast<double>(conns_accepted_));
  r.Set("connectionsRefused", static_cast<double>(conns_refused_));
  r.Set("datagramsSent", static_cast<double>(socket_.datagrams_sent()));
  r.Set("sendCalls", static_cast<double>(socket_.send_calls()));
  r.Set("sendDropped", static_cast<double>(socket_.send_dropped()));
  r.Set("gso", socket_.gso_enabled());
  return r;
}

// closeAll(isApp, code, reason): stops accepting and starts closing every connection,
// including those whose handshake JS has not seen complete. Returns how many are open.
Napi::Value Endpoint::CloseAll(const Napi::CallbackInfo& info) {
  draining_ = true;
  std::string reason = info[2].IsString() ? info[2].As<Napi::String>().Utf8Value() : std::string();
  bool is_app = info[0].ToBoolean().Value();
  uint64_t code = ToU64(info[1]);
  for (auto& kv : by_handle_) {
    Conn* c = kv.second;
    if (c->closed) continue;
    // RFC 9000 §10.2.3: before the handshake completes an application close is sent as a
    // transport APPLICATION_ERROR; quiche does that translation.
    quiche_conn_close(c->q, is_app, code, reinterpret_cast<const uint8_t*>(reason.data()), reason.size());
    MarkDirty(c);
  }
  ScheduleFlush();
  return Napi::Number::New(info.Env(), static_cast<double>(by_handle_.size()));
}

// close(): frees every connection at once (no CONNECTION_CLOSE: the JS facade closes
// connections gracefully first) and releases the socket.
Napi::Value Endpoint::Close(const Napi::CallbackInfo& info) {
  closing_ = true;
  for (auto& kv : by_handle_) {
    quiche_conn_free(kv.second->q);
    delete kv.second;
  }
  by_handle_.clear();
  by_cid_.clear();
  dirty_.clear();
  deadlines_.clear();
  if (poll_) {
    uv_poll_stop(poll_);
    uv_close(reinterpret_cast<uv_handle_t*>(poll_), [](uv_handle_t* h) { delete reinterpret_cast<uv_poll_t*>(h); });
    poll_ = nullptr;
  }
  uv_timer_stop(timer_);
  uv_idle_stop(idle_);
  socket_.Close();
  return info.Env().Undefined();
}

// ref(bool): whether this endpoint keeps the Node process alive.
Napi::Value Endpoint::Ref(const Napi::CallbackInfo& info) {
  referenced_ = info[0].ToBoolean().Value();
  auto apply = [this](uv_handle_t* h) {
    if (!h) return;
    if (referenced_) uv_ref(h); else uv_unref(h);
  };
  apply(reinterpret_cast<uv_handle_t*>(poll_));
  apply(reinterpret_cast<uv_handle_t*>(timer_));
  return info.Env().Undefined();
}

// ---------------------------------------------------------------------------------------
// Event loop side

void Endpoint::OnPoll(uv_poll_t* handle, int status, int events) {
  Endpoint* self = static_cast<Endpoint*>(handle->data);
  if (status < 0 || self->closing_) return;
  self->ReceiveAll();
}

void Endpoint::OnTimer(uv_timer_t* handle) {
  Endpoint* self = static_cast<Endpoint*>(handle->data);
  uint64_t now = NowNs();
  while (!self->deadlines_.empty() && self->deadlines_.begin()->first <= now) {
    uint32_t h = self->deadlines_.begin()->second;
    self->deadlines_.erase(self->deadlines_.begin());
    auto it = self->by_handle_.find(h);
    if (it == self->by_handle_.end()) continue;
    Conn* c = it->second;
    c->deadline = UINT64_MAX;
    quiche_path_stats ps;
    bool handshaking = c->is_server && !quiche_conn_is_established(c->q) &&
                       quiche_conn_path_stats(c->q, 0, &ps) == 0;
    size_t ptos = handshaking ? ps.total_pto_count : 0;
    quiche_conn_on_timeout(c->q);
    if (handshaking && quiche_conn_path_stats(c->q, 0, &ps) == 0 && ps.total_pto_count > ptos) {
      c->pto_fired = true;  // HandshakePing
    }
    self->MarkDirty(c);
  }
  self->Process();
}

void Endpoint::OnIdle(uv_idle_t* handle) {
  Endpoint* self = static_cast<Endpoint*>(handle->data);
  uv_idle_stop(handle);
  if (!self->closing_) self->Process();
}

void Endpoint::ReceiveAll() {
  // Bounded so that one busy socket cannot starve the rest of the event loop.
  for (int round = 0; round < 16; round++) {
    size_t n = socket_.Receive(&rx_);
    for (size_t i = 0; i < n; i++) HandlePacket(rx_[i].data, rx_[i].len, rx_[i].from, rx_[i].from_len);
    if (n == 0) break;
    // ACKs and flow-control credit go out after every batch, not after the whole burst.
    Process();
  }
  Process();
}

void Endpoint::SendRaw(const uint8_t* data, size_t len, const sockaddr_storage* to, socklen_t to_len) {
  socket_.Queue(data, len, *to, to_len);
}

// RFC 8999 §5.1 invariants: a long header's version and connection IDs (up to 255 bytes
// each), readable whatever the version. False when the packet is too short to hold them.
static bool InvariantHeader(const uint8_t* buf, size_t len, uint32_t* version, const uint8_t** dcid,
                            size_t* dcid_len, const uint8_t** scid, size_t* scid_len) {
  if (len < 7 || !(buf[0] & 0x80)) return false;
  *version = (uint32_t(buf[1]) << 24) | (uint32_t(buf[2]) << 16) | (uint32_t(buf[3]) << 8) | buf[4];
  *dcid_len = buf[5];
  if (6 + *dcid_len + 1 > len) return false;
  *dcid = buf + 6;
  *scid_len = buf[6 + *dcid_len];
  if (7 + *dcid_len + *scid_len > len) return false;
  *scid = buf + 7 + *dcid_len;
  return true;
}

void Endpoint::HandlePacket(uint8_t* buf, size_t len, const sockaddr_storage* from, socklen_t from_len) {
  packets_in_++;
  {
    // Versions we do not speak are answered from the invariant header alone: quiche's parser
    // applies version 1's layout (token lengths, 20-byte IDs) and would refuse some of them.
    uint32_t v;
    const uint8_t *d, *sc;
    size_t dl, sl;
    if (InvariantHeader(buf, len, &v, &d, &dl, &sc, &sl) && !quiche_version_is_supported(v) &&
        by_cid_.find(Key(d, dl)) == by_cid_.end()) {
      // RFC 9000 §6.1: never answer a Version Negotiation packet (version 0) with one;
      // §14.1: datagrams under 1200 bytes get no reply (amplification).
      if (!server_config_ || closing_ || draining_ || v == 0 || len < QUICHE_MIN_CLIENT_INITIAL_LEN) {
        packets_dropped_++;
        return;
      }
      // RFC 9000 §6.1: answer with Version Negotiation, echoing the client's connection IDs
      // (zero-length ones too: the interop runner's readiness probe uses them).
      ssize_t n = quiche_negotiate_version(sc, sl, d, dl, send_scratch_.data(), send_scratch_.size());
      if (n > 0) {
        SendRaw(send_scratch_.data(), n, from, from_len);
        vn_sent_++;
      }
      return;
    }
  }
  uint32_t version = 0;
  uint8_t type = 0;
  uint8_t scid[QUICHE_MAX_CONN_ID_LEN], dcid[QUICHE_MAX_CONN_ID_LEN], token[1024];
  size_t scid_len = sizeof(scid), dcid_len = sizeof(dcid), token_len = sizeof(token);
  if (quiche_header_info(buf, len, kLocalCidLen, &version, &type, scid, &scid_len, dcid, &dcid_len,
                         token, &token_len) < 0) {
    packets_dropped_++;
    return;
  }
  auto it = by_cid_.find(Key(dcid, dcid_len));
  Conn* c = nullptr;
  if (it != by_cid_.end()) {
    c = it->second;
  } else {
    if (!server_config_ || closing_ || draining_) {
      packets_dropped_++;
      return;
    }
    Accept(buf, len, from, from_len, version, type, scid, scid_len, dcid, dcid_len, token, token_len);
    return;
  }
  if (c->bare_fin) {
    c->bare_fin = false;
    SendAll(c);
  }
  quiche_recv_info ri{const_cast<sockaddr*>(reinterpret_cast<const sockaddr*>(from)), from_len,
                      const_cast<sockaddr*>(reinterpret_cast<const sockaddr*>(&socket_.local())),
                      socket_.local_len()};
  bool handshaking = c->is_server && (type == 1 || type == 3) && !quiche_conn_is_established(c->q);
  // A Handshake packet after our handshake completed: the client has neither our
  // HANDSHAKE_DONE nor an ACK of its 1-RTT packets, and keeps resending its Finished (we have
  // dropped the Handshake keys; quiche discards it). quiche resends a lost HANDSHAKE_DONE (or
  // response) only once an ACK shows the loss or its PTO fires, and that PTO can be long: the
  // RTT sample from the client's first Handshake ACK includes the time the client sat on
  // our Handshake packets without the ServerHello. A PING in 1-RTT gets that ACK now.
  bool finished_again = c->is_server && type == 3 && !handshaking;
  quiche_stats before;
  quiche_transport_params tp;
  bool flight_sent = false;
  if (handshaking) {
    quiche_conn_stats(c->q, &before);
    flight_sent = quiche_conn_peer_transport_params(c->q, &tp);
  }
  if (quiche_conn_recv(c->q, buf, len, &ri) < 0) {
    packets_dropped_++;
  } else if (handshaking && !quiche_conn_is_established(c->q)) {
    HandshakePing(c, type, before, flight_sent);
  }
  if (finished_again) quiche_conn_send_ack_eliciting(c->q);
  MarkDirty(c);
}

// RFC 9002 §6.2.3: speed up the handshake when the client shows it is missing something.
// quiche only ACKs client packets and leaves recovery to its PTO, which without an RTT
// sample starts at 1 s and doubles (1, 2, 4, 8 s). A PING in our ACK makes the client
// acknowledge it; the client's ACK gives quiche an RTT sample and shows which of our packets
// were lost, so they are resent at once. (During the handshake quiche adds the PING only to
// a packet it sends anyway: no extra datagram.)
// - ClientHello incomplete (quiche has not seen the client's transport parameters; Accept
//   does the same for the first packet): nothing of ours is in flight yet, so the PING
//   delays nothing, puts our ACK in flight (the PTO resends it until the client has it)
//   and may give quiche its RTT sample before the flight goes out. Only an ACK of a packet
//   sent after its lost ClientHello part makes the client declare that part lost (RFC 9002
//   §6.1) before its own PTO, which a stale ACK's RTT sample can push past its handshake
//   timeout. kMaxHelloPings bounds it for a client that never completes its ClientHello.
// - Our flight sent: a client packet that acks nothing new (a resent ClientHello, a PTO
//   PING) means part of our flight or the client's ACK of it was lost. But each PING
//   restarts the PTO timer of its space (RFC 9002 §6.2.1): when the client lacks the
//   ServerHello and every exchange is lost, a PING per client probe keeps the Initial PTO
//   from ever firing while the Handshake one resends what the client cannot decrypt yet
//   (handshakes of 40 s and more). So at most kMaxUnansweredPings per space until an ACK
//   acks something or that space's PTO has resent its data.
void Endpoint::HandshakePing(Conn* c, uint8_t type, const quiche_stats& before, bool flight_sent) {
  quiche_stats after;
  quiche_conn_stats(c->q, &after);
  if (after.recv == before.recv) return;  // nothing was processed (undecryptable, duplicate)
  if (HelloPing(c)) return;  // our flight is not out yet
  uint8_t& unanswered = c->unanswered[type == 1 ? 0 : 1];
  if (!flight_sent || after.acked_bytes > before.acked_bytes) {
    c->unanswered[0] = c->unanswered[1] = 0;
  } else if (unanswered < kMaxUnansweredPings) {
    unanswered++;
    quiche_conn_send_ack_eliciting(c->q);
  }
}

// HandshakePing's first case: while the ClientHello is incomplete (quiche has not seen the
// client's transport parameters), a PING in our ACK, at most kMaxHelloPings times. Returns
// whether the ClientHello is incomplete.
bool Endpoint::HelloPing(Conn* c) {
  quiche_transport_params tp;
  if (quiche_conn_peer_transport_params(c->q, &tp)) return false;
  if (c->hello_pings < kMaxHelloPings) {
    c->hello_pings++;
    quiche_conn_send_ack_eliciting(c->q);
  }
  return true;
}

Conn* Endpoint::Accept(uint8_t* buf, size_t len, const sockaddr_storage* from, socklen_t from_len,
                       uint32_t version, uint8_t type, const uint8_t* scid, size_t scid_len,
                       const uint8_t* dcid, size_t dcid_len, const uint8_t* token, size_t token_len) {
  // Short-header packets (type 5) for unknown connections carry no version.
  if (type == 5) {
    packets_dropped_++;
    return nullptr;
  }
  // RFC 9000 §14.1: a server MUST discard an Initial packet carried in a UDP datagram
  // with a payload smaller than 1200 bytes (this also bounds Version Negotiation).
  if (len < QUICHE_MIN_CLIENT_INITIAL_LEN) {
    packets_dropped_++;
    return nullptr;
  }
  if (!quiche_version_is_supported(version)) {  // answered in HandlePacket
    packets_dropped_++;
    return nullptr;
  }
  // Only an Initial can open a connection; RFC 9000 §7.2: its DCID is at least 8 bytes.
  if (type != 1 || dcid_len < 8) {
    packets_dropped_++;
    return nullptr;
  }
  const sockaddr* peer = reinterpret_cast<const sockaddr*>(from);
  uint8_t new_scid[kLocalCidLen];
  std::string odcid;
  if (retry_) {
    if (token_len == 0) {
      RandomBytes(new_scid, sizeof(new_scid));
      std::string t = tokens_.Mint(peer, from_len, dcid, dcid_len, new_scid, sizeof(new_scid), UnixSeconds());
      ssize_t n = quiche_retry(scid, scid_len, dcid, dcid_len, new_scid, sizeof(new_scid),
                               reinterpret_cast<const uint8_t*>(t.data()), t.size(), version,
                               send_scratch_.data(), send_scratch_.size());
      if (n > 0) {
        SendRaw(send_scratch_.data(), n, from, from_len);
        socket_.Flush();
        retry_sent_++;
      }
      return nullptr;
    }
    // A forged, altered, replayed-from-elsewhere or expired token opens nothing.
    if (dcid_len != kLocalCidLen ||
        !tokens_.Validate(token, token_len, peer, from_len, dcid, dcid_len, UnixSeconds(), retry_lifetime_s_, &odcid)) {
      token_rejected_++;
      return nullptr;
    }
    memcpy(new_scid, dcid, kLocalCidLen);
  } else {
    RandomBytes(new_scid, sizeof(new_scid));
  }
  quiche_conn* q = quiche_accept(new_scid, sizeof(new_scid),
                                 odcid.empty() ? nullptr : reinterpret_cast<const uint8_t*>(odcid.data()),
                                 odcid.size(), reinterpret_cast<const sockaddr*>(&socket_.local()),
                                 socket_.local_len(), peer, from_len, server_config_);
  if (!q) {
    accept_failed_++;
    return nullptr;
  }
  const std::string& log_id = odcid.empty() ? Key(dcid, dcid_len) : odcid;
  SetLogs(q, true, Hex(reinterpret_cast<const uint8_t*>(log_id.data()), log_id.size()));
  quiche_recv_info ri{const_cast<sockaddr*>(peer), from_len,
                      const_cast<sockaddr*>(reinterpret_cast<const sockaddr*>(&socket_.local())),
                      socket_.local_len()};
  ssize_t rc = quiche_conn_recv(q, buf, len, &ri);
  quiche_stats st;
  quiche_conn_stats(q, &st);
  if (rc < 0 || st.recv == 0) {
    // An Initial that does not decrypt creates no state and gets no reply.
    quiche_conn_free(q);
    accept_failed_++;
    return nullptr;
  }
  Conn* c = Register(q, new_scid, sizeof(new_scid), true,
                     Hex(reinterpret_cast<const uint8_t*>(log_id.data()), log_id.size()));
  memcpy(&c->peer, from, from_len);
  c->peer_len = from_len;
  if (!retry_) {
    // Retransmitted Initials still carry the client's original DCID.
    by_cid_[Key(dcid, dcid_len)] = c;
    c->cids.push_back(Key(dcid, dcid_len));
  }
  HelloPing(c);
  conns_accepted_++;
  if (max_connections_ > 0 && by_handle_.size() > max_connections_) {
    // RFC 9000 §20.1: CONNECTION_REFUSED (0x02) when the server refuses a connection.
    quiche_conn_close(q, false, 0x02, nullptr, 0);
    conns_refused_++;
  }
  MarkDirty(c);
  return c;
}

Conn* Endpoint::Register(quiche_conn* q, const uint8_t* scid, size_t scid_len, bool is_server,
                         const std::string& log_id) {
  Conn* c = new Conn;
  c->handle = next_handle_++;
  if (next_handle_ == 0) next_handle_ = 1;
  c->q = q;
  c->is_server = is_server;
  std::string k = Key(scid, scid_len);
  by_cid_[k] = c;
  c->cids.push_back(k);
  by_handle_[c->handle] = c;
  if (!is_server) SetLogs(q, false, log_id);  // servers set them before the first packet
  return c;
}

// Key log and qlog go in before the connection reads its first packet, so that the
// handshake secrets and the first events are in them.
void Endpoint::SetLogs(quiche_conn* q, bool is_server, const std::string& log_id) {
  if (!keylog_path_.empty()) quiche_conn_set_keylog_path(q, keylog_path_.c_str());
  if (!qlog_dir_.empty()) {
    std::string path = qlog_dir_ + "/" + log_id + (is_server ? "_server" : "_client") + ".sqlog";
    quiche_conn_set_qlog_path(q, path.c_str(), "harrier", "harrier qlog");
  }
}

void Endpoint::MarkDirty(Conn* c) {
  if (c->dirty) return;
  c->dirty = true;
  dirty_.push_back(c);
}

void Endpoint::ScheduleFlush() {
  if (in_process_ || closing_) return;
  if (!uv_is_active(reinterpret_cast<uv_handle_t*>(idle_))) uv_idle_start(idle_, OnIdle);
}

void Endpoint::IssueConnectionIds(Conn* c) {
  // Spare connection IDs let the peer migrate or change its NAT binding (RFC 9000 §5.1.1).
  while (quiche_conn_scids_left(c->q) > 0 && c->cids.size() < kMaxExtraCids + 2) {
    uint8_t cid[kLocalCidLen], reset[16];
    RandomBytes(cid, sizeof(cid));
    tokens_.ResetToken(cid, sizeof(cid), reset);
    uint64_t seq = 0;
    if (quiche_conn_new_scid(c->q, cid, sizeof(cid), reset, false, &seq) < 0) break;
    std::string k = Key(cid, sizeof(cid));
    by_cid_[k] = c;
    c->cids.push_back(k);
  }
  if (quiche_conn_retired_scids(c->q) > 0) {
    quiche_connection_id_iter* it = quiche_conn_retired_scid_iter(c->q);
    const uint8_t* p;
    size_t n;
    while (quiche_connection_id_iter_next(it, &p, &n)) {
      std::string k = Key(p, n);
      by_cid_.erase(k);
      for (size_t i = 0; i < c->cids.size(); i++) {
        if (c->cids[i] == k) {
          c->cids.erase(c->cids.begin() + i);
          break;
        }
      }
    }
    quiche_connection_id_iter_free(it);
  }
}

void Endpoint::ReadStreams(Conn* c) {
  quiche_stream_iter* it = quiche_conn_readable(c->q);
  uint64_t sid;
  while (quiche_stream_iter_next(it, &sid)) {
    if (c->paused.count(sid)) continue;
    Event e{kEvStreamData, c->handle};
    e.stream = sid;
    for (;;) {
      bool fin = false;
      uint64_t err = 0;
      ssize_t n = quiche_conn_stream_recv(c->q, sid, read_scratch_.data(), read_scratch_.size(), &fin, &err);
      if (n >= 0) {
        e.data.insert(e.data.end(), read_scratch_.data(), read_scratch_.data() + n);
        if (fin) {
          e.flag_a = true;
          break;
        }
        continue;
      }
      if (n == QUICHE_ERR_STREAM_RESET) {
        if (!e.data.empty()) events_.push_back(std::move(e));
        Event r{kEvStreamReset, c->handle};
        r.stream = sid;
        r.code = err;
        events_.push_back(std::move(r));
        e = Event{-1, 0};
      }
      break;
    }
    if (e.kind == kEvStreamData && (!e.data.empty() || e.flag_a)) events_.push_back(std::move(e));
  }
  quiche_stream_iter_free(it);
}

void Endpoint::Collect(Conn* c) {
  quiche_conn* q = c->q;
  bool established = quiche_conn_is_established(q);
  if (!c->announced && (established || quiche_conn_is_in_early_data(q))) {
    c->announced = true;
    c->established_seen = established;
    Event e{kEvConnection, c->handle};
    const uint8_t* p = nullptr;
    size_t n = 0;
    quiche_conn_application_proto(q, &p, &n);
    e.s1.assign(reinterpret_cast<const char*>(p), p ? n : 0);
    p = nullptr;
    n = 0;
    quiche_conn_server_name(q, &p, &n);
    e.s2.assign(reinterpret_cast<const char*>(p), p ? n : 0);
    quiche_path_stats ps;
    if (quiche_conn_path_stats(q, 0, &ps) == 0) {
      e.s3 = AddressHost(reinterpret_cast<const sockaddr*>(&ps.peer_addr));
      e.port1 = AddressPort(reinterpret_cast<const sockaddr*>(&ps.peer_addr));
    }
    e.s4 = AddressHost(reinterpret_cast<const sockaddr*>(&socket_.local()));
    e.port2 = AddressPort(reinterpret_cast<const sockaddr*>(&socket_.local()));
    e.flag_a = quiche_conn_is_resumed(q);
    e.flag_b = !established;
    events_.push_back(std::move(e));
  } else if (c->announced && !c->established_seen && established) {
    c->established_seen = true;
    events_.push_back(Event{kEvHandshakeDone, c->handle});
  }
  if (c->announced) {
    ReadStreams(c);
    for (;;) {
      ssize_t n = quiche_conn_dgram_recv(q, read_scratch_.data(), read_scratch_.size());
      if (n < 0) break;
      Event e{kEvDatagram, c->handle};
      e.data.assign(read_scratch_.data(), read_scratch_.data() + n);
      events_.push_back(std::move(e));
    }
    // A peer's STOP_SENDING leaves the stream in quiche's writable set; when the count of
    // stopped streams grows, find the new ones (a write of nothing reports the peer's code).
    quiche_stats st;
    quiche_conn_stats(q, &st);
    if (st.stopped_stream_count_remote > c->stops_seen) {
      c->stops_seen = st.stopped_stream_count_remote;
      quiche_stream_iter* wi = quiche_conn_writable(q);
      uint64_t sid;
      while (quiche_stream_iter_next(wi, &sid)) {
        if (c->blocked.count(sid) || c->stops_reported.count(sid)) continue;
        static const uint8_t kNothing = 0;
        uint64_t err = 0;
        if (quiche_conn_stream_send(q, sid, &kNothing, 0, false, &err) == QUICHE_ERR_STREAM_STOPPED) {
          c->stops_reported.insert(sid);
          Event e{kEvStopSending, c->handle};
          e.stream = sid;
          e.code = err;
          events_.push_back(std::move(e));
        }
      }
      quiche_stream_iter_free(wi);
    }
    if (!c->over_limit.empty()) {
      // The peer's MAX_STREAMS went up: as many waiting streams as it now allows, lowest first
      // (stream ids of one kind open in order).
      uint64_t left[2] = {quiche_conn_peer_streams_left_bidi(q), quiche_conn_peer_streams_left_uni(q)};
      for (auto it = c->over_limit.begin(); it != c->over_limit.end();) {
        uint64_t& n = left[(*it & 2) ? 1 : 0];
        if (n == 0) {
          ++it;
          continue;
        }
        n--;
        Event e{kEvWritable, c->handle};
        e.stream = *it;
        events_.push_back(std::move(e));
        it = c->over_limit.erase(it);
      }
    }
    for (auto it = c->blocked.begin(); it != c->blocked.end();) {
      ssize_t cap = quiche_conn_stream_capacity(q, *it);
      if (cap == 0) {
        ++it;
        continue;
      }
      uint64_t err = 0;
      static const uint8_t kNothing = 0;
      if (cap < 0 && quiche_conn_stream_send(q, *it, &kNothing, 0, false, &err) == QUICHE_ERR_STREAM_STOPPED) {
        if (!c->stops_reported.insert(*it).second) {
          it = c->blocked.erase(it);
          continue;
        }
        Event e{kEvStopSending, c->handle};
        e.stream = *it;
        e.code = err;
        events_.push_back(std::move(e));
      } else {
        Event e{kEvWritable, c->handle};
        e.stream = *it;
        events_.push_back(std::move(e));
      }
      it = c->blocked.erase(it);
    }
  }
  if (established && !quiche_conn_is_closed(q)) IssueConnectionIds(c);
  if (quiche_conn_is_closed(q)) {
    c->closed = true;
    if (!c->announced && c->is_server) return;  // never shown to JS: a failed handshake
    Event e{kEvClosed, c->handle};
    bool is_app = false;
    uint64_t code = 0;
    const uint8_t* reason = nullptr;
    size_t reason_len = 0;
    if (quiche_conn_peer_error(q, &is_app, &code, &reason, &reason_len)) {
      e.flag_b = true;
    } else if (!quiche_conn_local_error(q, &is_app, &code, &reason, &reason_len)) {
      is_app = false;
      code = 0;
    }
    e.flag_a = is_app;
    e.code = code;
    if (reason) e.s1.assign(reinterpret_cast<const char*>(reason), reason_len);
    e.flag_c = quiche_conn_is_timed_out(q);
    events_.push_back(std::move(e));
  }
}

void Endpoint::Deliver() {
  if (events_.empty()) return;
  Napi::Env env = env_;
  Napi::HandleScope scope(env);
  std::vector<Event> batch;
  batch.swap(events_);
  Napi::Array arr = Napi::Array::New(env, batch.size());
  for (size_t i = 0; i < batch.size(); i++) {
    Event& e = batch[i];
    Napi::Array a = Napi::Array::New(env);
    a.Set(0u, e.kind);
    a.Set(1u, e.conn);
    switch (e.kind) {
      case kEvConnection:
        a.Set(2u, e.s1); a.Set(3u, e.s2); a.Set(4u, e.s3); a.Set(5u, e.port1);
        a.Set(6u, e.s4); a.Set(7u, e.port2); a.Set(8u, e.flag_a); a.Set(9u, e.flag_b);
        break;
      case kEvStreamData: {
        a.Set(2u, U64(env, e.stream));
        if (e.data.empty()) {
          a.Set(3u, env.Null());
        } else {
          auto* v = new std::vector<uint8_t>(std::move(e.data));
          a.Set(3u, Napi::Buffer<uint8_t>::New(env, v->data(), v->size(),
                                               [](Napi::Env, uint8_t*, std::vector<uint8_t>* h) { delete h; }, v));
        }
        a.Set(4u, e.flag_a);
        break;
      }
      case kEvStreamReset:
      case kEvStopSending:
        a.Set(2u, U64(env, e.stream)); a.Set(3u, U64(env, e.code));
        break;
      case kEvWritable:
        a.Set(2u, U64(env, e.stream));
        break;
      case kEvDatagram:
        a.Set(2u, Napi::Buffer<uint8_t>::Copy(env, e.data.data(), e.data.size()));
        break;
      case kEvClosed:
        a.Set(2u, e.flag_a); a.Set(3u, U64(env, e.code)); a.Set(4u, e.s1);
        a.Set(5u, e.flag_b); a.Set(6u, e.flag_c);
        break;
      default:
        break;
    }
    arr.Set(static_cast<uint32_t>(i), a);
  }
  on_events_.MakeCallback(Value(), {arr}, *async_context_);
  if (env.IsExceptionPending()) {
    // An exception that escaped the JS side goes to 'uncaughtException' the way Node does it
    // for its own callbacks; swallowing it here would leave Node's async-context stack
    // unbalanced (and abort the process on the next callback).
    Napi::Error e = env.GetAndClearPendingException();
    napi_fatal_exception(env, e.Value());
  }
}

void Endpoint::SendAll(Conn* c) {
  for (;;) {
    quiche_send_info si;
    ssize_t n = quiche_conn_send(c->q, send_scratch_.data(), send_scratch_.size(), &si);
    if (n == QUICHE_ERR_DONE) break;
    if (n < 0) break;  // quiche has closed the connection; Collect reports it
    if (c->pto_fired) {
      // HandshakePing: a PTO probe leads its datagram, and a long header's type bits are
      // not protected (RFC 9001 §5.4.1): 0 Initial, 2 Handshake.
      c->pto_fired = false;
      uint8_t b0 = send_scratch_[0];
      if ((b0 & 0x80) && ((b0 >> 4) & 3) == 0) c->unanswered[0] = 0;
      if ((b0 & 0x80) && ((b0 >> 4) & 3) == 2) c->unanswered[1] = 0;
    }
    socket_.Queue(send_scratch_.data(), static_cast<size_t>(n), si.to, si.to_len);
  }
}

void Endpoint::Process() {
  if (in_process_ || closing_) return;
  in_process_ = true;
  for (size_t i = 0; i < dirty_.size(); i++) Collect(dirty_[i]);
  Deliver();
  // JS may have written during Deliver (more dirty connections): flush them all.
  for (size_t i = 0; i < dirty_.size(); i++) {
    Conn* c = dirty_[i];
    c->dirty = false;
    if (!c->closed) SendAll(c);
    c->bare_fin = false;
    if (c->deadline != UINT64_MAX) deadlines_.erase({c->deadline, c->handle});
    c->deadline = UINT64_MAX;
    if (!c->closed) {
      uint64_t t = quiche_conn_timeout_as_nanos(c->q);
      if (t != UINT64_MAX) {
        c->deadline = NowNs() + t;
        deadlines_.insert({c->deadline, c->handle});
      }
      // A connection that closed while sending is reported on the next turn.
      if (quiche_conn_is_closed(c->q)) {
        c->deadline = NowNs();
        deadlines_.insert({c->deadline, c->handle});
      }
    }
  }
  socket_.Flush();
  for (size_t i = 0; i < dirty_.size(); i++) {
    if (dirty_[i]->closed) Forget(dirty_[i]);
  }
  dirty_.clear();
  in_process_ = false;
  ArmTimer();
  // Events raised by JS calls made outside a batch (e.g. a write that found the stream
  // stopped) go out on the next turn.
  if (!events_.empty()) ScheduleFlush();
}

void Endpoint::Forget(Conn* c) {
  for (const std::string& k : c->cids) {
    auto it = by_cid_.find(k);
    if (it != by_cid_.end() && it->second == c) by_cid_.erase(it);
  }
  if (c->deadline != UINT64_MAX) deadlines_.erase({c->deadline, c->handle});
  by_handle_.erase(c->handle);
  quiche_conn_free(c->q);
  delete c;
}

void Endpoint::ArmTimer() {
  if (closing_) return;
  if (deadlines_.empty()) {
    uv_timer_stop(timer_);
    return;
  }
  uint64_t now = NowNs();
  uint64_t first = deadlines_.begin()->first;
  uint64_t ms = first <= now ? 0 : (first - now + 999999) / 1000000;
  uv_timer_start(timer_, OnTimer, ms, 0);
  if (!referenced_) uv_unref(reinterpret_cast<uv_handle_t*>(timer_));
}

}  // namespace harrier
