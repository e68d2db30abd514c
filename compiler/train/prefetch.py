"""A cache prefetch hint callable from numba kernels.

The transformer's attention tables are 3 GiB read one 128-byte row at a time in an order
known a few tables ahead, so training waits on memory, not arithmetic. Telling the CPU
which rows come next lets several misses overlap; the hint changes no value.
"""

from __future__ import annotations

from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

__all__ = ["prefetch_row"]


@intrinsic
def prefetch_row(typingctx, table, i, row):
    """Hint that ``table[i, row, :]`` (a float32 3-D array) will be read soon.

    Both ends of the row are hinted, as a 128-byte row need not sit in one cache line.
    """
    if not (isinstance(table, types.Array) and table.ndim == 3):
        return None
    sig = types.void(table, i, row)

    def codegen(context, builder, signature, args):
        aryty = signature.args[0]
        ary = context.make_array(aryty)(context, builder, args[0])
        ii = context.cast(builder, args[1], signature.args[1], types.intp)
        rr = context.cast(builder, args[2], signature.args[2], types.intp)
        last = builder.sub(cgutils.unpack_tuple(builder, ary.shape, 3)[2], ii.type(1))
        i8p = ir.IntType(8).as_pointer()
        i32 = ir.IntType(32)
        fnty = ir.FunctionType(ir.VoidType(), [i8p, i32, i32, i32])
        fn = cgutils.get_or_insert_function(builder.module, fnty, "llvm.prefetch.p0")
        for k in (ii.type(0), last):
            ptr = cgutils.get_item_pointer(
                context, builder, aryty, ary, [ii, rr, k], wraparound=False
            )
            # read access (0), high temporal locality (3), data cache (1)
            builder.call(fn, [builder.bitcast(ptr, i8p), i32(0), i32(3), i32(1)])
        return context.get_dummy_value()

    return sig, codegen
