#!/usr/bin/env bash
# Create .venv (Python 3.11) and install the project with its pinned dependencies.
# Idempotent: a second run only re-checks the installation.
#
# The installer is uv (pinned in constraints.txt like everything else), driven through
# its pip interface with the same constraints: it resolves and installs the same ~210
# distributions as pip, 30 s with bytecode against pip's 54 s on a fresh clone (issue 26's
# round: the install was an eighth of README command 2). pip stays in .venv (the tests and
# benches call it) and checks the result.
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
# Bytecode compiled at install, as pip does by default and uv does not: every Airflow
# process the tests and the demo start would otherwise compile Airflow's thousands of
# modules again where PYTHONDONTWRITEBYTECODE keeps Python from caching them (1.5 s of
# CPU each; README command 2 took 8:43 without, 7:17 with: docs/benchmarks.md). This
# checkout's own modules likewise.
.venv/bin/uv pip install --quiet --python .venv/bin/python --compile-bytecode \
    -c constraints.txt -e ".[test,postgres,celery]"
.venv/bin/python -m compileall -q -j 0 include dags plugins tests >/dev/null
.venv/bin/python -m pip check >/dev/null
