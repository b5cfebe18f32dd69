#!/usr/bin/env bash
# Benchmark of issue #4: the upload client (`recorder upload`) vs curl sending the same bytes to
# the same classroom server over loopback, in one run; prints both throughputs, their ratio, the
# client's peak RSS and the bytes sent again after one cut connection.
# usage: scripts/bench-upload-client.sh [SIZE_MIB (default 1024)] [ROUNDS (default 5)] [CHUNK_MIB (default 8)]
#        [MAX_CHUNK_MIB (default 64; = CHUNK_MIB for fixed-size chunks)]
# Needs ~2x SIZE_MIB free in $BENCH_DIR (default: the system temp directory).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked -q -p classroom-server --bin classroom-server --example bench_sink -p recorder --bin recorder
# The defaults and the checks of the arguments live in the Python script alone.
exec python3 bench/upload_client.py target/release/classroom-server target/release/recorder \
  target/release/examples/bench_sink "$@"
