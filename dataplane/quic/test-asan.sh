#!/usr/bin/env bash
# AddressSanitizer run of the QUIC addon: builds a separate ASan copy of the addon (the normal
# build/ is untouched), then runs the same tests against it with libasan preloaded into node.
# Usage: bash dataplane/quic/test-asan.sh [test files...]   (default: every dist/dataplane/quic test)
# Needs the TypeScript built (npm run build). Leak checking is off: node itself does not free
# everything at exit; use-after-free, overflows and double frees are what this catches.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
work="${QUIC_ASAN_DIR:-/tmp/masque-quic-asan}"
mkdir -p "$work"
cp -r "$here/src" "$here/binding.gyp" "$work/"
gyp="$root/node_modules/.bin/node-gyp"
export npm_config_nodedir="${npm_config_nodedir:-/usr}"
(
  cd "$work"
  if [ ! -f build/config.gypi ]; then "$gyp" configure --loglevel=error >/dev/null; fi
  # gyp's Makefiles take CXXFLAGS/LDFLAGS from the environment at build time.
  CXXFLAGS="-fsanitize=address -fno-omit-frame-pointer -g -O1" LDFLAGS="-fsanitize=address" \
    "$gyp" build --loglevel=error >"$work/build.log" 2>&1 || { cat "$work/build.log" >&2; exit 1; }
)
addon="$work/build/Release/quic.node"
nm -u "$addon" | grep __asan_ >/dev/null || { echo "test-asan: $addon is not instrumented" >&2; exit 1; }
libasan="$(gcc -print-file-name=libasan.so)"
if [ $# -eq 0 ]; then set -- "$root/dist/dataplane/quic/"; fi
cd "$root"
MASQUE_QUIC_ADDON="$addon" LD_PRELOAD="$libasan" \
  ASAN_OPTIONS="detect_leaks=0:abort_on_error=1:halt_on_error=1:allow_user_segv_handler=1:handle_segv=0" \
  node --test "$@"
