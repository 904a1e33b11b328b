// NativePacketReader: a readable-fd watcher on the thread's own libuv loop.
//
// Why it exists: a TUN read on a worker thread hands each packet to the QUIC thread through a ring
// and a cross-thread wake-up (Atomics.waitAsync), which costs ~0.1 ms of latency per hop on this
// machine and a context switch per idle packet. Watching the fd with uv_poll on the QUIC thread
// itself turns "packet queued on the TUN" into one epoll wake-up of the loop that sends it. The
// same watcher over an eventfd is a doorbell another thread can ring with write(2).
//
// Each wake-up reads packets with read(2) until EAGAIN, or until `slots` packets, into one
// ArrayBuffer allocated up front (slot i at i * slotBytes, its length in lengths[i]), then calls
// JS once with the count: no allocation per packet or per batch. At most kBatchesPerWake batches
// per wake-up keep a flood on the fd from starving the loop's other handles (the poll is level
// triggered, so what is left is read on the next iteration).
//
// Lifetime is the endpoint's: the JS object is held strongly while the poll handle is open; the
// native side is freed once the handle is closed and the JS object finalized. An async cleanup
// hook closes the handle without calling into JS when the environment goes away. The fd is the
// caller's: close() stops watching it and never closes it.
#include "packet_reader.h"

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>
#include <uv.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>

#include "napi_checked.h"

namespace packet_reader {
namespace {

using namespace napi_checked;

constexpr int kBatchesPerWake = 4;

struct Reader {
  napi_env env;
  napi_ref self = nullptr;
  napi_ref callback = nullptr;  // (count, errno) => void; count -1: stopped on errno (0: end of file)
  napi_async_context async_ctx = nullptr;
  napi_async_cleanup_hook_handle cleanup = nullptr;
  uv_poll_t poll{};
  int fd = -1;
  uint8_t *slots_mem = nullptr;
  uint32_t *lens_mem = nullptr;
  uint32_t slot_bytes = 0;
  uint32_t slot_count = 0;
  bool handle_open = false;
  bool closing = false;
  bool finalized = false;
  bool teardown = false;
  bool js_dead = false;
  double packets = 0, bytes = 0, wakeups = 0, batches = 0, errors = 0;
  int last_errno = 0;

  explicit Reader(napi_env e) : env(e) {}
  ~Reader() {
    if (callback) napi_delete_reference(env, callback);
    if (self) napi_delete_reference(env, self);
  }

  void deliver(int32_t count, int err = 0);
  void stop();
};

void on_closed(uv_handle_t *h) {
  auto *r = static_cast<Reader *>(h->data);
  r->handle_open = false;
  if (r->cleanup) {
    napi_remove_async_cleanup_hook(r->cleanup);
    r->cleanup = nullptr;
  }
  if (r->async_ctx) {
    napi_async_destroy(r->env, r->async_ctx);
    r->async_ctx = nullptr;
  }
  if (r->self) {
    uint32_t rc = 0;
    napi_reference_unref(r->env, r->self, &rc);  // weak from now on: the GC may free us
  }
  if (r->finalized) delete r;
}

void Reader::stop() {
  if (!handle_open || closing) return;
  closing = true;
  uv_poll_stop(&poll);
  uv_close(reinterpret_cast<uv_handle_t *>(&poll), on_closed);
}

void Reader::deliver(int32_t count, int err) {
  if (teardown || js_dead || !self) return;
  napi_handle_scope hs;
  if (napi_open_handle_scope(env, &hs) != napi_ok) {
    js_dead = true;
    return;
  }
  napi_value resource = nullptr, fn = nullptr, args[2] = {nullptr, nullptr};
  napi_callback_scope cs = nullptr;
  if (napi_get_reference_value(env, self, &resource) != napi_ok || resource == nullptr ||
      napi_get_reference_value(env, callback, &fn) != napi_ok || fn == nullptr ||
      napi_create_int32(env, count, &args[0]) != napi_ok || napi_create_int32(env, err, &args[1]) != napi_ok ||
      napi_open_callback_scope(env, resource, async_ctx, &cs) != napi_ok) {
    js_dead = true;
    napi_close_handle_scope(env, hs);
    return;
  }
  napi_status s = napi_call_function(env, resource, fn, 2, args, nullptr);
  if (s != napi_ok) {
    napi_value exc;
    bool reported = false;
    if (s == napi_pending_exception && napi_get_and_clear_last_exception(env, &exc) == napi_ok) {
      napi_valuetype t = napi_undefined;
      napi_typeof(env, exc, &t);
      // A handler threw: uncaught, as from any event emitter; keep reading.
      reported = t != napi_undefined && napi_fatal_exception(env, exc) == napi_ok;
    }
    if (!reported) js_dead = true;  // the environment cannot run JS any more
  }
  napi_close_callback_scope(env, cs);
  napi_close_handle_scope(env, hs);
}

void on_poll(uv_poll_t *h, int status, int) {
  auto *r = static_cast<Reader *>(h->data);
  if (r->closing) return;
  r->wakeups++;
  if (status < 0) {
    r->errors++;
    r->last_errno = -status;
    r->stop();
    r->deliver(-1, -status);
    return;
  }
  for (int batch = 0; batch < kBatchesPerWake && !r->closing; batch++) {
    uint32_t n = 0;
    int fatal = 0;
    while (n < r->slot_count) {
      ssize_t got = read(r->fd, r->slots_mem + static_cast<size_t>(n) * r->slot_bytes, r->slot_bytes);
      if (got == 0) {  // end of file (a pipe's writer closed; never for a TUN or an eventfd)
        fatal = -1;
        break;
      }
      if (got > 0) {
        r->lens_mem[n++] = static_cast<uint32_t>(got);
        r->bytes += static_cast<double>(got);
        continue;
      }
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      r->errors++;
      r->last_errno = errno;
      // EBADF/EINVAL will not go away and the level-triggered poll would spin on them; anything
      // else (EIO from a TUN whose carrier is down, say) is counted and retried on the next wake.
      if (errno == EBADF || errno == EINVAL || errno == EFAULT) fatal = errno;
      break;
    }
    if (n > 0) {
      r->packets += n;
      r->batches++;
      r->deliver(static_cast<int32_t>(n));
    }
    if (fatal) {
      r->stop();
      r->deliver(-1, fatal < 0 ? 0 : fatal);
      return;
    }
    if (n < r->slot_count) return;  // drained
  }
}

void on_cleanup(napi_async_cleanup_hook_handle handle, void *arg) {
  auto *r = static_cast<Reader *>(arg);
  r->teardown = true;
  r->cleanup = handle;
  if (r->handle_open) {
    r->stop();  // on_closed removes the hook
  } else {
    napi_remove_async_cleanup_hook(handle);
    r->cleanup = nullptr;
  }
}

void on_finalize(napi_env, void *data, void *) {
  auto *r = static_cast<Reader *>(data);
  r->finalized = true;
  if (!r->handle_open) {
    delete r;
    return;
  }
  r->teardown = true;
  r->stop();
}

Reader *unwrap(napi_env env, napi_callback_info info) {
  size_t argc = 0;
  napi_value self;
  CHECK(env, napi_get_cb_info(env, info, &argc, nullptr, &self, nullptr));
  void *p = nullptr;
  CHECK(env, napi_unwrap(env, self, &p));
  return static_cast<Reader *>(p);
}

// new NativePacketReader(fd, slotBytes, slotCount, callback)
ENTRY(js_new) {
  size_t argc = 4;
  napi_value argv[4], self;
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, &self, nullptr));
  if (argc < 4) fail(env, "ERR_INVALID_ARG_TYPE", "new NativePacketReader(fd, slotBytes, slotCount, callback)");
  double fd = get_number(env, argv[0], "fd");
  double slot_bytes = get_number(env, argv[1], "slotBytes");
  double slot_count = get_number(env, argv[2], "slotCount");
  napi_valuetype t;
  CHECK(env, napi_typeof(env, argv[3], &t));
  if (t != napi_function) fail(env, "ERR_INVALID_ARG_TYPE", "callback must be a function");
  if (fd < 0 || fd != std::floor(fd) || fd > 1e9) fail(env, "ERR_INVALID_ARG_VALUE", "fd must be a descriptor number");
  if (slot_bytes < 8 || slot_bytes > 65536 || slot_bytes != std::floor(slot_bytes))
    fail(env, "ERR_INVALID_ARG_VALUE", "slotBytes must be an integer in 8..65536");
  if (slot_count < 1 || slot_count > 4096 || slot_count != std::floor(slot_count))
    fail(env, "ERR_INVALID_ARG_VALUE", "slotCount must be an integer in 1..4096");
  int ifd = static_cast<int>(fd);
  int flags = fcntl(ifd, F_GETFL);
  if (flags < 0) fail(env, "ERR_INVALID_ARG_VALUE", "fd is not an open descriptor: " + std::string(strerror(errno)));
  // The poll is level triggered and the reads run on the loop thread: they must never block.
  if (!(flags & O_NONBLOCK) && fcntl(ifd, F_SETFL, flags | O_NONBLOCK) < 0)
    fail(env, "ERR_PACKET_READER", "cannot make fd non-blocking: " + std::string(strerror(errno)));

  uv_loop_t *loop = nullptr;
  CHECK(env, napi_get_uv_event_loop(env, &loop));
  auto r = std::make_unique<Reader>(env);
  r->fd = ifd;
  r->slot_bytes = static_cast<uint32_t>(slot_bytes);
  r->slot_count = static_cast<uint32_t>(slot_count);
  napi_value slots_ab, lens_ab, view;
  void *mem = nullptr;
  CHECK(env, napi_create_arraybuffer(env, static_cast<size_t>(r->slot_bytes) * r->slot_count, &mem, &slots_ab));
  r->slots_mem = static_cast<uint8_t *>(mem);
  CHECK(env, napi_create_arraybuffer(env, r->slot_count * 4u, &mem, &lens_ab));
  r->lens_mem = static_cast<uint32_t *>(mem);
  // The object keeps the views (and so the buffers) alive for as long as the reader lives.
  CHECK(env, napi_create_typedarray(env, napi_uint8_array, static_cast<size_t>(r->slot_bytes) * r->slot_count,
                                    slots_ab, 0, &view));
  CHECK(env, napi_set_named_property(env, self, "slots", view));
  CHECK(env, napi_create_typedarray(env, napi_uint32_array, r->slot_count, lens_ab, 0, &view));
  CHECK(env, napi_set_named_property(env, self, "lengths", view));

  if (uv_poll_init(loop, &r->poll, ifd) != 0) fail(env, "ERR_PACKET_READER", "uv_poll_init failed (not pollable?)");
  r->poll.data = r.get();
  r->handle_open = true;
  Reader *rp = r.release();
  napi_status s = napi_wrap(env, self, rp, on_finalize, nullptr, nullptr);
  if (s != napi_ok) {
    rp->finalized = true;
    rp->teardown = true;
    rp->stop();
    check(env, s, "napi_wrap");
  }
  CHECK(env, napi_create_reference(env, self, 1, &rp->self));
  CHECK(env, napi_create_reference(env, argv[3], 1, &rp->callback));
  napi_value name = str(env, "NativePacketReader");
  CHECK(env, napi_async_init(env, self, name, &rp->async_ctx));
  CHECK(env, napi_add_async_cleanup_hook(env, on_cleanup, rp, &rp->cleanup));
  uv_poll_start(&rp->poll, UV_READABLE, on_poll);
  return self;
}
EXIT

ENTRY(js_close) {
  Reader *r = unwrap(env, info);
  r->stop();
  return undefined(env);
}
EXIT

// The watch keeps the loop alive while it is referenced (the default), like a socket.
ENTRY(js_ref) {
  size_t argc = 1;
  napi_value argv[1], self;
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, &self, nullptr));
  void *p = nullptr;
  CHECK(env, napi_unwrap(env, self, &p));
  auto *r = static_cast<Reader *>(p);
  if (r->handle_open && !r->closing) {
    if (argc > 0 && get_bool(env, argv[0])) uv_ref(reinterpret_cast<uv_handle_t *>(&r->poll));
    else uv_unref(reinterpret_cast<uv_handle_t *>(&r->poll));
  }
  return undefined(env);
}
EXIT

ENTRY(js_counters) {
  Reader *r = unwrap(env, info);
  napi_value o;
  CHECK(env, napi_create_object(env, &o));
  CHECK(env, napi_set_named_property(env, o, "packets", num(env, r->packets)));
  CHECK(env, napi_set_named_property(env, o, "bytes", num(env, r->bytes)));
  CHECK(env, napi_set_named_property(env, o, "wakeups", num(env, r->wakeups)));
  CHECK(env, napi_set_named_property(env, o, "batches", num(env, r->batches)));
  CHECK(env, napi_set_named_property(env, o, "errors", num(env, r->errors)));
  CHECK(env, napi_set_named_property(env, o, "lastErrno", num(env, r->last_errno)));
  CHECK(env, napi_set_named_property(env, o, "watching", boolean(env, r->handle_open && !r->closing)));
  return o;
}
EXIT

}  // namespace

napi_value define_class(napi_env env) {
  napi_property_descriptor methods[] = {
      {"close", nullptr, js_close, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"ref", nullptr, js_ref, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"counters", nullptr, js_counters, nullptr, nullptr, nullptr, napi_default, nullptr},
  };
  napi_value cls;
  check(env,
        napi_define_class(env, "NativePacketReader", NAPI_AUTO_LENGTH, js_new, nullptr,
                          sizeof methods / sizeof methods[0], methods, &cls),
        "napi_define_class");
  return cls;
}

}  // namespace packet_reader
