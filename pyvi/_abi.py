"""Does a compiled extension carry its own copy of the C++ runtime's stream and locale code?

An extension must use the one C++ runtime (libstdc++) the process has loaded, the one torch uses.
When the toolchain links libstdc++ statically (or instantiates its stream templates locally), the
extension holds private copies of ``std::ostream``'s number formatting and of ``std::locale``'s
facet tables, while the locale objects it meets at run time come from the process's runtime. The
two disagree about facet indices, and the first error message that formats a number
(``TORCH_CHECK(..., "got ", tensor.sizes())``) calls a wrong virtual function and kills the
process (seen on a GPU machine whose ``/opt/gcc/bin/g++`` built pyvi: SIGSEGV in
``std::codecvt<char16_t, ...>::do_unshift`` from ``std::ostream::_M_insert<long>`` resolved inside
``pyvi/_C.so``).

This module finds such copies by reading the ELF symbol tables (no import, no compiler, no
``nm``), so ``setup.py`` can refuse a broken build and ``pyvi.backends()`` can refuse to load one,
each with instructions, instead of a segfault later.

References:
    System V ABI, "ELF: Symbol Table"; GCC, "Link Options" (-static-libstdc++).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

__all__ = ["private_cxx_runtime_symbols", "PRIVATE_RUNTIME_PREFIXES", "REBUILD_HINT"]

#: Mangled-name prefixes of libstdc++ internals that an extension never defines legitimately:
#: std::ostream::_M_insert<...> (number formatting), std::locale and its facet ids, std::ios_base,
#: std::num_put.
PRIVATE_RUNTIME_PREFIXES = (b"_ZNSo9_M_insert", b"_ZNSt6locale", b"_ZNSt8ios_base", b"_ZNKSt7num_put",
                            b"_ZNSt7num_put")

REBUILD_HINT = (
    "its C++ runtime (libstdc++) is linked in privately, so any error message that formats a number would "
    "crash the process. Rebuild pyvi with a compiler that links libstdc++ dynamically (the system g++, e.g. "
    "`CXX=/usr/bin/g++ pip install --no-build-isolation -e .`); setup.py checks this"
)

_SECTION = np.dtype([("name", "<u4"), ("type", "<u4"), ("flags", "<u8"), ("addr", "<u8"), ("offset", "<u8"),
                     ("size", "<u8"), ("link", "<u4"), ("info", "<u4"), ("addralign", "<u8"), ("entsize", "<u8")])
_SYMBOL = np.dtype([("name", "<u4"), ("info", "u1"), ("other", "u1"), ("shndx", "<u2"), ("value", "<u8"),
                    ("size", "<u8")])
_SHT_SYMTAB, _SHT_DYNSYM = 2, 11


def private_cxx_runtime_symbols(path: str | Path) -> list[str]:
    """Mangled names of C++-runtime internals that the shared library at ``path`` DEFINES.

    An empty list means the library imports them from the process's libstdc++, as it should.
    Files that are not 64-bit little-endian ELF (other platforms) give an empty list: the check
    applies where the problem was seen (Linux, GCC).

    Example:
        >>> import pyvi._abi, sys
        >>> private_cxx_runtime_symbols(sys.executable) == [] or sys.platform != "linux"
        True
    """
    data = Path(path).read_bytes()
    if data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
        return []
    shoff = int.from_bytes(data[0x28:0x30], "little")
    shentsize = int.from_bytes(data[0x3A:0x3C], "little")
    shnum = int.from_bytes(data[0x3C:0x3E], "little")
    if shoff == 0 or shentsize != _SECTION.itemsize or shoff + shnum * shentsize > len(data):
        return []
    sections = np.frombuffer(data, _SECTION, shnum, shoff)
    found: set[str] = set()
    for section in sections:
        if section["type"] not in (_SHT_SYMTAB, _SHT_DYNSYM) or section["entsize"] != _SYMBOL.itemsize:
            continue
        strings_header = sections[section["link"]]
        strings = data[int(strings_header["offset"]): int(strings_header["offset"] + strings_header["size"])]
        # Candidate names first (a substring search of the string table), then which symbols use them.
        starts = []
        for prefix in PRIVATE_RUNTIME_PREFIXES:
            at = strings.find(prefix)
            while at != -1:
                if at == 0 or strings[at - 1] == 0:  # the start of a name, not the middle of a longer one
                    starts.append(at)
                at = strings.find(prefix, at + 1)
        if not starts:
            continue
        symbols = np.frombuffer(data, _SYMBOL, int(section["size"]) // _SYMBOL.itemsize, int(section["offset"]))
        defined = symbols[(symbols["shndx"] != 0) & np.isin(symbols["name"], np.array(starts, dtype=np.uint32))]
        for offset in defined["name"]:
            end = strings.index(b"\0", int(offset))
            found.add(strings[int(offset): end].decode("ascii", "replace"))
    return sorted(found)


if __name__ == "__main__":  # python -m pyvi._abi FILE...: used by setup.py and for diagnosis
    status = 0
    for name in sys.argv[1:]:
        symbols = private_cxx_runtime_symbols(name)
        print(f"{name}: {len(symbols)} private C++-runtime symbols" + (f", e.g. {symbols[:3]}" if symbols else ""))
        status |= bool(symbols)
    sys.exit(status)
