#!/usr/bin/env bash
# Installs Debian's Chromium for the browser tests (Playwright's own browser download needs the internet).
# The tests find it at /usr/bin/chromium and skip themselves when it is absent.
set -euo pipefail
if command -v chromium >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "install-chromium: not root; install Chromium yourself (apt-get install chromium)" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get install -y -qq chromium >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq chromium >/dev/null; }
