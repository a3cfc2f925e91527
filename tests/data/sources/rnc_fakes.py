"""A test-only RNC method-1 writer: it does not search for matches, it writes the steps it is given.

Used to make packed streams whose unpacked bytes the tests know (``test_rnc.py``, ``test_steel_sky.py``).
The CRC here is the plain bytewise CRC-16/ARC, independent of the vectorised one under test.
"""

from __future__ import annotations

Step = tuple[bytes, tuple[int, int] | None]  # (literal bytes, (distance, length) of the match or None)

EVEN_LENGTHS = [4] * 16  # a complete code: every symbol 4 bits
MIXED_LENGTHS = [2, 2, 3, 4, 4, 5, 5, 5, 5, 6, 6, 6, 6, 6, 6, 6]  # complete too: sum 2**-n == 1


def crc16_reference(data: bytes) -> int:
    reg = 0
    for byte in data:
        reg ^= byte
        for _ in range(8):
            reg = (reg >> 1) ^ 0xA001 if reg & 1 else reg >> 1
    return reg


def canonical_codes(lengths: list[int]) -> dict[int, tuple[int, int]]:
    """symbol -> (code, length), codes MSB-first, counted by (length, symbol)."""
    codes, counter = {}, 0
    for n, s in sorted((n, s) for s, n in enumerate(lengths) if n):
        codes[s] = (counter >> (16 - n), n)
        counter += 1 << (16 - n)
    return codes


class BitWriter:
    """Bits into 16-bit little-endian words, LSB first; byte strings go after the last word begun."""

    def __init__(self):
        self.items: list = []  # [word value, bits used] lists and bytes
        self.word: list | None = None

    def bits(self, value: int, n: int) -> None:
        for k in range(n):
            if self.word is None or self.word[1] == 16:
                self.word = [0, 0]
                self.items.append(self.word)
            self.word[0] |= ((value >> k) & 1) << self.word[1]
            self.word[1] += 1

    def raw(self, data: bytes) -> None:
        self.items.append(bytes(data))

    def getvalue(self) -> bytes:
        return b"".join(i if isinstance(i, bytes) else i[0].to_bytes(2, "little") for i in self.items)


def _value(w: BitWriter, codes: dict[int, tuple[int, int]], v: int) -> None:
    if not codes:  # no table yet: a stream the decoder must refuse before it gets here
        return
    symbol = v if v < 2 else v.bit_length()
    code, n = codes[symbol]
    w.bits(int(f"{code:0{n}b}"[::-1], 2), n)  # the first bit read is the code's most significant
    if symbol >= 2:
        w.bits(v - (1 << (symbol - 1)), symbol - 1)


def encode(chunks: list[list[Step]], *, lengths: tuple[list[int] | None, ...] = (EVEN_LENGTHS,) * 3,
           later_lengths: tuple[list[int] | None, ...] | None = None) -> tuple[bytes, bytes]:
    """``(packed block with header, the bytes it unpacks to)``.

    ``chunks`` is a list of step lists; the last step of each chunk has no match. ``lengths`` gives
    the three tables' code lengths for the first chunk, ``later_lengths`` (default: the same) for the
    others; ``None`` writes an empty table (the decoder keeps the chunk before's).
    """
    w = BitWriter()
    w.bits(0, 2)  # the two flag bits
    out = bytearray()
    codes: list[dict] = [{}, {}, {}]
    for c, steps in enumerate(chunks):
        for k, table in enumerate(lengths if c == 0 or later_lengths is None else later_lengths):
            if table is None:
                w.bits(0, 5)
                continue
            codes[k] = canonical_codes(table)
            w.bits(len(table), 5)
            for n in table:
                w.bits(n, 4)
        w.bits(len(steps), 16)
        for i, (literal, match) in enumerate(steps):
            _value(w, codes[0], len(literal))
            if literal:
                w.raw(literal)
                out += literal
            assert (match is None) == (i == len(steps) - 1), "every step but the last of a chunk has a match"
            if match is not None:
                distance, length = match
                _value(w, codes[1], distance - 1)
                _value(w, codes[2], length - 2)
                for _ in range(length):
                    out.append(out[-distance] if distance <= len(out) else 0)  # invalid: tests of errors
    return with_header(w.getvalue(), bytes(out), chunks=len(chunks)), bytes(out)


def with_header(packed: bytes, out: bytes, *, chunks: int = 1, **fields) -> bytes:
    """An RNC header for ``packed`` (which unpacks to ``out``), then ``packed``; ``fields`` override
    ``unpacked_size``, ``packed_size``, ``unpacked_crc`` or ``packed_crc``."""
    values = {"unpacked_size": len(out), "packed_size": len(packed), "unpacked_crc": crc16_reference(out),
              "packed_crc": crc16_reference(packed), **fields}
    return (b"RNC\x01" + values["unpacked_size"].to_bytes(4, "big") + values["packed_size"].to_bytes(4, "big")
            + values["unpacked_crc"].to_bytes(2, "big") + values["packed_crc"].to_bytes(2, "big")
            + bytes([0, chunks]) + packed)
