#!/usr/bin/env bash
# Benchmark of issue #2: the recorder vs the ffmpeg command line on the same 1080p stage.
# Usage: scripts/bench-record.sh [SECONDS=20] [ROUNDS=2]
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
cargo build --release --locked -p recorder -p e2e --bins
exec python3 bench/record_vs_ffmpeg.py target/release/recorder target/release/stage "${1:-20}" "${2:-2}"
