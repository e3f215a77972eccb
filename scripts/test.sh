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
command -v redis-server >/dev/null || need+=(redis-server)
command -v nginx >/dev/null || [[ -x /usr/sbin/nginx ]] || need+=(nginx)
[[ -x /usr/bin/chromium ]] || need+=(chromium)  # the console's browser tests (Playwright)
if ((${#need[@]})); then
    echo "installing ${need[*]} for the tests" >&2
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
# The Compose specification's JSON schema, to validate docker-compose.yml without a Docker
# engine: shipped inside the docker-compose 1.29.2 wheel on PyPI (fetched once, not installed).
schema=.venv/share/compose-spec/compose_spec.json
if [[ ! -f $schema ]]; then
    mkdir -p "$(dirname "$schema")"
    .venv/bin/python -m pip download -q --no-deps --disable-pip-version-check \
        -d .venv/share/compose-spec docker-compose==1.29.2 2>&1 | grep -v "^WARNING: Location" || true
    .venv/bin/python - "$schema" <<'PY'
import sys, zipfile, glob
wheel = glob.glob(".venv/share/compose-spec/docker_compose-*.whl")[0]
with zipfile.ZipFile(wheel) as z, open(sys.argv[1], "wb") as out:
    out.write(z.read("compose/config/compose_spec.json"))
PY
fi
# Some tests run Airflow and the delivery as uid 50000, group 0 (the compose services'
# user, tests/support/unprivileged.py): let that uid reach this Python when it lives
# below a private home (pyenv under /root): search (x) permission only, no listing, for
# the group (that user's group is root's) and others.
if [[ $(id -u) == 0 ]]; then
    dir=$(dirname "$(readlink -f .venv/bin/python)")
    while [[ $dir != / ]]; do
        [[ $(stat -c %A "$dir") == d?????x??x* ]] || chmod go+x "$dir"
        dir=$(dirname "$dir")
    done
fi
.venv/bin/ruff check .
# One worker per core and one more: the tests spend a good part of their time waiting for
# the servers and processes they start, and the extra worker fills those gaps (two cores:
# 6:55 -> 6:27, CPU 139% -> 170%). Whole modules go to whichever worker is free, the slow
# ones first (tests/conftest.py), so a module's fixture (an Airflow API server, a Celery
# cluster) starts once and none of them is left to run alone at the end.
# Every test's servers, Airflow home and databases are its own, so workers share no state.
# CPRSUB_TEST_WORKERS=0 runs in one process.
exec .venv/bin/python -m pytest -n "${CPRSUB_TEST_WORKERS:-$(( $(nproc) + 1 ))}" \
    --dist loadscope --no-loadscope-reorder "$@"
