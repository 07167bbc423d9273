#!/usr/bin/env bash
# The Debian packages the test suite needs, installed when missing (idempotent: a machine
# that has them all is checked in milliseconds, and nothing is downloaded).
#
#   postgresql         the PostgreSQL 15 server the table-sink tests start (tests/tables/)
#   clickhouse-server  the ClickHouse server the ClickHouse sink tests start
#   prometheus         promtool, which checks the metrics text format
#   chromium           the headless browser of the dashboard tests
#   libcairo2          cairo, which cairosvg draws the PNG pictures with (surestream graph)
#   (openjdk-17-jdk-headless: javac for the Flink runner's Java operators, asked for by
#    scripts/flink-deps.sh when javac is missing)
#
# Usage: scripts/test-deps.sh [PACKAGE ...]   (default: the packages above)
# Runs as root, or through sudo when it is there. `apt-get update` runs only when a package
# is missing. Fails (exit 1) naming each package it could not install.
set -euo pipefail

PACKAGES=(postgresql clickhouse-server prometheus chromium libcairo2)
if [ "$#" -gt 0 ]; then
    PACKAGES=("$@")
fi

installed() {
    [ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null)" = "install ok installed" ]
}

# The PostgreSQL tests run the server as the `postgres` user (it refuses root); the
# package makes that user, but a machine image may hold the package without it.
postgres_user() {
    if [[ " ${PACKAGES[*]} " == *" postgresql "* ]]; then
        if ! getent passwd postgres >/dev/null; then
            echo "test-deps: adding the system user postgres (the server refuses root)" >&2
            group=(--user-group)
            getent group postgres >/dev/null && group=(--gid postgres)
            "${as_root[@]}" useradd --system "${group[@]}" --home-dir /var/lib/postgresql \
                --no-create-home --shell /bin/sh postgres \
                || { echo "test-deps: FAILED to add the user postgres" >&2; exit 1; }
        fi
    fi
}

missing=()
for package in "${PACKAGES[@]}"; do
    installed "$package" || missing+=("$package")
done
as_root=()
if [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1; then
    as_root=(sudo)
fi
if [ "${#missing[@]}" -eq 0 ]; then
    postgres_user
    exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
    echo "test-deps: missing Debian package(s) ${missing[*]}, and there is no apt-get on" \
         "this machine: install them with your package manager" >&2
    exit 1
fi
if [ "$(id -u)" -ne 0 ]; then
    if [ "${#as_root[@]}" -eq 0 ]; then
        echo "test-deps: missing Debian package(s) ${missing[*]}: run this script as root" \
             "(or install sudo)" >&2
        exit 1
    fi
fi

echo "test-deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt=("${as_root[@]}" apt-get -o DPkg::Lock::Timeout=600 -q)
"${apt[@]}" update >&2 || echo "test-deps: apt-get update failed; trying the cached lists" >&2
# one package at a time, so a failure names the package that could not be installed
failed=()
for package in "${missing[@]}"; do
    if ! "${apt[@]}" install -y --no-install-recommends "$package" >&2 || ! installed "$package"; then
        failed+=("$package")
    fi
done
if [ "${#failed[@]}" -ne 0 ]; then
    echo "test-deps: FAILED to install Debian package(s): ${failed[*]}" \
         "(see apt-get's messages above)" >&2
    exit 1
fi
echo "test-deps: installed ${missing[*]}" >&2
postgres_user
