#include "udp_socket.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <netinet/udp.h>
#include <string.h>
#include <unistd.h>

#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103
#endif
#ifndef UDP_GRO
#define UDP_GRO 104
#endif
#ifndef SO_ATTACH_REUSEPORT_CBPF
#define SO_ATTACH_REUSEPORT_CBPF 51
#endif

namespace quic {

bool SockAddr::operator==(const SockAddr &o) const {
  if (family() != o.family()) return false;
  if (family() == AF_INET) {
    auto a = reinterpret_cast<const sockaddr_in *>(&ss);
    auto b = reinterpret_cast<const sockaddr_in *>(&o.ss);
    return a->sin_port == b->sin_port && a->sin_addr.s_addr == b->sin_addr.s_addr;
  }
  auto a = reinterpret_cast<const sockaddr_in6 *>(&ss);
  auto b = reinterpret_cast<const sockaddr_in6 *>(&o.ss);
  return a->sin6_port == b->sin6_port && memcmp(&a->sin6_addr, &b->sin6_addr, 16) == 0;
}

std::string SockAddr::host() const {
  char buf[INET6_ADDRSTRLEN] = {0};
  if (family() == AF_INET) {
    inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in *>(&ss)->sin_addr, buf, sizeof buf);
    return buf;
  }
  auto a6 = reinterpret_cast<const sockaddr_in6 *>(&ss);
  if (IN6_IS_ADDR_V4MAPPED(&a6->sin6_addr)) {
    inet_ntop(AF_INET, reinterpret_cast<const uint8_t *>(&a6->sin6_addr) + 12, buf, sizeof buf);
    return buf;
  }
  inet_ntop(AF_INET6, &a6->sin6_addr, buf, sizeof buf);
  return buf;
}

int SockAddr::port() const {
  if (family() == AF_INET) return ntohs(reinterpret_cast<const sockaddr_in *>(&ss)->sin_port);
  return ntohs(reinterpret_cast<const sockaddr_in6 *>(&ss)->sin6_port);
}

bool parse_addr(const std::string &host, int port, bool v4mapped, SockAddr *out) {
  *out = SockAddr{};
  in_addr a4;
  in6_addr a6;
  if (inet_pton(AF_INET, host.c_str(), &a4) == 1) {
    if (v4mapped) {
      auto s = reinterpret_cast<sockaddr_in6 *>(&out->ss);
      s->sin6_family = AF_INET6;
      s->sin6_port = htons(static_cast<uint16_t>(port));
      uint8_t *b = reinterpret_cast<uint8_t *>(&s->sin6_addr);
      b[10] = 0xff;
      b[11] = 0xff;
      memcpy(b + 12, &a4, 4);
      out->len = sizeof(sockaddr_in6);
    } else {
      auto s = reinterpret_cast<sockaddr_in *>(&out->ss);
      s->sin_family = AF_INET;
      s->sin_port = htons(static_cast<uint16_t>(port));
      s->sin_addr = a4;
      out->len = sizeof(sockaddr_in);
    }
    return true;
  }
  if (inet_pton(AF_INET6, host.c_str(), &a6) == 1) {
    auto s = reinterpret_cast<sockaddr_in6 *>(&out->ss);
    s->sin6_family = AF_INET6;
    s->sin6_port = htons(static_cast<uint16_t>(port));
    s->sin6_addr = a6;
    out->len = sizeof(sockaddr_in6);
    return true;
  }
  return false;
}

UdpSocket::UdpSocket() = default;

UdpSocket::~UdpSocket() { close(); }

void UdpSocket::close() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

static std::string errstr(const char *what) { return std::string(what) + ": " + strerror(errno); }

bool UdpSocket::open(const std::string &host, int port, bool reuse_port, int buffer_bytes,
                     std::string *err) {
  SockAddr addr;
  if (!parse_addr(host, port, false, &addr)) {
    *err = "invalid bind address '" + host + "' (numeric IPv4/IPv6 expected)";
    return false;
  }
  fd_ = socket(addr.family(), SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd_ < 0) {
    *err = errstr("socket");
    return false;
  }
  int one = 1, zero = 0;
  if (addr.family() == AF_INET6) {
    auto a6 = reinterpret_cast<sockaddr_in6 *>(&addr.ss);
    // The wildcard IPv6 address serves IPv4 too (as ::ffff:a.b.c.d).
    dual_stack_ = IN6_IS_ADDR_UNSPECIFIED(&a6->sin6_addr);
    if (setsockopt(fd_, IPPROTO_IPV6, IPV6_V6ONLY, dual_stack_ ? &zero : &one, sizeof one) != 0) {
      *err = errstr("IPV6_V6ONLY");
      close();
      return false;
    }
    // Path MTU: we do our own (ngtcp2 PMTUD); never let the kernel fragment.
    int pmtu = IPV6_PMTUDISC_PROBE;
    setsockopt(fd_, IPPROTO_IPV6, IPV6_MTU_DISCOVER, &pmtu, sizeof pmtu);
  }
  if (addr.family() == AF_INET || dual_stack_) {
    int pmtu = IP_PMTUDISC_PROBE;
    setsockopt(fd_, IPPROTO_IP, IP_MTU_DISCOVER, &pmtu, sizeof pmtu);
  }
  if (reuse_port && setsockopt(fd_, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0) {
    *err = errstr("SO_REUSEPORT");
    close();
    return false;
  }
  if (buffer_bytes > 0) {
    // Best effort: the kernel caps these at net.core.{r,w}mem_max.
    setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &buffer_bytes, sizeof buffer_bytes);
    setsockopt(fd_, SOL_SOCKET, SO_SNDBUF, &buffer_bytes, sizeof buffer_bytes);
  }
  if (bind(fd_, addr.sa(), addr.len) != 0) {
    *err = errstr("bind");
    close();
    return false;
  }
  local_.len = sizeof local_.ss;
  if (getsockname(fd_, local_.sa(), &local_.len) != 0) {
    *err = errstr("getsockname");
    close();
    return false;
  }
  gro_ = setsockopt(fd_, IPPROTO_UDP, UDP_GRO, &one, sizeof one) == 0;
  // GSO is tried on the first batch send; a refusal turns it off for this socket.
  gso_ = true;
  if (!rbuf_) rbuf_.reset(new uint8_t[kRecvBatch * kRecvBufSize]);  // default-init: not zeroed
  return true;
}

bool UdpSocket::attach_shard_program(unsigned shard_count, size_t cid_len, std::string *err) {
  // Offsets are into the UDP payload (the kernel pulls the UDP header before running it).
  // Long header: DCID[0] % shard_count. Our own CIDs carry the shard in byte 0, so Handshake and
  //   retransmitted Initial packets reach the owner, and a client's random first DCID spreads
  //   new connections over the shards (its retransmissions follow, same DCID).
  // Short header: DCID[0] if it is a shard id, else the kernel's 4-tuple hash.
  //  0: A = pkt[0]                     1: long header (0x80)? -> 2 : 7
  //  2: A = pkt[5] (DCID length)       3: == 0 -> 10
  //  4: A = pkt[6] (DCID[0])           5: A %= shard_count        6: return A
  //  7: A = pkt[1] (DCID[0])           8: A >= shard_count -> 10  9: return A
  // 10: return 0xffffffff (out of range: the kernel falls back to its hash)
  (void)cid_len;
  sock_filter code[] = {
      BPF_STMT(BPF_LD | BPF_B | BPF_ABS, 0),
      BPF_JUMP(BPF_JMP | BPF_JSET | BPF_K, 0x80, 0, 5),
      BPF_STMT(BPF_LD | BPF_B | BPF_ABS, 5),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0, 6, 0),
      BPF_STMT(BPF_LD | BPF_B | BPF_ABS, 6),
      BPF_STMT(BPF_ALU | BPF_MOD | BPF_K, shard_count),
      BPF_STMT(BPF_RET | BPF_A, 0),
      BPF_STMT(BPF_LD | BPF_B | BPF_ABS, 1),
      BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, shard_count, 1, 0),
      BPF_STMT(BPF_RET | BPF_A, 0),
      BPF_STMT(BPF_RET | BPF_K, 0xffffffffu),
  };
  sock_fprog prog{static_cast<unsigned short>(sizeof code / sizeof code[0]), code};
  if (setsockopt(fd_, SOL_SOCKET, SO_ATTACH_REUSEPORT_CBPF, &prog, sizeof prog) != 0) {
    *err = errstr("SO_ATTACH_REUSEPORT_CBPF");
    return false;
  }
  return true;
}

int UdpSocket::recv_batch(RecvMsg *out) {
  mmsghdr msgs[kRecvBatch];
  iovec iov[kRecvBatch];
  alignas(cmsghdr) uint8_t ctrl[kRecvBatch][CMSG_SPACE(sizeof(int))];
  memset(msgs, 0, sizeof msgs);
  for (size_t i = 0; i < kRecvBatch; i++) {
    iov[i].iov_base = rbuf_.get() + i * kRecvBufSize;
    iov[i].iov_len = kRecvBufSize;
    msgs[i].msg_hdr.msg_iov = &iov[i];
    msgs[i].msg_hdr.msg_iovlen = 1;
    msgs[i].msg_hdr.msg_name = &out[i].from.ss;
    msgs[i].msg_hdr.msg_namelen = sizeof out[i].from.ss;
    msgs[i].msg_hdr.msg_control = ctrl[i];
    msgs[i].msg_hdr.msg_controllen = sizeof ctrl[i];
  }
  int n;
  do {
    n = recvmmsg(fd_, msgs, kRecvBatch, MSG_DONTWAIT, nullptr);
  } while (n < 0 && errno == EINTR);
  if (n < 0) return (errno == EAGAIN || errno == EWOULDBLOCK) ? 0 : -errno;
  for (int i = 0; i < n; i++) {
    out[i].data = static_cast<uint8_t *>(iov[i].iov_base);
    out[i].len = msgs[i].msg_len;
    out[i].segment = msgs[i].msg_len;
    out[i].from.len = msgs[i].msg_hdr.msg_namelen;
    for (cmsghdr *c = CMSG_FIRSTHDR(&msgs[i].msg_hdr); c; c = CMSG_NXTHDR(&msgs[i].msg_hdr, c)) {
      if (c->cmsg_level == IPPROTO_UDP && c->cmsg_type == UDP_GRO) {
        int seg;
        memcpy(&seg, CMSG_DATA(c), sizeof seg);
        if (seg > 0) out[i].segment = static_cast<size_t>(seg);
      }
    }
  }
  return n;
}

int UdpSocket::send_one(const SockAddr &to, const uint8_t *data, size_t len, size_t segment) {
  iovec iov{const_cast<uint8_t *>(data), len};
  msghdr msg{};
  msg.msg_name = const_cast<sockaddr *>(to.sa());
  msg.msg_namelen = to.len;
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  alignas(cmsghdr) uint8_t ctrl[CMSG_SPACE(sizeof(uint16_t))];
  if (segment < len) {
    memset(ctrl, 0, sizeof ctrl);
    msg.msg_control = ctrl;
    msg.msg_controllen = sizeof ctrl;
    cmsghdr *c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = IPPROTO_UDP;
    c->cmsg_type = UDP_SEGMENT;
    c->cmsg_len = CMSG_LEN(sizeof(uint16_t));
    uint16_t seg = static_cast<uint16_t>(segment);
    memcpy(CMSG_DATA(c), &seg, sizeof seg);
  }
  ssize_t r;
  do {
    r = sendmsg(fd_, &msg, 0);
  } while (r < 0 && errno == EINTR);
  return r < 0 ? -errno : 0;
}

int UdpSocket::send(const SockAddr &to, const uint8_t *data, size_t len, size_t segment) {
  if (segment >= len) return send_one(to, data, len, len);
  if (gso_) {
    int r = send_one(to, data, len, segment);
    // EIO: the device cannot segment (no checksum offload); EINVAL/ENOPROTOOPT: no UDP_SEGMENT.
    if (r != -EIO && r != -EINVAL && r != -ENOPROTOOPT && r != -EOPNOTSUPP) return r;
    gso_ = false;
  }
  // Without GSO: one sendmsg per packet. A full buffer part way through loses the tail, which
  // QUIC's loss recovery repairs; reporting EAGAIN only when nothing left keeps the caller simple.
  for (size_t off = 0; off < len; off += segment) {
    size_t n = len - off < segment ? len - off : segment;
    int r = send_one(to, data + off, n, n);
    if (r == -EAGAIN && off == 0) return r;
    if (r != 0 && r != -EAGAIN) return r;
  }
  return 0;
}

}  // namespace quic
