#!/usr/bin/env bash
# The Canvas SDK for the plugin's tests, in its own virtualenv (.venv-canvas): its pins (Django,
# PyJWT, psutil, …) are not the service's. Idempotent: quick when the pinned SDK is installed;
# `make test` runs it, and tests/canvas_plugin/ runs it when the SDK is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=.venv-canvas
REQUIREMENTS=integrations/canvas_plugin/requirements.txt
STAMP="$VENV/.installed-$(sha256sum "$REQUIREMENTS" | cut -c1-16)"

if [ -f "$STAMP" ] && [ -x "$VENV/bin/canvas" ]; then
  echo "setup-canvas-sdk: $(grep -o 'canvas\[[^]]*\]==[0-9.]*' "$REQUIREMENTS") ready in $VENV"
  exit 0
fi
rm -rf "$VENV"
"${PYTHON:-python3}" -m venv "$VENV"
"$VENV/bin/pip" install --quiet --upgrade pip
echo "setup-canvas-sdk: installing the Canvas SDK into $VENV (a few minutes, once)"
"$VENV/bin/pip" install --quiet -r "$REQUIREMENTS"
touch "$STAMP"
echo "setup-canvas-sdk: ready"
