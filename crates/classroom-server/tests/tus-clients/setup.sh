#!/usr/bin/env bash
# Installs the third-party clients the classroom server's tests drive, idempotently:
# tus-js-client and playwright-core (npm ci, pinned by package-lock.json) and tuspy (pip,
# pinned by requirements.txt, into .pydeps/ beside this script). Quick when already there.
set -euo pipefail
cd "$(dirname "$0")"

if [ ! -f node_modules/.package-lock.json ] || ! cmp -s package-lock.json node_modules/.installed-lock; then
  echo "tus-clients: npm ci"
  npm ci --no-audit --no-fund --loglevel=error
  cp package-lock.json node_modules/.installed-lock
fi

if ! cmp -s requirements.txt .pydeps/.installed-requirements 2>/dev/null; then
  echo "tus-clients: pip install -r requirements.txt into .pydeps"
  rm -rf .pydeps
  # Into a folder of our own (--target), so Debian's "externally managed" Python is not touched.
  PIP_BREAK_SYSTEM_PACKAGES=1 python3 -m pip install --quiet --disable-pip-version-check --no-warn-script-location --root-user-action=ignore \
    --target .pydeps -r requirements.txt
  cp requirements.txt .pydeps/.installed-requirements
fi
