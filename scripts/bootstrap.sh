#!/usr/bin/env bash
# Create .venv (Python 3.11) and install the project with its pinned dependencies.
# Idempotent: a second run only re-checks the installation.
#
# The installer is uv (pinned in constraints.txt like everything else), driven through
# its pip interface with the same constraints: it resolves and installs the same ~210
# distributions as pip, 4.8 s against pip's 50 s on a fresh clone (issue 26's round: the
# install was an eighth of README command 2). pip stays in .venv (the tests and benches
# call it) and checks the result.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if [[ ! -x .venv/bin/python ]]; then
    "$PYTHON" -m venv .venv
fi
if [[ ! -x .venv/bin/uv ]]; then
    .venv/bin/python -m pip install --quiet --disable-pip-version-check \
        -c constraints.txt uv 2>&1 | grep -v "^WARNING: Location" || true
fi
.venv/bin/uv pip install --quiet --python .venv/bin/python \
    -c constraints.txt -e ".[test,postgres,celery]"
.venv/bin/python -m pip check >/dev/null
