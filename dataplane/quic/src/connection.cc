// Every ngtcp2 call of the addon is in this file. Rules this code keeps (libngtcp2 asserts):
// - no ngtcp2 call from inside an ngtcp2 callback: callbacks only record state and queue events;
// - after NGTCP2_ERR_WRITE_MORE only writev_stream/writev_datagram until a packet is complete;
// - timestamps given to one connection never go backwards (clamp());
// - nothing but the closing packet is written once closing/draining has started, and nothing at
//   all after the connection is dead;
// - stream data stays in `streams_` until acknowledged or the stream is closed.
#include "connection.h"

#include <ngtcp2/ngtcp2_crypto_gnutls.h>
#include <string.h>

#include <algorithm>

#include "endpoint.h"
#include "tls.h"

namespace quic {

CidKey::CidKey(const uint8_t *d, size_t n) {
  len = static_cast<uint8_t>(n > NGTCP2_MAX_CIDLEN ? NGTCP2_MAX_CIDLEN : n);
  memcpy(data, d, len);
}

bool CidKey::operator==(const CidKey &o) const {
  return len == o.len && memcmp(data, o.data, len) == 0;
}

size_t CidHash::operator()(const CidKey &k) const {
  // FNV-1a: CIDs are partly attacker-chosen (client Initial DCIDs), so hash every byte.
  uint64_t h = 1469598103934665603ull;
  for (size_t i = 0; i < k.len; i++) h = (h ^ k.data[i]) * 1099511628211ull;
  return static_cast<size_t>(h ^ k.len);
}

namespace {

Connection *self(void *ud) { return static_cast<Connection *>(ud); }

int cb_recv_stream_data(ngtcp2_conn *, uint32_t flags, int64_t sid, uint64_t, const uint8_t *data,
                        size_t len, void *ud, void *) {
  return self(ud)->on_recv_stream_data(flags, sid, data, len);
}
int cb_acked_stream_data(ngtcp2_conn *, int64_t sid, uint64_t off, uint64_t len, void *ud, void *) {
  return self(ud)->on_acked_stream_data(sid, off, len);
}
int cb_stream_close(ngtcp2_conn *, uint32_t flags, int64_t sid, uint64_t code, void *ud, void *) {
  return self(ud)->on_stream_close(flags, sid, code);
}
int cb_stream_reset(ngtcp2_conn *, int64_t sid, uint64_t, uint64_t code, void *ud, void *) {
  return self(ud)->on_stream_reset(sid, code);
}
int cb_extend_max_stream_data(ngtcp2_conn *, int64_t sid, uint64_t, void *ud, void *) {
  return self(ud)->on_extend_max_stream_data(sid);
}
int cb_extend_max_streams(ngtcp2_conn *, uint64_t, void *ud) {
  return self(ud)->on_extend_max_streams();
}
int cb_handshake_done(ngtcp2_conn *, void *ud) { return self(ud)->on_handshake_confirmed(); }
int cb_server_handshake_completed(ngtcp2_conn *, void *ud) {
  // For a server, handshake completion is confirmation (RFC 9001 §4.1.2).
  return self(ud)->on_handshake_confirmed();
}
int cb_recv_datagram(ngtcp2_conn *, uint32_t, const uint8_t *data, size_t len, void *ud) {
  return self(ud)->on_recv_datagram(data, len);
}
int cb_stream_open(ngtcp2_conn *, int64_t sid, void *ud) { return self(ud)->on_stream_open(sid); }
int cb_recv_stateless_reset(ngtcp2_conn *, const ngtcp2_pkt_stateless_reset *, void *ud) {
  return self(ud)->on_stateless_reset();
}
int cb_lost_datagram(ngtcp2_conn *, uint64_t, void *ud) { return self(ud)->on_lost_datagram(); }
int cb_new_cid(ngtcp2_conn *, ngtcp2_cid *cid, uint8_t *token, size_t cidlen, void *ud) {
  return self(ud)->on_new_cid(cid, token, cidlen);
}
int cb_remove_cid(ngtcp2_conn *, const ngtcp2_cid *cid, void *ud) {
  return self(ud)->on_remove_cid(cid);
}
void cb_rand(uint8_t *dest, size_t len, const ngtcp2_rand_ctx *) {
  gnutls_rnd(GNUTLS_RND_RANDOM, dest, len);
}
ngtcp2_conn *cb_get_conn(ngtcp2_crypto_conn_ref *ref) {
  return static_cast<Connection *>(ref->user_data)->conn();
}

ngtcp2_callbacks make_callbacks(bool server) {
  ngtcp2_callbacks cb;
  memset(&cb, 0, sizeof cb);
  if (server) {
    cb.recv_client_initial = ngtcp2_crypto_recv_client_initial_cb;
    cb.handshake_completed = cb_server_handshake_completed;
  } else {
    cb.client_initial = ngtcp2_crypto_client_initial_cb;
    cb.recv_retry = ngtcp2_crypto_recv_retry_cb;
    cb.handshake_confirmed = cb_handshake_done;
  }
  cb.recv_crypto_data = ngtcp2_crypto_recv_crypto_data_cb;
  cb.encrypt = ngtcp2_crypto_encrypt_cb;
  cb.decrypt = ngtcp2_crypto_decrypt_cb;
  cb.hp_mask = ngtcp2_crypto_hp_mask_cb;
  cb.update_key = ngtcp2_crypto_update_key_cb;
  cb.delete_crypto_aead_ctx = ngtcp2_crypto_delete_crypto_aead_ctx_cb;
  cb.delete_crypto_cipher_ctx = ngtcp2_crypto_delete_crypto_cipher_ctx_cb;
  cb.get_path_challenge_data = ngtcp2_crypto_get_path_challenge_data_cb;
  cb.version_negotiation = ngtcp2_crypto_version_negotiation_cb;
  cb.rand = cb_rand;
  cb.get_new_connection_id = cb_new_cid;
  cb.remove_connection_id = cb_remove_cid;
  cb.recv_stream_data = cb_recv_stream_data;
  cb.acked_stream_data_offset = cb_acked_stream_data;
  cb.stream_close = cb_stream_close;
  cb.stream_reset = cb_stream_reset;
  cb.extend_max_stream_data = cb_extend_max_stream_data;
  cb.extend_max_local_streams_bidi = cb_extend_max_streams;
  cb.extend_max_local_streams_uni = cb_extend_max_streams;
  cb.stream_open = cb_stream_open;
  cb.recv_stateless_reset = cb_recv_stateless_reset;
  cb.recv_datagram = cb_recv_datagram;
  cb.lost_datagram = cb_lost_datagram;
  return cb;
}

ngtcp2_path make_path(const SockAddr &local, const SockAddr &remote) {
  ngtcp2_path p;
  p.local.addr = const_cast<ngtcp2_sockaddr *>(reinterpret_cast<const ngtcp2_sockaddr *>(&local.ss));
  p.local.addrlen = local.len;
  p.remote.addr =
      const_cast<ngtcp2_sockaddr *>(reinterpret_cast<const ngtcp2_sockaddr *>(&remote.ss));
  p.remote.addrlen = remote.len;
  p.user_data = nullptr;
  return p;
}

SockAddr from_ngtcp2(const ngtcp2_addr &a) {
  SockAddr s;
  s.len = a.addrlen;
  memcpy(&s.ss, a.addr, std::min<size_t>(a.addrlen, sizeof s.ss));
  return s;
}

bool is_local_stream(int64_t sid, bool server) { return ((sid & 1) != 0) == server; }
bool is_uni(int64_t sid) { return (sid & 2) != 0; }

}  // namespace

// ---------------------------------------------------------------------------------------------
// Endpoint-level packet functions (stateless: no connection involved).

namespace packet {

// 0: dcid/scid set; 1: needs version negotiation; -1: garbage.
int decode(const uint8_t *pkt, size_t len, ngtcp2_version_cid *vc) {
  int rv = ngtcp2_pkt_decode_version_cid(vc, pkt, len, kCidLen);
  if (rv == 0) return 0;
  if (rv == NGTCP2_ERR_VERSION_NEGOTIATION) return 1;
  return -1;
}

bool accept(const uint8_t *pkt, size_t len, ngtcp2_pkt_hd *hd) {
  return ngtcp2_accept(hd, pkt, len) == 0;
}

ssize_t version_negotiation(uint8_t *out, size_t outlen, const ngtcp2_version_cid &vc) {
  uint8_t r;
  gnutls_rnd(GNUTLS_RND_NONCE, &r, 1);
  const uint32_t versions[] = {NGTCP2_PROTO_VER_V1};
  return ngtcp2_pkt_write_version_negotiation(out, outlen, r, vc.scid, vc.scidlen, vc.dcid,
                                              vc.dcidlen, versions, 1);
}

// A stateless reset for a short-header packet of `len` bytes, smaller than it (no reset loops).
ssize_t stateless_reset(uint8_t *out, size_t outlen, const uint8_t *secret, const uint8_t *dcid,
                        size_t dcidlen, size_t len) {
  if (len < 1 + kCidLen + NGTCP2_MIN_STATELESS_RESET_RANDLEN + NGTCP2_STATELESS_RESET_TOKENLEN + 1)
    return -1;
  ngtcp2_cid cid;
  ngtcp2_cid_init(&cid, dcid, dcidlen);
  uint8_t token[NGTCP2_STATELESS_RESET_TOKENLEN];
  if (ngtcp2_crypto_generate_stateless_reset_token(token, secret, 32, &cid) != 0) return -1;
  size_t randlen = std::min<size_t>(len - 1 - 1 - NGTCP2_STATELESS_RESET_TOKENLEN, 64);
  uint8_t rnd[64];
  gnutls_rnd(GNUTLS_RND_NONCE, rnd, randlen);
  return ngtcp2_pkt_write_stateless_reset(out, outlen, token, rnd, randlen);
}

ssize_t retry(uint8_t *out, size_t outlen, const ngtcp2_pkt_hd &hd, const SockAddr &from,
              const uint8_t *secret, const uint8_t *new_scid, uint64_t ts) {
  ngtcp2_cid scid;
  ngtcp2_cid_init(&scid, new_scid, kCidLen);
  uint8_t token[NGTCP2_CRYPTO_MAX_RETRY_TOKENLEN];
  ngtcp2_ssize tokenlen = ngtcp2_crypto_generate_retry_token(
      token, secret, 32, hd.version, reinterpret_cast<const ngtcp2_sockaddr *>(&from.ss), from.len,
      &scid, &hd.dcid, ts);
  if (tokenlen < 0) return -1;
  return ngtcp2_crypto_write_retry(out, outlen, hd.version, &hd.scid, &scid, &hd.dcid, token,
                                   static_cast<size_t>(tokenlen));
}

bool has_retry_token(const ngtcp2_pkt_hd &hd) {
  return hd.tokenlen > 0 && hd.token[0] == NGTCP2_CRYPTO_TOKEN_MAGIC_RETRY;
}

bool verify_retry(const ngtcp2_pkt_hd &hd, const SockAddr &from, const uint8_t *secret,
                  uint64_t ts, ngtcp2_cid *odcid) {
  return ngtcp2_crypto_verify_retry_token(
             odcid, hd.token, hd.tokenlen, secret, 32, hd.version,
             reinterpret_cast<const ngtcp2_sockaddr *>(&from.ss), from.len, &hd.dcid,
             10 * NGTCP2_SECONDS, ts) == 0;
}

}  // namespace packet

// ---------------------------------------------------------------------------------------------

Connection::Connection(Endpoint *ep, uint32_t id, bool server) : ep_(ep), id_(id), server_(server) {
  dq_limit_ = std::max<uint32_t>(ep->config().datagram_queue, 1);
  announced_ = !server;
}

Connection::~Connection() {
  for (const CidKey &k : cids_) ep_->remove_cid(k, this);
  if (conn_) ngtcp2_conn_del(conn_);
  if (tls_) gnutls_deinit(tls_);
  tls_creds_.reset();  // explicit: only now may the credentials go
}

const std::string &Connection::expected_name() const { return ep_->config().server_name; }

uint64_t Connection::clamp(uint64_t ts) {
  if (ts < last_ts_) ts = last_ts_;
  last_ts_ = ts;
  return ts;
}

void Connection::fill_settings(ngtcp2_settings *s, uint64_t ts) {
  const EndpointConfig &cfg = ep_->config();
  ngtcp2_settings_default(s);
  s->initial_ts = ts;
  s->cc_algo = static_cast<ngtcp2_cc_algo>(cfg.cc);
  // Full-size packets from the first flight: 1280-byte IP packets must fit a DATAGRAM at once.
  s->max_tx_udp_payload_size = kMaxUdpPayload;
  s->no_tx_udp_payload_size_shaping = 1;
  s->handshake_timeout = cfg.handshake_timeout_ms * NGTCP2_MILLISECONDS;
  // Window auto-tuning only when credit returns on delivery; with manual credit the window is
  // exactly what the application granted.
  int grow = cfg.manual_stream_credit ? 1 : 4;
  s->max_window = cfg.connection_window * grow;
  s->max_stream_window = cfg.stream_window * grow;
}

void Connection::fill_params(ngtcp2_transport_params *p) {
  const EndpointConfig &cfg = ep_->config();
  ngtcp2_transport_params_default(p);
  p->initial_max_data = cfg.connection_window;
  p->initial_max_stream_data_bidi_local = cfg.stream_window;
  p->initial_max_stream_data_bidi_remote = cfg.stream_window;
  p->initial_max_stream_data_uni = cfg.stream_window;
  p->initial_max_streams_bidi = 100;
  p->initial_max_streams_uni = 100;  // HTTP/3 needs >= 3 (control + QPACK encoder/decoder)
  p->max_idle_timeout = cfg.idle_timeout_ms * NGTCP2_MILLISECONDS;
  p->max_datagram_frame_size = 65535;
  p->active_connection_id_limit = 8;
}

void Connection::register_cid(const ngtcp2_cid &cid) {
  CidKey k(cid.data, cid.datalen);
  cids_.push_back(k);
  ep_->add_cid(k, this);
}

bool Connection::setup_tls(std::string *err) {
  conn_ref_.get_conn = cb_get_conn;
  conn_ref_.user_data = this;
  if (!ep_->tls()->new_session(&conn_ref_, &tls_, &tls_creds_, err)) return false;
  ngtcp2_conn_set_tls_native_handle(conn_, tls_);
  if (ep_->config().keep_alive_ms > 0)
    ngtcp2_conn_set_keep_alive_timeout(conn_, ep_->config().keep_alive_ms * NGTCP2_MILLISECONDS);
  return true;
}

bool Connection::init_client(const SockAddr &local, const SockAddr &remote, uint64_t ts,
                             std::string *err) {
  local_ = local;
  remote_ = remote;
  ts = clamp(ts);
  ngtcp2_cid dcid, scid;
  dcid.datalen = scid.datalen = kCidLen;
  ep_->gen_cid(dcid.data, kCidLen);
  ep_->gen_cid(scid.data, kCidLen);
  ngtcp2_settings settings;
  fill_settings(&settings, ts);
  ngtcp2_transport_params params;
  fill_params(&params);
  ngtcp2_path path = make_path(local_, remote_);
  ngtcp2_callbacks cb = make_callbacks(false);
  int rv = ngtcp2_conn_client_new(&conn_, &dcid, &scid, &path, NGTCP2_PROTO_VER_V1, &cb, &settings,
                                  &params, nullptr, this);
  if (rv != 0) {
    conn_ = nullptr;
    *err = std::string("ngtcp2_conn_client_new: ") + ngtcp2_strerror(rv);
    return false;
  }
  register_cid(scid);
  return setup_tls(err);
}

bool Connection::init_server(const ngtcp2_pkt_hd &hd, const SockAddr &local,
                             const SockAddr &remote, uint64_t ts, const ngtcp2_cid *odcid) {
  local_ = local;
  remote_ = remote;
  ts = clamp(ts);
  ngtcp2_cid scid;
  scid.datalen = kCidLen;
  ep_->gen_cid(scid.data, kCidLen);
  ngtcp2_settings settings;
  fill_settings(&settings, ts);
  ngtcp2_transport_params params;
  fill_params(&params);
  params.original_dcid = odcid ? *odcid : hd.dcid;
  params.original_dcid_present = 1;
  if (odcid) {
    // After Retry the client addresses us by the Retry packet's SCID (now hd.dcid).
    params.retry_scid = hd.dcid;
    params.retry_scid_present = 1;
    settings.token = hd.token;
    settings.tokenlen = hd.tokenlen;
    settings.token_type = NGTCP2_TOKEN_TYPE_RETRY;
  }
  if (ngtcp2_crypto_generate_stateless_reset_token(params.stateless_reset_token,
                                                   ep_->reset_secret(), 32, &scid) != 0)
    return false;
  params.stateless_reset_token_present = 1;
  ngtcp2_path path = make_path(local_, remote_);
  ngtcp2_callbacks cb = make_callbacks(true);
  int rv = ngtcp2_conn_server_new(&conn_, &hd.scid, &scid, &path, hd.version, &cb, &settings,
                                  &params, nullptr, this);
  if (rv != 0) {
    conn_ = nullptr;
    return false;
  }
  register_cid(scid);
  // Retransmitted Initials still carry the client's original DCID.
  register_cid(hd.dcid);
  std::string err;
  return setup_tls(&err);
}

// ---------------------------------------------------------------------------------------------
// I/O

void Connection::read(const SockAddr &local, const SockAddr &remote, const uint8_t *pkt, size_t len,
                      uint64_t ts) {
  ts = clamp(ts);
  pkts_recv_++;
  bytes_recv_ += len;
  switch (state_) {
    case State::kDead:
    case State::kDraining:
      return;
    case State::kClosing:
      // Repeat our CONNECTION_CLOSE, backing off exponentially (RFC 9000 §10.2.1).
      close_rx_count_++;
      if ((close_rx_count_ & (close_rx_count_ - 1)) == 0 && !close_pkt_.empty())
        ep_->send(remote, close_pkt_.data(), close_pkt_.size(), close_pkt_.size());
      return;
    default:
      break;
  }
  ngtcp2_path path = make_path(local, remote);
  ngtcp2_pkt_info pi;
  memset(&pi, 0, sizeof pi);
  int rv = ngtcp2_conn_read_pkt(conn_, &path, &pi, pkt, len, ts);
  if (rv != 0) handle_error(rv, ts);
}

void Connection::handle_error(int rv, uint64_t ts) {
  if (state_ == State::kDead || state_ == State::kClosing || state_ == State::kDraining) return;
  ngtcp2_ccerr ccerr;
  switch (rv) {
    case NGTCP2_ERR_DRAINING:
    case NGTCP2_ERR_CLOSING:
      enter_draining(ts);
      return;
    case NGTCP2_ERR_IDLE_CLOSE:
      finish(0, 0, "idle timeout");
      queue_close_event(true, kWhyIdle);
      state_ = State::kDead;
      return;
    case NGTCP2_ERR_HANDSHAKE_TIMEOUT:
    case NGTCP2_ERR_DROP_CONN:
    case NGTCP2_ERR_RETRY:
      finish(0, 0, rv == NGTCP2_ERR_HANDSHAKE_TIMEOUT ? "handshake timeout" : "dropped");
      queue_close_event(true, rv == NGTCP2_ERR_HANDSHAKE_TIMEOUT ? kWhyHandshake : kWhyError);
      state_ = State::kDead;
      return;
    case NGTCP2_ERR_CRYPTO: {
      uint8_t alert = ngtcp2_conn_get_tls_alert(conn_);
      ngtcp2_ccerr_default(&ccerr);
      ngtcp2_ccerr_set_tls_alert(&ccerr, alert, nullptr, 0);
      Counters &c = ep_->counters();
      switch (tls_fail_reason) {
        case TlsFail::kNoCertificate:
          c.tls_no_certificate++;
          break;
        case TlsFail::kUntrusted:
          c.tls_untrusted++;
          break;
        case TlsFail::kWrongPurpose:
          c.tls_wrong_purpose++;
          break;
        default: {
          unsigned n = 0;
          // GnuTLS fails a REQUIREd client certificate before our verify function runs.
          if (server_ && tls_ && (!gnutls_certificate_get_peers(tls_, &n) || n == 0) &&
              (alert == 116 || alert == 42 || alert == 40))
            c.tls_no_certificate++;
          else
            c.tls_other++;
        }
      }
      break;
    }
    default:
      ngtcp2_ccerr_default(&ccerr);
      ngtcp2_ccerr_set_liberr(&ccerr, rv, nullptr, 0);
      break;
  }
  // Write CONNECTION_CLOSE and enter the closing period.
  pending_ccerr_ = ccerr;
  enter_closing(ts);
}

void Connection::enter_closing(uint64_t ts) {
  ts = clamp(ts);
  const ngtcp2_ccerr &ccerr = pending_ccerr_;
  ngtcp2_path_storage ps;
  ngtcp2_path_storage_zero(&ps);
  ngtcp2_pkt_info pi;
  close_pkt_.resize(kMaxUdpPayload);
  ngtcp2_ssize n = ngtcp2_conn_write_connection_close(conn_, &ps.path, &pi, close_pkt_.data(),
                                                      close_pkt_.size(), &ccerr, ts);
  std::string reason(reinterpret_cast<const char *>(ccerr.reason ? ccerr.reason : (const uint8_t *)""),
                     ccerr.reasonlen);
  finish(ccerr.type == NGTCP2_CCERR_TYPE_APPLICATION ? 1 : 0, ccerr.error_code, reason);
  queue_close_event(true, state_ == State::kHandshake ? static_cast<uint8_t>(kWhyHandshake) : close_why_);
  if (n <= 0) {
    close_pkt_.clear();
    state_ = State::kDead;
    return;
  }
  close_pkt_.resize(static_cast<size_t>(n));
  SockAddr to = from_ngtcp2(ps.path.remote);
  if (ps.path.remote.addrlen == 0) to = remote_;
  ep_->send(to, close_pkt_.data(), close_pkt_.size(), close_pkt_.size());
  bytes_sent_ += close_pkt_.size();
  pkts_sent_++;
  state_ = State::kClosing;
  deadline_ = ts + 3 * ngtcp2_conn_get_pto(conn_);
}

void Connection::enter_draining(uint64_t ts) {
  const ngtcp2_ccerr *ccerr = ngtcp2_conn_get_ccerr(conn_);
  std::string reason(reinterpret_cast<const char *>(ccerr->reason ? ccerr->reason : (const uint8_t *)""),
                     ccerr->reasonlen);
  finish(ccerr->type == NGTCP2_CCERR_TYPE_APPLICATION ? 1 : 0, ccerr->error_code, reason);
  uint8_t why = state_ == State::kHandshake ? kWhyHandshake : kWhyClose;
  if (stateless_reset_) why = kWhyReset;
  queue_close_event(false, why);
  state_ = State::kDraining;
  deadline_ = ts + 3 * ngtcp2_conn_get_pto(conn_);
}

void Connection::finish(uint8_t app, uint64_t code, const std::string &reason) {
  close_app_ = app;
  close_code_ = code;
  close_reason_ = reason;
  if (state_ == State::kHandshake) ep_->counters().handshake_failed++;
}

void Connection::queue_close_event(bool local, uint8_t why) {
  if (close_event_queued_ || !announced_) return;
  close_event_queued_ = true;
  Event e{};
  e.type = EventType::kClose;
  e.conn = this;
  e.code = close_code_;
  e.flags = static_cast<uint8_t>((close_app_ ? 1 : 0) | (local ? 2 : 0) | (why << 4));
  e.off = ep_->push_bytes(reinterpret_cast<const uint8_t *>(close_reason_.data()),
                          close_reason_.size());
  e.len = close_reason_.size();
  ep_->push_event(e);
}

uint64_t Connection::expiry() const {
  switch (state_) {
    case State::kDead:
      return 0;  // reap as soon as possible
    case State::kClosing:
    case State::kDraining:
      return deadline_;
    default:
      return ngtcp2_conn_get_expiry(conn_);
  }
}

void Connection::on_expiry(uint64_t ts) {
  ts = clamp(ts);
  if (state_ == State::kClosing || state_ == State::kDraining) {
    if (ts >= deadline_) state_ = State::kDead;
    return;
  }
  if (state_ == State::kDead) return;
  int rv = ngtcp2_conn_handle_expiry(conn_, ts);
  if (rv != 0) {
    handle_error(rv, ts);
    return;
  }
  write(ts);
}

size_t Connection::build_stream_vec(SendStream &s, ngtcp2_vec *vec, size_t max, bool *all) {
  size_t n = 0;
  uint64_t off = s.head;
  *all = true;
  for (auto &chunk : s.chunks) {
    uint64_t end = off + chunk.size();
    if (end > s.sent) {
      if (n == max) {
        *all = false;
        break;
      }
      uint64_t skip = s.sent > off ? s.sent - off : 0;
      vec[n].base = chunk.data() + skip;
      vec[n].len = chunk.size() - skip;
      n++;
    }
    off = end;
  }
  return n;
}

bool Connection::flush_packets(const uint8_t *buf, size_t len, size_t segment) {
  if (len == 0) return true;
  pkts_sent_ += (len + segment - 1) / segment;
  bytes_sent_ += len;
  return ep_->send(batch_to_, buf, len, segment);
}

void Connection::write(uint64_t ts) {
  if (state_ != State::kHandshake && state_ != State::kOpen) return;
  if (ep_->send_blocked()) return;
  ts = clamp(ts);
  const bool hs_done = ngtcp2_conn_get_handshake_completed(conn_) != 0;
  if (hs_done) drop_expired_datagrams(ts);
  const size_t cap = dq_len_.size();
  size_t quantum = ngtcp2_conn_get_send_quantum(conn_);
  size_t max_pkts = std::max<size_t>(1, std::min<size_t>(quantum / kMaxUdpPayload + 1, kMaxGsoPackets));
  uint8_t *buf = ep_->tx_buffer();
  size_t off = 0, segment = 0, npkts = 0;
  bool more_pending = false;  // a WRITE_MORE packet is open
  ngtcp2_path_storage ps;
  ngtcp2_path_storage_zero(&ps);
  ngtcp2_pkt_info pi;
  for (auto &kv : streams_) kv.second.round_skip = false;
  int guard = 0;

  for (;;) {
    if (++guard > 100000) break;  // cannot happen; never spin forever in production
    uint8_t *dest = buf + off;
    ngtcp2_ssize nwrite;
    if (hs_done && dq_count_ > 0 && !dgram_round_blocked_) {
      const uint8_t *d = dq_data_.data() + dq_head_ * kMaxDatagram;
      size_t dlen = dq_len_[dq_head_];
      ngtcp2_vec v{const_cast<uint8_t *>(d), dlen};
      int accepted = 0;
      nwrite = ngtcp2_conn_writev_datagram(conn_, &ps.path, &pi, dest, kMaxUdpPayload, &accepted,
                                           NGTCP2_WRITE_DATAGRAM_FLAG_MORE, ++dgram_seq_, &v, 1, ts);
      if (accepted) {
        dq_head_ = (dq_head_ + 1) % cap;
        dq_count_--;
        dg_sent_++;
      }
      if (nwrite == NGTCP2_ERR_WRITE_MORE) {
        more_pending = true;
        continue;
      }
      if (nwrite == NGTCP2_ERR_INVALID_ARGUMENT || nwrite == NGTCP2_ERR_INVALID_STATE) {
        // Larger than the peer accepts, or the peer has no DATAGRAM support: never sendable.
        if (!accepted) {
          dq_head_ = (dq_head_ + 1) % cap;
          dq_count_--;
          dg_too_big_++;
        }
        more_pending = false;
        continue;
      }
      if (nwrite == 0 && !accepted) {
        if (!more_pending && dlen + kDatagramOverhead > ngtcp2_conn_get_path_max_tx_udp_payload_size(conn_)) {
          dq_head_ = (dq_head_ + 1) % cap;
          dq_count_--;
          dg_too_big_++;
          continue;
        }
        break;  // congestion/pacing limited
      }
    } else {
      int64_t sid = -1;
      ngtcp2_vec vec[16];
      size_t nvec = 0;
      bool all = true;
      SendStream *s = nullptr;
      for (size_t i = 0; i < send_order_.size(); i++) {
        size_t idx = (send_cursor_ + i) % send_order_.size();
        auto it = streams_.find(send_order_[idx]);
        if (it != streams_.end() && it->second.pending() && !it->second.round_skip) {
          send_cursor_ = idx;
          sid = it->first;
          s = &it->second;
          break;
        }
      }
      uint32_t flags = NGTCP2_WRITE_STREAM_FLAG_MORE;
      if (s) {
        nvec = build_stream_vec(*s, vec, 16, &all);
        if (s->fin && all) flags |= NGTCP2_WRITE_STREAM_FLAG_FIN;
      }
      if (!s) flags = NGTCP2_WRITE_STREAM_FLAG_NONE;
      ngtcp2_ssize datalen = -1;
      nwrite = ngtcp2_conn_writev_stream(conn_, &ps.path, &pi, dest, kMaxUdpPayload, &datalen,
                                         flags, sid, nvec ? vec : nullptr, nvec, ts);
      if (s && datalen >= 0) {
        s->sent += static_cast<uint64_t>(datalen);
        if ((flags & NGTCP2_WRITE_STREAM_FLAG_FIN) && s->sent == s->written) s->fin_sent = true;
        if (s->pending()) s->round_skip = false;
      }
      if (nwrite == NGTCP2_ERR_WRITE_MORE) {
        more_pending = true;
        continue;
      }
      if (nwrite == NGTCP2_ERR_STREAM_DATA_BLOCKED) {
        s->blocked = true;  // until extend_max_stream_data
        continue;
      }
      if (nwrite == NGTCP2_ERR_STREAM_SHUT_WR || nwrite == NGTCP2_ERR_STREAM_NOT_FOUND) {
        // ngtcp2 1.11 answers a peer's STOP_SENDING with RESET_STREAM by itself and has no
        // callback for it: a refused write on a stream we did not reset is how we learn of it.
        if (nwrite == NGTCP2_ERR_STREAM_SHUT_WR && !s->reset_local) {
          on_stream_stop_sending(sid, kUnknownCode);
          s->reset_local = true;
        }
        s->round_skip = true;
        s->sent = s->written;
        s->fin_sent = true;
        continue;
      }
      if (nwrite == 0) break;
      if (s && datalen < 0) s->round_skip = true;  // e.g. connection-level flow control
    }
    if (nwrite < 0) {
      handle_error(static_cast<int>(nwrite), ts);
      return;
    }
    more_pending = false;
    // A complete packet of `nwrite` bytes at `dest`. GSO batches need one destination and equal
    // segments (only the last may be shorter).
    SockAddr to = from_ngtcp2(ps.path.remote);
    size_t n = static_cast<size_t>(nwrite);
    if (npkts > 0 && (n > segment || !(to == batch_to_))) {
      if (!flush_packets(buf, off, segment)) {
        off = npkts = 0;
        break;
      }
      memmove(buf, dest, n);
      off = npkts = 0;
    }
    if (npkts == 0) {
      segment = n;
      batch_to_ = to;
    }
    off += n;
    npkts++;
    if (n < segment || npkts >= max_pkts) {
      bool ok = flush_packets(buf, off, segment);
      off = npkts = 0;
      if (!ok || n >= segment) break;  // quantum used up (or socket full)
    }
  }
  if (npkts > 0) flush_packets(buf, off, segment);
  ngtcp2_conn_update_pkt_tx_time(conn_, ts);

  // Drop streams with nothing left to send from the round-robin list.
  send_order_.erase(std::remove_if(send_order_.begin(), send_order_.end(),
                                   [this](int64_t sid) {
                                     auto it = streams_.find(sid);
                                     return it == streams_.end() ||
                                            (it->second.sent == it->second.written &&
                                             (!it->second.fin || it->second.fin_sent));
                                   }),
                    send_order_.end());
  if (send_cursor_ >= send_order_.size()) send_cursor_ = 0;
  dgram_round_blocked_ = false;
  if (dq_full_reported_ && dq_count_ <= dq_limit_ / 2) {
    dq_full_reported_ = false;
    Event e{};
    e.type = EventType::kDatagramDrain;
    e.conn = this;
    ep_->push_event(e);
  }
}

// ---------------------------------------------------------------------------------------------
// JS API

int64_t Connection::open_stream(bool bidi) {
  if (state_ != State::kOpen && state_ != State::kHandshake) return -1;
  int64_t sid = -1;
  int rv = bidi ? ngtcp2_conn_open_bidi_stream(conn_, &sid, nullptr)
                : ngtcp2_conn_open_uni_stream(conn_, &sid, nullptr);
  if (rv != 0) return -1;
  streams_[sid];
  return sid;
}

int Connection::write_stream(int64_t sid, const uint8_t *data, size_t len, bool fin,
                             uint64_t *unacked) {
  if (state_ != State::kOpen && state_ != State::kHandshake) return -1;
  auto it = streams_.find(sid);
  if (it == streams_.end()) return -2;  // unknown, closed, or the peer's unidirectional stream
  SendStream &s = it->second;
  if (s.fin) return -3;  // already finished
  bool was_pending = s.sent < s.written || (s.fin && !s.fin_sent);
  if (len > 0) {
    s.chunks.emplace_back(data, data + len);
    s.written += len;
  }
  if (fin) s.fin = true;
  if (!was_pending) send_order_.push_back(sid);
  *unacked = s.written - s.head;
  return 0;
}

int Connection::reset_stream(int64_t sid, uint64_t code) {
  if (state_ != State::kOpen && state_ != State::kHandshake) return -1;
  if (sid < 0 || (is_uni(sid) && !is_local_stream(sid, server_))) return -1;  // no send side
  int rv = ngtcp2_conn_shutdown_stream_write(conn_, 0, sid, code);
  auto it = streams_.find(sid);
  if (it != streams_.end()) {
    it->second.reset_local = true;
    it->second.sent = it->second.written;
    it->second.fin = it->second.fin_sent = true;
  }
  return rv;
}

int Connection::stop_sending(int64_t sid, uint64_t code) {
  if (state_ != State::kOpen && state_ != State::kHandshake) return -1;
  if (sid < 0 || (is_uni(sid) && is_local_stream(sid, server_))) return -1;  // no receive side
  return ngtcp2_conn_shutdown_stream_read(conn_, 0, sid, code);
}

void Connection::extend_stream_credit(int64_t sid, uint64_t bytes) {
  if (bytes == 0 || (state_ != State::kOpen && state_ != State::kHandshake)) return;
  if (sid < 0 || (is_uni(sid) && is_local_stream(sid, server_))) return;
  ngtcp2_conn_extend_max_stream_offset(conn_, sid, bytes);
  ngtcp2_conn_extend_max_offset(conn_, bytes);
}

void Connection::drop_expired_datagrams(uint64_t ts) {
  const uint64_t max_age = ep_->config().datagram_max_age_ms * 1000000ull;
  if (max_age == 0) return;
  const size_t cap = dq_len_.size();
  while (dq_count_ > 0 && ts > dq_ts_[dq_head_] && ts - dq_ts_[dq_head_] > max_age) {
    dq_head_ = (dq_head_ + 1) % cap;
    dq_count_--;
    dg_expired_++;
  }
}

Connection::DgramResult Connection::send_datagram(const uint8_t *data, size_t len) {
  if (state_ != State::kOpen && state_ != State::kHandshake) return DgramResult::kClosed;
  if (len > kMaxDatagram) {
    dg_too_big_++;
    return DgramResult::kTooBig;
  }
  size_t cap = dq_len_.size();
  if (dq_count_ == cap) {
    if (cap >= dq_limit_) {
      dg_full_++;
      dq_full_reported_ = true;
      return DgramResult::kFull;
    }
    // Grow the ring (in order, head at 0): idle connections keep a small one.
    size_t ncap = std::min(dq_limit_, std::max<size_t>(16, cap * 2));
    std::vector<uint8_t> data(ncap * kMaxDatagram);
    std::vector<uint16_t> lens(ncap);
    std::vector<uint64_t> stamps(ncap);
    for (size_t i = 0; i < dq_count_; i++) {
      size_t from = (dq_head_ + i) % cap;
      memcpy(data.data() + i * kMaxDatagram, dq_data_.data() + from * kMaxDatagram, dq_len_[from]);
      lens[i] = dq_len_[from];
      stamps[i] = dq_ts_[from];
    }
    dq_data_.swap(data);
    dq_len_.swap(lens);
    dq_ts_.swap(stamps);
    dq_head_ = 0;
    cap = ncap;
  }
  size_t slot = (dq_head_ + dq_count_) % cap;
  memcpy(dq_data_.data() + slot * kMaxDatagram, data, len);
  dq_len_[slot] = static_cast<uint16_t>(len);
  dq_ts_[slot] = now_ns();
  dq_count_++;
  return DgramResult::kQueued;
}

void Connection::close(uint64_t code, const std::string &reason, bool app, uint8_t why) {
  if (state_ != State::kOpen && state_ != State::kHandshake) return;
  close_reason_buf_ = reason;
  ngtcp2_ccerr_default(&pending_ccerr_);
  const uint8_t *r = reinterpret_cast<const uint8_t *>(close_reason_buf_.data());
  if (app)
    ngtcp2_ccerr_set_application_error(&pending_ccerr_, code, r, close_reason_buf_.size());
  else
    ngtcp2_ccerr_set_transport_error(&pending_ccerr_, code, r, close_reason_buf_.size());
  close_why_ = why;
  enter_closing(clamp(now_ns()));
}

void Connection::stats(ConnStats *out) {
  memset(out, 0, sizeof *out);
  if (conn_) {
    ngtcp2_conn_info ci;
    ngtcp2_conn_get_conn_info(conn_, &ci);
    out->srtt_us = ci.smoothed_rtt / 1000.0;
    out->min_rtt_us = ci.min_rtt == UINT64_MAX ? 0 : ci.min_rtt / 1000.0;
    out->rttvar_us = ci.rttvar / 1000.0;
    out->latest_rtt_us = ci.latest_rtt / 1000.0;
    out->cwnd = static_cast<double>(ci.cwnd);
    out->bytes_in_flight = static_cast<double>(ci.bytes_in_flight);
    out->pmtu = static_cast<double>(ngtcp2_conn_get_path_max_tx_udp_payload_size(conn_));
    // Delivery rate: bytes that left flight (acknowledged or declared lost) per second since the
    // previous stats() call. ngtcp2 1.11 keeps its own estimate private.
    uint64_t now = now_ns();
    uint64_t delivered = bytes_sent_ > ci.bytes_in_flight ? bytes_sent_ - ci.bytes_in_flight : 0;
    if (rate_ts_ != 0 && now > rate_ts_ + 1000000 && delivered >= rate_bytes_) {
      rate_bps_ = (delivered - rate_bytes_) * 8.0 * 1e9 / static_cast<double>(now - rate_ts_);
    }
    if (rate_ts_ == 0 || now > rate_ts_ + 1000000) {
      rate_ts_ = now;
      rate_bytes_ = delivered;
    }
  }
  out->bytes_sent = static_cast<double>(bytes_sent_);
  out->bytes_recv = static_cast<double>(bytes_recv_);
  out->packets_sent = static_cast<double>(pkts_sent_);
  out->packets_recv = static_cast<double>(pkts_recv_);
  out->datagrams_sent = static_cast<double>(dg_sent_);
  out->datagrams_recv = static_cast<double>(dg_recv_);
  out->datagrams_lost = static_cast<double>(dg_lost_);
  out->datagrams_dropped_too_big = static_cast<double>(dg_too_big_);
  out->datagrams_dropped_full = static_cast<double>(dg_full_);
  out->datagrams_dropped_expired = static_cast<double>(dg_expired_);
  out->delivery_rate_bps = rate_bps_;
}

void Connection::rebind(const SockAddr &local, uint64_t ts) {
  (void)ts;
  local_ = local;
  if (state_ != State::kOpen && state_ != State::kHandshake) return;
  ngtcp2_addr a{const_cast<ngtcp2_sockaddr *>(reinterpret_cast<const ngtcp2_sockaddr *>(&local_.ss)),
                local_.len};
  // ngtcp2's way to model NAT rebinding: the peer sees a new address and validates the path.
  ngtcp2_conn_set_local_addr(conn_, &a);
}

// ---------------------------------------------------------------------------------------------
// ngtcp2 callbacks: record and queue only.

int Connection::on_recv_stream_data(uint32_t flags, int64_t sid, const uint8_t *data, size_t len) {
  Event e{};
  e.type = EventType::kStreamData;
  e.conn = this;
  e.stream_id = sid;
  e.fin = (flags & NGTCP2_STREAM_DATA_FLAG_FIN) ? 1 : 0;
  e.off = ep_->push_bytes(data, len);
  e.len = len;
  // A server only gets 1-RTT stream data after the client's Finished (no 0-RTT), so the
  // connection is announced by now unless its ALPN check failed (then it is closing anyway).
  if (announced_) ep_->push_event(e);
  return 0;
}

int Connection::on_acked_stream_data(int64_t sid, uint64_t offset, uint64_t len) {
  auto it = streams_.find(sid);
  if (it == streams_.end()) return 0;
  SendStream &s = it->second;
  uint64_t acked = offset + len;
  while (!s.chunks.empty() && s.head + s.chunks.front().size() <= acked) {
    s.head += s.chunks.front().size();
    s.chunks.pop_front();
  }
  return 0;
}

int Connection::on_stream_close(uint32_t flags, int64_t sid, uint64_t code) {
  streams_.erase(sid);
  if (!announced_) return 0;
  Event e{};
  e.type = EventType::kStreamClose;
  e.conn = this;
  e.stream_id = sid;
  e.code = (flags & NGTCP2_STREAM_CLOSE_FLAG_APP_ERROR_CODE_SET) ? code : 0;
  ep_->push_event(e);
  return 0;
}

int Connection::on_stream_reset(int64_t sid, uint64_t code) {
  if (!announced_) return 0;
  Event e{};
  e.type = EventType::kStreamReset;
  e.conn = this;
  e.stream_id = sid;
  e.code = code;
  ep_->push_event(e);
  return 0;
}

int Connection::on_stream_stop_sending(int64_t sid, uint64_t code) {
  if (!announced_) return 0;
  Event e{};
  e.type = EventType::kStopSending;
  e.conn = this;
  e.stream_id = sid;
  e.code = code;
  ep_->push_event(e);
  return 0;
}

int Connection::on_extend_max_stream_data(int64_t sid) {
  auto it = streams_.find(sid);
  if (it != streams_.end()) it->second.blocked = false;
  return 0;
}

int Connection::on_extend_max_streams() {
  if (!announced_ || state_ != State::kOpen) return 0;
  Event e{};
  e.type = EventType::kStreamsAvailable;
  e.conn = this;
  ep_->push_event(e);
  return 0;
}

int Connection::on_stream_open(int64_t sid) {
  // Remote bidirectional streams can be written to; remote unidirectional ones cannot.
  if (!is_uni(sid) && !is_local_stream(sid, server_)) streams_[sid];
  return 0;
}

int Connection::on_handshake_confirmed() {
  if (state_ != State::kHandshake) return 0;
  if (!ep_->tls()->alpn_ok(tls_)) return NGTCP2_ERR_CALLBACK_FAILURE;
  if (peer_cert_.empty()) return NGTCP2_ERR_CALLBACK_FAILURE;  // verify_peer never accepted one
  state_ = State::kOpen;
  Event e{};
  e.conn = this;
  if (server_) {
    announced_ = true;
    ep_->counters().connections_accepted++;
    e.type = EventType::kConnection;
  } else {
    e.type = EventType::kHandshake;
  }
  ep_->push_event(e);
  return 0;
}

int Connection::on_recv_datagram(const uint8_t *data, size_t len) {
  dg_recv_++;
  if (!announced_) return 0;
  rx_dgram_buf_.insert(rx_dgram_buf_.end(), data, data + len);
  rx_dgram_lens_.push_back(static_cast<uint32_t>(len));
  if (!rx_dgram_event_) {
    rx_dgram_event_ = true;
    Event e{};
    e.type = EventType::kDatagrams;
    e.conn = this;
    ep_->push_event(e);
  }
  return 0;
}

int Connection::on_lost_datagram() {
  dg_lost_++;
  return 0;
}

int Connection::on_new_cid(ngtcp2_cid *cid, uint8_t *token, size_t cidlen) {
  cid->datalen = cidlen;
  ep_->gen_cid(cid->data, cidlen);
  if (ngtcp2_crypto_generate_stateless_reset_token(token, ep_->reset_secret(), 32, cid) != 0)
    return NGTCP2_ERR_CALLBACK_FAILURE;
  register_cid(*cid);
  return 0;
}

int Connection::on_remove_cid(const ngtcp2_cid *cid) {
  CidKey k(cid->data, cid->datalen);
  ep_->remove_cid(k, this);
  cids_.erase(std::remove(cids_.begin(), cids_.end(), k), cids_.end());
  return 0;
}

}  // namespace quic
