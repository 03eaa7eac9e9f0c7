#!/usr/bin/env bash
# Make sure what the tests need is installed and running: PostgreSQL on
# 127.0.0.1:5432 (database `test`, trust auth), Redis on 127.0.0.1:6379, and
# Debian's Chromium for the browser tests, wrk for the REST benchmarks, nginx for the
# reverse-proxy tests (tests/test_proxy.py runs its own; the packaged service is left
# stopped). Idempotent;
# quiet when all is well.
set -euo pipefail

SUDO=""
if [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null; then SUDO="sudo"; fi

apt_install() {
  if command -v apt-get >/dev/null; then
    $SUDO apt-get update -qq || true
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "$@" >/dev/null
  else
    echo "ensure-services: please install: $*" >&2
    return 1
  fi
}

# --- PostgreSQL -------------------------------------------------------------
if ! command -v pg_ctlcluster >/dev/null && ! command -v pg_isready >/dev/null; then
  apt_install postgresql
fi
if ! pg_isready -q -h 127.0.0.1 -p 5432; then
  version="$(ls /etc/postgresql 2>/dev/null | sort -V | tail -1)"
  $SUDO pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
  for _ in $(seq 1 30); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 1; done
fi
if ! psql -h 127.0.0.1 -U postgres -d test -c 'select 1' >/dev/null 2>&1; then
  psql -h 127.0.0.1 -U postgres -c 'create database test' >/dev/null 2>&1 \
    || $SUDO -u postgres psql -c 'create database test' >/dev/null 2>&1 || true
fi

# --- Redis -------------------------------------------------------------------
if ! command -v redis-server >/dev/null; then
  apt_install redis-server
fi
if ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
  mkdir -p /var/lib/redis /var/log/redis 2>/dev/null || true
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no \
    --dir /tmp --logfile /tmp/vedika-redis.log
  for _ in $(seq 1 30); do redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 && break; sleep 0.5; done
fi

# --- Chromium for the browser tests --------------------------------------------
if [ ! -x /usr/bin/chromium ]; then
  apt_install chromium
fi

# --- wrk for the REST and turn benchmarks (bench/rest.py; the bench smoke test runs them)
if ! command -v wrk >/dev/null; then
  apt_install wrk
fi

# --- nginx for the reverse-proxy tests (tests/test_proxy.py, make soak) -----------------
# The tests run /usr/sbin/nginx themselves, as a child process with a config of their
# own. policy-rc.d keeps the package from starting its system-wide service on port 80.
if ! command -v nginx >/dev/null && [ ! -x /usr/sbin/nginx ]; then
  no_start="/usr/sbin/policy-rc.d"
  if [ ! -e "$no_start" ]; then
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$no_start" >/dev/null && $SUDO chmod +x "$no_start"
    trap '$SUDO rm -f "$no_start"' EXIT
  fi
  apt_install nginx-light
fi

# --- Node.js for the compatibility tests ------------------------------------------------
# tests/compat builds the original web client (Next.js 15: node >= 18.18) with npm.
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  apt_install nodejs npm
fi

# --- axe-core for the accessibility checks (tests/browser/axe.py) ------------------------
axe_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/tests/support/axe"
if [ ! -d "$axe_dir/node_modules/axe-core" ]; then
  if ! command -v npm >/dev/null; then apt_install nodejs npm; fi
  (cd "$axe_dir" && npm ci --silent --no-audit --no-fund)
fi
