#!/usr/bin/env bash
# The whole test suite, from a fresh Debian/Ubuntu machine: installs what is missing, then runs
# formatting, clippy (-D warnings) and every unit, integration and end-to-end test.
# End-to-end tests start their own Xvfb displays; PulseAudio is started here when not running.
set -euo pipefail
cd "$(dirname "$0")/.."

# cargo install puts tauri-driver here; a fresh shell may not have it on PATH yet.
export PATH="$HOME/.cargo/bin:$PATH"
SETUP_TAURI_DRIVER=1 ./scripts/setup.sh
./scripts/test-services.sh
# Third-party clients the classroom server's tests drive (npm ci, pip), pinned and idempotent.
./crates/classroom-server/tests/tus-clients/setup.sh

echo "== cargo fmt --check"
cargo fmt --all --check
echo "== cargo clippy -D warnings"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "== cargo test"
# --no-fail-fast: one failing test binary must not hide the results of the others.
cargo test --workspace --locked --no-fail-fast -- --test-threads="${TEST_THREADS:-2}"
