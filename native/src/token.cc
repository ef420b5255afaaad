#include "token.h"

#include <netinet/in.h>
#include <string.h>
#include <sys/random.h>

#include <cstdlib>

namespace harrier {

namespace {

// FIPS 180-4 SHA-256, small and dependency-free (BoringSSL's symbols are hidden inside
// the quiche archive).
struct Sha256 {
  uint32_t h[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                   0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
  uint8_t block[64];
  size_t used = 0;
  uint64_t total = 0;

  static uint32_t Rotr(uint32_t x, int n) { return (x >> n) | (x << (32 - n)); }

  void Compress(const uint8_t* p) {
    static const uint32_t k[64] = {
        0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
        0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
        0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
        0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
        0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
        0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
        0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
        0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2};
    uint32_t w[64];
    for (int i = 0; i < 16; i++)
      w[i] = (uint32_t(p[4 * i]) << 24) | (uint32_t(p[4 * i + 1]) << 16) | (uint32_t(p[4 * i + 2]) << 8) | p[4 * i + 3];
    for (int i = 16; i < 64; i++) {
      uint32_t s0 = Rotr(w[i - 15], 7) ^ Rotr(w[i - 15], 18) ^ (w[i - 15] >> 3);
      uint32_t s1 = Rotr(w[i - 2], 17) ^ Rotr(w[i - 2], 19) ^ (w[i - 2] >> 10);
      w[i] = w[i - 16] + s0 + w[i - 7] + s1;
    }
    uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], hh = h[7];
    for (int i = 0; i < 64; i++) {
      uint32_t t1 = hh + (Rotr(e, 6) ^ Rotr(e, 11) ^ Rotr(e, 25)) + ((e & f) ^ (~e & g)) + k[i] + w[i];
      uint32_t t2 = (Rotr(a, 2) ^ Rotr(a, 13) ^ Rotr(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
      hh = g; g = f; f = e; e = d + t1; d = c; c = b; b = a; a = t1 + t2;
    }
    h[0] += a; h[1] += b; h[2] += c; h[3] += d; h[4] += e; h[5] += f; h[6] += g; h[7] += hh;
  }

  void Update(const uint8_t* p, size_t n) {
    total += n;
    while (n > 0) {
      size_t take = 64 - used < n ? 64 - used : n;
      memcpy(block + used, p, take);
      used += take; p += take; n -= take;
      if (used == 64) { Compress(block); used = 0; }
    }
  }

  void Final(uint8_t out[32]) {
    uint64_t bits = total * 8;
    uint8_t pad = 0x80;
    Update(&pad, 1);
    uint8_t zero = 0;
    while (used != 56) Update(&zero, 1);
    uint8_t len[8];
    for (int i = 0; i < 8; i++) len[i] = uint8_t(bits >> (56 - 8 * i));
    Update(len, 8);
    for (int i = 0; i < 8; i++) {
      out[4 * i] = uint8_t(h[i] >> 24); out[4 * i + 1] = uint8_t(h[i] >> 16);
      out[4 * i + 2] = uint8_t(h[i] >> 8); out[4 * i + 3] = uint8_t(h[i]);
    }
  }
};

constexpr uint8_t kTokenMagic = 0xa7;
constexpr size_t kMacLen = 16;

// The address bytes a token is bound to: family, IP and port.
std::string AddressBytes(const sockaddr* sa, socklen_t len) {
  if (sa->sa_family == AF_INET) {
    auto* v4 = reinterpret_cast<const sockaddr_in*>(sa);
    return std::string("4") + std::string(reinterpret_cast<const char*>(&v4->sin_addr), 4) +
           std::string(reinterpret_cast<const char*>(&v4->sin_port), 2);
  }
  auto* v6 = reinterpret_cast<const sockaddr_in6*>(sa);
  return std::string("6") + std::string(reinterpret_cast<const char*>(&v6->sin6_addr), 16) +
         std::string(reinterpret_cast<const char*>(&v6->sin6_port), 2);
}

}  // namespace

void HmacSha256(const uint8_t* key, size_t key_len, const uint8_t* data, size_t len, uint8_t out[32]) {
  uint8_t k[64] = {0};
  if (key_len > 64) {
    Sha256 kh;
    kh.Update(key, key_len);
    kh.Final(k);
  } else {
    memcpy(k, key, key_len);
  }
  uint8_t ipad[64], opad[64];
  for (int i = 0; i < 64; i++) { ipad[i] = k[i] ^ 0x36; opad[i] = k[i] ^ 0x5c; }
  uint8_t inner[32];
  Sha256 a;
  a.Update(ipad, 64);
  a.Update(data, len);
  a.Final(inner);
  Sha256 b;
  b.Update(opad, 64);
  b.Update(inner, 32);
  b.Final(out);
}

void RandomBytes(uint8_t* out, size_t len) {
  while (len > 0) {
    ssize_t n = getrandom(out, len, 0);
    if (n <= 0) abort();  // the kernel's CSPRNG is not optional for a TLS endpoint
    out += n;
    len -= static_cast<size_t>(n);
  }
}

RetryTokens::RetryTokens() { RandomBytes(key_, sizeof(key_)); }

std::string RetryTokens::Mac(const std::string& body, const sockaddr* peer, socklen_t peer_len,
                             const uint8_t* cid, size_t cid_len) const {
  std::string msg = body + AddressBytes(peer, peer_len) + std::string(1, static_cast<char>(cid_len)) +
                    std::string(reinterpret_cast<const char*>(cid), cid_len);
  uint8_t mac[32];
  HmacSha256(key_, sizeof(key_), reinterpret_cast<const uint8_t*>(msg.data()), msg.size(), mac);
  return std::string(reinterpret_cast<const char*>(mac), kMacLen);
}

std::string RetryTokens::Mint(const sockaddr* peer, socklen_t peer_len, const uint8_t* odcid,
                              size_t odcid_len, const uint8_t* retry_scid, size_t retry_scid_len,
                              uint64_t now_s) const {
  std::string body(1, static_cast<char>(kTokenMagic));
  for (int i = 7; i >= 0; i--) body.push_back(static_cast<char>(now_s >> (8 * i)));
  body.push_back(static_cast<char>(odcid_len));
  body.append(reinterpret_cast<const char*>(odcid), odcid_len);
  return body + Mac(body, peer, peer_len, retry_scid, retry_scid_len);
}

bool RetryTokens::Validate(const uint8_t* token, size_t len, const sockaddr* peer, socklen_t peer_len,
                           const uint8_t* dcid, size_t dcid_len, uint64_t now_s, uint64_t lifetime_s,
                           std::string* odcid) const {
  if (len < 1 + 8 + 1 + kMacLen || token[0] != kTokenMagic) return false;
  size_t odcid_len = token[9];
  if (odcid_len > 20 || len != 1 + 8 + 1 + odcid_len + kMacLen) return false;
  std::string body(reinterpret_cast<const char*>(token), len - kMacLen);
  std::string mac = Mac(body, peer, peer_len, dcid, dcid_len);
  uint8_t diff = 0;  // constant-time comparison
  for (size_t i = 0; i < kMacLen; i++) diff |= static_cast<uint8_t>(mac[i]) ^ token[len - kMacLen + i];
  if (diff != 0) return false;
  uint64_t issued = 0;
  for (int i = 1; i <= 8; i++) issued = (issued << 8) | token[i];
  if (issued > now_s + 1 || now_s - issued > lifetime_s) return false;
  odcid->assign(reinterpret_cast<const char*>(token + 10), odcid_len);
  return true;
}

void RetryTokens::ResetToken(const uint8_t* cid, size_t cid_len, uint8_t out[16]) const {
  std::string msg = "reset" + std::string(reinterpret_cast<const char*>(cid), cid_len);
  uint8_t mac[32];
  HmacSha256(key_, sizeof(key_), reinterpret_cast<const uint8_t*>(msg.data()), msg.size(), mac);
  memcpy(out, mac, 16);
}

}  // namespace harrier
