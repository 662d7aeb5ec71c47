"""Small float64 arrays on the stack, so that LLVM can keep a leapfrog's state in registers.

An array made by ``np.empty`` lives on the heap behind an opaque allocation call: every update of
a position is a store and every read a load, and one chain's leapfrog (a chain of dependent
operations) runs about 2x slower than on scalars (measured: 15.5 vs 8.2 ns per banana step). An
``alloca`` of a compile-time size, indexed at compile-time offsets once the loops over a literal
dimension are unrolled, is promoted to registers by LLVM's SROA: the generic array code then runs
exactly as fast as hand-written scalar code. This is what ``csrc/core/hmc/leapfrog.hpp`` gets from
local arrays ``double x[W][D]``.

A stack array has no meminfo (no reference count) and lives in the frame of the function whose
code contains the call: never return it from that function. A borrowed matrix (a view of a heap
array without its meminfo) serves targets of run-time dimension the same way, minus the registers:
taking its rows costs no reference-count updates. :func:`borrowed` does the same to any array or
tuple of arrays (the per-chain NUTS driver's state, workspace and metric).
"""

import llvmlite.ir as ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic
from numba.np.arrayobj import make_array, populate_array

__all__ = ["MATRIX", "emit_stack_matrix", "emit_borrowed_matrix", "stack_array", "borrowed"]

#: The type of every array made here: 2-D, C-contiguous float64 (the same type as a heap array's).
MATRIX = types.Array(types.float64, 2, "C")


def emit_stack_matrix(context, builder, num_rows: int, num_cols: int):
    """Code for an uninitialised ``(num_rows, num_cols)`` MATRIX on the current function's stack
    (the alloca goes to the entry block, so a call inside a loop does not grow the stack)."""
    element = context.get_value_type(types.float64)
    intp = context.get_value_type(types.intp)
    data = cgutils.alloca_once(builder, element, size=ir.Constant(ir.IntType(64), num_rows * num_cols))
    array = make_array(MATRIX)(context, builder)
    itemsize = context.get_abi_sizeof(element)
    populate_array(
        array,
        data=data,
        shape=[ir.Constant(intp, num_rows), ir.Constant(intp, num_cols)],
        strides=[ir.Constant(intp, num_cols * itemsize), ir.Constant(intp, itemsize)],
        itemsize=ir.Constant(intp, itemsize),
        meminfo=None,
    )
    return array._getvalue()


def emit_borrowed_matrix(context, builder, value, num_rows: int):
    """Code for a view of the MATRIX ``value`` (which has ``num_rows`` rows, a compile-time
    constant, and unit stride along rows) without a meminfo: the rows taken of it in a loop cost
    no reference-count updates (two atomic operations per row otherwise). Valid while ``value``
    lives; never return it."""
    intp = context.get_value_type(types.intp)
    itemsize = context.get_abi_sizeof(context.get_value_type(types.float64))
    source = make_array(MATRIX)(context, builder, value=value)
    shape = cgutils.unpack_tuple(builder, source.shape)
    strides = cgutils.unpack_tuple(builder, source.strides)
    array = make_array(MATRIX)(context, builder)
    populate_array(
        array,
        data=source.data,
        shape=[ir.Constant(intp, num_rows), shape[1]],
        strides=[strides[0], ir.Constant(intp, itemsize)],
        itemsize=ir.Constant(intp, itemsize),
        meminfo=None,
    )
    return array._getvalue()


@intrinsic
def stack_array(typingctx, rows, cols):
    """An uninitialised ``(rows, cols)`` MATRIX on the caller's stack; ``rows`` and ``cols`` must be
    compile-time integer literals."""
    if not (isinstance(rows, types.IntegerLiteral) and isinstance(cols, types.IntegerLiteral)):
        return None
    num_rows, num_cols = rows.literal_value, cols.literal_value

    def codegen(context, builder, signature, args):
        return emit_stack_matrix(context, builder, num_rows, num_cols)

    return MATRIX(rows, cols), codegen


def _without_meminfo(context, builder, ty, value):
    """``value`` (an array, or a (named) tuple holding arrays) with every array's meminfo and
    parent set to null: the same data, shape and strides, no owner."""
    if isinstance(ty, types.Array):
        array = make_array(ty)(context, builder, value=value)
        array.meminfo = cgutils.get_null_value(array.meminfo.type)
        array.parent = cgutils.get_null_value(array.parent.type)
        return array._getvalue()
    if isinstance(ty, types.BaseTuple):
        for i, item_type in enumerate(ty):
            item = _without_meminfo(context, builder, item_type, builder.extract_value(value, i))
            value = builder.insert_value(value, item, i)
    return value


@intrinsic
def borrowed(typingctx, value):
    """``value`` (an array, or a (named) tuple of arrays and numbers, of the same type) without
    reference counts: its arrays' meminfos are null, so that passing them to a function, inlined or
    not, or taking a view of them, updates no reference count (numba increfs an array argument on
    entry to a function and decrefs it on exit, two atomic operations each: in the Numba NUTS's
    tree, 9 arrays per leapfrog step, as much time as the step itself, 2026-12-02).

    Valid while the owner lives: take it of a function's arguments (the caller holds them for the
    call) or of a local the function uses again after the loop; never return it nor store it in an
    array that outlives the owner."""

    def codegen(context, builder, signature, args):
        return _without_meminfo(context, builder, signature.args[0], args[0])

    return value(value), codegen
