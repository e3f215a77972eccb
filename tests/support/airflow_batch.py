"""Run several ``airflow`` commands, and deploy scripts' ``main()``, in one interpreter.

``python airflow_batch.py '<json list of steps>'``: a step is an ``airflow`` command line
without ``airflow`` (``["users", "create", ...]``) or ``["script", path]``. Each
``airflow`` process spends about three seconds of CPU importing Airflow before its
command starts; a fixture that needs six commands in a row runs them here the way
``airflow`` runs one (its argument parser, then the command's function), one after
another in the same process. Before each step a line ``== step N`` goes to stdout, so a
caller can read each step's own output.
"""

from __future__ import annotations

import importlib.util
import json
import sys


def main(steps: list[list[str]]) -> int:
    from airflow.cli import cli_parser
    from airflow.configuration import write_default_airflow_configuration_if_needed

    write_default_airflow_configuration_if_needed()
    parser = cli_parser.get_parser()
    for n, step in enumerate(steps):
        print(f"== step {n}", flush=True)
        if step[0] == "script":
            spec = importlib.util.spec_from_file_location(f"step{n}", step[1])
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            if module.main() != 0:
                return 1
        else:
            args = parser.parse_args(step)
            args.func(args)
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(json.loads(sys.argv[1])))
