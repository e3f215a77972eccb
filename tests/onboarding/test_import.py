"""``cprsub filters import``: a saved SF6002 GetAllFiltersResponse (as the real service
writes it, and our own reply: round trip) or a plain PNR list, in one transaction."""

from __future__ import annotations

import re

import pytest

from cpr_abonnement.api import soap
from cpr_abonnement.cli import main
from cpr_abonnement.onboarding.importing import parse_filters
from cpr_abonnement.subscriptions.service import SubscriptionService

A = "6f1f0b8e-6a55-4f55-9d7b-1c5c1f3a0001"
B = "6f1f0b8e-6a55-4f55-9d7b-1c5c1f3a0002"
#: The shape of a recorded reply of the real service (serviceplatformen-compat.md):
#: prefixes soap / ns3 / ns2, municipality code without leading zeros, noFilter.
REAL_REPLY = b"""<?xml version="1.0" encoding="UTF-8"?>
<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body>
<ns3:GetAllFiltersResponse xmlns="http://serviceplatformen.dk/xml/schemas/InvocationContext/1/"
 xmlns:ns2="http://serviceplatformen.dk/xml/schemas/cpr/PNR/1/"
 xmlns:ns3="http://serviceplatformen.dk/xml/wsdl/soap11/CprSubscriptionService/1/">
<ns3:AgeRange><ns3:StartAge>0</ns3:StartAge><ns3:EndAge>17</ns3:EndAge></ns3:AgeRange>
<ns3:ChangeCode>A21</ns3:ChangeCode>
<ns3:MunicipalityCode>706</ns3:MunicipalityCode>
<ns2:PNR>0101901234</ns2:PNR><ns2:PNR>1502504321</ns2:PNR><ns2:PNR>3102901234</ns2:PNR>
<ns3:noFilter>false</ns3:noFilter>
</ns3:GetAllFiltersResponse></soap:Body></soap:Envelope>"""


@pytest.fixture
def svc(engine):
    service = SubscriptionService(engine, caller="test")
    for uuid in (A, B):
        service.add_subscriber(uuid, f"system {uuid[-1]}")
    return service


def synthetic_pnrs(n: int) -> list[str]:
    """``n`` distinct PNRs with real birth dates (synthetic: sequence numbers counted)."""
    out = []
    for seq in range(10_000):
        for month in range(1, 13):
            for day in range(1, 29):
                out.append(f"{day:02d}{month:02d}80{seq:04d}")
                if len(out) == n:
                    return out
    raise AssertionError("not enough")


def test_reply_shaped_like_the_real_service(svc, db_url, tmp_path, capsys):
    path = tmp_path / "reply.xml"
    path.write_bytes(REAL_REPLY)
    code = main(["filters", "import", "--db", db_url, "--system", B, str(path), "--dry-run"])
    out = capsys.readouterr().out
    assert code == 1 and "DRY RUN" in out and "ADDED 5" in out and "REJECTED 1" in out
    assert not re.search(r"\d{10}", out)  # the rejected 31-02 PNR is masked
    assert svc.get_all_filters(B).empty  # the dry run changed nothing
    main(["filters", "import", "--db", db_url, "--system", B, str(path)])
    fs = svc.get_all_filters(B)
    assert fs.municipality_codes == ["0706"] and fs.change_codes == ["A21"]
    assert fs.pnrs == ["0101901234", "1502504321"] and fs.age_ranges == [(0, 17)]
    assert [a.operation for a in svc.audit_trail(B)].count("ImportFilters") == 1


def test_our_own_reply_round_trips_into_another_system(svc):
    svc.add_age_range(A, 18, 65)
    svc.add_municipality(A, "851")
    svc.add_change_code(A, "A21")
    svc.add_pnrs(A, ["0101901234", "1502504321"])
    from cpr_abonnement.filters import NO_FILTER

    svc.add(A, NO_FILTER)
    response = soap.response_element("GetAllFilters")
    soap.get_all_filters(svc, A, None, response)
    done = svc.import_filters(B, parse_filters(soap.serialised(response)))
    assert done.counts == {"ADDED": 6}
    assert svc.get_all_filters(B).listings == svc.get_all_filters(A).listings


def test_hundred_thousand_pnrs_in_one_transaction(svc, tmp_path):
    pnrs = synthetic_pnrs(100_000)
    path = tmp_path / "pnrs.txt"
    path.write_text("# exported\n" + "\n".join(pnrs) + "\n\n")
    plan = parse_filters(path.read_bytes())
    assert len(plan.pnrs) == 100_000
    assert svc.import_filters(B, plan, dry_run=True).counts == {"ADDED": 100_000}
    assert svc.get_all_filters(B).pnrs == []
    assert svc.import_filters(B, plan).counts == {"ADDED": 100_000}
    assert len(svc.get_all_filters(B).pnrs) == 100_000
    assert svc.import_filters(B, plan).counts == {"ALREADY_EXISTED": 100_000}


def test_not_a_filter_file(svc):
    from cpr_abonnement.errors import FilterInputError

    with pytest.raises(FilterInputError, match="GetAllFiltersResponse"):
        parse_filters(b"<a><b/></a>")
    with pytest.raises(FilterInputError, match="not well-formed"):
        parse_filters(b"<a>")
