#!/usr/bin/env bash
# Benchmark of issue #5: the real app under Xvfb + PulseAudio, driven through tauri-driver:
# click -> first frame, stop click -> closed file, and the app's CPU while recording a 1080p
# stage against the recorder CLI recording the same rectangle. Prints the figures.
# Usage: scripts/bench-app.sh [SECONDS=20] [ROUNDS=3]
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
SETUP_TAURI_DRIVER=1 ./scripts/setup.sh
# The CLI is compared with the app, so both are release builds from this tree.
cargo build --release --locked -p recorder --bin recorder
BENCH_SECONDS="${1:-20}" BENCH_ROUNDS="${2:-3}" \
  cargo test --release --locked -p breakout-recorder-app --test bench_app -- --ignored --nocapture
