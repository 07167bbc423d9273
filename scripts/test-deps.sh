#!/bin/sh
# Debian services the table sinks' tests start themselves (idempotent: installs only what
# is missing). Run before the test suite; needs root (or sudo) for apt-get.
set -e
command -v clickhouse-server >/dev/null 2>&1 || [ -x /usr/sbin/clickhouse-server ] || { apt-get update -qq && apt-get install -y -qq clickhouse-server; }
