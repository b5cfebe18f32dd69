#!/usr/bin/env bash
# Benchmark of the classroom server's upload path: a tus upload (curl, one PATCH with the whole
# file) vs the same bytes in one plain PUT to a minimal sink, over loopback, in one run; prints
# both throughputs, their ratio and the server's peak RSS for each file size.
# usage: scripts/bench-upload-server.sh [SIZES_MIB (default 256,1024)] [ROUNDS (default 3)]
# Needs ~2x the largest size free in $BENCH_DIR (default: the system temp directory).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked -q -p classroom-server --bin classroom-server --example bench_sink
exec python3 bench/upload_server.py target/release/classroom-server target/release/examples/bench_sink \
  "${1:-256,1024}" "${2:-3}"
