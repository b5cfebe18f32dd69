#!/usr/bin/env bash
# The README's first command: installs what is missing, builds, and starts the desktop app.
# Extra arguments are passed to the app.
set -euo pipefail
cd "$(dirname "$0")/.."

# Check before the (long) build: the app is a window and cannot start without a display.
if [ -z "${DISPLAY:-}" ] && [ -z "${WAYLAND_DISPLAY:-}" ]; then
  echo "run: Breakout Recorder needs a graphical session (DISPLAY or WAYLAND_DISPLAY is unset); start it from a desktop, or try: xvfb-run -a ./scripts/run.sh" >&2
  exit 1
fi

./scripts/setup.sh

exec cargo run -p breakout-recorder-app -- "$@"
