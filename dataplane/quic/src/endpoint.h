// An endpoint: one UDP socket, its connections, a timerfd for ngtcp2's expiry (loss timers, idle,
// pacing) and the event queue handed to the host (the Node-API layer) after each I/O batch.
// Everything runs on the owning thread's libuv loop; nothing here is shared between threads.
#pragma once

#include <gnutls/crypto.h>
#include <uv.h>

#include <cstdint>
#include <memory>
#include <set>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "connection.h"
#include "events.h"
#include "tls.h"
#include "udp_socket.h"

namespace quic {

// Rejected or unusual packets and handshakes, by reason.
struct Counters {
  uint64_t garbage = 0;                  // not a QUIC packet we can parse
  uint64_t unknown_connection = 0;       // short header for no connection of ours
  uint64_t misrouted = 0;                // another shard's CID reached this shard
  uint64_t version_negotiation_sent = 0; //
  uint64_t stateless_reset_sent = 0;     //
  uint64_t accept_failed = 0;            // long header that is not a valid first Initial
  uint64_t retry_sent = 0;               // Retry packets sent (retry option)
  uint64_t retry_token_invalid = 0;      // Initial with a bad/expired/foreign Retry token
  uint64_t handshake_failed = 0;         // connection closed before the handshake was confirmed
  uint64_t tls_no_certificate = 0;       // peer sent no certificate
  uint64_t tls_untrusted = 0;            // not issued by our CA / bad signature / expired / name
  uint64_t tls_wrong_purpose = 0;        // extended key usage does not allow the role
  uint64_t tls_other = 0;                // other TLS failures (e.g. no common ALPN)
  uint64_t connections_accepted = 0;     // server: handshake confirmed
  uint64_t send_errors = 0;              // sendmsg failed (not EAGAIN)
  uint64_t send_blocked = 0;             // sendmsg returned EAGAIN
  uint64_t recv_datagrams = 0;           // UDP datagrams read (GRO trains count once)
  uint64_t gso_batches = 0;              // sendmsg calls carrying >1 packet
};

class EndpointHost {
 public:
  virtual ~EndpointHost() = default;
  virtual void deliver_events() = 0;  // called after each I/O batch, never inside ngtcp2
  virtual void handles_closed() = 0;  // all libuv handles are closed; the endpoint may be freed
};

class Endpoint {
 public:
  Endpoint(uv_loop_t *loop, EndpointHost *host);
  ~Endpoint();
  Endpoint(const Endpoint &) = delete;
  Endpoint &operator=(const Endpoint &) = delete;

  bool open(const EndpointConfig &cfg, const std::string &cert, const std::string &key,
            const std::string &ca, std::string *err);
  Connection *connect(const std::string &host, int port, std::string *err);
  Connection *find(uint32_t id);
  bool rebind(std::string *err);  // client: new local port for every connection
  // Closes every connection (CONNECTION_CLOSE when `polite`), then the handles.
  void close(bool polite);
  bool closing() const { return closing_; }

  // Called by JS entry points after they changed a connection (writes happen on the next idle).
  void touch(Connection *c);

  // Used by Connection.
  const EndpointConfig &config() const { return cfg_; }
  TlsConfig *tls() { return &tls_; }
  Counters &counters() { return counters_; }
  const SockAddr &local() const { return io_->sock.local(); }
  uint8_t *tx_buffer() { return txbuf_.get(); }
  size_t tx_buffer_size() const { return kTxBufferSize; }
  const uint8_t *reset_secret() const { return reset_secret_; }
  // Returns false when the socket is blocked (the caller stops writing).
  bool send(const SockAddr &to, const uint8_t *data, size_t len, size_t segment);
  bool send_blocked() const { return !pending_.empty(); }
  void add_cid(const CidKey &k, Connection *c) { cids_[k] = c; }
  void remove_cid(const CidKey &k, Connection *c);
  void schedule(Connection *c);  // re-arm its timer entry after ngtcp2 work
  void push_event(const Event &e) { events_.push_back(e); }
  size_t push_bytes(const uint8_t *data, size_t len);
  void gen_cid(uint8_t *out, size_t len);

  // For the host's delivery loop.
  std::vector<Event> &events() { return events_; }
  std::vector<uint8_t> &arena() { return arena_; }
  std::string local_host() const { return local().host(); }
  int local_port() const { return local().port(); }
  bool gso() const { return io_ && io_->sock.gso(); }
  bool gro() const { return io_ && io_->sock.gro(); }

 private:
  // The socket and its poll handle live and die together (rebind replaces both).
  struct PollHandle {
    uv_poll_t h;
    Endpoint *ep;
    UdpSocket sock;
  };
  struct Pending {
    SockAddr to;
    std::vector<uint8_t> data;
    size_t segment;
  };

  static void on_poll(uv_poll_t *h, int status, int events);
  static void on_timer_poll(uv_poll_t *h, int status, int events);
  static void on_idle(uv_idle_t *h);
  static void on_handle_closed(uv_handle_t *h);
  static void on_io_closed(uv_handle_t *h);
  void mark_dirty(Connection *c);
  void handle_closed();
  bool start_io(PollHandle *io);

  void on_readable();
  void on_writable();
  void on_timer();
  void handle_packet(const uint8_t *pkt, size_t len, const SockAddr &from, uint64_t ts);
  void after_io();  // flush dirty connections, deliver events, reap, re-arm
  void flush();
  void reap();
  void arm_timer();
  void update_poll();
  void start_idle();
  void close_socket_handles();

  uv_loop_t *loop_;
  EndpointHost *host_;
  EndpointConfig cfg_;
  TlsConfig tls_;
  PollHandle *io_ = nullptr;
  int timer_fd_ = -1;
  uv_poll_t timer_poll_{};
  uv_idle_t idle_{};
  int open_handles_ = 0;
  bool opened_ = false;
  bool closing_ = false;
  bool in_io_ = false;
  bool poll_writable_ = false;
  uint64_t timer_armed_ = UINT64_MAX;

  uint32_t next_id_ = 1;
  std::unordered_map<uint32_t, std::unique_ptr<Connection>> conns_;
  std::unordered_map<CidKey, Connection *, CidHash> cids_;
  std::set<std::pair<uint64_t, Connection *>> timers_;
  std::unordered_map<Connection *, uint64_t> timer_of_;
  std::vector<Connection *> dirty_;
  std::vector<Pending> pending_;
  // Not zero-filled, for the same reason as the socket's receive buffer.
  static constexpr size_t kTxBufferSize = (kMaxGsoPackets + 1) * kMaxUdpPayload;
  std::unique_ptr<uint8_t[]> txbuf_;
  std::vector<Event> events_;
  std::vector<uint8_t> arena_;
  std::vector<RecvMsg> rx_;
  uint8_t reset_secret_[32];
  Counters counters_;
};

uint64_t now_ns();

}  // namespace quic
