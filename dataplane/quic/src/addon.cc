// Node-API binding (raw C API, every status checked). One NativeEndpoint per JS object; all work
// happens on the thread of the environment that created it. Events are delivered once per I/O
// batch: one handle scope + one callback scope, one JS call per event (datagrams come batched).
//
// Lifetime: the JS object is held strongly while the endpoint's libuv handles are open. The
// native side is freed when both the handles are closed and the JS object is finalized. An async
// cleanup hook closes the handles when the environment goes away (worker.terminate(),
// process.exit() in a worker, main-thread exit) without calling into JS.
#include <node_api.h>
#include <uv.h>

#include <cmath>
#include <cstring>
#include <memory>
#include <string>

#include "endpoint.h"
#include "napi_checked.h"
#include "packet_reader.h"

namespace {

using namespace napi_checked;
using quic::Connection;
using quic::Endpoint;
using quic::EndpointConfig;
using quic::Event;
using quic::EventType;

// --------------------------------------------------------------------------------------------

struct Wrap final : quic::EndpointHost {
  napi_env env;
  napi_ref self = nullptr;      // strong while handles are open
  napi_ref callback = nullptr;  // (type, conn, a, b, c) => void
  napi_async_context async_ctx = nullptr;
  napi_async_cleanup_hook_handle cleanup = nullptr;
  // Datagram batches are copied into these two ArrayBuffers, allocated once: no allocation and
  // no page faults per batch. JS gets views that are valid during the callback only.
  napi_ref dgram_ab = nullptr;
  napi_ref lens_ab = nullptr;
  uint8_t *dgram_mem = nullptr;
  uint32_t *lens_mem = nullptr;
  static constexpr size_t kDgramBytes = 256 * 1024;
  static constexpr size_t kDgramLens = 8192;
  std::unique_ptr<Endpoint> ep;
  bool handles_open = false;
  bool finalized = false;
  bool teardown = false;  // environment is going away: never call into JS
  bool js_dead = false;   // JS refused a call (terminating)

  explicit Wrap(napi_env e) : env(e) {}
  ~Wrap() override {
    ep.reset();
    if (callback) napi_delete_reference(env, callback);
    if (dgram_ab) napi_delete_reference(env, dgram_ab);
    if (lens_ab) napi_delete_reference(env, lens_ab);
    if (self) napi_delete_reference(env, self);
  }

  void deliver_events() override;
  void handles_closed() override;
  void call(napi_value recv, napi_value fn, size_t argc, napi_value *argv);
};

void Wrap::call(napi_value recv, napi_value fn, size_t argc, napi_value *argv) {
  napi_status s = napi_call_function(env, recv, fn, argc, argv, nullptr);
  if (s == napi_ok) return;
  napi_value exc;
  if (s == napi_pending_exception && napi_get_and_clear_last_exception(env, &exc) == napi_ok) {
    napi_valuetype t = napi_undefined;
    napi_typeof(env, exc, &t);
    // A handler threw: report it as uncaught (the process/worker decides), keep delivering.
    if (t != napi_undefined && napi_fatal_exception(env, exc) == napi_ok) return;
  }
  js_dead = true;  // the environment cannot run JS any more (worker terminating)
}

void Wrap::deliver_events() {
  std::vector<Event> &evs = ep->events();
  if (evs.empty() || teardown || js_dead || !self) return;
  napi_handle_scope hs;
  if (napi_open_handle_scope(env, &hs) != napi_ok) {
    js_dead = true;
    return;
  }
  napi_value resource = nullptr, fn = nullptr;
  napi_callback_scope cs = nullptr;
  if (napi_get_reference_value(env, self, &resource) != napi_ok || resource == nullptr ||
      napi_get_reference_value(env, callback, &fn) != napi_ok || fn == nullptr ||
      napi_open_callback_scope(env, resource, async_ctx, &cs) != napi_ok) {
    js_dead = true;
    napi_close_handle_scope(env, hs);
    return;
  }
  const bool auto_credit = !ep->config().manual_stream_credit;
  for (size_t i = 0; i < evs.size() && !js_dead; i++) {
    Event e = evs[i];  // copy: handlers may append (and reallocate)
    Connection *c = e.conn;
    napi_handle_scope inner;
    if (napi_open_handle_scope(env, &inner) != napi_ok) {
      js_dead = true;
      break;
    }
    try {
      napi_value argv[5];
      size_t argc = 2;
      argv[0] = num(env, static_cast<double>(e.type));
      argv[1] = num(env, c ? c->id() : 0);
      const uint8_t *arena = ep->arena().data();
      switch (e.type) {
        case EventType::kConnection:
          argv[2] = str(env, c->remote().host());
          argv[3] = num(env, c->remote().port());
          argv[4] = buffer_copy(env, c->peer_cert().data(), c->peer_cert().size());
          argc = 5;
          break;
        case EventType::kHandshake:
          argv[2] = buffer_copy(env, c->peer_cert().data(), c->peer_cert().size());
          argc = 3;
          break;
        case EventType::kStreamData:
          argv[2] = num(env, static_cast<double>(e.stream_id));
          argv[3] = buffer_copy(env, arena + e.off, e.len);
          argv[4] = boolean(env, e.fin != 0);
          argc = 5;
          break;
        case EventType::kStreamReset:
        case EventType::kStopSending:
        case EventType::kStreamClose:
          argv[2] = num(env, static_cast<double>(e.stream_id));
          argv[3] = num(env, static_cast<double>(e.code));
          argc = 4;
          break;
        case EventType::kDatagrams: {
          // One call per chunk of up to kDgramBytes / kDgramLens datagrams.
          auto &buf = c->rx_datagrams();
          auto &lens = c->rx_lengths();
          napi_value dab, lab;
          CHECK(env, napi_get_reference_value(env, dgram_ab, &dab));
          CHECK(env, napi_get_reference_value(env, lens_ab, &lab));
          size_t i = 0, off = 0;
          while (i < lens.size() && !js_dead) {
            size_t n = 0, bytes = 0;
            while (i + n < lens.size() && n < kDgramLens && bytes + lens[i + n] <= kDgramBytes)
              bytes += lens[i + n++];
            memcpy(dgram_mem, buf.data() + off, bytes);
            memcpy(lens_mem, lens.data() + i, n * 4);
            napi_handle_scope chunk;
            if (napi_open_handle_scope(env, &chunk) != napi_ok) {
              js_dead = true;
              break;
            }
            argv[2] = nullptr;
            CHECK(env, napi_create_typedarray(env, napi_uint8_array, bytes, dab, 0, &argv[2]));
            CHECK(env, napi_create_typedarray(env, napi_uint32_array, n, lab, 0, &argv[3]));
            argv[4] = num(env, static_cast<double>(n));
            call(resource, fn, 5, argv);
            napi_close_handle_scope(env, chunk);
            i += n;
            off += bytes;
          }
          c->rx_delivered();
          argc = 0;  // delivered above
          break;
        }
        case EventType::kClose:
          argv[2] = num(env, static_cast<double>(e.code));
          argv[3] = str(env, std::string(reinterpret_cast<const char *>(arena + e.off), e.len));
          argv[4] = num(env, e.flags);
          argc = 5;
          break;
        default:
          break;
      }
      if (argc > 0) call(resource, fn, argc, argv);
      if (e.type == EventType::kStreamData && auto_credit && c && e.len > 0) {
        c->extend_stream_credit(e.stream_id, e.len);
        ep->touch(c);
      }
    } catch (const ThrowPending &) {
      napi_value exc;
      napi_get_and_clear_last_exception(env, &exc);
    }
    napi_close_handle_scope(env, inner);
  }
  napi_close_callback_scope(env, cs);
  napi_close_handle_scope(env, hs);
}

void Wrap::handles_closed() {
  handles_open = false;
  if (cleanup) {
    napi_remove_async_cleanup_hook(cleanup);
    cleanup = nullptr;
  }
  if (!teardown && !js_dead && self) {
    Event e{};
    e.type = EventType::kEndpointClosed;
    ep->events().push_back(e);
    deliver_events();
    ep->events().clear();
  }
  if (async_ctx) {
    napi_async_destroy(env, async_ctx);
    async_ctx = nullptr;
  }
  if (self) {
    // Weak from now on: the JS object may be collected, which frees us.
    uint32_t rc = 0;
    napi_reference_unref(env, self, &rc);
  }
  if (finalized) delete this;
}

void on_cleanup(napi_async_cleanup_hook_handle handle, void *arg) {
  auto *w = static_cast<Wrap *>(arg);
  w->teardown = true;
  w->cleanup = handle;
  if (w->handles_open) {
    w->ep->close(false);  // handles_closed() removes the hook
  } else {
    napi_remove_async_cleanup_hook(handle);
    w->cleanup = nullptr;
  }
}

void on_finalize(napi_env, void *data, void *) {
  auto *w = static_cast<Wrap *>(data);
  w->finalized = true;
  if (!w->handles_open) {
    delete w;
    return;
  }
  w->teardown = true;
  w->ep->close(false);
}

Wrap *unwrap(napi_env env, napi_callback_info info, size_t *argc, napi_value *argv) {
  napi_value self;
  CHECK(env, napi_get_cb_info(env, info, argc, argv, &self, nullptr));
  void *p = nullptr;
  CHECK(env, napi_unwrap(env, self, &p));
  return static_cast<Wrap *>(p);
}

Connection *conn_arg(napi_env env, Wrap *w, napi_value v) {
  double id = get_number(env, v, "connection");
  Connection *c = w->ep->find(static_cast<uint32_t>(id));
  if (!c) fail(env, "ERR_QUIC_NO_CONNECTION", "no such connection");
  return c;
}

ENTRY(js_new) {
  size_t argc = 2;
  napi_value argv[2], self;
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, &self, nullptr));
  if (argc < 2) fail(env, "ERR_INVALID_ARG_TYPE", "new Endpoint(options, callback)");
  napi_valuetype t;
  CHECK(env, napi_typeof(env, argv[1], &t));
  if (t != napi_function) fail(env, "ERR_INVALID_ARG_TYPE", "callback must be a function");
  napi_value o = argv[0];
  EndpointConfig cfg;
  std::string role = get_string(env, prop(env, o, "role") ?: str(env, ""), "role");
  if (role != "server" && role != "client") fail(env, "ERR_INVALID_ARG_VALUE", "role must be 'server' or 'client'");
  cfg.server = role == "server";
  napi_value v;
  cfg.host = (v = prop(env, o, "host")) ? get_string(env, v, "host") : std::string("::");
  cfg.port = (v = prop(env, o, "port")) ? static_cast<int>(get_number(env, v, "port")) : 0;
  std::string cert = (v = prop(env, o, "certPem")) ? get_string(env, v, "certPem") : "";
  std::string key = (v = prop(env, o, "keyPem")) ? get_string(env, v, "keyPem") : "";
  std::string ca = (v = prop(env, o, "caPem")) ? get_string(env, v, "caPem") : "";
  if ((v = prop(env, o, "serverName"))) cfg.server_name = get_string(env, v, "serverName");
  if ((v = prop(env, o, "alpn"))) cfg.alpn = get_string(env, v, "alpn");
  if ((v = prop(env, o, "idleTimeoutMs"))) cfg.idle_timeout_ms = static_cast<uint64_t>(get_number(env, v, "idleTimeoutMs"));
  if ((v = prop(env, o, "keepAliveMs"))) cfg.keep_alive_ms = static_cast<uint64_t>(get_number(env, v, "keepAliveMs"));
  if ((v = prop(env, o, "handshakeTimeoutMs")))
    cfg.handshake_timeout_ms = static_cast<uint64_t>(get_number(env, v, "handshakeTimeoutMs"));
  if ((v = prop(env, o, "cc"))) {
    std::string cc = get_string(env, v, "cc");
    if (cc == "reno") cfg.cc = NGTCP2_CC_ALGO_RENO;
    else if (cc == "cubic") cfg.cc = NGTCP2_CC_ALGO_CUBIC;
    else if (cc == "bbr") cfg.cc = NGTCP2_CC_ALGO_BBR;
    else fail(env, "ERR_INVALID_ARG_VALUE", "cc must be 'bbr', 'cubic' or 'reno'");
  }
  if ((v = prop(env, o, "reusePort"))) cfg.reuse_port = get_bool(env, v);
  if ((v = prop(env, o, "retry"))) cfg.retry = get_bool(env, v);
  if ((v = prop(env, o, "shardId"))) cfg.shard_id = static_cast<uint32_t>(get_number(env, v, "shardId"));
  if ((v = prop(env, o, "shardCount"))) cfg.shard_count = static_cast<uint32_t>(get_number(env, v, "shardCount"));
  if ((v = prop(env, o, "datagramQueueLength")))
    cfg.datagram_queue = static_cast<uint32_t>(get_number(env, v, "datagramQueueLength"));
  if ((v = prop(env, o, "datagramMaxAgeMs"))) {
    double age = get_number(env, v, "datagramMaxAgeMs");
    if (age < 0 || age > 60000) fail(env, "ERR_INVALID_ARG_VALUE", "datagramMaxAgeMs must be 0..60000");
    cfg.datagram_max_age_ms = static_cast<uint64_t>(age);
  }
  if ((v = prop(env, o, "manualStreamCredit"))) cfg.manual_stream_credit = get_bool(env, v);
  if ((v = prop(env, o, "streamWindow"))) cfg.stream_window = static_cast<uint64_t>(get_number(env, v, "streamWindow"));
  if ((v = prop(env, o, "connectionWindow")))
    cfg.connection_window = static_cast<uint64_t>(get_number(env, v, "connectionWindow"));
  if ((v = prop(env, o, "socketBufferBytes")))
    cfg.socket_buffer = static_cast<int>(get_number(env, v, "socketBufferBytes"));
  if (cfg.datagram_queue == 0 || cfg.datagram_queue > 65536)
    fail(env, "ERR_INVALID_ARG_VALUE", "datagramQueueLength must be 1..65536");

  uv_loop_t *loop = nullptr;
  CHECK(env, napi_get_uv_event_loop(env, &loop));
  auto w = std::make_unique<Wrap>(env);
  {
    napi_value ab;
    void *mem = nullptr;
    CHECK(env, napi_create_arraybuffer(env, Wrap::kDgramBytes, &mem, &ab));
    w->dgram_mem = static_cast<uint8_t *>(mem);
    CHECK(env, napi_create_reference(env, ab, 1, &w->dgram_ab));
    CHECK(env, napi_create_arraybuffer(env, Wrap::kDgramLens * 4, &mem, &ab));
    w->lens_mem = static_cast<uint32_t *>(mem);
    CHECK(env, napi_create_reference(env, ab, 1, &w->lens_ab));
  }
  w->ep = std::make_unique<Endpoint>(loop, w.get());
  std::string err;
  if (!w->ep->open(cfg, cert, key, ca, &err)) fail(env, "ERR_QUIC_ENDPOINT", err);
  w->handles_open = true;
  Wrap *wp = w.release();
  // From here the handles are open: on any failure close them; handles_closed() cleans up.
  napi_status s = napi_wrap(env, self, wp, on_finalize, nullptr, nullptr);
  if (s != napi_ok) {
    wp->finalized = true;
    wp->teardown = true;
    wp->ep->close(false);
    check(env, s, "napi_wrap");
  }
  CHECK(env, napi_create_reference(env, self, 1, &wp->self));
  CHECK(env, napi_create_reference(env, argv[1], 1, &wp->callback));
  napi_value name = str(env, "QuicEndpoint");
  CHECK(env, napi_async_init(env, self, name, &wp->async_ctx));
  CHECK(env, napi_add_async_cleanup_hook(env, on_cleanup, wp, &wp->cleanup));
  return self;
}
EXIT

ENTRY(js_address) {
  size_t argc = 0;
  Wrap *w = unwrap(env, info, &argc, nullptr);
  napi_value arr;
  CHECK(env, napi_create_array_with_length(env, 4, &arr));
  CHECK(env, napi_set_element(env, arr, 0, str(env, w->ep->local_host())));
  CHECK(env, napi_set_element(env, arr, 1, num(env, w->ep->local_port())));
  CHECK(env, napi_set_element(env, arr, 2, boolean(env, w->ep->gso())));
  CHECK(env, napi_set_element(env, arr, 3, boolean(env, w->ep->gro())));
  return arr;
}
EXIT

ENTRY(js_connect) {
  size_t argc = 2;
  napi_value argv[2];
  Wrap *w = unwrap(env, info, &argc, argv);
  if (argc < 2) fail(env, "ERR_INVALID_ARG_TYPE", "connect(host, port)");
  std::string host = get_string(env, argv[0], "host");
  int port = static_cast<int>(get_number(env, argv[1], "port"));
  std::string err;
  Connection *c = w->ep->connect(host, port, &err);
  if (!c) fail(env, "ERR_QUIC_CONNECT", err);
  return num(env, c->id());
}
EXIT

ENTRY(js_open_stream) {
  size_t argc = 2;
  napi_value argv[2];
  Wrap *w = unwrap(env, info, &argc, argv);
  Connection *c = conn_arg(env, w, argv[0]);
  int64_t sid = c->open_stream(get_bool(env, argv[1]));
  return num(env, static_cast<double>(sid));
}
EXIT

ENTRY(js_write_stream) {
  size_t argc = 4;
  napi_value argv[4];
  Wrap *w = unwrap(env, info, &argc, argv);
  if (argc < 4) fail(env, "ERR_INVALID_ARG_TYPE", "writeStream(conn, stream, data, fin)");
  Connection *c = conn_arg(env, w, argv[0]);
  int64_t sid = static_cast<int64_t>(get_number(env, argv[1], "stream"));
  const uint8_t *data;
  size_t len;
  get_bytes(env, argv[2], &data, &len, "data");
  uint64_t unacked = 0;
  int rv = c->write_stream(sid, data, len, get_bool(env, argv[3]), &unacked);
  if (rv == 0) w->ep->touch(c);
  return num(env, rv == 0 ? static_cast<double>(unacked) : rv);
}
EXIT

ENTRY(js_reset_stream) {
  size_t argc = 3;
  napi_value argv[3];
  Wrap *w = unwrap(env, info, &argc, argv);
  Connection *c = conn_arg(env, w, argv[0]);
  int rv = c->reset_stream(static_cast<int64_t>(get_number(env, argv[1], "stream")),
                           static_cast<uint64_t>(get_number(env, argv[2], "code")));
  w->ep->touch(c);
  return num(env, rv);
}
EXIT

ENTRY(js_stop_sending) {
  size_t argc = 3;
  napi_value argv[3];
  Wrap *w = unwrap(env, info, &argc, argv);
  Connection *c = conn_arg(env, w, argv[0]);
  int rv = c->stop_sending(static_cast<int64_t>(get_number(env, argv[1], "stream")),
                           static_cast<uint64_t>(get_number(env, argv[2], "code")));
  w->ep->touch(c);
  return num(env, rv);
}
EXIT

ENTRY(js_extend_credit) {
  size_t argc = 3;
  napi_value argv[3];
  Wrap *w = unwrap(env, info, &argc, argv);
  Connection *c = conn_arg(env, w, argv[0]);
  c->extend_stream_credit(static_cast<int64_t>(get_number(env, argv[1], "stream")),
                          static_cast<uint64_t>(get_number(env, argv[2], "bytes")));
  w->ep->touch(c);
  return undefined(env);
}
EXIT

ENTRY(js_send_datagram) {
  size_t argc = 2;
  napi_value argv[2];
  Wrap *w = unwrap(env, info, &argc, argv);
  Connection *c = conn_arg(env, w, argv[0]);
  const uint8_t *data;
  size_t len;
  get_bytes(env, argv[1], &data, &len, "data");
  auto r = c->send_datagram(data, len);
  if (r == Connection::DgramResult::kQueued) w->ep->touch(c);
  return num(env, static_cast<double>(r));
}
EXIT

ENTRY(js_close_connection) {
  size_t argc = 3;
  napi_value argv[3];
  Wrap *w = unwrap(env, info, &argc, argv);
  Connection *c = conn_arg(env, w, argv[0]);
  uint64_t code = static_cast<uint64_t>(get_number(env, argv[1], "code"));
  std::string reason = get_string(env, argv[2], "reason");
  c->close(code, reason, true, quic::kWhyClose);
  w->ep->touch(c);
  return undefined(env);
}
EXIT

ENTRY(js_stats) {
  size_t argc = 2;
  napi_value argv[2];
  Wrap *w = unwrap(env, info, &argc, argv);
  Connection *c = conn_arg(env, w, argv[0]);
  bool is_ta = false;
  CHECK(env, napi_is_typedarray(env, argv[1], &is_ta));
  napi_typedarray_type type = napi_int8_array;
  size_t n = 0;
  void *p = nullptr;
  if (is_ta) CHECK(env, napi_get_typedarray_info(env, argv[1], &type, &n, &p, nullptr, nullptr));
  if (!is_ta || type != napi_float64_array || n < quic::kStatsFields)
    fail(env, "ERR_INVALID_ARG_TYPE", "stats needs a Float64Array of " + std::to_string(quic::kStatsFields));
  quic::ConnStats st;
  c->stats(&st);
  memcpy(p, &st, sizeof st);
  return undefined(env);
}
EXIT

ENTRY(js_counters) {
  size_t argc = 0;
  Wrap *w = unwrap(env, info, &argc, nullptr);
  const quic::Counters &k = w->ep->counters();
  napi_value o;
  CHECK(env, napi_create_object(env, &o));
  auto set = [&](const char *name, uint64_t v) {
    CHECK(env, napi_set_named_property(env, o, name, num(env, static_cast<double>(v))));
  };
  set("garbage", k.garbage);
  set("unknownConnection", k.unknown_connection);
  set("misrouted", k.misrouted);
  set("versionNegotiationSent", k.version_negotiation_sent);
  set("statelessResetSent", k.stateless_reset_sent);
  set("acceptFailed", k.accept_failed);
  set("retrySent", k.retry_sent);
  set("retryTokenInvalid", k.retry_token_invalid);
  set("handshakeFailed", k.handshake_failed);
  set("tlsNoCertificate", k.tls_no_certificate);
  set("tlsUntrusted", k.tls_untrusted);
  set("tlsWrongPurpose", k.tls_wrong_purpose);
  set("tlsOther", k.tls_other);
  set("connectionsAccepted", k.connections_accepted);
  set("sendErrors", k.send_errors);
  set("sendBlocked", k.send_blocked);
  set("recvDatagrams", k.recv_datagrams);
  set("gsoBatches", k.gso_batches);
  return o;
}
EXIT

ENTRY(js_rebind) {
  size_t argc = 0;
  Wrap *w = unwrap(env, info, &argc, nullptr);
  std::string err;
  if (!w->ep->rebind(&err)) fail(env, "ERR_QUIC_REBIND", err);
  return undefined(env);
}
EXIT

// setCredentials(certPem, keyPem, caPem): for handshakes from now on; live connections keep theirs.
ENTRY(js_set_credentials) {
  size_t argc = 3;
  napi_value argv[3];
  Wrap *w = unwrap(env, info, &argc, argv);
  if (argc < 3) fail(env, "ERR_INVALID_ARG_TYPE", "setCredentials(certPem, keyPem, caPem)");
  std::string cert = get_string(env, argv[0], "certPem");
  std::string key = get_string(env, argv[1], "keyPem");
  std::string ca = get_string(env, argv[2], "caPem");
  std::string err;
  if (!w->ep->tls()->set_credentials(cert, key, ca, &err)) fail(env, "ERR_QUIC_CREDENTIALS", err);
  return undefined(env);
}
EXIT

ENTRY(js_close) {
  size_t argc = 0;
  Wrap *w = unwrap(env, info, &argc, nullptr);
  if (w->handles_open) w->ep->close(true);
  return undefined(env);
}
EXIT

}  // namespace

NAPI_MODULE_INIT() {
  try {
    napi_property_descriptor methods[] = {
        {"address", nullptr, js_address, nullptr, nullptr, nullptr, napi_default, nullptr},
        {"connect", nullptr, js_connect, nullptr, nullptr, nullptr, napi_default, nullptr},
        {"openStream", nullptr, js_open_stream, nullptr, nullptr, nullptr, napi_default, nullptr},
        {"writeStream", nullptr, js_write_stream, nullptr, nullptr, nullptr, napi_default, nullptr},
        {"resetStream", nullptr, js_reset_stream, nullptr, nullptr, nullptr, napi_default, nullptr},
        {"stopSending", nullptr, js_stop_sending, nullptr, nullptr, nullptr, napi_default, nullptr},
        {"extendStreamCredit", nullptr, js_extend_credit, nullptr, nullptr, nullptr, napi_default, nullptr},
        {"sendDatagram", nullptr, js_send_datagram, nullptr, nullptr, nullptr, napi_default, nullptr},
        {"closeConnection", nullptr, js_close_connection, nullptr, nullptr, nullptr, napi_default, nullptr},
        {"stats", nullptr, js_stats, nullptr, nullptr, nullptr, napi_default, nullptr},
        {"counters", nullptr, js_counters, nullptr, nullptr, nullptr, napi_default, nullptr},
        {"rebind", nullptr, js_rebind, nullptr, nullptr, nullptr, napi_default, nullptr},
        {"setCredentials", nullptr, js_set_credentials, nullptr, nullptr, nullptr, napi_default, nullptr},
        {"close", nullptr, js_close, nullptr, nullptr, nullptr, napi_default, nullptr},
    };
    napi_value cls;
    CHECK(env, napi_define_class(env, "NativeEndpoint", NAPI_AUTO_LENGTH, js_new, nullptr,
                                 sizeof methods / sizeof methods[0], methods, &cls));
    CHECK(env, napi_set_named_property(env, exports, "NativeEndpoint", cls));
    CHECK(env, napi_set_named_property(env, exports, "NativePacketReader", packet_reader::define_class(env)));
    CHECK(env, napi_set_named_property(env, exports, "statsFields", num(env, quic::kStatsFields)));
    CHECK(env, napi_set_named_property(env, exports, "maxDatagramSize", num(env, quic::kMaxDatagram)));
    return exports;
  } catch (const ThrowPending &) {
    return nullptr;
  }
}
