#!/usr/bin/env bash
# Installs a PostgreSQL server from Debian's packages when none is present. Tests start their own
# throw-away cluster on loopback (tests/conftest.py); nothing is started here.
set -euo pipefail
if ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "install-postgres: not root; install PostgreSQL yourself (apt-get install postgresql)" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq postgresql >/dev/null
