"""CRC-16/CCITT-FALSE in gateware: one byte per clock, as the host link needs."""

from amaranth import Cat, Const, Value

POLY = 0x1021
INIT = 0xFFFF


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
