#!/usr/bin/env bash
# Installs what building and testing Breakout Recorder needs on Debian/Ubuntu, when missing.
# Idempotent and quick when everything is there. Other systems: see README "Other systems".
set -euo pipefail

DEB_PACKAGES=(
  # build
  pkg-config clang libclang-dev
  # FFmpeg (encode)
  libavcodec-dev libavformat-dev libavutil-dev libswscale-dev libswresample-dev
  libavfilter-dev libavdevice-dev
  # X11 capture and audio
  libxcb1-dev libxcb-shm0-dev libxcb-randr0-dev libasound2-dev libpulse-dev
  # Tauri 2 (desktop app)
  libwebkit2gtk-4.1-dev libgtk-3-dev libsoup-3.0-dev librsvg2-dev libayatana-appindicator3-dev
  # tests: X server, sound server, decoder, screenshots
  xvfb pulseaudio pulseaudio-utils libasound2-plugins ffmpeg imagemagick x11-utils
  # app window tests (find/drive windows); xauth is only a Recommends of xvfb, yet xvfb-run needs it
  xdotool xauth
  # the app's end-to-end tests: WebKitWebDriver, which tauri-driver drives
  webkit2gtk-driver
  # classroom server: its web page is tested in Chromium (driven by playwright-core from npm)
  chromium
)

# The classroom server's tests drive tus-js-client/playwright-core (npm) and tuspy (pip). Keep a
# node/npm/pip that is already there (e.g. a newer Node.js); take Debian's only when missing.
command -v node >/dev/null && command -v npm >/dev/null || DEB_PACKAGES+=(nodejs npm)
python3 -m pip --version >/dev/null 2>&1 || DEB_PACKAGES+=(python3-pip)

missing=()
for p in "${DEB_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if [ ${#missing[@]} -gt 0 ]; then
  if ! command -v apt-get >/dev/null; then
    echo "setup: missing packages (${missing[*]}) and no apt-get; see README 'Other systems'." >&2
    exit 1
  fi
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  echo "setup: installing ${#missing[@]} Debian packages: ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if ! command -v cargo >/dev/null; then
  echo "setup: Rust is not installed; install it with rustup (https://rustup.rs), then run again." >&2
  exit 1
fi

# tauri-driver: the WebDriver server for Tauri apps (the app's end-to-end tests). About a
# minute to build once; only the tests need it (scripts/test.sh asks for it).
if [ "${SETUP_TAURI_DRIVER:-0}" = 1 ] && ! command -v tauri-driver >/dev/null; then
  echo "setup: installing tauri-driver (cargo install, about a minute)"
  cargo install --locked --quiet tauri-driver --version "^2.1"
fi
