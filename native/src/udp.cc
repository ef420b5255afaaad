#include "udp.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/udp.h>
#include <string.h>
#include <unistd.h>

#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103
#endif
#ifndef UDP_GRO
#define UDP_GRO 104
#endif
#ifndef SOL_UDP
#define SOL_UDP 17
#endif

namespace harrier {

namespace {
constexpr size_t kMaxGsoBytes = 65000;
constexpr uint16_t kMaxGsoSegments = 64;
constexpr size_t kCtrlSize = CMSG_SPACE(sizeof(uint16_t)) + CMSG_SPACE(sizeof(int));
}  // namespace

bool ParseAddress(const std::string& host, int port, sockaddr_storage* out, socklen_t* len) {
  memset(out, 0, sizeof(*out));
  auto* v4 = reinterpret_cast<sockaddr_in*>(out);
  if (inet_pton(AF_INET, host.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(static_cast<uint16_t>(port));
    *len = sizeof(sockaddr_in);
    return true;
  }
  auto* v6 = reinterpret_cast<sockaddr_in6*>(out);
  if (inet_pton(AF_INET6, host.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(static_cast<uint16_t>(port));
    *len = sizeof(sockaddr_in6);
    return true;
  }
  return false;
}

std::string AddressHost(const sockaddr* sa) {
  char buf[INET6_ADDRSTRLEN] = {0};
  if (sa->sa_family == AF_INET) {
    inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(sa)->sin_addr, buf, sizeof(buf));
  } else if (sa->sa_family == AF_INET6) {
    inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(sa)->sin6_addr, buf, sizeof(buf));
  }
  return buf;
}

int AddressPort(const sockaddr* sa) {
  if (sa->sa_family == AF_INET) return ntohs(reinterpret_cast<const sockaddr_in*>(sa)->sin_port);
  if (sa->sa_family == AF_INET6) return ntohs(reinterpret_cast<const sockaddr_in6*>(sa)->sin6_port);
  return 0;
}

UdpSocket::~UdpSocket() { Close(); }

void UdpSocket::Close() {
  if (fd_ >= 0) close(fd_);
  fd_ = -1;
}

int UdpSocket::Bind(const sockaddr_storage& addr, socklen_t len, bool ipv6_only, int buffer_bytes) {
  int fd = socket(addr.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return errno;
  int one = 1;
  if (addr.ss_family == AF_INET6) {
    int v6only = ipv6_only ? 1 : 0;
    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, sizeof(v6only));
  }
  // Large kernel buffers: a burst the application has not read yet is otherwise dropped.
  // SO_*BUFFORCE works for root beyond rmem_max; the plain option is the fallback.
  if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &buffer_bytes, sizeof(buffer_bytes)) != 0)
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &buffer_bytes, sizeof(buffer_bytes));
  if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &buffer_bytes, sizeof(buffer_bytes)) != 0)
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &buffer_bytes, sizeof(buffer_bytes));
  if (bind(fd, reinterpret_cast<const sockaddr*>(&addr), len) != 0) {
    int err = errno;
    close(fd);
    return err;
  }
  local_len_ = sizeof(local_);
  getsockname(fd, reinterpret_cast<sockaddr*>(&local_), &local_len_);
  // GSO: probe the option; the first failing send turns it off again.
  int seg = 1200;
  gso_ = setsockopt(fd, SOL_UDP, UDP_SEGMENT, &seg, sizeof(seg)) == 0;
  if (gso_) {
    seg = 0;
    setsockopt(fd, SOL_UDP, UDP_SEGMENT, &seg, sizeof(seg));
  }
  gro_ = setsockopt(fd, SOL_UDP, UDP_GRO, &one, sizeof(one)) == 0;
  fd_ = fd;
  recv_buf_.resize(kBatch * kRecvBufSize);
  recv_from_.resize(kBatch);
  recv_ctrl_.resize(kBatch * kCtrlSize);
  return 0;
}

size_t UdpSocket::Receive(std::vector<Datagram>* out) {
  out->clear();
  mmsghdr msgs[kBatch];
  iovec iovs[kBatch];
  memset(msgs, 0, sizeof(msgs));
  for (int i = 0; i < kBatch; i++) {
    iovs[i].iov_base = recv_buf_.data() + i * kRecvBufSize;
    iovs[i].iov_len = kRecvBufSize;
    msgs[i].msg_hdr.msg_iov = &iovs[i];
    msgs[i].msg_hdr.msg_iovlen = 1;
    msgs[i].msg_hdr.msg_name = &recv_from_[i];
    msgs[i].msg_hdr.msg_namelen = sizeof(sockaddr_storage);
    msgs[i].msg_hdr.msg_control = recv_ctrl_.data() + i * kCtrlSize;
    msgs[i].msg_hdr.msg_controllen = kCtrlSize;
  }
  int n;
  do {
    n = recvmmsg(fd_, msgs, kBatch, MSG_DONTWAIT, nullptr);
  } while (n < 0 && errno == EINTR);
  if (n <= 0) return 0;
  for (int i = 0; i < n; i++) {
    size_t total = msgs[i].msg_len;
    size_t segment = total;
    for (cmsghdr* c = CMSG_FIRSTHDR(&msgs[i].msg_hdr); c; c = CMSG_NXTHDR(&msgs[i].msg_hdr, c)) {
      if (c->cmsg_level == SOL_UDP && c->cmsg_type == UDP_GRO) {
        int gso_size = 0;
        memcpy(&gso_size, CMSG_DATA(c), sizeof(gso_size));
        if (gso_size > 0) segment = static_cast<size_t>(gso_size);
      }
    }
    uint8_t* base = static_cast<uint8_t*>(iovs[i].iov_base);
    for (size_t off = 0; off < total; off += segment) {
      size_t len = total - off < segment ? total - off : segment;
      out->push_back(Datagram{base + off, len, &recv_from_[i], msgs[i].msg_hdr.msg_namelen});
    }
  }
  return out->size();
}

void UdpSocket::Queue(const uint8_t* data, size_t len, const sockaddr_storage& to, socklen_t to_len) {
  if (gso_ && !out_.empty()) {
    Outgoing& last = out_.back();
    bool same_peer = last.to_len == to_len && memcmp(&last.to, &to, to_len) == 0;
    // A GSO train is equal-sized segments, optionally ending with one shorter segment.
    bool open_train = last.len == static_cast<size_t>(last.segment) * last.segments;
    if (same_peer && open_train && len <= last.segment && last.segments < kMaxGsoSegments &&
        last.len + len <= kMaxGsoBytes && last.offset + last.len == send_buf_.size()) {
      send_buf_.insert(send_buf_.end(), data, data + len);
      last.len += len;
      last.segments++;
      return;
    }
  }
  Outgoing o;
  o.offset = send_buf_.size();
  o.len = len;
  o.segment = static_cast<uint16_t>(len);
  o.segments = 1;
  o.to = to;
  o.to_len = to_len;
  send_buf_.insert(send_buf_.end(), data, data + len);
  out_.push_back(o);
}

void UdpSocket::Flush() {
  for (size_t first = 0; first < out_.size(); first += kBatch) {
    size_t count = out_.size() - first < static_cast<size_t>(kBatch) ? out_.size() - first : kBatch;
    SendBatch(first, count);
  }
  out_.clear();
  send_buf_.clear();
}

void UdpSocket::SendBatch(size_t first, size_t count) {
  mmsghdr msgs[kBatch];
  iovec iovs[kBatch];
  uint8_t ctrl[kBatch][CMSG_SPACE(sizeof(uint16_t))];
  memset(msgs, 0, sizeof(msgs));
  for (size_t i = 0; i < count; i++) {
    Outgoing& o = out_[first + i];
    iovs[i].iov_base = send_buf_.data() + o.offset;
    iovs[i].iov_len = o.len;
    msgs[i].msg_hdr.msg_iov = &iovs[i];
    msgs[i].msg_hdr.msg_iovlen = 1;
    msgs[i].msg_hdr.msg_name = &o.to;
    msgs[i].msg_hdr.msg_namelen = o.to_len;
    if (o.segments > 1) {
      msgs[i].msg_hdr.msg_control = ctrl[i];
      msgs[i].msg_hdr.msg_controllen = sizeof(ctrl[i]);
      cmsghdr* c = CMSG_FIRSTHDR(&msgs[i].msg_hdr);
      c->cmsg_level = SOL_UDP;
      c->cmsg_type = UDP_SEGMENT;
      c->cmsg_len = CMSG_LEN(sizeof(uint16_t));
      memcpy(CMSG_DATA(c), &o.segment, sizeof(uint16_t));
    }
  }
  size_t done = 0;
  while (done < count) {
    int n = sendmmsg(fd_, msgs + done, static_cast<unsigned>(count - done), 0);
    send_calls_++;
    if (n > 0) {
      for (int i = 0; i < n; i++) datagrams_sent_ += out_[first + done + i].segments;
      done += n;
      continue;
    }
    if (errno == EINTR) continue;
    Outgoing& o = out_[first + done];
    if (o.segments > 1 && (errno == EIO || errno == EINVAL || errno == ENOPROTOOPT)) {
      // The kernel or device refuses GSO: send this train segment by segment, from now on
      // without GSO.
      gso_ = false;
      for (size_t off = 0; off < o.len; off += o.segment) {
        size_t len = o.len - off < o.segment ? o.len - off : o.segment;
        if (sendto(fd_, send_buf_.data() + o.offset + off, len, 0,
                   reinterpret_cast<const sockaddr*>(&o.to), o.to_len) >= 0) {
          datagrams_sent_++;
        } else {
          send_dropped_++;
        }
      }
      done++;
      continue;
    }
    // EAGAIN (buffer full) or an unreachable peer: drop this message, keep going.
    send_dropped_ += o.segments;
    done++;
  }
}

}  // namespace harrier
