"""Change extracts made from a status extract's persons, for replica tests: a person's
block read from the status file, edited record by record through the layouts (a move,
a death, a new name, ...) and written in a day's change extract."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from builders import end, rec, start
from cpr_abonnement.extract.generator import generate
from cpr_abonnement.extract.layouts import LAYOUTS

Block = list[bytes]


def status_extract(folder: Path, day: dt.date, persons: int, seed: int = 5) -> Path:
    path = folder / f"D{day:%y%m%d}.L431101"
    with open(path, "wb") as fh:
        generate(fh, production_date=day, persons=persons, kind="status", population_seed=seed)
    return path


def blocks_of(path: Path) -> dict[str, Block]:
    """Each person's records, by PNR, in file order."""
    out: dict[str, Block] = {}
    for line in path.read_bytes().split(b"\n"):
        if line and line[:3] not in (b"000", b"999"):
            out.setdefault(line[3:13].decode(), []).append(line)
    return out


def fields(block: Block, code: str) -> dict[str, str] | None:
    line = next((line for line in block if line.startswith(code.encode())), None)
    return LAYOUTS[code].parse(line) if line else None


def edit(block: Block, code: str, **changes: str) -> Block:
    """The block with record ``code`` changed (added if missing), in record-type order."""
    old = fields(block, code)
    values = {k: v for k, v in (old or {}).items() if k != "RECORDTYPE"}
    if block:
        values.setdefault("PNR", block[0][3:13].decode())
    values.update(changes)
    new = LAYOUTS[code].render(values)
    kept = [line for line in block if not line.startswith(code.encode())]
    return sorted([*kept, new], key=lambda line: line[:3])


def drop(block: Block, code: str) -> Block:
    return [line for line in block if not line.startswith(code.encode())]


def renumber(block: Block, pnr: str) -> Block:
    return [line[:3] + pnr.encode() + line[13:] for line in block]


def change_extract(folder: Path, day: dt.date, previous: dt.date, blocks: list[Block],
                   ) -> Path:
    body = [line for block in blocks for line in block]
    path = folder / f"D{day:%y%m%d}.L431101"
    path.write_bytes(b"\n".join([start(day, previous), *body, end(len(body))]) + b"\n")
    return path


def event(pnr: str, day: dt.date, code: str) -> bytes:
    return rec("099", pnr, TIMESTAMPU=f"{day:%Y%m%d}0915", HAENDELSE=code)
