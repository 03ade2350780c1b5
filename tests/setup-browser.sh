#!/usr/bin/env bash
# What the browser tests need: Debian's chromium and axe-core from npm (into tests/node_modules).
# Idempotent and quick when both are there; `make test` runs it before pytest.
set -euo pipefail
cd "$(dirname "$0")/.."

CHROMIUM=/usr/bin/chromium
AXE=tests/node_modules/axe-core/axe.min.js

if [ ! -x "$CHROMIUM" ]; then
  if [ "$(id -u)" -ne 0 ]; then
    # Not root (a developer's machine): the browser tests skip; in CI (root) they must run.
    echo "setup-browser: $CHROMIUM is missing; install Debian's chromium as root (apt-get install chromium)" >&2
    exit 0
  fi
  echo "setup-browser: installing Debian's chromium"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi

if [ ! -f "$AXE" ]; then
  if ! command -v npm >/dev/null 2>&1; then
    if [ "$(id -u)" -ne 0 ]; then
      echo "setup-browser: npm is missing; install Debian's npm as root (apt-get install npm)" >&2
      exit 0
    fi
    echo "setup-browser: installing Debian's npm"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq npm >/dev/null
  fi
  echo "setup-browser: installing axe-core into tests/node_modules"
  npm install --no-save --no-audit --no-fund --silent --prefix tests axe-core@4
fi

echo "setup-browser: chromium $("$CHROMIUM" --version 2>/dev/null | awk '{print $2}') and axe-core ready"
