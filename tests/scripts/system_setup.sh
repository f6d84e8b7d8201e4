#!/usr/bin/env bash
# Install and start the system services some tests use (called by .ci/run; safe to re-run).
#  - PostgreSQL from Debian packages, started on loopback; its DSN goes to .ci/test-env as
#    VOICEPRIV_TEST_POSTGRES for the catalog backend tests.
#  - Chromium from Debian packages, for the headless check of the HTML compliance report.
set -euo pipefail
cd "$(dirname "$0")/../.."

need=()
command -v chromium >/dev/null 2>&1 || need+=(chromium)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
if [ ${#need[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  start=$(date +%s)
  apt-get update -qq >/dev/null
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  echo "system_setup: installed ${need[*]} in $(( $(date +%s) - start )) s"
fi

: > .ci/test-env
if [ -x tests/scripts/start_postgres.sh ] || [ -f tests/scripts/start_postgres.sh ]; then
  dsn=$(bash tests/scripts/start_postgres.sh | tail -n 1)
  echo "VOICEPRIV_TEST_POSTGRES=$dsn" >> .ci/test-env
  echo "system_setup: PostgreSQL listening at ${dsn#*@}"
fi
