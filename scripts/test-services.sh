#!/usr/bin/env bash
# Starts the services the tests need and that a fresh machine lacks: a PulseAudio daemon.
# (Each end-to-end test starts its own Xvfb display and its own null sinks.)
set -euo pipefail
if ! pactl info >/dev/null 2>&1; then
  echo "test-services: starting PulseAudio"
  pulseaudio -D --exit-idle-time=-1 --disallow-exit 2>/dev/null || pulseaudio -D --exit-idle-time=-1
  for _ in $(seq 50); do pactl info >/dev/null 2>&1 && break; sleep 0.1; done
  pactl info >/dev/null
fi
# Without this, a null sink's monitor delivers no frames while the sink is idle.
pactl unload-module module-suspend-on-idle 2>/dev/null || true
