"""The package's rooms: what may import what, and who reads the environment (issue 11)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "include" / "cpr_abonnement"
#: Modules allowed to need Airflow at import: the tasks package (and the Alembic
#: environment, which only runs inside a migration).
AIRFLOW_ROOMS = ("cpr_abonnement.tasks", "cpr_abonnement.subscriptions.migrations")


def business_modules() -> list[str]:
    modules = []
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        if not name.startswith(AIRFLOW_ROOMS):
            modules.append(name)
    return modules


def loaded_after_import(modules: list[str], watched: tuple[str, ...]) -> dict[str, list[str]]:
    """For each module imported in turn in a fresh interpreter, which ``watched``
    top-level packages were loaded by the time it was imported."""
    code = (
        "import importlib, json, sys\n"
        f"watched = {watched!r}\n"
        "seen = {}\n"
        "for name in sys.argv[1:]:\n"
        "    importlib.import_module(name)\n"
        "    seen[name] = [w for w in watched if w in sys.modules]\n"
        "print(json.dumps(seen))\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(PACKAGE.parent), str(REPO / "plugins"), os.environ.get("PYTHONPATH", "")])}
    out = subprocess.run([sys.executable, "-c", code, *modules], env=env, check=True,
                         capture_output=True, text=True).stdout
    return json.loads(out.splitlines()[-1])


def test_the_business_package_imports_without_airflow():
    modules = business_modules()
    assert "cpr_abonnement.delivery.sftp_push" in modules  # the walk found the package
    seen = loaded_after_import(modules, ("airflow",))
    offenders = [name for name, loaded in seen.items() if loaded]
    assert not offenders, f"importing these loads Airflow: {offenders[:3]}"


def test_the_import_check_sees_airflow_when_it_is_loaded():
    """The counter-check: a module that does import Airflow is caught."""
    assert loaded_after_import(["cpr_timetable"], ("airflow",)) == {
        "cpr_timetable": ["airflow"]}


#: ``os.environ[...]``/``.get(...)``/``getenv(...)`` of a CPRSUB_ variable...
ENV_READ = re.compile(r"""(environ(\.get)?|getenv)\s*[\[(]\s*["']CPRSUB_""")
#: ...or of a constant holding its name (a CPRSUB_ string in a file that reads the env).
ENV_NAME = re.compile(r"""=\s*["']CPRSUB_""")
ENV_ACCESS = re.compile(r"environ|getenv")


def reads_cprsub(source: str) -> bool:
    return bool(ENV_READ.search(source)
                or (ENV_NAME.search(source) and ENV_ACCESS.search(source)))


def cprsub_readers(root: Path) -> list[str]:
    """Source files under ``root`` (include/, dags/, plugins/) reading a CPRSUB_ variable,
    except settings.py (the one reader) and the demo (which sets them up)."""
    allowed = {"settings.py", "demo.py"}
    found = []
    for folder in ("include", "dags", "plugins"):
        for path in sorted((root / folder).rglob("*.py")):
            if path.name not in allowed and reads_cprsub(path.read_text()):
                found.append(str(path.relative_to(root)))
    return found


def test_only_settings_reads_cprsub_variables():
    assert cprsub_readers(REPO) == []


def test_the_reader_check_finds_a_direct_read(tmp_path):
    (tmp_path / "dags").mkdir()
    (tmp_path / "dags" / "d.py").write_text(
        'import os\nX = float(os.environ.get("CPRSUB_POKE_SECONDS", "300"))\n')
    (tmp_path / "include").mkdir()
    (tmp_path / "plugins").mkdir()
    assert cprsub_readers(tmp_path) == ["dags/d.py"]


@pytest.mark.parametrize("module", ["cpr_abonnement.api.app", "cpr_abonnement.api.soap",
                                    "cpr_abonnement.api.guard", "cpr_abonnement.cli",
                                    "cpr_abonnement.settings", "cpr_abonnement.calendar",
                                    "cpr_abonnement.delivery.sftp_push"])
def test_light_modules_do_not_load_numpy_or_pandas(module):
    """The API server, the command line and a delivery start light: NumPy and pandas
    are imported only by the code that filters (the filter types import them lazily)."""
    assert loaded_after_import([module], ("numpy", "pandas", "airflow")) == {module: []}
