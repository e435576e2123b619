"""The protobuf wire format, decoded by hand (W&B's records need only a few fields).

:func:`fields` walks a message's fields; the helpers read a field's value as text, as a
signed or zigzag integer, or as a ``google.protobuf.Timestamp``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

# google.protobuf.Timestamp
TIMESTAMP_SECONDS = 1
TIMESTAMP_NANOS = 2

WIRE_VARINT, WIRE_FIXED64, WIRE_BYTES, WIRE_FIXED32 = 0, 1, 2, 5


class DecodeError(ValueError):
    """A record's bytes are not a valid protobuf message of the expected shape."""


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while shift < 70:
        try:
            byte = buf[pos]
        except IndexError:
            raise DecodeError("truncated varint") from None
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, pos
        shift += 7
    raise DecodeError("varint longer than 10 bytes")


def fields(buf: bytes) -> Iterator[tuple[int, int, Any]]:
    """``(field number, wire type, value)`` of every field of a message.

    Varints are ints, length-delimited fields bytes, fixed64/fixed32 fields their raw
    bytes. Raises :class:`DecodeError` on bytes that are not a message (groups included:
    W&B does not use them).
    """
    pos, end = 0, len(buf)
    while pos < end:
        tag = buf[pos]  # one-byte varints (nearly every tag and length) without a call
        if tag < 0x80:
            pos += 1
        else:
            tag, pos = _varint(buf, pos)
        number, wire = tag >> 3, tag & 7
        if number == 0:
            raise DecodeError("field number 0")
        if wire == WIRE_BYTES:
            size = buf[pos] if pos < end else 0x80
            if size < 0x80:
                pos += 1
            else:
                size, pos = _varint(buf, pos)
            if pos + size > end:
                raise DecodeError("length-delimited field runs past the message")
            value, pos = buf[pos : pos + size], pos + size
        elif wire == WIRE_VARINT:
            value, pos = _varint(buf, pos)
        elif wire in (WIRE_FIXED64, WIRE_FIXED32):
            width = 8 if wire == WIRE_FIXED64 else 4
            if pos + width > end:
                raise DecodeError("fixed-width field runs past the message")
            value, pos = buf[pos : pos + width], pos + width
        else:
            raise DecodeError(f"unsupported wire type {wire}")
        yield number, wire, value


def as_text(value: Any) -> str:
    if not isinstance(value, bytes):
        raise DecodeError("expected a string field")
    return value.decode("utf-8", errors="replace")


def signed(value: int, bits: int = 64) -> int:
    """A varint read as a two's-complement int32/int64."""
    value &= (1 << 64) - 1
    if value >= 1 << (bits - 1):
        value -= 1 << 64 if value >= 1 << 63 else 1 << bits
    return value


def zigzag(value: int) -> int:
    return (value >> 1) ^ -(value & 1)


def timestamp(buf: bytes) -> float:
    seconds = nanos = 0
    for number, wire, value in fields(buf):
        if number == TIMESTAMP_SECONDS and wire == WIRE_VARINT:
            seconds = signed(value)
        elif number == TIMESTAMP_NANOS and wire == WIRE_VARINT:
            nanos = signed(value, 32)
    return seconds + nanos / 1e9
