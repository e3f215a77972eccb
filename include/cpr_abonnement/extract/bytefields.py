"""Fixed-width fields read straight from raw bytes, for many lines at once.

:class:`Lines` gathers the same columns of every line of a block through a strided view;
the functions below turn 8-byte little-endian words of those columns into numbers and
digit checks with SWAR arithmetic (SIMD within a register): every byte of a word in one
integer operation, instead of a loop over bytes. They know nothing of CPR's layouts; the
scanner (:mod:`cpr_abonnement.extract.index`) says which columns to read.
"""

from __future__ import annotations

import numpy as np


class Lines:
    """Complete lines of one block, with fixed-width column access.

    Columns are gathered through a strided view (one row per byte offset), so taking
    ``width`` bytes at each line start copies just those bytes; lines shorter than the
    columns asked for read as spaces, as the format says.
    """

    def __init__(self, buf: np.ndarray, starts: np.ndarray, lengths: np.ndarray) -> None:
        self.buf, self.starts, self.lengths = buf, starts, lengths

    def columns(self, first: int, width: int, rows: np.ndarray | None = None) -> np.ndarray:
        starts = self.starts if rows is None else self.starts[rows]
        lengths = self.lengths if rows is None else self.lengths[rows]
        view = np.lib.stride_tricks.as_strided(
            self.buf, shape=(len(self.buf) - width + 1, width), strides=(1, 1), writeable=False
        )
        out = view[starts + (first - 1) if first > 1 else starts]
        short = np.flatnonzero(lengths < first - 1 + width)
        if len(short):  # trailing spaces stripped by whoever wrote the file
            inside = np.arange(width) < lengths[short, None] - (first - 1)
            out[short] = np.where(inside, out[short], 32)
        return out

    def words(self, first: int, count: int, rows: np.ndarray | None = None) -> np.ndarray:
        """``count`` little-endian 8-byte words per row, read from column ``first``."""
        return self.columns(first, 8 * count, rows).view("<u8")


_ZEROS = np.uint64(0x3030_3030_3030_3030)
_HIGH = np.uint64(0xF0F0_F0F0_F0F0_F0F0)
_SIX = np.uint64(0x0606_0606_0606_0606)
_PAIRS = np.uint64(0x00FF_00FF_00FF_00FF)
_QUADS = np.uint64(0x0000_FFFF_0000_FFFF)
_LOW32 = np.uint64(0xFFFF_FFFF)


def byte_mask(byte: int, width: int) -> np.uint64:
    return np.uint64(((1 << (8 * width)) - 1) << (8 * byte))


def all_digits(words: np.ndarray, mask: np.uint64) -> np.ndarray:
    """Whether every byte selected by ``mask`` is an ASCII digit, eight bytes at a time.

    A byte is a digit when its high nibble is 3 and stays 3 after adding 6; bytes
    outside the mask are replaced by '0' first. A carry out of a non-digit byte can
    only disturb a row that already fails.
    """
    x = (words & mask) | (_ZEROS & ~mask)
    return ((x & _HIGH) == _ZEROS) & (((x + _SIX) & _HIGH) == _ZEROS)


def word_number(words: np.ndarray, byte: int, width: int) -> np.ndarray:
    """Value of ``width`` ASCII digits from byte ``byte`` of each word (SWAR).

    The digits are moved to the top of the word behind leading '0's, then adjacent
    digits, pairs and quads are combined with one multiply-add each: three steps for
    eight digits instead of a loop over them. Garbage where the bytes are not digits.
    """
    x = words >> np.uint64(8 * byte)
    if width < 8:
        fill = np.uint64(int(_ZEROS) >> (8 * width))
        x = (x << np.uint64(8 * (8 - width))) | fill
    x = x - _ZEROS
    x = (x * np.uint64(10) + (x >> np.uint64(8))) & _PAIRS
    x = (x * np.uint64(100) + (x >> np.uint64(16))) & _QUADS
    x = (x * np.uint64(10_000) + (x >> np.uint64(32))) & _LOW32
    return x.astype(np.int64)


def number(words: np.ndarray, start: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Digits at bytes ``start..start+width-1`` of rows of words: value, and whether they
    were all digits. A field crossing a word boundary is read in parts."""
    value = ok = None
    while width:
        word, byte = divmod(start, 8)
        take = min(width, 8 - byte)
        part = word_number(words[:, word], byte, take)
        good = all_digits(words[:, word], byte_mask(byte, take))
        value = part if value is None else value * 10**take + part
        ok = good if ok is None else ok & good
        start, width = start + take, width - take
    return value, ok


def raw(words: np.ndarray, start: int, width: int) -> np.ndarray:
    """The bytes at ``start..start+width-1`` (within one word) as an integer."""
    word, byte = divmod(start, 8)
    if byte + width > 8:
        raise ValueError(f"bytes {start}-{start + width - 1} cross a word boundary")
    return ((words[:, word] >> np.uint64(8 * byte)) & byte_mask(0, width)).astype(np.int64)
