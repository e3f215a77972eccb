#!/usr/bin/env bash
# README command 2: install everything the tests need, then lint and run the whole suite.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/bootstrap.sh
# System packages the tests start as real servers (a fresh machine may lack them).
need=()
command -v initdb >/dev/null || compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null \
    || need+=(postgresql)
[[ -x /usr/sbin/sshd ]] || need+=(openssh-server)
if ((${#need[@]})); then
    echo "installing ${need[*]} for the tests" >&2
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
.venv/bin/ruff check .
exec .venv/bin/python -m pytest "$@"
