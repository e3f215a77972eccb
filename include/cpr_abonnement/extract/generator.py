"""Synthetic change extracts that look like CPR's, deterministic by seed.

Used by tests, benchmarks and the demo; never a source of real personal data. The
shape follows what ``cpr-format.md`` documents about real files: person blocks with
record types ascending and 099 near the end, 002 only for status < 30, dead and
emigrated persons without 002, movers with FRAFLYKOMKOD, events that also touch
relatives with a derived marking (a spouse gets ``ÆG`` on a death), Danish names in
ISO-8859-1, some 003 records placed after a later person or at the end of the file,
and full-length records. Output is streamed: memory holds one family of persons, the
few 003 records kept for the end, and the set of PNRs already used.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import BinaryIO

from cpr_abonnement.cpr_number import CENTURY, yy_band
from cpr_abonnement.cpr_number import birth_date as pnr_birth_date
from cpr_abonnement.delivery_calendar import DeliveryCalendar
from cpr_abonnement.extract.layouts import LAYOUTS
from cpr_abonnement.extract.naming import extract_name
from cpr_abonnement.reference import municipalities

FIRST_NAMES_F = ["Anne", "Mette", "Kirsten", "Hanne", "Søs", "Åse", "Birgitte", "Lærke",
                 "Maja", "Ida", "Frederikke", "Sofie", "Bodil", "Grethe", "Inger", "Jørgine"]
FIRST_NAMES_M = ["Søren", "Jørgen", "Bjørn", "Niels", "Jens", "Peter", "Åge", "Mads",
                 "Frederik", "Rasmus", "Ærling", "Troels", "Anders", "Kåre", "Henrik", "Ole"]
MIDDLE_NAMES = ["", "", "", "Møller", "Kjær", "Bæk", "Skov", "Dahl", "Krøyer", "Holm"]
SURNAMES = ["Jensen", "Nielsen", "Hansen", "Pedersen", "Sørensen", "Mølgaard", "Ærø",
            "Østergaard", "Brøndum", "Kjærsgaard", "Løkke", "Christiansen", "Rasmussen",
            "Thomsen", "Bækgaard", "Søndergaard", "Nørgaard", "Ålund"]
STREETS = ["Toregårdsvej", "Søndergade", "Nørrebrogade", "Åboulevarden", "Østerbrogade",
           "Skovvænget", "Kærvej", "Møllebakken", "Strandvejen", "Bøgealle"]
OCCUPATIONS = ["", "", "Sygeplejerske", "Tømrer", "Lærer", "Ingeniør", "Pædagog",
               "Smed", "Økonom", "Førtidspensionist"]

#: (status, weight); status < 30 has a current address (002).
STATUS_MIX = [("01", 880), ("03", 10), ("05", 10), ("07", 2), ("20", 10), ("30", 2),
              ("50", 2), ("60", 2), ("70", 4), ("80", 28), ("90", 50)]
#: Events of the main person; some touch relatives (see ``_RELATIVE``).
EVENT_MIX = [("A01", 300), ("A13", 60), ("A14", 40), ("A19", 40), ("A20", 15), ("A21", 50),
             ("A24", 20), ("A33", 15), ("A04", 10), ("A06", 20), ("A02", 4), ("A35", 10),
             ("A47", 10), ("K74", 10), ("P03", 5), ("A05", 10), ("P10", 20), ("Z99", 1)]
#: Event code -> derived markings its relatives get (relation to the main person).
_RELATIVE = {"A19": ["ÆG"], "A20": ["ÆG"], "A21": ["ÆG", "BØ"], "A14": ["MO", "FA"],
             "A35": ["NF", "NM"], "P03": ["PN"], "A24": ["ÆG"]}
_STATUS_EVENT = {"90": "A21", "80": "A06", "70": "A02"}
_RENDER = {code: layout.render for code, layout in LAYOUTS.items()}
GREENLAND = ["0955", "0956", "0957", "0959", "0960"]
ADMINISTRATIVE = ["0010", "0011", "0012", "0019"]


@dataclass(frozen=True, slots=True)
class GeneratedExtract:
    """Counts of what :func:`generate` wrote (persons include relatives)."""

    persons: int
    records: int
    nbytes: int
    production_date: dt.date
    previous_date: dt.date
    task_number: str

    @property
    def file_name(self) -> str:
        return extract_name(self.production_date, self.task_number)


def _ts(day: dt.date, hhmm: str = "0000") -> str:
    return f"{day:%Y%m%d}{hhmm}"


def _weighted(rng: random.Random, mix: list[tuple[str, int]]) -> str:
    return rng.choices([m[0] for m in mix], weights=[m[1] for m in mix])[0]


class _Person:
    """One synthetic person: just enough state to write a consistent block."""

    __slots__ = ("birth", "civil", "events", "female", "kom", "moved_from", "name", "pnr",
                 "spouse", "status")

    def __init__(self, pnr: str, birth: dt.date, status: str, kom: str) -> None:
        self.pnr, self.birth, self.status, self.kom = pnr, birth, status, kom
        self.female = int(pnr[9]) % 2 == 0
        self.events: list[tuple[str, str]] = []
        self.civil = "U"
        self.spouse = ""
        self.moved_from = "0000"
        self.name = ("", "", "")


#: The day a synthetic population's persons are made on: the same persons whichever day
#: their status extract is produced or a change extract draws on them.
POPULATION_DAY = dt.date(2026, 1, 1)
STATUS, CHANGE = "status", "change"


class Generator:
    """Writes one extract; see :func:`generate`."""

    def __init__(self, production_date: dt.date, seed: int, *, population: int = 0,
                 population_seed: int = 0) -> None:
        self.day = production_date
        self.rng = random.Random(seed)
        self.used: set[str] = set()
        kinds = municipalities()
        self.danish = [c for c, m in kinds.items() if m.kind == "municipality"]
        self.population, self.population_seed = population, population_seed
        self.drawn: set[int] = set()

    # -- a population (status extracts, and change extracts drawing on one) ----------
    def resident(self, number: int) -> _Person:
        """Person ``number`` of the population: made from a random stream of its own
        (population seed and number), so a status extract and every change extract of
        the same population agree on who the person is (PNR, birth, name)."""
        saved = self.rng, self.used, self.day
        self.rng = random.Random(f"{self.population_seed}:{number}")
        self.used, self.day = set(), POPULATION_DAY
        try:
            return self.person()
        finally:
            self.rng, self.used, self.day = saved

    def residents(self, count: int) -> Iterator[list[_Person]]:
        """The population's persons, one group each; a number that repeats an earlier
        one's PNR (two random serials of one birth date) is left out."""
        for number in range(count):
            p = self.resident(number)
            if p.pnr not in self.used:
                self.used.add(p.pnr)
                yield [p]

    def families(self) -> Iterator[list[_Person]]:
        while True:
            yield self.family()

    def _main_person(self) -> _Person:
        """The person an event happens to: a new one, or one of the population not yet
        in this extract (a person's block appears once per extract)."""
        if not self.population or len(self.drawn) >= self.population:
            return self.person()
        number = self.rng.randrange(self.population)
        while number in self.drawn:
            number = (number + 1) % self.population
        self.drawn.add(number)
        p = self.resident(number)
        if p.status >= "30" or p.pnr in self.used:
            # Dead, emigrated, gone (no new event), or a number this extract already
            # holds (a relative's, or a resident left out of the population as a
            # repeat): someone new instead, as a person's block comes once per extract.
            return self.person()
        self.used.add(p.pnr)
        return p

    # -- persons -------------------------------------------------------------------
    def new_pnr(self, birth: dt.date) -> str:
        """A PNR for ``birth`` whose 7th digit gives the right century; never reused."""
        yy = birth.year % 100
        century = birth.year - yy
        digits = [d for d in range(10) if CENTURY[d][yy_band(yy)] == century]
        for _ in range(100):
            serial = f"{self.rng.choice(digits)}{self.rng.randrange(1000):03d}"
            pnr = f"{birth:%d%m}{yy:02d}{serial}"
            if pnr not in self.used:
                self.used.add(pnr)
                return pnr
        # Every serial of this birth date is taken (only in extreme samples): use the
        # day before, keeping the number unique and valid.
        return self.new_pnr(birth - dt.timedelta(days=1))

    def birth_date(self) -> dt.date:
        rng = self.rng
        if rng.random() < 0.002:  # 1858-1899: only ever seen on long-dead persons
            return dt.date(rng.randrange(1858, 1900), rng.randrange(1, 13), rng.randrange(1, 29))
        age_days = int(rng.triangular(0, 105 * 365.25, 35 * 365.25))
        return self.day - dt.timedelta(days=age_days)

    def person(self, *, birth: dt.date | None = None, status: str | None = None) -> _Person:
        rng = self.rng
        birth = birth or self.birth_date()
        status = status or ("90" if birth.year < 1900 else _weighted(rng, STATUS_MIX))
        if status in ("05", "07"):
            kom = rng.choice(GREENLAND)
        elif status == "20":
            kom = rng.choice(ADMINISTRATIVE)
        else:
            kom = rng.choice(self.danish)
        pnr = self.new_pnr(birth)
        p = _Person(pnr, pnr_birth_date(pnr), status, kom)
        first = rng.choice(FIRST_NAMES_F if p.female else FIRST_NAMES_M)
        p.name = (first, rng.choice(MIDDLE_NAMES), rng.choice(SURNAMES))
        return p

    def family(self) -> list[_Person]:
        """A main person with its day's events, plus relatives touched by them."""
        rng = self.rng
        main = self._main_person()
        code = _STATUS_EVENT.get(main.status) or _weighted(rng, EVENT_MIX)
        main.status = next((s for s, c in _STATUS_EVENT.items() if c == code), main.status)
        main.events.append((code, ""))
        if code == "A01" and main.status < "30" and rng.random() < 0.5:
            main.moved_from = rng.choice([c for c in self.danish if c != main.kom])
        if rng.random() < 0.15:
            main.events.append((_weighted(rng, EVENT_MIX), ""))
        group = [main]
        for mark in _RELATIVE.get(code, []):
            if rng.random() < 0.6:
                continue
            if mark == "BØ":
                if main.birth > self.day - dt.timedelta(days=365 * 18):
                    continue  # too young to have children
                born = main.birth + dt.timedelta(days=rng.randrange(18 * 365, 45 * 365))
                rel = self.person(birth=min(born, self.day), status="01")
            elif mark in ("MO", "FA"):
                rel = self.person(birth=main.birth - dt.timedelta(days=365 * 30), status="01")
            else:
                rel = self.person(status="01")
            rel.kom = main.kom if rng.random() < 0.8 else rel.kom
            rel.events.append((code, mark))
            if mark == "ÆG":
                main.civil, rel.civil = ("E", "E") if code == "A21" else ("G", "G")
                main.spouse, rel.spouse = rel.pnr, main.pnr
            group.append(rel)
        return group

    # -- records -------------------------------------------------------------------
    def block(self, p: _Person) -> list[tuple[str, bytes]]:
        """The person's records in CPR's order (types ascending, 099 last)."""
        rng, day = self.rng, self.day
        r = _RENDER
        pnr = p.pnr
        first, middle, last = p.name
        status_day = day if p.status in ("90", "80", "70") else p.birth
        out = [("001", r["001"]({
            "PNR": pnr, "STATUS": p.status, "STATUSHAENSTART": _ts(status_day),
            "STATUSDTO_UMRK": " ", "KOEN": "K" if p.female else "M",
            "FOED_DT": p.birth.isoformat(), "START_DT_PERSON": p.birth.isoformat(),
            "STILLING": rng.choice(OCCUPATIONS),
        }))]
        street, number = rng.choice(STREETS), rng.randrange(1, 200)
        if p.status < "30":
            moved = p.moved_from != "0000"
            out.append(("002", r["002"]({
                "PNR": pnr, "KOMKOD": p.kom, "VEJKOD": f"{rng.randrange(1, 9900):04d}",
                "HUSNR": f"{number:03d}", "ETAGE": rng.choice(["", "st", "01", "02", " 3"]),
                "SIDEDOER": rng.choice(["", "  th", "  tv", "  mf"]),
                "TILFLYDTO": _ts(day if moved else p.birth), "TILFLYKOMDTO": _ts(p.birth),
                "FRAFLYKOMKOD": p.moved_from,
                "FRAFLYKOMDTO": _ts(day) if moved else "000000000000",
                "START_MYNKOD_ADRTXT": "0000",
            })))
        out.append(("003", r["003"]({
            "PNR": pnr, "ADRNVN": f"{last},{first}"[:34],
            "STANDARDADR": f"{street} {number}"[:34] if p.status < "30" else "",
            "POSTNR": f"{rng.randrange(1000, 9990)}" if p.status < "30" else "0000",
            "KOMKOD": p.kom if p.status < "30" else "0000",
            "VEJADRNVN": street[:20] if p.status < "30" else "",
        })))
        if rng.random() < 0.05:
            since = (day - dt.timedelta(400)).isoformat()
            out.append(("004", r["004"]({"PNR": pnr, "BESKYTTYPE": "0001",
                                          "START_DT_BESKYTTELSE": since})))
        if p.status == "80":
            out.append(("005", r["005"]({"PNR": pnr, "UDR_LANDEKOD": "5110", "UDRDTO": _ts(day),
                                          "UDLANDADR1": "Storgatan 1", "UDLANDADR2": "Malmö"})))
        if p.status == "70":
            out.append(("007", r["007"]({"PNR": pnr, "FORSVINDDTO": _ts(day)})))
        out.append(("008", r["008"]({
            "PNR": pnr, "FORNVN": first, "MELNVN": middle, "EFTERNVN": last,
            "NVNHAENSTART": _ts(p.birth), "ADRNVN": f"{last},{first}"[:34],
        })))
        out.append(("009", r["009"]({"PNR": pnr, "START_MYNKOD_FOEDESTED": "7001"})))
        out.append(("010", r["010"]({"PNR": pnr, "LANDEKOD": "5100",
                                     "HAENSTART_STATSBORGERSKAB": _ts(p.birth)})))
        out.append(("011", r["011"]({"PNR": pnr, "FKIRK": rng.choice("FFFU"),
                                     "START_DT_FOLKEKIRKE": p.birth.isoformat()})))
        out.append(("012", r["012"]({
            "PNR": pnr, "CIVST": "D" if p.status == "90" else p.civil, "AEGTEPNR": p.spouse,
            "HAENSTART_CIVILSTAND": _ts(day if p.spouse else p.birth),
        })))
        age = (day - p.birth).days // 365
        if 25 < age < 60 and rng.random() < 0.3:
            for _ in range(rng.randrange(1, 3)):
                child = self.new_pnr(day - dt.timedelta(days=rng.randrange(0, 17 * 365)))
                out.append(("014", r["014"]({"PNR": pnr, "PNRBARN": child})))
        out.append(("015", r["015"]({"PNR": pnr, "MOR_DT": p.birth.isoformat(),
                                     "PNRMOR": "0000000000", "FAR_DT": p.birth.isoformat(),
                                     "PNRFAR": "0000000000"})))
        if age < 18:
            out.append(("016", r["016"]({"PNR": pnr, "RELTYP_FORAELDREMYN": "0003",
                                         "START_DT_FORAELDREMYN": p.birth.isoformat()})))
        if rng.random() < 0.01:
            out.append(("017", r["017"]({"PNR": pnr, "START_DT_UMYNDIG": day.isoformat(),
                                         "UMYN_RELTYP": "0002",
                                         "RELADRSAT_RELPNR_TXT": "Værge Advokatfirma"})))
        if age >= 18 and p.status < "30":
            out.append(("020", r["020"]({"PNR": pnr, "VALGKODE": "0001",
                                         "VALGRET_DT": p.birth.isoformat()})))
        if p.moved_from != "0000":
            out.append(("023", r["023"]({"PNR": pnr, "KOMKOD": p.moved_from,
                                         "VEJKOD": "0100", "HUSNR": "012",
                                         "TILFLYDTO": _ts(p.birth), "FRAFLYDTO": _ts(day)})))
        if rng.random() < 0.05:
            out.append(("026", r["026"]({"PNR": pnr, "FORNVN": first, "EFTERNVN": "Olsen",
                                         "NVNHAENSTART": _ts(p.birth),
                                         "NVNHAENSLUT": _ts(day)})))
        for code, mark in p.events:
            out.append(("099", r["099"]({
                "PNR": pnr,
                "TIMESTAMPU": _ts(day, f"{rng.randrange(6, 20):02d}{rng.randrange(60):02d}"),
                "HAENDELSE": code, "AFLEDTMRK": mark,
            })))
        return out


def generate(
    out: BinaryIO,
    *,
    production_date: dt.date,
    persons: int,
    seed: int = 0,
    task_number: str = "431101",
    previous_date: dt.date | None = None,
    crlf: bool = False,
    scatter_003: float = 0.05,
    progress: Callable[[int, int], None] | None = None,
    kind: str = CHANGE,
    population: int = 0,
    population_seed: int = 0,
) -> GeneratedExtract:
    """Write a synthetic extract with exactly ``persons`` persons to ``out``.

    A change extract: families (a person plus relatives touched by the same event) are
    generated until the count is reached; the last family is cut short rather than
    overshoot, since benchmarks and tests size their inputs by this number. With
    ``population`` the persons events happen to are drawn from that population
    (``population_seed``), so the extract applies to a replica loaded from its status
    extract. A status extract (``kind="status"``): the population of ``persons``
    persons (seed ``population_seed``), each person's block without events.
    ``previous_date`` defaults to the previous CPR delivery day.
    """
    previous = previous_date or DeliveryCalendar.default().previous_delivery_day(production_date)
    eol = b"\r\n" if crlf else b"\n"
    gen = Generator(production_date, seed, population=population,
                    population_seed=population_seed)
    groups = gen.residents(persons) if kind == STATUS else gen.families()
    start = LAYOUTS["000"].render({"SORTFELT": "0000000000", "OPGAVENR": task_number,
                                   "PRODDTO": f"{production_date:%Y%m%d}",
                                   "PRODDTOFORRIG": f"{previous:%Y%m%d}"})
    written = len(start) + len(eol)
    out.write(start + eol)
    records = count = 0
    at_end: list[bytes] = []
    held: list[bytes] = []  # 003 records written after the next person
    for group in groups:
        if count >= persons:
            break
        chunk = bytearray()
        for p in group[: persons - count]:
            count += 1
            for code, line in gen.block(p):
                if code == "003" and gen.rng.random() < scatter_003:
                    (at_end if gen.rng.random() < 0.5 else held).append(line)
                    continue
                chunk += line + eol
                records += 1
            if held and gen.rng.random() < 0.5:
                chunk += eol.join(held) + eol
                records += len(held)
                held.clear()
        out.write(chunk)
        written += len(chunk)
        if progress and count % 10_000 < 3:
            progress(count, persons)
    tail = held + at_end
    for line in tail:
        out.write(line + eol)
        written += len(line) + len(eol)
    records += len(tail)
    end = LAYOUTS["999"].render({"SORTFELT": "9999999999", "TAELLER": f"{records}"}) + eol
    out.write(end)
    written += len(end)
    return GeneratedExtract(count, records, written, production_date, previous, task_number)
