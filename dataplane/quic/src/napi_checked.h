// Node-API calls with their status checked. A failed call leaves a JS exception pending and
// unwinds with ThrowPending to the entry point (ENTRY/EXIT), which returns to JS; nothing else
// is thrown across the C++ code, so no JS-visible state is half-updated by a C++ exception.
#pragma once

#include <node_api.h>

#include <cmath>
#include <string>

namespace napi_checked {

struct ThrowPending {};  // an exception is now pending in JS

inline void check(napi_env env, napi_status s, const char *what) {
  if (s == napi_ok) return;
  bool pending = false;
  if (napi_is_exception_pending(env, &pending) == napi_ok && !pending) {
    const napi_extended_error_info *info = nullptr;
    napi_get_last_error_info(env, &info);
    std::string msg = std::string(what) + ": " +
                      (info && info->error_message ? info->error_message : "Node-API failure");
    napi_throw_error(env, "ERR_QUIC_NAPI", msg.c_str());
  }
  throw ThrowPending{};
}

[[noreturn]] inline void fail(napi_env env, const char *code, const std::string &msg) {
  napi_throw_error(env, code, msg.c_str());
  throw ThrowPending{};
}

#define CHECK(env, call) check((env), (call), #call)

inline napi_value undefined(napi_env env) {
  napi_value v;
  CHECK(env, napi_get_undefined(env, &v));
  return v;
}

inline napi_value num(napi_env env, double d) {
  napi_value v;
  CHECK(env, napi_create_double(env, d, &v));
  return v;
}

inline napi_value str(napi_env env, const std::string &s) {
  napi_value v;
  CHECK(env, napi_create_string_utf8(env, s.data(), s.size(), &v));
  return v;
}

inline napi_value boolean(napi_env env, bool b) {
  napi_value v;
  CHECK(env, napi_get_boolean(env, b, &v));
  return v;
}

inline napi_value buffer_copy(napi_env env, const uint8_t *data, size_t len) {
  napi_value v;
  void *out = nullptr;
  CHECK(env, napi_create_buffer_copy(env, len, len ? static_cast<const void *>(data) : static_cast<const void *>(""), &out, &v));
  return v;
}

inline double get_number(napi_env env, napi_value v, const char *name) {
  double d;
  if (napi_get_value_double(env, v, &d) != napi_ok || std::isnan(d))
    fail(env, "ERR_INVALID_ARG_TYPE", std::string(name) + " must be a number");
  return d;
}

inline bool get_bool(napi_env env, napi_value v) {
  bool b = false;
  napi_valuetype t;
  CHECK(env, napi_typeof(env, v, &t));
  if (t == napi_boolean) CHECK(env, napi_get_value_bool(env, v, &b));
  return b;
}

inline std::string get_string(napi_env env, napi_value v, const char *name) {
  size_t len = 0;
  if (napi_get_value_string_utf8(env, v, nullptr, 0, &len) != napi_ok)
    fail(env, "ERR_INVALID_ARG_TYPE", std::string(name) + " must be a string");
  std::string s(len, '\0');
  CHECK(env, napi_get_value_string_utf8(env, v, s.data(), len + 1, &len));
  return s;
}

inline void get_bytes(napi_env env, napi_value v, const uint8_t **data, size_t *len, const char *name) {
  bool is_ta = false;
  CHECK(env, napi_is_typedarray(env, v, &is_ta));
  if (!is_ta) fail(env, "ERR_INVALID_ARG_TYPE", std::string(name) + " must be a Uint8Array");
  napi_typedarray_type type;
  void *p = nullptr;
  CHECK(env, napi_get_typedarray_info(env, v, &type, len, &p, nullptr, nullptr));
  if (type != napi_uint8_array) fail(env, "ERR_INVALID_ARG_TYPE", std::string(name) + " must be a Uint8Array");
  *data = static_cast<const uint8_t *>(p);
}

// Optional property of the options object.
inline napi_value prop(napi_env env, napi_value obj, const char *name) {
  napi_value v;
  CHECK(env, napi_get_named_property(env, obj, name, &v));
  napi_valuetype t;
  CHECK(env, napi_typeof(env, v, &t));
  return (t == napi_undefined || t == napi_null) ? nullptr : v;
}

}  // namespace napi_checked

#define ENTRY(name) napi_value name(napi_env env, napi_callback_info info) try
#define EXIT                           \
  catch (const ThrowPending &) {       \
    return nullptr;                    \
  }

