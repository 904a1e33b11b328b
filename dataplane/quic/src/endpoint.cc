#include "endpoint.h"

#include <errno.h>
#include <string.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>

namespace quic {

uint64_t now_ns() {
  timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return static_cast<uint64_t>(t.tv_sec) * 1000000000ull + static_cast<uint64_t>(t.tv_nsec);
}

Endpoint::Endpoint(uv_loop_t *loop, EndpointHost *host) : loop_(loop), host_(host) {
  txbuf_.reset(new uint8_t[kTxBufferSize]);  // default-init: not zeroed
  rx_.resize(UdpSocket::kRecvBatch);
  gnutls_rnd(GNUTLS_RND_KEY, reset_secret_, sizeof reset_secret_);
}

Endpoint::~Endpoint() {
  // Connections unregister their CIDs from cids_ while it still exists.
  conns_.clear();
  if (io_ && !opened_) delete io_;
  if (timer_fd_ >= 0) ::close(timer_fd_);
}

bool Endpoint::start_io(PollHandle *io) {
  io->ep = this;
  if (uv_poll_init(loop_, &io->h, io->sock.fd()) != 0) return false;
  open_handles_++;
  uv_poll_start(&io->h, UV_READABLE, on_poll);
  poll_writable_ = false;
  return true;
}

bool Endpoint::open(const EndpointConfig &cfg, const std::string &cert, const std::string &key,
                    const std::string &ca, std::string *err) {
  cfg_ = cfg;
  if (cfg_.shard_count == 0) cfg_.shard_count = 1;
  if (cfg_.shard_id >= cfg_.shard_count || cfg_.shard_count > 255) {
    *err = "shardId must be < shardCount <= 255";
    return false;
  }
  if (!tls_.init(cfg.server, cert, key, ca, cfg.alpn, cfg.server_name, &counters_, err)) return false;
  io_ = new PollHandle();
  if (!io_->sock.open(cfg.host, cfg.port, cfg.reuse_port, cfg.socket_buffer, err)) return false;
  if (cfg.server && cfg.reuse_port && cfg_.shard_count > 1 &&
      !io_->sock.attach_shard_program(cfg_.shard_count, kCidLen, err))
    return false;
  timer_fd_ = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
  if (timer_fd_ < 0) {
    *err = std::string("timerfd_create: ") + strerror(errno);
    return false;
  }
  // From here on the handles own the resources: close() releases them.
  opened_ = true;
  if (!start_io(io_)) {
    *err = "uv_poll_init failed";
    opened_ = false;
    return false;
  }
  uv_poll_init(loop_, &timer_poll_, timer_fd_);
  timer_poll_.data = this;
  open_handles_++;
  uv_poll_start(&timer_poll_, UV_READABLE, on_timer_poll);
  uv_idle_init(loop_, &idle_);
  idle_.data = this;
  open_handles_++;
  return true;
}

Connection *Endpoint::connect(const std::string &host, int port, std::string *err) {
  if (cfg_.server) {
    *err = "connect() needs a client endpoint";
    return nullptr;
  }
  if (closing_) {
    *err = "endpoint is closed";
    return nullptr;
  }
  SockAddr remote;
  bool v6sock = local().family() == AF_INET6;
  if (!parse_addr(host, port, v6sock, &remote) || remote.family() != local().family()) {
    *err = "cannot reach '" + host + "' from a socket bound to " + local().host();
    return nullptr;
  }
  uint32_t id = next_id_++;
  auto c = std::make_unique<Connection>(this, id, false);
  if (!c->init_client(local(), remote, now_ns(), err)) return nullptr;
  Connection *cp = c.get();
  conns_[id] = std::move(c);
  touch(cp);
  return cp;
}

Connection *Endpoint::find(uint32_t id) {
  auto it = conns_.find(id);
  return it == conns_.end() ? nullptr : it->second.get();
}

bool Endpoint::rebind(std::string *err) {
  if (cfg_.server || closing_ || !opened_) {
    *err = "rebind() needs an open client endpoint";
    return false;
  }
  auto *io = new PollHandle();
  if (!io->sock.open(cfg_.host, 0, false, cfg_.socket_buffer, err)) {
    delete io;
    return false;
  }
  PollHandle *old = io_;
  io_ = io;
  if (!start_io(io)) {
    io_ = old;
    delete io;
    *err = "uv_poll_init failed";
    return false;
  }
  uv_poll_stop(&old->h);
  uv_close(reinterpret_cast<uv_handle_t *>(&old->h), on_io_closed);
  pending_.clear();  // addressed from the old socket; QUIC retransmits what matters
  uint64_t ts = now_ns();
  for (auto &kv : conns_) {
    kv.second->rebind(local(), ts);
    touch(kv.second.get());
  }
  return true;
}

void Endpoint::close(bool polite) {
  if (closing_) {
    // A polite close waits for one idle turn; teardown cannot wait.
    if (!polite && io_ != nullptr) close_socket_handles();
    return;
  }
  closing_ = true;
  if (!opened_) return;
  for (auto &kv : conns_) kv.second->close(0, "", true, kWhyEndpoint);
  if (polite) {
    // Deliver the close events on the next loop turn, then close the handles.
    start_idle();
  } else {
    events_.clear();
    arena_.clear();
    close_socket_handles();
  }
}

void Endpoint::close_socket_handles() {
  if (io_ == nullptr) return;
  uv_poll_stop(&io_->h);
  uv_close(reinterpret_cast<uv_handle_t *>(&io_->h), on_io_closed);
  io_ = nullptr;
  uv_poll_stop(&timer_poll_);
  uv_close(reinterpret_cast<uv_handle_t *>(&timer_poll_), on_handle_closed);
  uv_idle_stop(&idle_);
  uv_close(reinterpret_cast<uv_handle_t *>(&idle_), on_handle_closed);
}

void Endpoint::on_io_closed(uv_handle_t *h) {
  auto *io = reinterpret_cast<PollHandle *>(h);
  Endpoint *ep = io->ep;
  delete io;  // closes the socket
  ep->handle_closed();
}

void Endpoint::on_handle_closed(uv_handle_t *h) { static_cast<Endpoint *>(h->data)->handle_closed(); }

void Endpoint::handle_closed() {
  if (--open_handles_ > 0) return;
  if (timer_fd_ >= 0) ::close(timer_fd_);
  timer_fd_ = -1;
  host_->handles_closed();  // may delete this
}

void Endpoint::touch(Connection *c) {
  mark_dirty(c);
  if (!in_io_) start_idle();
}

void Endpoint::mark_dirty(Connection *c) {
  if (!c->dirty) {
    c->dirty = true;
    dirty_.push_back(c);
  }
}

void Endpoint::start_idle() {
  if (io_ != nullptr && !uv_is_active(reinterpret_cast<uv_handle_t *>(&idle_)))
    uv_idle_start(&idle_, on_idle);
}

void Endpoint::remove_cid(const CidKey &k, Connection *c) {
  auto it = cids_.find(k);
  if (it != cids_.end() && it->second == c) cids_.erase(it);
}

size_t Endpoint::push_bytes(const uint8_t *data, size_t len) {
  size_t off = arena_.size();
  if (len) arena_.insert(arena_.end(), data, data + len);
  return off;
}

void Endpoint::gen_cid(uint8_t *out, size_t len) {
  gnutls_rnd(GNUTLS_RND_NONCE, out, len);
  // Byte 0 names the owning shard: the reuseport program steers on it.
  if (cfg_.server && len > 0) out[0] = static_cast<uint8_t>(cfg_.shard_id);
}

bool Endpoint::send(const SockAddr &to, const uint8_t *data, size_t len, size_t segment) {
  if (io_ == nullptr) return false;
  if (!pending_.empty()) {
    if (pending_.size() < 256) pending_.push_back({to, std::vector<uint8_t>(data, data + len), segment});
    return false;
  }
  int r = io_->sock.send(to, data, len, segment);
  if (r == 0) {
    if (segment < len) counters_.gso_batches++;
    return true;
  }
  if (r == -EAGAIN || r == -EWOULDBLOCK || r == -ENOBUFS) {
    counters_.send_blocked++;
    pending_.push_back({to, std::vector<uint8_t>(data, data + len), segment});
    update_poll();
    return false;
  }
  counters_.send_errors++;  // lost; loss recovery repairs it
  return true;
}

void Endpoint::update_poll() {
  if (io_ == nullptr) return;
  bool want = !pending_.empty();
  if (want == poll_writable_) return;
  poll_writable_ = want;
  uv_poll_start(&io_->h, UV_READABLE | (want ? UV_WRITABLE : 0), on_poll);
}

void Endpoint::schedule(Connection *c) {
  auto it = timer_of_.find(c);
  uint64_t exp = c->expiry();
  if (it != timer_of_.end()) {
    if (it->second == exp) return;
    timers_.erase({it->second, c});
    it->second = exp;
  } else {
    timer_of_[c] = exp;
  }
  timers_.insert({exp, c});
}

// --------------------------------------------------------------------------------------------
// libuv callbacks

void Endpoint::on_poll(uv_poll_t *h, int status, int events) {
  auto *io = reinterpret_cast<PollHandle *>(h);
  Endpoint *ep = io->ep;
  if (io != ep->io_) return;  // an old socket after rebind
  if (status < 0) return;
  if (events & UV_WRITABLE) ep->on_writable();
  if ((events & UV_READABLE) && ep->io_ == io) ep->on_readable();
}

void Endpoint::on_timer_poll(uv_poll_t *h, int status, int) {
  if (status < 0) return;
  static_cast<Endpoint *>(h->data)->on_timer();
}

void Endpoint::on_idle(uv_idle_t *h) {
  auto *ep = static_cast<Endpoint *>(h->data);
  uv_idle_stop(h);
  ep->in_io_ = true;
  ep->after_io();
  ep->in_io_ = false;
  if (ep->closing_) ep->close_socket_handles();
}

void Endpoint::on_readable() {
  in_io_ = true;
  uint64_t ts = now_ns();
  // Bounded so that timers and other handles of this loop still get their turn.
  for (int round = 0; round < 8 && io_ != nullptr; round++) {
    int n = io_->sock.recv_batch(rx_.data());
    if (n <= 0) break;
    for (int i = 0; i < n; i++) {
      RecvMsg &m = rx_[i];
      counters_.recv_datagrams++;
      size_t seg = m.segment ? m.segment : m.len;
      for (size_t off = 0; off < m.len; off += seg)
        handle_packet(m.data + off, std::min(seg, m.len - off), m.from, ts);
    }
    if (n < static_cast<int>(UdpSocket::kRecvBatch)) break;
  }
  after_io();
  in_io_ = false;
}

void Endpoint::on_writable() {
  in_io_ = true;
  while (!pending_.empty() && io_ != nullptr) {
    Pending &p = pending_.front();
    int r = io_->sock.send(p.to, p.data.data(), p.data.size(), p.segment);
    if (r == -EAGAIN || r == -EWOULDBLOCK || r == -ENOBUFS) break;
    pending_.erase(pending_.begin());
  }
  update_poll();
  if (pending_.empty())
    for (auto &kv : conns_) mark_dirty(kv.second.get());
  after_io();
  in_io_ = false;
}

void Endpoint::on_timer() {
  uint64_t expirations;
  while (read(timer_fd_, &expirations, sizeof expirations) > 0) {
  }
  timer_armed_ = UINT64_MAX;
  in_io_ = true;
  uint64_t ts = now_ns();
  std::vector<Connection *> due;
  for (auto it = timers_.begin(); it != timers_.end() && it->first <= ts; ++it) due.push_back(it->second);
  for (Connection *c : due) {
    c->on_expiry(ts);
    schedule(c);
  }
  after_io();
  in_io_ = false;
}

void Endpoint::handle_packet(const uint8_t *pkt, size_t len, const SockAddr &from, uint64_t ts) {
  ngtcp2_version_cid vc;
  int r = packet::decode(pkt, len, &vc);
  if (r == 1) {
    // Unknown version: answer Initial-sized packets only (RFC 9000 §6.1), never amplify.
    if (cfg_.server && len >= 1200) {
      ssize_t n = packet::version_negotiation(txbuf_.get(), kMaxUdpPayload, vc);
      if (n > 0) {
        send(from, txbuf_.get(), static_cast<size_t>(n), static_cast<size_t>(n));
        counters_.version_negotiation_sent++;
      }
    } else {
      counters_.garbage++;
    }
    return;
  }
  if (r < 0) {
    counters_.garbage++;
    return;
  }
  auto it = cids_.find(CidKey(vc.dcid, vc.dcidlen));
  if (it != cids_.end()) {
    Connection *c = it->second;
    c->read(local(), from, pkt, len, ts);
    mark_dirty(c);
    return;
  }
  if (!cfg_.server) {
    counters_.unknown_connection++;
    return;
  }
  if ((pkt[0] & 0x80) == 0) {
    if (cfg_.shard_count > 1 && vc.dcidlen == kCidLen && vc.dcid[0] != cfg_.shard_id) {
      // Another shard's connection: a reset from here would kill it.
      counters_.misrouted++;
      return;
    }
    counters_.unknown_connection++;
    ssize_t n = packet::stateless_reset(txbuf_.get(), kMaxUdpPayload, reset_secret_, vc.dcid,
                                        vc.dcidlen, len);
    if (n > 0) {
      send(from, txbuf_.get(), static_cast<size_t>(n), static_cast<size_t>(n));
      counters_.stateless_reset_sent++;
    }
    return;
  }
  if (closing_) return;
  ngtcp2_pkt_hd hd;
  if (!packet::accept(pkt, len, &hd)) {
    counters_.accept_failed++;
    return;
  }
  ngtcp2_cid odcid;
  bool retried = false;
  if (cfg_.retry && hd.type == NGTCP2_PKT_INITIAL) {
    if (!packet::has_retry_token(hd)) {
      uint8_t scid[kCidLen];
      gen_cid(scid, kCidLen);
      ssize_t n = packet::retry(txbuf_.get(), kMaxUdpPayload, hd, from, reset_secret_, scid, ts);
      if (n > 0) {
        send(from, txbuf_.get(), static_cast<size_t>(n), static_cast<size_t>(n));
        counters_.retry_sent++;
      }
      return;
    }
    if (!packet::verify_retry(hd, from, reset_secret_, ts, &odcid)) {
      counters_.retry_token_invalid++;
      return;
    }
    retried = true;
  }
  uint32_t id = next_id_++;
  if (id == 0) id = next_id_++;
  auto c = std::make_unique<Connection>(this, id, true);
  if (!c->init_server(hd, local(), from, ts, retried ? &odcid : nullptr)) {
    counters_.accept_failed++;
    return;
  }
  Connection *cp = c.get();
  conns_[id] = std::move(c);
  cp->read(local(), from, pkt, len, ts);
  mark_dirty(cp);
}

void Endpoint::flush() {
  if (dirty_.empty()) return;
  uint64_t ts = now_ns();
  std::vector<Connection *> list;
  list.swap(dirty_);
  for (Connection *c : list) {
    c->dirty = false;
    c->write(ts);
    schedule(c);
  }
}

void Endpoint::after_io() {
  // Events first: a received datagram reaches JS before we spend a sendmsg on the ACK it caused,
  // and whatever JS sends in answer leaves in the same flush as that ACK. Writing may raise
  // events (drain) and JS handlers may queue writes: a few rounds settle both.
  for (int round = 0; round < 4; round++) {
    if (!events_.empty()) {
      host_->deliver_events();
      events_.clear();
      arena_.clear();
    }
    flush();
    if (events_.empty()) break;
  }
  if (!dirty_.empty() || !events_.empty()) start_idle();
  reap();
  arm_timer();
}

void Endpoint::reap() {
  if (!events_.empty()) return;  // undelivered events still name their connections
  for (auto it = conns_.begin(); it != conns_.end();) {
    Connection *c = it->second.get();
    if (!c->dead()) {
      ++it;
      continue;
    }
    auto t = timer_of_.find(c);
    if (t != timer_of_.end()) {
      timers_.erase({t->second, c});
      timer_of_.erase(t);
    }
    if (c->dirty) dirty_.erase(std::remove(dirty_.begin(), dirty_.end(), c), dirty_.end());
    it = conns_.erase(it);
  }
}

void Endpoint::arm_timer() {
  if (timer_fd_ < 0 || io_ == nullptr) return;
  uint64_t next = timers_.empty() ? UINT64_MAX : timers_.begin()->first;
  if (next == timer_armed_) return;
  timer_armed_ = next;
  itimerspec its;
  memset(&its, 0, sizeof its);
  if (next != UINT64_MAX) {
    if (next == 0) next = 1;  // zero would disarm; any past time fires at once
    its.it_value.tv_sec = static_cast<time_t>(next / 1000000000ull);
    its.it_value.tv_nsec = static_cast<long>(next % 1000000000ull);
  }
  timerfd_settime(timer_fd_, TFD_TIMER_ABSTIME, &its, nullptr);
}

}  // namespace quic
