// NativePacketReader: packets from a non-blocking file descriptor, read on the calling thread's
// own libuv loop. See packet_reader.cc.
#pragma once

#include <node_api.h>

namespace packet_reader {

// The class constructor, for the module's exports.
napi_value define_class(napi_env env);

}  // namespace packet_reader
