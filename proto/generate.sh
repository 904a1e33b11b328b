#!/usr/bin/env bash
# Regenerates proto/gen/ from the .proto files with protoc (Debian `protobuf-compiler`) and ts-proto.
# The generated code is committed, so building the project does not need protoc.
set -euo pipefail
cd "$(dirname "$0")"
plugin=../node_modules/.bin/protoc-gen-ts_proto
command -v protoc >/dev/null || { echo "generate.sh: protoc missing (apt-get install protobuf-compiler)" >&2; exit 1; }
rm -rf gen
mkdir -p gen
protoc \
  --plugin=protoc-gen-ts_proto="$plugin" \
  --ts_proto_out=gen \
  --ts_proto_opt=outputServices=grpc-js,esModuleInterop=true,importSuffix=.js,env=node,useExactTypes=false \
  -I . \
  $(find masque grpc -name '*.proto' | sort)
