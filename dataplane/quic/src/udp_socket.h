// UDP socket owned by an endpoint: batched receive (recvmmsg + UDP GRO) and batched send
// (sendmsg + UDP GSO), each with a fallback when the kernel refuses the offload.
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace quic {

struct SockAddr {
  sockaddr_storage ss{};
  socklen_t len = 0;

  const sockaddr *sa() const { return reinterpret_cast<const sockaddr *>(&ss); }
  sockaddr *sa() { return reinterpret_cast<sockaddr *>(&ss); }
  int family() const { return ss.ss_family; }
  bool operator==(const SockAddr &o) const;
  std::string host() const;
  int port() const;
};

// Parses a numeric host + port; with `v4mapped`, IPv4 becomes ::ffff:a.b.c.d (for dual-stack sockets).
bool parse_addr(const std::string &host, int port, bool v4mapped, SockAddr *out);

// One received UDP datagram, possibly a GRO train of `len / segment` packets (the last one shorter).
struct RecvMsg {
  uint8_t *data;
  size_t len;
  size_t segment;  // GRO segment size; == len when not coalesced
  SockAddr from;
};

class UdpSocket {
 public:
  static constexpr size_t kRecvBatch = 16;
  static constexpr size_t kRecvBufSize = 65536;

  UdpSocket();
  ~UdpSocket();
  UdpSocket(const UdpSocket &) = delete;
  UdpSocket &operator=(const UdpSocket &) = delete;

  // Opens and binds. Returns false and fills `err` on failure.
  bool open(const std::string &host, int port, bool reuse_port, int buffer_bytes, std::string *err);
  void close();

  // Steering for a SO_REUSEPORT group: a classic BPF program reads the shard id from the first
  // byte of the destination connection ID (short and long headers with `cid_len`-byte DCIDs) and
  // picks that socket index of the group; anything else falls back to the kernel's hash.
  bool attach_shard_program(unsigned shard_count, size_t cid_len, std::string *err);

  // Receives up to kRecvBatch datagrams. Returns the count, 0 when the socket is drained, <0 on error.
  int recv_batch(RecvMsg *out);

  // Sends `len` bytes to `to` as packets of `segment` bytes (the last one may be shorter).
  // Returns 0 on success, -EAGAIN when the socket buffer is full (nothing was sent), other -errno
  // when the datagram was lost.
  int send(const SockAddr &to, const uint8_t *data, size_t len, size_t segment);

  int fd() const { return fd_; }
  const SockAddr &local() const { return local_; }
  bool gso() const { return gso_; }
  bool gro() const { return gro_; }
  bool dual_stack() const { return dual_stack_; }

 private:
  int send_one(const SockAddr &to, const uint8_t *data, size_t len, size_t segment);

  int fd_ = -1;
  SockAddr local_;
  bool gso_ = false;
  bool gro_ = false;
  bool dual_stack_ = false;
  // Receive batch buffer: allocated without zero-filling (std::vector would write every byte), so
  // its pages are only touched once packets land there. A client has one endpoint per tunnel,
  // and a load generator thousands of them: the fill cost ~4 ms of CPU per tunnel setup here.
  std::unique_ptr<uint8_t[]> rbuf_;
};

}  // namespace quic
