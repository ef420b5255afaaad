// UDP socket with batched receive (recvmmsg + GRO) and batched send (sendmmsg + GSO).
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace harrier {

// Fills `out` from a textual IPv4/IPv6 address and a port; false if unparsable.
bool ParseAddress(const std::string& host, int port, sockaddr_storage* out, socklen_t* len);
// "1.2.3.4" / "::1" and the port of an address.
std::string AddressHost(const sockaddr* sa);
int AddressPort(const sockaddr* sa);

// One received datagram (a view into the socket's receive buffers).
struct Datagram {
  uint8_t* data;
  size_t len;
  const sockaddr_storage* from;
  socklen_t from_len;
};

class UdpSocket {
 public:
  static constexpr int kBatch = 64;           // datagrams per recvmmsg / sendmmsg call
  static constexpr size_t kRecvBufSize = 65535;  // room for one GRO super-datagram

  UdpSocket() = default;
  ~UdpSocket();
  UdpSocket(const UdpSocket&) = delete;
  UdpSocket& operator=(const UdpSocket&) = delete;

  // Creates, configures and binds the socket. `ipv6_only` false makes [::] dual-stack.
  // Returns 0 or an errno value.
  int Bind(const sockaddr_storage& addr, socklen_t len, bool ipv6_only, int buffer_bytes);
  int fd() const { return fd_; }
  const sockaddr_storage& local() const { return local_; }
  socklen_t local_len() const { return local_len_; }
  void Close();

  // Receives up to kBatch datagrams without blocking; GRO super-datagrams are split into
  // their segments. Returns the number of datagrams in `out` (0 when the socket is empty).
  size_t Receive(std::vector<Datagram>* out);

  // Queues one packet for `to`. Consecutive packets of equal size to the same address
  // are coalesced into one GSO send. Buffers are copied; Flush() sends them.
  void Queue(const uint8_t* data, size_t len, const sockaddr_storage& to, socklen_t to_len);
  // Sends everything queued with as few sendmmsg calls as possible. Packets the kernel
  // refuses (a full buffer) are dropped: QUIC recovers them as loss.
  void Flush();

  bool gso_enabled() const { return gso_; }
  uint64_t datagrams_sent() const { return datagrams_sent_; }
  uint64_t send_calls() const { return send_calls_; }
  uint64_t send_dropped() const { return send_dropped_; }

 private:
  struct Outgoing {
    size_t offset;       // into send_buf_
    size_t len;          // total bytes (all segments)
    uint16_t segment;    // GSO segment size; == len for a single datagram
    uint16_t segments;
    sockaddr_storage to;
    socklen_t to_len;
  };
  void SendBatch(size_t first, size_t count);

  int fd_ = -1;
  bool gso_ = false;
  bool gro_ = false;
  sockaddr_storage local_{};
  socklen_t local_len_ = 0;

  std::vector<uint8_t> recv_buf_;
  std::vector<sockaddr_storage> recv_from_;
  std::vector<uint8_t> recv_ctrl_;

  std::vector<uint8_t> send_buf_;
  std::vector<Outgoing> out_;
  uint64_t datagrams_sent_ = 0;
  uint64_t send_calls_ = 0;
  uint64_t send_dropped_ = 0;
};

}  // namespace harrier
