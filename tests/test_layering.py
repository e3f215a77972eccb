"""The package's rooms: what may import what, and who reads the environment (issue 11)."""

from __future__ import annotations

import ast
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
AIRFLOW_ROOMS = ("cpr_abonnement.tasks", "cpr_abonnement.airflow_side",
                 "cpr_abonnement.store.migrations")


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
ENV_ACCESS = re.compile(r"\benviron\b|\bgetenv\b")  # code, not the word "environment"


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
                                    "cpr_abonnement.settings", "cpr_abonnement.delivery_calendar",
                                    "cpr_abonnement.delivery.sftp_push"])
def test_light_modules_do_not_load_numpy_or_pandas(module):
    """The API server, the command line and a delivery start light: NumPy and pandas
    are imported only by the code that filters (the filter types import them lazily)."""
    assert loaded_after_import([module], ("numpy", "pandas", "airflow")) == {module: []}


#: The demo and the dev SFTP server: a developer's machine's, not production's.
DEV = "cpr_abonnement.dev"
#: Entry points that keep the documented ``python -m`` names and only start the dev code.
DEV_ENTRY_POINTS = {"include/cpr_abonnement/demo.py", "include/cpr_abonnement/devsftp.py"}


def imports_of(source: str) -> set[str]:
    """Every module an ``import`` statement names, wherever it stands (also inside a
    function), with ``from a import b`` counted as both ``a`` and ``a.b``."""
    names = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def dev_importers(root: Path) -> list[str]:
    """Shipped source files (include/ outside the dev sub-package, dags/, plugins/) that
    import the dev sub-package, except the two entry points."""
    dev_folder = root / "include" / "cpr_abonnement" / "dev"
    found = []
    for folder in ("include", "dags", "plugins"):
        for path in sorted((root / folder).rglob("*.py")):
            shown = str(path.relative_to(root))
            if dev_folder in path.parents or shown in DEV_ENTRY_POINTS:
                continue
            if any(n == DEV or n.startswith(DEV + ".") for n in imports_of(path.read_text())):
                found.append(shown)
    return found


def test_no_shipped_module_imports_the_dev_subpackage():
    assert (PACKAGE / "dev" / "demo.py").exists()  # the walk looks where the code is
    assert dev_importers(REPO) == []


def test_the_dev_import_check_finds_a_lazy_import(tmp_path):
    for folder in ("include/cpr_abonnement/dev", "dags", "plugins"):
        (tmp_path / folder).mkdir(parents=True)
    (tmp_path / "include/cpr_abonnement/dev/devsftp.py").write_text("import asyncssh\n")
    (tmp_path / "include/cpr_abonnement/health.py").write_text(
        "def f():\n    from cpr_abonnement.dev.devsftp import EmbeddedSftpServer\n")
    (tmp_path / "plugins/p.py").write_text("from cpr_abonnement import dev\n")
    assert dev_importers(tmp_path) == ["include/cpr_abonnement/health.py", "plugins/p.py"]


# -- rooms: no import circle, no module too big to read (issue 23) ----------------------
#: The longest module a reader should have to hold in mind.
MAX_LINES = 600


def module_name(path: Path, root: Path = PACKAGE) -> str:
    parts = path.relative_to(root.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _type_checking_only(node: ast.AST, parents: dict[ast.AST, ast.AST]) -> bool:
    """Inside ``if TYPE_CHECKING:``: not imported when the code runs."""
    while node in parents:
        node = parents[node]
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            return True
    return False


def import_graph(root: Path = PACKAGE) -> dict[str, set[str]]:
    """Module -> the package modules it imports when it runs, at any depth of the code
    (a function's import too), with the other packages whose ``__init__`` each import
    runs."""
    modules = {module_name(p, root): p for p in root.rglob("*.py")
               if "migrations" not in p.parts}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        tree = ast.parse(path.read_text())
        parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
        found: set[str] = set()
        for node in ast.walk(tree):
            if not isinstance(node, ast.Import | ast.ImportFrom) or \
                    _type_checking_only(node, parents):
                continue
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            else:
                base = node.module or ""
                if node.level:
                    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
                    for _ in range(node.level - 1):
                        package = package.rpartition(".")[0]
                    base = f"{package}.{base}" if base else package
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base
                           for a in node.names]
            for target in targets:
                while target.startswith(root.name) and target not in modules:
                    target = target.rpartition(".")[0]  # a name inside a module
                parts = target.split(".")
                found.add(target)
                # ... and the packages whose __init__ that import runs first, except
                # this module's own (a registry's member importing a sibling of its
                # package is not a circle of design).
                found |= {p for i in range(2, len(parts))
                          if (p := ".".join(parts[:i])) in modules
                          and not name.startswith(p + ".")}
        graph[name] = {m for m in found if m in modules} - {name}
    return graph


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The import circles (strongly connected sets of more than one module)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            members = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                members.append(w)
                if w == v:
                    break
            if len(members) > 1:
                found.append(sorted(members))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_no_import_circle_in_the_package():
    assert circles(import_graph()) == []


def test_the_circle_check_finds_one_made_by_a_functions_import(tmp_path):
    """The counter-check: a circle closed by an import inside a function is caught."""
    pkg = tmp_path / "cpr_abonnement"
    (pkg / "store").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "store" / "__init__.py").write_text("")
    (pkg / "store" / "models.py").write_text(
        "def tables():\n    from cpr_abonnement.filters import TYPES\n    return TYPES\n")
    (pkg / "filters.py").write_text("from cpr_abonnement.store.models import tables\n")
    (pkg / "typed.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
                                  "    from cpr_abonnement.filters import TYPES\n")
    assert circles(import_graph(pkg)) == [["cpr_abonnement.filters",
                                           "cpr_abonnement.store.models"]]


def test_no_module_is_too_long_to_read():
    long = {module_name(p): n for p in PACKAGE.rglob("*.py")
            if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert long == {}


def test_the_store_imports_no_other_room():
    """The filter database knows no filter type, service or pipeline: they build on it."""
    graph = import_graph()
    reaching = {m: sorted(t for t in targets if not t.startswith(("cpr_abonnement.store",
                                                                  "cpr_abonnement.errors",
                                                                  "cpr_abonnement.settings",
                                                                  "cpr_abonnement.masking")))
                for m, targets in graph.items() if m.startswith("cpr_abonnement.store")}
    assert {m: t for m, t in reaching.items() if t} == {}


def mode_module_importers(graph: dict[str, set[str]]) -> dict[str, list[str]]:
    """Modules outside ``delivery/`` importing a delivery mode's own module (one that
    defines a ``SPEC``), which they must reach through the registry instead."""
    mode_modules = {module_name(p) for p in (PACKAGE / "delivery").glob("*.py")
                    if re.search(r"^SPEC = ModeSpec\(", p.read_text(), re.MULTILINE)}
    assert mode_modules, "no delivery mode found: the check would pass vacuously"
    return {m: sorted(t & mode_modules) for m, t in graph.items()
            if not m.startswith("cpr_abonnement.delivery") and t & mode_modules}


def test_no_room_imports_a_delivery_mode_but_through_the_registry():
    """A new mode is one module registered in delivery/modes.py: nothing else may depend
    on a mode's module, or adding one would mean editing its importers."""
    assert mode_module_importers(import_graph()) == {}


def test_the_mode_check_finds_a_direct_import():
    graph = {"cpr_abonnement.tasks.x": {"cpr_abonnement.delivery.sftp_push"},
             "cpr_abonnement.delivery.modes": {"cpr_abonnement.delivery.pickup"}}
    assert mode_module_importers(graph) == {
        "cpr_abonnement.tasks.x": ["cpr_abonnement.delivery.sftp_push"]}
