"""The "no filter" subscription (SF6002 1.1's AddNoFilterSubscription): every person of
the extract with all their records, 910/997 never forwarded; SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import datetime as dt
import json

import httpx
import pytest

from builders import extract, person, rec, write
from cpr_abonnement.api.app import create_app
from cpr_abonnement.cli import main
from cpr_abonnement.errors import InvalidFilterGroup
from cpr_abonnement.filter_step import filter_extract
from cpr_abonnement.filters import NO_FILTER
from cpr_abonnement.identities import credentials
from cpr_abonnement.identities.credentials import Role
from cpr_abonnement.subscriptions.service import SubscriptionService
from support.servers import uvicorn_server

SUB = "6f1f0b8e-6a55-4f55-9d7b-1c5c1f3a0001"
OTHER = "0d4c3b2a-1111-4222-8333-444455556666"
T0 = dt.datetime(2026, 11, 26, 5, 0)
P1, P2, P3 = "0101901234", "0202801234", "0303701234"


@pytest.fixture
def svc(engine):
    service = SubscriptionService(engine, caller="test",
                                  clock=lambda: dt.datetime(2026, 11, 25, 12, 0))
    service.add_subscriber(SUB, "Aalborg ESDH")
    service.add_subscriber(OTHER, "Odense Sag")
    return service


def platform_records() -> list[bytes]:
    return [rec("910", P1, INDDATA="x", FEJLNR="0001"),
            rec("997", P2, TIMESTAMPU="202611260000", HAENDELSE="A45")]


def scattered_body() -> tuple[list[bytes], list[bytes]]:
    """Persons with one's 003 at the end, 910/997 among them: (body, persons only)."""
    a, b, c = person(P1, events=(("A01", ""),)), person(P2, kom="0101"), person(P3, kom=None)
    r910, r997 = platform_records()
    body = [a[0], a[1], r910, *b, *a[3:], r997, *c, a[2]]
    return body, [line for line in body if line not in (r910, r997)]


def run(engine, tmp_path, body: list[bytes], *, explain: bool = False) -> dict[str, bytes]:
    src = write(tmp_path, extract(body))
    out = tmp_path / "out"
    filter_extract(src, engine, out, as_of=T0, clock=lambda: T0, explain=explain)
    return {p.parent.name: p.read_bytes() for p in out.glob("*/D*.L431101")}


def test_no_filter_is_every_person_with_every_record_but_910_997(svc, engine, tmp_path):
    assert svc.add(SUB, NO_FILTER).result.value == "ADDED"
    body, persons_only = scattered_body()
    files = run(engine, tmp_path, body)
    assert files[SUB] == extract(persons_only)
    assert files[OTHER] == extract([])  # no filters at all: still no persons


def test_no_filter_in_union_with_other_filters_delivers_each_person_once(svc, engine,
                                                                          tmp_path):
    svc.add(SUB, NO_FILTER)
    svc.add_pnr(SUB, P1)
    svc.add_municipality(SUB, "851")
    svc.add_change_code(SUB, "A01")
    svc.add_age_range(SUB, 0, 999)
    svc.add_pnr(OTHER, P2)
    body, persons_only = scattered_body()
    files = run(engine, tmp_path, body, explain=True)
    assert files[SUB] == extract(persons_only)
    assert files[SUB].count(b"\n001" + P1.encode()) == 1
    assert files[OTHER] == extract(person(P2, kom="0101"))
    with open(tmp_path / "out" / SUB / "D261126.L431101.explain.csv") as fh:
        why = [row for row in csv.reader(fh)][1:]
    assert len(why) == 3
    assert all("no filter" in ",".join(row) for row in why)
    assert any("PNR" in ",".join(row) and "MunicipalityCode 0851" in ",".join(row)
               for row in why)


def test_removing_no_filter_means_no_persons_again(svc, engine, tmp_path):
    svc.add(SUB, NO_FILTER)
    assert svc.add(SUB, NO_FILTER).result.value == "ALREADY_EXISTED"
    assert svc.remove(SUB, NO_FILTER).result.value == "REMOVED"
    assert svc.remove(SUB, NO_FILTER).result.value == "NON_EXISTING"
    assert run(engine, tmp_path, scattered_body()[0])[SUB] == extract([])


def test_get_all_filters_and_remove_all_group(svc):
    assert svc.get_all_filters(SUB).to_dict()["no_filter"] is False
    assert svc.get_all_filters(SUB).empty
    svc.add(SUB, NO_FILTER)
    listed = svc.get_all_filters(SUB)
    assert listed.to_dict()["no_filter"] is True and not listed.empty
    assert listed.to_dict()["receives_nothing"] is False
    assert svc.audit_trail(SUB)[-1].result == (
        "OK: 0 PNR, 0 age range, 0 municipality, 0 change-code, 1 no-filter filters")
    assert svc.remove_all(SUB, "NoFilter") == 1
    assert svc.get_all_filters(SUB).to_dict()["no_filter"] is False
    with pytest.raises(InvalidFilterGroup, match="NoFilter"):
        svc.remove_all(SUB, "Everything")


def test_cprsub_filters_and_filter_end_to_end(db_url, tmp_path, capsys):
    def cli(*args: str) -> tuple[int, str]:
        code = main(list(args))
        return code, capsys.readouterr().out

    assert cli("db", "upgrade", "--db", db_url)[0] == 0
    assert cli("subscriber", "add", "--db", db_url, "--uuid", SUB, "--name", "A")[0] == 0
    system = ("--db", db_url, "--system", SUB)
    assert cli("filters", "add-no-filter", *system) == (0, "ADDED\n")
    assert cli("filters", "add-no-filter", *system) == (0, "ALREADY_EXISTED\n")
    code, out = cli("filters", "get-all", *system, "--json")
    assert json.loads(out)["no_filter"] is True
    assert "no filter: yes" in cli("filters", "get-all", *system)[1]
    body, persons_only = scattered_body()
    src = write(tmp_path, extract(body))
    code, out = cli("filter", str(src), "--out", str(tmp_path / "out"), "--db", db_url)
    assert code == 0 and "        3 persons" in out
    assert (tmp_path / "out" / SUB / src.name).read_bytes() == extract(persons_only)
    assert cli("filters", "remove-no-filter", *system) == (0, "REMOVED\n")
    assert cli("filters", "remove-all", *system, "--group", "NoFilter") == (0, "REMOVED 0\n")


def test_rest_operations(svc, engine):
    token = credentials.issue(engine, role=Role.SUBSCRIBER, label="a", subscriber_uuid=SUB)
    with uvicorn_server(create_app(lambda: engine)) as url:
        def post(op: str, system: str = SUB, **body) -> httpx.Response:
            return httpx.post(f"{url}/v1/{op}", headers={"Authorization": f"Bearer {token}"},
                              json={"invocationContext": {"userSystemUUID": system}, **body})

        assert post("GetAllFilters").json()["no_filter"] is False
        assert post("AddNoFilterSubscription").json() == {"result": "ADDED", "warning": None}
        assert post("AddNoFilterSubscription").json()["result"] == "ALREADY_EXISTED"
        assert post("AddNoFilterSubscription", OTHER).status_code == 403
        assert post("AddNoFilterSubscription", extra=1).status_code == 422
        listed = post("GetAllFilters").json()
        assert listed["no_filter"] is True and listed["receives_nothing"] is False
        assert post("RemoveAll", filterGroup="NoFilter").json() == {"removed": 1}
        assert post("RemoveNoFilterSubscription").json()["result"] == "NON_EXISTING"
        assert "NoFilter" in httpx.get(f"{url}/openapi.json").json()["components"][
            "schemas"]["RemoveAllCall"]["properties"]["filterGroup"]["description"]
