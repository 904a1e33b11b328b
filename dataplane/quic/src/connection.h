// One QUIC connection. connection.cc is the only file that calls ngtcp2 (connection and packet
// functions alike): Debian's libngtcp2 asserts on API misuse, so the rules live in one place.
#pragma once

#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <ngtcp2/ngtcp2.h>
#include <ngtcp2/ngtcp2_crypto.h>

#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "udp_socket.h"

namespace quic {

class Endpoint;
struct TlsConfig;
struct Credentials;

enum class TlsFail : uint8_t { kNone, kNoCertificate, kUntrusted, kWrongPurpose };

constexpr size_t kCidLen = 16;            // every CID we issue; byte 0 = shard id (server)
constexpr size_t kMaxUdpPayload = 1452;   // 1500 - IPv6 (40) - UDP (8)
// Short header (1 + CID + 4-byte packet number) + AEAD tag (16) + DATAGRAM frame type + length (1 + 4).
constexpr size_t kDatagramOverhead = 1 + kCidLen + 4 + 16 + 1 + 4;
constexpr size_t kMaxDatagram = kMaxUdpPayload - kDatagramOverhead;
// UDP GSO: at most 64 segments and 64 KiB per sendmsg.
constexpr size_t kMaxGsoPackets = 44;
// Error code reported when ngtcp2 does not tell us the peer's (STOP_SENDING). 2^62 is beyond
// every QUIC varint, so it cannot collide with a real code.
constexpr uint64_t kUnknownCode = 1ull << 62;

struct CidKey {
  uint8_t len = 0;
  uint8_t data[NGTCP2_MAX_CIDLEN] = {0};
  CidKey() = default;
  CidKey(const uint8_t *d, size_t n);
  bool operator==(const CidKey &o) const;
};
struct CidHash {
  size_t operator()(const CidKey &k) const;
};

struct ConnStats {
  double srtt_us, min_rtt_us, rttvar_us, latest_rtt_us;
  double cwnd, bytes_in_flight;
  double bytes_sent, bytes_recv, packets_sent, packets_recv;
  double datagrams_sent, datagrams_recv, datagrams_lost, datagrams_dropped_too_big,
      datagrams_dropped_full, datagrams_dropped_expired;
  double delivery_rate_bps;
  double pmtu;
};
constexpr size_t kStatsFields = sizeof(ConnStats) / sizeof(double);

struct EndpointConfig {
  bool server = false;
  std::string host;
  int port = 0;
  std::string alpn = "h3";
  std::string server_name;
  uint64_t idle_timeout_ms = 30000;
  uint64_t keep_alive_ms = 0;
  uint64_t handshake_timeout_ms = 10000;
  bool retry = false;  // server: validate client addresses with Retry before any state
  int cc = 2;  // ngtcp2_cc_algo
  bool reuse_port = false;
  uint32_t shard_id = 0;
  uint32_t shard_count = 1;
  uint32_t datagram_queue = 512;
  // A queued DATAGRAM older than this is dropped instead of sent (0: never). An IP packet that
  // waited this long behind a congested path is worth less than the room it takes: TCP inside
  // the tunnel reads the drop as congestion, where a deep queue would only add delay.
  uint64_t datagram_max_age_ms = 100;
  bool manual_stream_credit = false;
  uint64_t stream_window = 4u << 20;
  uint64_t connection_window = 16u << 20;
  int socket_buffer = 4 << 20;
};

// Stateless packet functions (connection.cc keeps every ngtcp2 call).
namespace packet {
int decode(const uint8_t *pkt, size_t len, ngtcp2_version_cid *vc);  // 0 ok, 1 VN needed, -1 bad
bool accept(const uint8_t *pkt, size_t len, ngtcp2_pkt_hd *hd);
ssize_t version_negotiation(uint8_t *out, size_t outlen, const ngtcp2_version_cid &vc);
ssize_t stateless_reset(uint8_t *out, size_t outlen, const uint8_t *secret, const uint8_t *dcid,
                        size_t dcidlen, size_t len);
// Retry (address validation): a Retry packet moving the client to `new_scid`, and the check of
// the token a client echoes (recovers the original DCID).
ssize_t retry(uint8_t *out, size_t outlen, const ngtcp2_pkt_hd &hd, const SockAddr &from,
              const uint8_t *secret, const uint8_t *new_scid, uint64_t ts);
bool has_retry_token(const ngtcp2_pkt_hd &hd);
bool verify_retry(const ngtcp2_pkt_hd &hd, const SockAddr &from, const uint8_t *secret,
                  uint64_t ts, ngtcp2_cid *odcid);
}  // namespace packet

class Connection {
 public:
  enum class State { kHandshake, kOpen, kClosing, kDraining, kDead };

  Connection(Endpoint *ep, uint32_t id, bool server);
  ~Connection();
  Connection(const Connection &) = delete;
  Connection &operator=(const Connection &) = delete;

  bool init_client(const SockAddr &local, const SockAddr &remote, uint64_t ts, std::string *err);
  // `pkt` is the client's first Initial; ngtcp2_accept has already approved it.
  // `odcid` is set when the client came back with a valid Retry token.
  bool init_server(const ngtcp2_pkt_hd &hd, const SockAddr &local, const SockAddr &remote,
                   uint64_t ts, const ngtcp2_cid *odcid);

  // I/O, driven by the endpoint.
  void read(const SockAddr &local, const SockAddr &remote, const uint8_t *pkt, size_t len,
            uint64_t ts);
  void write(uint64_t ts);
  void on_expiry(uint64_t ts);
  uint64_t expiry() const;  // absolute ns, UINT64_MAX = none

  // JS API. Each returns a negative ngtcp2 error or -1 on misuse; never asserts in ngtcp2.
  int64_t open_stream(bool bidi);
  int write_stream(int64_t stream_id, const uint8_t *data, size_t len, bool fin, uint64_t *unacked);
  int reset_stream(int64_t stream_id, uint64_t code);
  int stop_sending(int64_t stream_id, uint64_t code);
  void extend_stream_credit(int64_t stream_id, uint64_t bytes);
  enum class DgramResult { kQueued = 0, kFull = 1, kTooBig = 2, kClosed = 3 };
  DgramResult send_datagram(const uint8_t *data, size_t len);
  void close(uint64_t code, const std::string &reason, bool app, uint8_t why);
  void stats(ConnStats *out);
  void rebind(const SockAddr &local, uint64_t ts);

  // Datagrams received since the last delivery (one JS call per batch).
  std::vector<uint8_t> &rx_datagrams() { return rx_dgram_buf_; }
  std::vector<uint32_t> &rx_lengths() { return rx_dgram_lens_; }
  void rx_delivered() {
    rx_dgram_buf_.clear();
    rx_dgram_lens_.clear();
    rx_dgram_event_ = false;
  }

  uint32_t id() const { return id_; }
  State state() const { return state_; }
  bool dead() const { return state_ == State::kDead; }
  bool announced() const { return announced_; }  // JS knows it (client: always)
  void set_announced() { announced_ = true; }
  const std::vector<uint8_t> &peer_cert() const { return peer_cert_; }
  const SockAddr &remote() const { return remote_; }
  bool dirty = false;  // on the endpoint's flush list

  // TLS hooks (tls.cc).
  void set_peer_cert(const uint8_t *der, size_t len) { peer_cert_.assign(der, der + len); }
  bool is_server() const { return server_; }
  gnutls_session_t tls() const { return tls_; }
  const std::string &expected_name() const;
  TlsFail tls_fail_reason = TlsFail::kNone;

  // ngtcp2 callbacks (static trampolines in connection.cc reach these).
  int on_recv_stream_data(uint32_t flags, int64_t stream_id, const uint8_t *data, size_t len);
  int on_acked_stream_data(int64_t stream_id, uint64_t offset, uint64_t len);
  int on_stream_close(uint32_t flags, int64_t stream_id, uint64_t code);
  int on_stream_reset(int64_t stream_id, uint64_t code);
  int on_stream_stop_sending(int64_t stream_id, uint64_t code);
  int on_extend_max_stream_data(int64_t stream_id);
  int on_extend_max_streams();
  int on_stream_open(int64_t stream_id);
  int on_stateless_reset() {
    stateless_reset_ = true;
    return 0;
  }
  int on_handshake_confirmed();
  int on_recv_datagram(const uint8_t *data, size_t len);
  int on_lost_datagram();
  int on_new_cid(ngtcp2_cid *cid, uint8_t *token, size_t cidlen);
  int on_remove_cid(const ngtcp2_cid *cid);
  ngtcp2_conn *conn() const { return conn_; }

 private:
  struct SendStream {
    std::deque<std::vector<uint8_t>> chunks;  // written, not yet acknowledged
    uint64_t head = 0;                        // stream offset of chunks.front()[0]
    uint64_t sent = 0;                        // handed to ngtcp2 up to here
    uint64_t written = 0;                     // total written
    bool fin = false;                         // JS asked for FIN
    bool fin_sent = false;
    bool blocked = false;  // stream flow control: skip until ngtcp2 extends it
    bool round_skip = false;
    bool reset_local = false;  // nothing more to do for it in this write pass
    bool pending() const { return !blocked && (sent < written || (fin && !fin_sent)); }
  };

  bool setup_tls(std::string *err);
  void fill_settings(ngtcp2_settings *s, uint64_t ts);
  void fill_params(ngtcp2_transport_params *p);
  void register_cid(const ngtcp2_cid &cid);
  uint64_t clamp(uint64_t ts);
  void handle_error(int rv, uint64_t ts);
  void enter_closing(uint64_t ts);
  void enter_draining(uint64_t ts);
  void finish(uint8_t app, uint64_t code, const std::string &reason);
  void queue_close_event(bool local, uint8_t why);
  bool flush_packets(const uint8_t *buf, size_t len, size_t segment);
  size_t build_stream_vec(SendStream &s, ngtcp2_vec *vec, size_t max, bool *all);
  void drop_expired_datagrams(uint64_t ts);

  Endpoint *ep_;
  uint32_t id_;
  bool server_;
  ngtcp2_conn *conn_ = nullptr;
  gnutls_session_t tls_ = nullptr;
  std::shared_ptr<Credentials> tls_creds_;  // what tls_ points at; released after gnutls_deinit
  ngtcp2_crypto_conn_ref conn_ref_{};
  State state_ = State::kHandshake;
  bool announced_ = false;
  bool close_event_queued_ = false;
  SockAddr local_, remote_;
  uint64_t last_ts_ = 0;
  uint64_t deadline_ = UINT64_MAX;  // end of closing/draining period
  std::vector<uint8_t> close_pkt_;
  ngtcp2_ccerr pending_ccerr_{};
  std::string close_reason_buf_;  // pending_ccerr_.reason points here
  uint8_t close_why_ = 0;
  bool stateless_reset_ = false;
  uint8_t close_app_ = 0;
  uint64_t close_code_ = 0;
  std::string close_reason_;
  SockAddr batch_to_;
  bool dgram_round_blocked_ = false;
  uint64_t close_rx_count_ = 0;
  std::vector<CidKey> cids_;
  std::vector<uint8_t> peer_cert_;

  std::unordered_map<int64_t, SendStream> streams_;
  std::vector<int64_t> send_order_;  // streams with data to send (round robin)
  size_t send_cursor_ = 0;

  // DATAGRAM send queue: a ring of fixed-size slots, grown on demand up to dq_limit_ slots.
  size_t dq_limit_ = 1;
  std::vector<uint8_t> dq_data_;
  std::vector<uint16_t> dq_len_;
  std::vector<uint64_t> dq_ts_;  // when each slot was queued (now_ns)
  size_t dq_head_ = 0, dq_count_ = 0;
  bool dq_full_reported_ = false;
  uint64_t dgram_seq_ = 0;

  std::vector<uint8_t> rx_dgram_buf_;
  std::vector<uint32_t> rx_dgram_lens_;
  bool rx_dgram_event_ = false;

  // Counters (ngtcp2 1.11 exposes RTT/cwnd only; the rest is counted here).
  uint64_t bytes_sent_ = 0, bytes_recv_ = 0, pkts_sent_ = 0, pkts_recv_ = 0;
  uint64_t dg_sent_ = 0, dg_recv_ = 0, dg_lost_ = 0, dg_too_big_ = 0, dg_full_ = 0;
  uint64_t dg_expired_ = 0;
  uint64_t rate_ts_ = 0, rate_bytes_ = 0;
  double rate_bps_ = 0;
};

}  // namespace quic
