#!/usr/bin/env bash
# README command 1: install, then run the main job end-to-end on the embedded defaults.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/bootstrap.sh
exec .venv/bin/python -m cpr_abonnement.demo "$@"
