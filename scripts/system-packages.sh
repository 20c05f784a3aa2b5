#!/usr/bin/env bash
# Debian packages the tests need: etcd for the real kube-apiserver, docker-compose as the
# compose-file parser, npm for the MCP conformance tool and the JCS recipes, openssh-client
# for ssh-keygen, sqlite3 for the recipes' reads of the database (docs/hashes.md), postgresql
# for the PostgreSQL backend's tests. Installs only what is missing;
# needs root (or sudo) the first time.
set -euo pipefail
missing=()
command -v etcd >/dev/null 2>&1 || missing+=(etcd-server)
command -v docker-compose >/dev/null 2>&1 || missing+=(docker-compose)
command -v npm >/dev/null 2>&1 || missing+=(npm)
# ssh-keygen: approvers sign with it; the tests prove interoperability with it.
command -v ssh-keygen >/dev/null 2>&1 || missing+=(openssh-client)
command -v sqlite3 >/dev/null 2>&1 || missing+=(sqlite3)
# PostgreSQL's server binaries (initdb, postgres; Debian puts them in /usr/lib/postgresql/*/bin):
# the tests run the queue and audit suites on a real server too (gateway/local/postgres.py).
compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || missing+=(postgresql)
[ ${#missing[@]} -eq 0 ] && exit 0
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
echo ">> installing Debian packages: ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
