"""Rob Northen Compression (RNC ProPack), method 1: a small decompressor in Python and numpy.

Revolution's "Beneath a Steel Sky" stores its speech packed with it
(:mod:`speechsep.data.sources.steel_sky`). What follows is the format in our own words, as
ScummVM's ``engines/sky/rnc_deco.cpp`` reads it; the code here is written from that description.

Header, 18 bytes, numbers big-endian:

====== ====== =========================================================
offset bytes  meaning
====== ====== =========================================================
0      4      ``b"RNC\\x01"`` (the 1 is the method)
4      4      unpacked size
8      4      packed size (the bytes after the header)
12     2      CRC-16 of the unpacked bytes
14     2      CRC-16 of the packed bytes
16     1      "leeway": spare room for unpacking in place (not needed here)
17     1      number of chunks
====== ====== =========================================================

The CRC is CRC-16/ARC: reflected polynomial 0xA001, initial value 0, no final xor (the check value
of ``b"123456789"`` is 0xBB3D).

Packed data: a bit stream read in 16-bit little-endian words, least significant bit first, with
byte strings embedded in it. A word is fetched only when the bits left in the current one run out;
a literal string is taken from the byte position just after the last fetched word, and the next
word is fetched after the string. The first two bits are flags (encryption, lock) that we ignore.

Each chunk holds three Huffman tables, for literal-run lengths, match distances and match lengths.
A table is a 5-bit symbol count ``n`` (at most 16) and ``n`` 4-bit code lengths (0: unused). Codes
are canonical: by increasing length, then by symbol, each the next value of a counter that counts
from the most significant end; they sit bit-reversed in the stream since the stream is read from
its least significant end. A decoded symbol ``s`` stands for the number ``s`` when ``s < 2``, else
for ``2**(s-1)`` plus ``s-1`` further raw bits. Then comes a 16-bit count of steps. A step is a
literal run (``n`` bytes copied from the stream, ``n`` may be 0) followed, in every step but the
last, by a match: distance = table value + 1, length = table value + 2, copied from the output
already written (it may overlap what it writes). A table with no symbols keeps the previous
chunk's table.

Corrupt input raises :class:`RncError` (a ``ValueError``) whose message starts with the ``where``
the caller gave (a file and entry) and names the problem.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["RNC_MAGIC", "HEADER_SIZE", "RncError", "RncHeader", "read_header", "crc16", "unpack"]

RNC_MAGIC = b"RNC\x01"
HEADER_SIZE = 18
_MAX_SYMBOLS = 16


class RncError(ValueError):
    """Input that is not, or no longer, valid RNC method-1 data; the message says where and why."""


@dataclass(frozen=True)
class RncHeader:
    unpacked_size: int
    packed_size: int
    unpacked_crc: int
    packed_crc: int
    leeway: int
    chunks: int


def read_header(data: bytes, where: str = "RNC data") -> RncHeader:
    """The 18-byte header at the start of ``data``; :class:`RncError` when it is not one."""
    if len(data) < HEADER_SIZE:
        raise RncError(f"{where}: {len(data)} bytes, shorter than the {HEADER_SIZE}-byte RNC header")
    if data[:4] != RNC_MAGIC:
        raise RncError(f"{where}: no RNC method-1 signature (starts with {bytes(data[:4])!r})")
    return RncHeader(
        unpacked_size=int.from_bytes(data[4:8], "big"), packed_size=int.from_bytes(data[8:12], "big"),
        unpacked_crc=int.from_bytes(data[12:14], "big"), packed_crc=int.from_bytes(data[14:16], "big"),
        leeway=data[16], chunks=data[17],
    )


# --- CRC-16/ARC, vectorised ----------------------------------------------------------------------
#
# With a zero initial value the CRC is linear over GF(2): the CRC of a message is the xor of what
# each byte contributes, and a byte's contribution depends only on its value and on how many bytes
# follow it. So a message is cut into blocks of _BLOCK bytes (zero-padded in front, which changes
# nothing), every block's CRC is one table lookup per byte and an xor-reduction in numpy, and the
# block CRCs are chained in Python: the register after a block = (register moved through _BLOCK
# zero bytes) xor (the block's own CRC). Moving a register through zeros is linear too: two tables.

_BLOCK = 256


def _byte_table() -> np.ndarray:
    table = np.zeros(256, dtype=np.uint32)
    for value in range(256):
        reg = value
        for _ in range(8):
            reg = (reg >> 1) ^ 0xA001 if reg & 1 else reg >> 1
        table[value] = reg
    return table


def _crc_tables() -> tuple[np.ndarray, list[int], list[int]]:
    step = _byte_table()
    # contrib[k, b]: the register after byte b followed by k zero bytes (from a zero register)
    contrib = np.zeros((_BLOCK, 256), dtype=np.uint32)
    contrib[0] = step
    for k in range(1, _BLOCK):
        prev = contrib[k - 1]
        contrib[k] = step[prev & 0xFF] ^ (prev >> 8)
    # a byte at position i of a block is followed by _BLOCK - 1 - i bytes
    by_position = contrib[::-1].astype(np.uint16)

    def through_zeros(reg: int) -> int:
        for _ in range(_BLOCK):
            reg = int(step[reg & 0xFF]) ^ (reg >> 8)
        return reg

    low = [through_zeros(v) for v in range(256)]
    high = [through_zeros(v << 8) for v in range(256)]
    return by_position, low, high


_BY_POSITION, _SHIFT_LOW, _SHIFT_HIGH = _crc_tables()
_COLUMNS = np.arange(_BLOCK)


def crc16(data: bytes | bytearray | memoryview | np.ndarray) -> int:
    """CRC-16/ARC of ``data`` (``crc16(b"123456789") == 0xBB3D``)."""
    buf = np.frombuffer(bytes(data), dtype=np.uint8) if not isinstance(data, np.ndarray) else data.astype(np.uint8)
    if buf.size == 0:
        return 0
    pad = (-buf.size) % _BLOCK
    blocks = np.concatenate([np.zeros(pad, dtype=np.uint8), buf]).reshape(-1, _BLOCK)
    block_crcs = np.bitwise_xor.reduce(_BY_POSITION[_COLUMNS, blocks], axis=1).tolist()
    reg = 0
    low, high = _SHIFT_LOW, _SHIFT_HIGH
    for c in block_crcs:
        reg = low[reg & 0xFF] ^ high[reg >> 8] ^ c
    return reg


# --- Huffman tables ------------------------------------------------------------------------------

class _Table:
    """A canonical code as a lookup list: ``entries[next width bits] = symbol << 5 | code length``
    (-1 where no code matches: an incomplete code)."""

    __slots__ = ("width", "mask", "entries")

    def __init__(self, lengths: list[int], where: str):
        used = [(n, s) for s, n in enumerate(lengths) if n]
        if not used:  # every length 0: nothing can be decoded with it
            self.width, self.mask, self.entries = 0, 0, [-1]
            return
        if sum(1 << (16 - n) for n, _ in used) > 1 << 16:
            raise RncError(f"{where}: a Huffman table's code lengths {lengths} are over-subscribed")
        width = max(n for n, _ in used)
        entries = np.full(1 << width, -1, dtype=np.int64)
        counter = 0  # the next code, 16 bits wide, counted from the most significant end
        for n, s in sorted(used):
            code = counter >> (16 - n)
            reversed_code = int(f"{code:0{n}b}"[::-1], 2)
            entries[reversed_code::1 << n] = s << 5 | n
            counter += 1 << (16 - n)
        self.width, self.mask, self.entries = width, (1 << width) - 1, entries.tolist()


# --- the decoder ---------------------------------------------------------------------------------

def unpack(data: bytes, where: str = "RNC data", *, check_crc: bool = True) -> bytes:
    """The unpacked bytes of one RNC method-1 block (header included in ``data``).

    :class:`RncError` naming ``where`` when the header, a CRC, a table or a step is wrong, or when
    the stream runs past its end or the output does not come to the size the header gives.
    """
    head = read_header(data, where)
    end = HEADER_SIZE + head.packed_size
    if len(data) < end:
        raise RncError(f"{where}: {len(data) - HEADER_SIZE} packed bytes after the header, "
                       f"the header says {head.packed_size}")
    if check_crc and crc16(data[HEADER_SIZE:end]) != head.packed_crc:
        raise RncError(f"{where}: CRC of the packed bytes does not match the header (corrupt data)")
    if head.chunks == 0:
        raise RncError(f"{where}: the header gives 0 chunks")
    # Words are fetched two bytes at a time; zeros past the end let a peek look ahead safely.
    src = bytes(data[:end]) + b"\0\0\0\0"
    size = head.unpacked_size
    out = bytearray()

    # Bit reader state: `bits` holds `count` not yet consumed bits (next one lowest), `pos` is the
    # byte where the next word (or literal string) starts.
    bits, count, pos = 0, 0, HEADER_SIZE

    def read(n: int) -> int:
        nonlocal bits, count, pos
        if count < n:
            bits |= (src[pos] | src[pos + 1] << 8) << count
            pos += 2
            count += 16
        value = bits & ((1 << n) - 1)
        bits >>= n
        count -= n
        return value

    def read_table() -> _Table | None:
        n = read(5)
        if n == 0:
            return None
        if n > _MAX_SYMBOLS:
            raise RncError(f"{where}: a Huffman table claims {n} symbols (at most {_MAX_SYMBOLS})")
        return _Table([read(4) for _ in range(n)], where)

    def value(table: _Table) -> int:
        # read() written out: this runs for every symbol, and calls are what cost in Python
        nonlocal bits, count, pos
        if count < table.width:  # the code may reach into the next word: peek at it, fetch if it does
            word = src[pos] | src[pos + 1] << 8
            entry = table.entries[(bits | word << count) & table.mask]
            if (entry & 31) > count:
                bits |= word << count
                pos += 2
                count += 16
        else:
            entry = table.entries[bits & table.mask]
        if entry < 0:
            raise RncError(f"{where}: a bit pattern matches no Huffman code (corrupt data) "
                           f"at packed byte {pos - HEADER_SIZE}")
        n = entry & 31
        bits >>= n
        count -= n
        extra = (entry >> 5) - 1
        if extra < 1:
            return extra + 1
        if count < extra:
            bits |= (src[pos] | src[pos + 1] << 8) << count
            pos += 2
            count += 16
        low = bits & ((1 << extra) - 1)
        bits >>= extra
        count -= extra
        return (1 << extra) | low

    read(2)  # two flag bits
    tables: list[_Table | None] = [None, None, None]
    for chunk in range(head.chunks):
        for k in range(3):
            table = read_table()
            if table is not None:
                tables[k] = table
            elif tables[k] is None:
                raise RncError(f"{where}: chunk {chunk} has an empty Huffman table and no earlier one to keep")
        raw, dist, length = tables
        steps = read(16)
        if steps == 0:
            raise RncError(f"{where}: chunk {chunk} has 0 steps")
        for step in range(steps, 0, -1):
            run = value(raw)
            if run:
                if pos + run > end:
                    raise RncError(f"{where}: a literal run of {run} bytes runs past the packed data")
                out += src[pos:pos + run]
                pos += run
            if step > 1:
                back = value(dist) + 1
                n = value(length) + 2
                have = len(out)
                if back > have:
                    raise RncError(f"{where}: a match reaches {back} bytes back with only {have} written")
                start = have - back
                if back >= n:
                    out += out[start:start + n]
                else:  # overlapping: the last `back` bytes repeat
                    pattern = out[start:]
                    out += (pattern * (n // back + 1))[:n]
            if len(out) > size:
                raise RncError(f"{where}: unpacks to more than the {size} bytes the header gives")
        if pos > end + 2:
            raise RncError(f"{where}: the bit stream runs {pos - end} bytes past the packed data")
    if len(out) != size:
        raise RncError(f"{where}: unpacked {len(out)} bytes, the header gives {size}")
    if check_crc and crc16(out) != head.unpacked_crc:
        raise RncError(f"{where}: CRC of the unpacked bytes does not match the header (corrupt data)")
    return bytes(out)
