// The native QUIC endpoint: one UDP socket, its quiche connections and their timers.
// JS gets one batch of events per event-loop turn; packets are flushed once per turn.
#pragma once

#include <napi.h>
#include <quiche.h>
#include <uv.h>

#include <memory>
#include <set>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "token.h"
#include "udp.h"

namespace harrier {

// Event kinds in the batch handed to JS (mirrored in src/native.ts).
enum EventKind : int {
  kEvConnection = 0,   // [kind, conn, alpn, sni, peerHost, peerPort, localHost, localPort, resumed, early]
  kEvStreamData = 1,   // [kind, conn, streamId, Buffer|null, fin]
  kEvStreamReset = 2,  // [kind, conn, streamId, code]
  kEvStopSending = 3,  // [kind, conn, streamId, code]
  kEvWritable = 4,     // [kind, conn, streamId]
  kEvDatagram = 5,     // [kind, conn, Buffer]
  kEvClosed = 6,       // [kind, conn, isApp, code, reason, byPeer, timedOut]
  kEvHandshakeDone = 7 // [kind, conn]  (after an early-data start, the handshake completed)
};

struct Event {
  Event(int k, uint32_t c) : kind(k), conn(c) {}
  int kind;
  uint32_t conn;
  uint64_t stream = 0;
  uint64_t code = 0;
  bool flag_a = false;  // fin / isApp / resumed
  bool flag_b = false;  // byPeer / early
  bool flag_c = false;  // timedOut
  std::vector<uint8_t> data;
  std::string s1, s2, s3, s4;  // alpn, sni, peer host, local host / reason
  int port1 = 0, port2 = 0;
};

struct Conn {
  uint32_t handle = 0;
  quiche_conn* q = nullptr;
  bool is_server = true;
  bool announced = false;      // kEvConnection emitted
  bool established_seen = false;
  bool closed = false;         // kEvClosed emitted; freed after the batch
  bool dirty = false;          // needs reading / flushing this turn
  bool bare_fin = false;       // a FIN without data was queued and not yet flushed
  // HandshakePing (RFC 9002 §6.2.3)
  uint8_t hello_pings = 0;     // PINGs added while the ClientHello was incomplete
  uint8_t unanswered[2] = {0, 0};  // PINGs in Initial, Handshake since an ACK or that space's PTO
  bool pto_fired = false;      // OnTimer saw a PTO; SendAll reads which space its probe is in
  std::vector<std::string> cids;  // keys of this connection in the table
  std::unordered_set<uint64_t> blocked;  // streams waiting for send capacity
  std::set<uint64_t> over_limit;         // streams of ours past the peer's MAX_STREAMS, lowest first
  std::unordered_set<uint64_t> paused;   // streams JS stopped reading (flow control)
  std::unordered_set<uint64_t> stops_reported;  // STOP_SENDING already handed to JS
  uint64_t stops_seen = 0;               // quiche's count of streams the peer stopped
  uint64_t deadline = UINT64_MAX;        // absolute, ns (monotonic)
  sockaddr_storage peer{};
  socklen_t peer_len = 0;
};

class Endpoint : public Napi::ObjectWrap<Endpoint> {
 public:
  static Napi::Function Init(Napi::Env env);
  explicit Endpoint(const Napi::CallbackInfo& info);
  ~Endpoint() override;

 private:
  // --- JS API (documented in src/native.ts) ---
  Napi::Value Listen(const Napi::CallbackInfo& info);
  Napi::Value Connect(const Napi::CallbackInfo& info);
  Napi::Value StreamWrite(const Napi::CallbackInfo& info);
  Napi::Value StreamShutdown(const Napi::CallbackInfo& info);
  Napi::Value StreamPause(const Napi::CallbackInfo& info);
  Napi::Value StreamCapacity(const Napi::CallbackInfo& info);
  Napi::Value DatagramSend(const Napi::CallbackInfo& info);
  Napi::Value ConnClose(const Napi::CallbackInfo& info);
  Napi::Value ConnStats(const Napi::CallbackInfo& info);
  Napi::Value ConnSession(const Napi::CallbackInfo& info);
  Napi::Value EndpointStats(const Napi::CallbackInfo& info);
  Napi::Value CloseAll(const Napi::CallbackInfo& info);
  Napi::Value Close(const Napi::CallbackInfo& info);
  Napi::Value Ref(const Napi::CallbackInfo& info);

  // --- the event loop side ---
  static void OnPoll(uv_poll_t* handle, int status, int events);
  static void OnTimer(uv_timer_t* handle);
  static void OnIdle(uv_idle_t* handle);
  void ReceiveAll();
  void HandlePacket(uint8_t* buf, size_t len, const sockaddr_storage* from, socklen_t from_len);
  void HandshakePing(Conn* c, uint8_t type, const quiche_stats& before, bool flight_sent);
  bool HelloPing(Conn* c);
  Conn* Accept(uint8_t* buf, size_t len, const sockaddr_storage* from, socklen_t from_len,
               uint32_t version, uint8_t type, const uint8_t* scid, size_t scid_len,
               const uint8_t* dcid, size_t dcid_len, const uint8_t* token, size_t token_len);
  Conn* Register(quiche_conn* q, const uint8_t* scid, size_t scid_len, bool is_server,
                 const std::string& log_id);
  void Collect(Conn* c);                 // stream data, datagrams, writability, close
  void ReadStreams(Conn* c);
  void IssueConnectionIds(Conn* c);
  void SendAll(Conn* c);
  void Process();                        // collect → deliver → flush → rearm timer
  void Deliver();
  void Flush();
  void ArmTimer();
  void ScheduleFlush();
  void MarkDirty(Conn* c);
  Conn* Find(const Napi::CallbackInfo& info, size_t index);
  void Forget(Conn* c);
  void SetLogs(quiche_conn* q, bool is_server, const std::string& log_id);
  bool BindSocket(Napi::Env env, const sockaddr_storage& addr, socklen_t len, bool v6only, int buffer);
  void SendRaw(const uint8_t* data, size_t len, const sockaddr_storage* to, socklen_t to_len);

  Napi::Env env_;
  Napi::FunctionReference on_events_;
  std::unique_ptr<Napi::AsyncContext> async_context_;
  quiche_config* server_config_ = nullptr;
  quiche_config* client_config_ = nullptr;

  UdpSocket socket_;
  uv_poll_t* poll_ = nullptr;
  uv_timer_t* timer_ = nullptr;
  uv_idle_t* idle_ = nullptr;
  bool closing_ = false;
  bool draining_ = false;  // closeAll() called: no new connections
  bool in_process_ = false;
  bool referenced_ = true;

  std::unordered_map<std::string, Conn*> by_cid_;
  std::unordered_map<uint32_t, Conn*> by_handle_;
  std::vector<Conn*> dirty_;
  std::set<std::pair<uint64_t, uint32_t>> deadlines_;
  std::vector<Event> events_;
  std::vector<Datagram> rx_;
  std::vector<uint8_t> send_scratch_;
  std::vector<uint8_t> read_scratch_;
  uint32_t next_handle_ = 1;

  // options
  bool retry_ = false;
  uint64_t retry_lifetime_s_ = 10;
  size_t max_connections_ = 0;  // 0 = unlimited
  std::string qlog_dir_;
  std::string keylog_path_;
  RetryTokens tokens_;

  // counters (endpointStats)
  uint64_t packets_in_ = 0, packets_dropped_ = 0, vn_sent_ = 0, retry_sent_ = 0,
           token_rejected_ = 0, accept_failed_ = 0, conns_accepted_ = 0, conns_refused_ = 0;
};

}  // namespace harrier
