// Keyed MACs for stateless Retry tokens and stateless reset tokens (HMAC-SHA256).
#pragma once

#include <sys/socket.h>

#include <cstddef>
#include <cstdint>
#include <string>

namespace harrier {

void HmacSha256(const uint8_t* key, size_t key_len, const uint8_t* data, size_t len, uint8_t out[32]);
void RandomBytes(uint8_t* out, size_t len);

// Address-validation tokens for Retry (RFC 9000 §8.1.2): they bind the client's address
// and the original destination connection ID, carry their issue time, and are
// authenticated with a per-endpoint secret, so a forged, altered or expired token fails.
class RetryTokens {
 public:
  RetryTokens();
  // Token = magic | issued (u64 seconds) | odcid_len | odcid | mac[16]. The MAC also covers
  // the client's address and the connection ID the Retry gave it (retry_scid), which the
  // client must use as its destination connection ID.
  std::string Mint(const sockaddr* peer, socklen_t peer_len, const uint8_t* odcid, size_t odcid_len,
                   const uint8_t* retry_scid, size_t retry_scid_len, uint64_t now_s) const;
  // Fills `odcid` and returns true for our own, unaltered token, from the address it was
  // issued to, on a packet addressed to the Retry's connection ID, within lifetime_s.
  bool Validate(const uint8_t* token, size_t len, const sockaddr* peer, socklen_t peer_len,
                const uint8_t* dcid, size_t dcid_len, uint64_t now_s, uint64_t lifetime_s,
                std::string* odcid) const;
  // 16-byte stateless reset token for a connection ID we issue.
  void ResetToken(const uint8_t* cid, size_t cid_len, uint8_t out[16]) const;

 private:
  std::string Mac(const std::string& body, const sockaddr* peer, socklen_t peer_len, const uint8_t* cid,
                  size_t cid_len) const;
  uint8_t key_[32];
};

}  // namespace harrier
