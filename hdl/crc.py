"""CRC-16/CCITT-FALSE: in gateware (one byte per clock, as the host link needs) and in
Python (the host's side and the flash image), from one polynomial.

Polynomial 0x1021, initial value 0xFFFF, no reflection, no final XOR; the check value for
``b"123456789"`` is 0x29B1.
"""

from amaranth import Cat, Const, Value

__all__ = ["INIT", "POLY", "crc16", "crc16_next"]

POLY = 0x1021
INIT = 0xFFFF


def crc16(data: bytes | bytearray | memoryview, crc: int = INIT) -> int:
    """CRC-16/CCITT-FALSE of ``data``, continuing from ``crc``."""
    for byte in bytes(data):
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ POLY) if crc & 0x8000 else (crc << 1)
            crc &= 0xFFFF
    return crc


def crc16_next(crc: Value, byte: Value) -> Value:
    """The CRC-16/CCITT-FALSE register after shifting in ``byte`` (MSB first), combinationally.

    ``crc`` is the 16-bit register (start from :data:`INIT`); the result is a 16-bit value.
    Unrolled bit by bit, so it synthesises to a tree of XORs with no state.
    """
    bits = [crc[i] for i in range(16)]
    for k in range(7, -1, -1):
        feedback = bits[15] ^ byte[k]
        shifted = [Const(0, 1), *bits[:15]]
        bits = [shifted[i] ^ feedback if (POLY >> i) & 1 else shifted[i] for i in range(16)]
    return Cat(*bits)
