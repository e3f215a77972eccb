"""Record layouts of the CPR change extract U12170-P, as data.

One :class:`Layout` per record type, each field written in the notation of
``cpr-format.md`` (1-based, inclusive positions ``start-end``, type letters) so a
table here can be read side by side with the spec. Nothing else in the package slices
a record by hand: parsing goes through :meth:`Layout.field` / :meth:`Layout.parse`.

Notation (``cpr-format.md`` §0.2):

* ``N``    numeric, right-aligned, zero-filled
* ``A``    alphanumeric, left-aligned, space-filled
* ``D10``  date ``YYYY-MM-DD``
* ``TS12`` timestamp ``YYYYMMDDHHMM``
* ``U``    one-character uncertainty marker (``*`` or blank)
* ``M``    one-character name marker (``+``, ``*``, ``=`` or blank)
* ``D8``   date ``YYYYMMDD`` (only in record 000)

Sources: the record tables of ``cpr-format.md`` §1.2, §1.3, §1.9, §2 and §3.1, which
cite S1 (magenta-aps/cprbroker ``Definitions.xml``) and the independent parsers S2-S6.
Fields the spec leaves unnamed (021, the tail of 020) carry descriptive names. 050's
fields are unknown (only its length is), so its layout has just the common prefix.

Because the file is ISO-8859-1, one character is one byte and positions are byte
offsets. Lines shorter than the layout read as space-padded; longer lines keep their
extra columns (``Layout.length`` is the documented length, not a maximum).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Kind = Literal["N", "A", "D8", "D10", "TS12", "U", "M"]
ENCODING = "iso-8859-1"


def numeric(text: str) -> bool:
    """Whether ``text`` is all digits as an N field means it: ASCII only, because
    ``str.isdigit`` also accepts ``²``, ``³`` and ``¹``, which ISO-8859-1 has."""
    return text.isascii() and text.isdigit()


@dataclass(frozen=True, slots=True)
class Field:
    """One fixed-width field; ``start``/``end`` are 1-based and inclusive, as in the spec."""

    name: str
    start: int
    end: int
    kind: Kind

    @property
    def width(self) -> int:
        return self.end - self.start + 1

    @property
    def slice(self) -> slice:
        """Python slice over the line's bytes (0-based, end exclusive)."""
        return slice(self.start - 1, self.end)


@dataclass(frozen=True, slots=True)
class Layout:
    """The layout of one record type."""

    code: str
    name: str
    length: int
    section: str
    fields: tuple[Field, ...]
    #: Whether columns 4-13 hold the PNR of the person the record belongs to.
    person: bool = True
    _index: dict[str, Field] = field(default_factory=dict, compare=False, repr=False)
    _spans: dict[str, tuple[int, int, bool]] = field(
        default_factory=dict, compare=False, repr=False
    )

    def __post_init__(self) -> None:
        self._index.update({f.name: f for f in self.fields})
        self._spans.update({f.name: (f.start - 1, f.end, f.kind == "N") for f in self.fields})

    def __getitem__(self, name: str) -> Field:
        return self._index[name]

    def field(self, line: bytes, name: str) -> str:
        """Text of one field, reading a short line as space-padded (ISO-8859-1)."""
        f = self._index[name]
        raw = line[f.slice]
        if len(raw) < f.width:
            raw = raw.ljust(f.width, b" ")
        return raw.decode(ENCODING)

    def parse(self, line: bytes) -> dict[str, str]:
        """Every field of the record as text; extra trailing columns are ignored here."""
        return {f.name: self.field(line, f.name) for f in self.fields}

    def render(self, values: dict[str, str]) -> bytes:
        """Build a full-length record from field values (for the generator and tests).

        Values are padded by kind (``N`` zero-filled on the left, everything else
        space-filled on the right) and must not exceed the field width.
        """
        out = bytearray(b" " * self.length)
        out[0:3] = self.code.encode("ascii")
        for name, value in values.items():
            start, end, numeric = self._spans[name]
            width = end - start
            raw = value.encode(ENCODING)
            if len(raw) > width:
                raise ValueError(f"{self.code} {name}: {len(raw)} > width {width}")
            out[start:end] = raw.rjust(width, b"0") if numeric else raw.ljust(width)
        return bytes(out)


def _layout(
    code: str,
    name: str,
    length: int,
    section: str,
    *fields: tuple[str, int, int, Kind],
    key: str = "PNR",
    person: bool = True,
) -> Layout:
    prefix = (Field("RECORDTYPE", 1, 3, "N"), Field(key, 4, 13, "A"))
    return Layout(
        code, name, length, section, prefix + tuple(Field(*f) for f in fields), person
    )


def _address_lines(prefix: str, first: int, count: int = 5) -> list[tuple[str, int, int, Kind]]:
    return [(f"{prefix}{i + 1}", first + 34 * i, first + 34 * i + 33, "A") for i in range(count)]


LAYOUTS: dict[str, Layout] = {
    lay.code: lay
    for lay in [
        _layout(
            "000", "Startrecord", 35, "§1.2",
            ("OPGAVENR", 14, 19, "N"),
            ("PRODDTO", 20, 27, "D8"),
            ("PRODDTOFORRIG", 28, 35, "D8"),
            key="SORTFELT", person=False,
        ),
        _layout(
            "001", "Personoplysninger", 106, "§2 001",
            ("PNRGAELD", 14, 23, "A"),
            ("STATUS", 24, 25, "N"),
            ("STATUSHAENSTART", 26, 37, "TS12"),
            ("STATUSDTO_UMRK", 38, 38, "U"),
            ("KOEN", 39, 39, "A"),
            ("FOED_DT", 40, 49, "D10"),
            ("FOED_DT_UMRK", 50, 50, "U"),
            ("START_DT_PERSON", 51, 60, "D10"),
            ("START_DT_UMRK_PERSON", 61, 61, "U"),
            ("SLUT_DT_PERSON", 62, 71, "D10"),
            ("SLUT_DT_UMRK_PERSON", 72, 72, "U"),
            ("STILLING", 73, 106, "A"),
        ),
        _layout(
            "002", "Aktuelle adresseoplysninger", 306, "§2 002",
            ("KOMKOD", 14, 17, "N"),
            ("VEJKOD", 18, 21, "N"),
            ("HUSNR", 22, 25, "A"),
            ("ETAGE", 26, 27, "A"),
            ("SIDEDOER", 28, 31, "A"),
            ("BNR", 32, 35, "A"),
            ("CONVN", 36, 69, "A"),
            ("TILFLYDTO", 70, 81, "TS12"),
            ("TILFLYDTO_UMRK", 82, 82, "U"),
            ("TILFLYKOMDTO", 83, 94, "TS12"),
            ("TILFLYKOMDT_UMRK", 95, 95, "U"),
            ("FRAFLYKOMKOD", 96, 99, "N"),
            ("FRAFLYKOMDTO", 100, 111, "TS12"),
            ("FRAFLYKOMDT_UMRK", 112, 112, "U"),
            ("START_MYNKOD_ADRTXT", 113, 116, "N"),
            *_address_lines("ADR", 117),
            ("START_DT_ADRTXT", 287, 296, "D10"),
            ("SLET_DT_ADRTXT", 297, 306, "D10"),
        ),
        _layout(
            "003", "Adresseringsnavn og klarskriftadresse", 249, "§2 003",
            ("ADRNVN", 14, 47, "A"),
            ("CONVN", 48, 81, "A"),
            ("LOKALITET", 82, 115, "A"),
            ("STANDARDADR", 116, 149, "A"),
            ("BYNVN", 150, 183, "A"),
            ("POSTNR", 184, 187, "N"),
            ("POSTDISTTXT", 188, 207, "A"),
            ("KOMKOD", 208, 211, "N"),
            ("VEJKOD", 212, 215, "N"),
            ("HUSNR", 216, 219, "A"),
            ("ETAGE", 220, 221, "A"),
            ("SIDEDOER", 222, 225, "A"),
            ("BNR", 226, 229, "A"),
            ("VEJADRNVN", 230, 249, "A"),
        ),
        _layout(
            "004", "Beskyttelse", 37, "§2 004",
            ("BESKYTTYPE", 14, 17, "N"),
            ("START_DT_BESKYTTELSE", 18, 27, "D10"),
            ("SLET_DT_BESKYTTELSE", 28, 37, "D10"),
        ),
        _layout(
            "005", "Aktuelle udrejseoplysninger", 200, "§2 005",
            ("UDR_LANDEKOD", 14, 17, "N"),
            ("UDRDTO", 18, 29, "TS12"),
            ("UDRDTO_UMRK", 30, 30, "U"),
            *_address_lines("UDLANDADR", 31),
        ),
        _layout(
            "006", "Kontaktadresse", 203, "§2 006",
            *_address_lines("ADR_KONTAKTADR", 14),
            ("START_DT_KONTAKTADR", 184, 193, "D10"),
            ("SLET_DT_KONTAKTADR", 194, 203, "D10"),
        ),
        _layout(
            "007", "Aktuelle forsvindingsoplysninger", 26, "§2 007",
            ("FORSVINDDTO", 14, 25, "TS12"),
            ("FORSVINDDTO_UMRK", 26, 26, "U"),
        ),
        _layout(
            "008", "Aktuelle navneoplysninger", 193, "§2 008",
            ("FORNVN", 14, 63, "A"),
            ("FORNVN_MRK", 64, 64, "M"),
            ("MELNVN", 65, 104, "A"),
            ("MELNVN_MRK", 105, 105, "M"),
            ("EFTERNVN", 106, 145, "A"),
            ("EFTERNVN_MRK", 146, 146, "M"),
            ("NVNHAENSTART", 147, 158, "TS12"),
            ("HAENSTART_UMRK_NAVNE", 159, 159, "U"),
            ("ADRNVN", 160, 193, "A"),
        ),
        _layout(
            "009", "Fødselsregistreringsoplysninger", 37, "§2 009",
            ("START_MYNKOD_FOEDESTED", 14, 17, "N"),
            ("MYNTXT_FOEDESTED", 18, 37, "A"),
        ),
        _layout(
            "010", "Aktuelt statsborgerskab", 30, "§2 010",
            ("LANDEKOD", 14, 17, "N"),
            ("HAENSTART_STATSBORGERSKAB", 18, 29, "TS12"),
            ("HAENSTART_UMRK_STATSBORGERSKAB", 30, 30, "U"),
        ),
        _layout(
            "011", "Folkekirkeoplysninger", 25, "§2 011",
            ("FKIRK", 14, 14, "A"),
            ("START_DT_FOLKEKIRKE", 15, 24, "D10"),
            ("START_DT_UMRK_FOLKEKIRKE", 25, 25, "U"),
        ),
        _layout(
            "012", "Aktuel civilstand", 95, "§2 012",
            ("CIVST", 14, 14, "A"),
            ("AEGTEPNR", 15, 24, "A"),
            ("AEGTEFOED_DT", 25, 34, "D10"),
            ("AEGTEFOEDDT_UMRK", 35, 35, "U"),
            ("AEGTENVN", 36, 69, "A"),
            ("AEGTENVN_MRK", 70, 70, "M"),
            ("HAENSTART_CIVILSTAND", 71, 82, "TS12"),
            ("HAENSTART_UMRK_CIVILSTAND", 83, 83, "U"),
            ("SEP_HENVIS_CIVILSTAND", 84, 95, "A"),
        ),
        _layout(
            "013", "Aktuel separation", 36, "§2 013",
            ("SEP_HENVIS_SEPARATION", 14, 25, "A"),
            ("START_DT_SEPARATION", 26, 35, "D10"),
            ("START_DT_UMRK_SEPARATION", 36, 36, "U"),
        ),
        _layout("014", "Børn", 23, "§2 014", ("PNRBARN", 14, 23, "A")),
        _layout(
            "015", "Forældreoplysninger", 147, "§2 015",
            ("MOR_DT", 14, 23, "D10"),
            ("MOR_DT_UMRK", 24, 24, "U"),
            ("PNRMOR", 25, 34, "A"),
            ("MOR_FOED_DT", 35, 44, "D10"),
            ("MOR_FOED_DT_UMRK", 45, 45, "U"),
            ("MORNVN", 46, 79, "A"),
            ("MORNVN_MRK", 80, 80, "M"),
            ("FAR_DT", 81, 90, "D10"),
            ("FAR_DT_UMRK", 91, 91, "U"),
            ("PNRFAR", 92, 101, "A"),
            ("FAR_FOED_DT", 102, 111, "D10"),
            ("FAR_FOED_DT_UMRK", 112, 112, "U"),
            ("FARNVN", 113, 146, "A"),
            ("FARNVN_MRK", 147, 147, "M"),
        ),
        _layout(
            "016", "Forældremyndighed", 58, "§2 016",
            ("RELTYP_FORAELDREMYN", 14, 17, "N"),
            ("START_DT_FORAELDREMYN", 18, 27, "D10"),
            ("START_DT_UMRK_FORAELDREMYN", 28, 28, "U"),
            ("SLET_DT_FORAELDREMYN", 29, 38, "D10"),
            ("RELPNR", 39, 48, "A"),
            ("START_DT_RELPNR_PNR", 49, 58, "D10"),
        ),
        _layout(
            "017", "Umyndiggørelse og værge", 272, "§2 017",
            ("START_DT_UMYNDIG", 14, 23, "D10"),
            ("START_DT_UMRK_UMYNDIG", 24, 24, "U"),
            ("SLET_DT_UMYNDIG", 25, 34, "D10"),
            ("UMYN_RELTYP", 35, 38, "N"),
            ("RELPNR", 39, 48, "A"),
            ("START_DT_RELPNR_PNR", 49, 58, "D10"),
            ("RELADRSAT_RELPNR_TXT", 59, 92, "A"),
            ("START_DT_RELPNR_TXT", 93, 102, "D10"),
            *_address_lines("RELTXT", 103),
        ),
        _layout(
            "018", "Kommunale forhold", 60, "§2 018",
            ("KOMFORHTYP", 14, 14, "N"),
            ("KOMFORHKOD", 15, 19, "A"),
            ("START_DT_KOMMUNALE_FORHOLD", 20, 29, "D10"),
            ("START_DT_UMRK_KOMMUNALE_FORHOLD", 30, 30, "U"),
            ("BEMAERK_KOMMUNALE_FORHOLD", 31, 60, "A"),
        ),
        _layout(
            "019", "Notater", 75, "§2 019",
            ("NOTATNR", 14, 15, "N"),
            ("NOTATLINIE", 16, 55, "A"),
            ("START_DT_NOTAT", 56, 65, "D10"),
            ("SLET_DT_NOTAT", 66, 75, "D10"),
        ),
        _layout(
            "020", "Valgoplysninger", 47, "§2 020",
            ("VALGKODE", 14, 17, "N"),
            ("VALGRET_DT", 18, 27, "D10"),
            ("START_DT_VALGOPLYSNINGER", 28, 37, "D10"),
            ("SLET_DT_VALGOPLYSNINGER", 38, 47, "D10"),
        ),
        _layout(
            "021", "Flyttepåbud", 63, "§2 021",
            ("START_DT_FLYTTEPAABUD", 14, 23, "D10"),
            ("TEKST_FLYTTEPAABUD", 24, 63, "A"),
        ),
        _layout(
            "022", "Historiske personnumre", 45, "§2 022",
            ("GAMMELT_PNR", 14, 23, "A"),
            ("START_DT_PERSON", 24, 33, "D10"),
            ("START_DT_UMRK_PERSON", 34, 34, "U"),
            ("SLUT_DT_PERSON", 35, 44, "D10"),
            ("SLUT_DT_UMRK_PERSON", 45, 45, "U"),
        ),
        _layout(
            "023", "Historiske adresser", 96, "§2 023",
            ("ANNKOR", 14, 14, "A"),
            ("KOMKOD", 15, 18, "N"),
            ("VEJKOD", 19, 22, "N"),
            ("HUSNR", 23, 26, "A"),
            ("ETAGE", 27, 28, "A"),
            ("SIDEDOER", 29, 32, "A"),
            ("BNR", 33, 36, "A"),
            ("CONVN", 37, 70, "A"),
            ("TILFLYDTO", 71, 82, "TS12"),
            ("TILFLYDTO_UMRK", 83, 83, "U"),
            ("FRAFLYDTO", 84, 95, "TS12"),
            ("FRAFLYDTO_UMRK", 96, 96, "U"),
        ),
        _layout(
            "024", "Historiske ud- og indrejser", 218, "§2 024",
            ("ANNKOR", 14, 14, "A"),
            ("UDR_LANDEKOD", 15, 18, "N"),
            ("UDRDTO", 19, 30, "TS12"),
            ("UDRDTO_UMRK", 31, 31, "U"),
            ("INDR_LANDEKOD", 32, 35, "N"),
            ("INDRDTO", 36, 47, "TS12"),
            ("INDRDTO_UMRK", 48, 48, "U"),
            *_address_lines("UDLANDADR", 49),
        ),
        _layout(
            "025", "Historiske forsvindinger", 40, "§2 025",
            ("ANNKOR", 14, 14, "A"),
            ("FORSVINDDTO", 15, 26, "TS12"),
            ("FORSVINDDTO_UMRK", 27, 27, "U"),
            ("GENFINDDTO", 28, 39, "TS12"),
            ("GENFINDDTO_UMRK", 40, 40, "U"),
        ),
        _layout(
            "026", "Historiske navne", 173, "§2 026",
            ("ANNKOR", 14, 14, "A"),
            ("FORNVN", 15, 64, "A"),
            ("FORNVN_MRK", 65, 65, "M"),
            ("MELNVN", 66, 105, "A"),
            ("MELNVN_MRK", 106, 106, "M"),
            ("EFTERNVN", 107, 146, "A"),
            ("EFTERNVN_MRK", 147, 147, "M"),
            ("NVNHAENSTART", 148, 159, "TS12"),
            ("NVNHAENSTART_UMRK", 160, 160, "U"),
            ("NVNHAENSLUT", 161, 172, "TS12"),
            ("NVNHAENSLUT_UMRK", 173, 173, "U"),
        ),
        _layout(
            "027", "Historiske statsborgerskaber", 44, "§2 027",
            ("ANNKOR", 14, 14, "A"),
            ("LANDEKOD", 15, 18, "N"),
            ("HAENSTART", 19, 30, "TS12"),
            ("HAENSTART_UMRK", 31, 31, "U"),
            ("HAENSLUT", 32, 43, "TS12"),
            ("HAENSLUT_UMRK", 44, 44, "U"),
        ),
        _layout(
            "028", "Historiske folkekirkeoplysninger", 36, "§2 028",
            ("FKIRK", 14, 14, "A"),
            ("START_DT", 15, 24, "D10"),
            ("START_DT_UMRK", 25, 25, "U"),
            ("SLUT_DT", 26, 35, "D10"),
            ("SLUT_DT_UMRK", 36, 36, "U"),
        ),
        _layout(
            "029", "Historiske civilstande", 109, "§2 029",
            ("ANNKOR", 14, 14, "A"),
            ("CIVST", 15, 15, "A"),
            ("AEGTEPNR", 16, 25, "A"),
            ("AEGTEFOED_DT", 26, 35, "D10"),
            ("AEGTEFOED_DT_UMRK", 36, 36, "U"),
            ("AEGTENVN", 37, 70, "A"),
            ("AEGTENVN_MRK", 71, 71, "M"),
            ("HAENSTART", 72, 83, "TS12"),
            ("HAENSTART_UMRK", 84, 84, "U"),
            ("HAENSLUT", 85, 96, "TS12"),
            ("HAENSLUT_UMRK", 97, 97, "U"),
            ("SEP_HENVIS", 98, 109, "A"),
        ),
        _layout(
            "030", "Historiske separationer", 48, "§2 030",
            ("ANNKOR", 14, 14, "A"),
            ("SEP_HENVIS_SEPARATION", 15, 26, "A"),
            ("START_DT", 27, 36, "D10"),
            ("START_DT_UMRK", 37, 37, "U"),
            ("SLUT_DT", 38, 47, "D10"),
            ("SLUT_DT_UMRK", 48, 48, "U"),
        ),
        # 050: only the length is known (S2); the fields after the PNR are unpublished.
        _layout("050", "Kreditadvarsel", 29, "§2 050"),
        _layout(
            "052", "Umyndiggørelse og værge med værgemålstype", 287, "§2 052",
            ("START_DT_UMYNDIG", 14, 23, "D10"),
            ("START_DT_UMRK_UMYNDIG", 24, 24, "U"),
            ("SLET_DT_UMYNDIG", 25, 34, "D10"),
            ("UMYN_RELTYP", 35, 38, "N"),
            ("RELPNR", 39, 48, "A"),
            ("START_DT_RELPNR_PNR", 49, 58, "D10"),
            ("RELADRSAT_RELPNR_TXT", 59, 92, "A"),
            ("START_DT_RELPNR_TXT", 93, 102, "D10"),
            *_address_lines("RELTXT", 103),
            ("VAERGEMAALS_TYPE", 273, 287, "A"),
        ),
        _layout(
            "099", "Hændelser", 45, "§3.1",
            ("TIMESTAMPU", 14, 25, "TS12"),
            ("HAENDELSE", 26, 28, "A"),
            ("AFLEDTMRK", 29, 30, "A"),
            ("NGLKONST", 31, 45, "A"),
        ),
        _layout(
            "910", "Fejlrecord", 157, "§1.9",
            ("INDDATA", 14, 88, "A"),
            ("FEJLNR", 89, 92, "N"),
            ("FEJLTXT_UDTRAEK", 93, 157, "A"),
            key="SORTFELT", person=False,
        ),
        _layout(
            "997", "Kvittering for sletning af PNR-abonnement", 43, "§1.9",
            ("TIMESTAMPU", 14, 25, "TS12"),
            ("HAENDELSE", 26, 28, "A"),
            ("NGLKONST", 29, 43, "A"),
            person=False,
        ),
        _layout(
            "999", "Slutrecord", 21, "§1.3",
            ("TAELLER", 14, 21, "N"),
            key="SORTFELT", person=False,
        ),
    ]
}

#: Record types that belong to a person and are forwarded with that person.
PERSON_TYPES: frozenset[str] = frozenset(c for c, lay in LAYOUTS.items() if lay.person)
#: Platform records never forwarded to subscribers (product.md §3).
PLATFORM_TYPES: frozenset[str] = frozenset({"910", "997"})
