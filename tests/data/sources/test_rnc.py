"""The RNC method-1 decompressor on streams written by the test-only writer, and on corrupt input."""

from __future__ import annotations

import numpy as np
import pytest
from rnc_fakes import EVEN_LENGTHS, MIXED_LENGTHS, BitWriter, crc16_reference, encode, with_header

from speechsep.data.sources.rnc import HEADER_SIZE, RncError, crc16, read_header, unpack


def _lsb(value: int, n: int) -> str:
    """An n-bit field as the decoder reads it, first bit first (least significant first)."""
    return "".join(str((value >> k) & 1) for k in range(n))


def test_crc16_is_crc16_arc():
    assert crc16(b"123456789") == 0xBB3D  # the catalogued check value of CRC-16/ARC
    assert crc16(b"") == 0
    rng = np.random.default_rng(0)
    for size in (1, 255, 256, 257, 1000, 4097):
        data = rng.integers(0, 256, size, dtype=np.uint8).tobytes()
        assert crc16(data) == crc16_reference(data), size


def test_hand_assembled_stream():
    # Every table: two symbols, one bit each (bit 0 -> symbol 0, bit 1 -> symbol 1). Two steps:
    # literal "A" and a match (distance 0 + 1, length 0 + 2), then literal "B".
    table = _lsb(2, 5) + _lsb(1, 4) + _lsb(1, 4)
    bits = "00" + table * 3 + _lsb(2, 16)  # flags, tables, step count: 57 bits
    bits += "1" + "0" + "0" + "1"  # raw length 1 | distance 0 | length 0 | raw length 1
    bits = bits.ljust(64, "0")
    words = b"".join(int(bits[i:i + 16][::-1], 2).to_bytes(2, "little") for i in range(0, 64, 16))
    # both raw lengths sit in the fourth word, so "A" and then "B" follow it
    packed = words + b"AB"
    assert unpack(with_header(packed, b"AAAB")) == b"AAAB"
    # the same bytes with "A" placed before the fourth word do not decode to it
    with pytest.raises(RncError):
        unpack(with_header(words[:6] + b"A" + words[6:] + b"B", b"AAAB"))


def test_literal_only():
    packed, expected = encode([[(b"hello, steel sky", None)]])
    assert unpack(packed) == expected == b"hello, steel sky"
    head = read_header(packed)
    assert (head.unpacked_size, head.packed_size, head.chunks) == (16, len(packed) - HEADER_SIZE, 1)


def test_matches_overlapping_and_long_values():
    noise = np.random.default_rng(1).integers(0, 256, 300, dtype=np.uint8).tobytes()
    steps = [
        (b"\x80", (1, 40)),  # a run of silence: the match overlaps what it writes
        (b"abc", (3, 9)),  # "abc" three more times
        (noise, (300, 300)),  # a long literal and a long match (8 extra bits each)
        (b"", (7, 2)),  # no literal, the shortest match
        (b"end", None),
    ]
    packed, expected = encode([steps], lengths=(MIXED_LENGTHS, MIXED_LENGTHS, EVEN_LENGTHS))
    assert expected.startswith(b"\x80" * 41 + b"abc" * 4) and len(expected) == 41 + 12 + 600 + 2 + 3
    assert unpack(packed) == expected


def test_several_chunks_and_an_empty_table_keeps_the_previous_one():
    chunk = [(b"xy", (2, 6)), (b"z", None)]
    packed, expected = encode([chunk, chunk, chunk])
    assert unpack(packed) == expected == b"xyxyxyxyz" * 3
    packed, expected = encode([chunk, chunk], lengths=(MIXED_LENGTHS, EVEN_LENGTHS, MIXED_LENGTHS),
                              later_lengths=(None, None, None))
    assert unpack(packed) == expected == b"xyxyxyxyz" * 2


@pytest.fixture
def packed():
    return encode([[(b"abcd", (4, 8)), (b"ef", None)]])[0]


def _reheader(packed: bytes, **fields) -> bytes:
    body = packed[HEADER_SIZE:]
    head = read_header(packed)
    fields = {"unpacked_size": head.unpacked_size, "unpacked_crc": head.unpacked_crc, **fields}
    out_stub = b"\0" * fields.pop("unpacked_size")
    return with_header(body, out_stub, unpacked_size=len(out_stub), **fields)


def test_corrupt_header_errors_name_the_entry(packed):
    where = "sky.dsk:50001"
    with pytest.raises(RncError, match=rf"^{where}: no RNC method-1 signature"):
        unpack(b"RNC\x02" + packed[4:], where)
    with pytest.raises(RncError, match=rf"^{where}: 5 bytes, shorter than the 18-byte RNC header"):
        unpack(packed[:5], where)
    with pytest.raises(RncError, match=rf"^{where}: \d+ packed bytes after the header, the header says \d+"):
        unpack(packed[:-1], where)
    zero_chunks = packed[:17] + b"\x00" + packed[18:]
    with pytest.raises(RncError, match=rf"^{where}: the header gives 0 chunks"):
        unpack(zero_chunks, where)


def test_crc_errors(packed):
    flipped = bytearray(packed)
    flipped[HEADER_SIZE + 1] ^= 0x10
    with pytest.raises(RncError, match="x: CRC of the packed bytes does not match"):
        unpack(bytes(flipped), "x")
    wrong = _reheader(packed, unpacked_crc=read_header(packed).unpacked_crc ^ 1)
    with pytest.raises(RncError, match="x: CRC of the unpacked bytes does not match"):
        unpack(wrong, "x")
    assert unpack(wrong, "x", check_crc=False) == b"abcdabcdabcdef"  # only the CRC was wrong


def test_size_errors(packed):
    with pytest.raises(RncError, match="unpacks to more than the 10 bytes the header gives"):
        unpack(_reheader(packed, unpacked_size=10), "x", check_crc=False)
    with pytest.raises(RncError, match="unpacked 14 bytes, the header gives 20"):
        unpack(_reheader(packed, unpacked_size=20), "x", check_crc=False)


def test_stream_errors():
    with pytest.raises(RncError, match="a match reaches 5 bytes back with only 1 written"):
        unpack(encode([[(b"a", (5, 2)), (b"", None)]])[0], "x", check_crc=False)
    with pytest.raises(RncError, match=r"code lengths \[1, 1, 1\] are over-subscribed"):
        unpack(encode([[(b"", None)]], lengths=([1, 1, 1],) * 3)[0], "x")
    with pytest.raises(RncError, match="claims 17 symbols"):
        unpack(encode([[(b"", None)]], lengths=([5] * 17,) * 3)[0], "x")
    with pytest.raises(RncError, match="chunk 0 has an empty Huffman table and no earlier one"):
        unpack(encode([[(b"abc", None)]], lengths=(None, EVEN_LENGTHS, EVEN_LENGTHS))[0], "x")
    # a literal run longer than what is left of the packed data
    body = encode([[(b"abc", None)]])[0][HEADER_SIZE:-1]
    with pytest.raises(RncError, match="a literal run of 3 bytes runs past the packed data"):
        unpack(with_header(body, b"abc"), "x")
    # an incomplete code (symbol 0 alone, code "0") meets a "1"
    w = BitWriter()
    w.bits(0, 2)
    for _ in range(3):
        w.bits(1, 5)
        w.bits(1, 4)
    w.bits(1, 16)
    w.bits(1, 1)
    with pytest.raises(RncError, match="x: a bit pattern matches no Huffman code"):
        unpack(with_header(w.getvalue(), b""), "x")
    # zero steps
    w = BitWriter()
    w.bits(0, 2)
    for _ in range(3):
        w.bits(1, 5)
        w.bits(1, 4)
    w.bits(0, 16)
    with pytest.raises(RncError, match="chunk 0 has 0 steps"):
        unpack(with_header(w.getvalue(), b""), "x")
