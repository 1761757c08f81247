#!/usr/bin/env bash
# Install the system packages the integration tests use when they are missing (Debian; needs root).
set -euo pipefail
need=()
command -v prometheus >/dev/null 2>&1 || need+=(prometheus)
# validates docker-compose.yml (`docker-compose config -q`); no Docker engine is needed for that
{ command -v docker-compose >/dev/null 2>&1 || docker compose version >/dev/null 2>&1; } || need+=(docker-compose)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing ${need[*]} (Debian packages) for the integration tests"
    apt-get update -qq >/dev/null || true
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
    # the package may start a service on install; the tests run their own instance
    pkill -x prometheus 2>/dev/null || true
  else
    echo "warning: ${need[*]} missing and cannot be installed (not root / no apt): those tests will fail" >&2
  fi
fi
