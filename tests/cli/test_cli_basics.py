"""The command line's small promises: errors without tracebacks, exact counts, a version."""

from __future__ import annotations

import subprocess
import sys

import pytest

from cpr_abonnement import __version__
from cpr_abonnement.cli import main
from cpr_abonnement.extract.index import scan


@pytest.mark.parametrize("command", ["validate", "inspect"])
def test_missing_file_is_a_clear_error_not_a_traceback(tmp_path, capsys, command):
    missing = tmp_path / "D261126.L431101"
    assert main(["extract", command, str(missing)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("cprsub: ") and str(missing) in err
    assert "Traceback" not in err


def test_directory_is_a_clear_error(tmp_path, capsys):
    assert main(["extract", "validate", str(tmp_path)]) == 1
    assert "is a directory" in capsys.readouterr().err.lower()


@pytest.mark.parametrize("persons", [1, 7, 400])
def test_generate_writes_exactly_the_persons_asked_for(tmp_path, capsys, persons):
    out = tmp_path / "D261126.L431101"
    assert main(["extract", "generate", "--date", "2026-11-26", "--persons", str(persons),
                 "--seed", "3", "-o", str(out)]) == 0
    assert f"{persons:,} persons" in capsys.readouterr().out
    assert len(scan(out).persons) == persons


def test_version(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.strip() == f"cprsub {__version__}"


def test_demo_help_prints_help_and_runs_nothing(tmp_path):
    done = subprocess.run([sys.executable, "-m", "cpr_abonnement.demo", "--help"],
                          capture_output=True, text=True, timeout=60,
                          env={"CPRSUB_DEMO_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("usage:") and "delivery day" in done.stdout
    assert list(tmp_path.iterdir()) == []  # nothing set up, nothing run


def test_the_command_table_names_what_each_module_registers():
    """``cli.COMMANDS`` decides which module a command's parser comes from; a command a
    module adds without the table, or one the table misplaces, would not be found."""
    import argparse
    import importlib

    from cpr_abonnement.cli import COMMANDS, build_parser

    for module in set(COMMANDS.values()):
        sub = argparse.ArgumentParser().add_subparsers()
        importlib.import_module(f"cpr_abonnement.cli.{module}").register(sub)
        assert set(sub.choices) == {c for c, m in COMMANDS.items() if m == module}, module

    def commands(parser: argparse.ArgumentParser) -> list[str]:
        (action,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        return list(action.choices)

    assert commands(build_parser()) == list(COMMANDS)  # all of them, in the table's order
    for command in COMMANDS:
        assert command in commands(build_parser(command)), command


def test_the_pick_up_servers_commands_import_neither_filters_nor_data_stack(tmp_path):
    """sshd runs ``cprsub pickup authorized-keys`` on every login attempt, and the
    pick-up entrypoint starts sshd under ``cprsub pickup confine``: neither imports the
    filter registry, pandas or NumPy."""
    probe = ("import sys; from cpr_abonnement.cli import main; "
             "main(['pickup', 'authorized-keys', '--db', sys.argv[1], 'nobody']); "
             "print(sorted(m for m in ('cpr_abonnement.filters', 'cpr_abonnement.cli."
             "subscriptions', 'pandas', 'numpy') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", probe, f"sqlite:///{tmp_path / 'f.db'}"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == "[]", done.stdout
