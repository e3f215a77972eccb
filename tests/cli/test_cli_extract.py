"""``cprsub extract`` end to end through the installed entry point's main()."""

from __future__ import annotations

import json

from cpr_abonnement.cli import main


def test_generate_validate_inspect(tmp_path, capsys):
    assert main(["extract", "generate", "--date", "2026-12-28", "--persons", "40",
                 "--seed", "7", "--crlf", "-o", str(tmp_path)]) == 0
    path = tmp_path / "D261228.L431101"
    assert "40 persons" in capsys.readouterr().out or path.exists()
    assert main(["extract", "validate", str(path), "--expect-date", "2026-12-28"]) == 0
    assert capsys.readouterr().out.strip().endswith("valid")
    assert main(["extract", "inspect", str(path), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    # previous delivery day of Monday 28 Dec 2026: Friday 25 Dec (24 Dec is closed)
    assert summary["previous_production_date"] == "2026-12-25"
    assert summary["line_ending"] == "CRLF" and summary["persons"] >= 40
    assert summary["records_per_type"]["001"] == summary["persons"]


def test_validate_fails_with_the_rule_on_stderr(tmp_path, capsys):
    path = tmp_path / "D261126.L431101"
    main(["extract", "generate", "--date", "2026-11-26", "--persons", "5", "-o", str(path)])
    capsys.readouterr()
    path.write_bytes(path.read_bytes()[:-10])
    assert main(["extract", "validate", str(path), "--expect-date", "2026-11-27"]) == 1
    err = capsys.readouterr().err
    assert "ProductionDateMismatch" in err and "999" in err


def test_bad_date_is_a_usage_error(capsys):
    import pytest

    with pytest.raises(SystemExit) as exc:
        main(["extract", "generate", "--date", "26-11-2026", "--persons", "1", "-o", "x"])
    assert exc.value.code == 2
    assert "is not a date" in capsys.readouterr().err
