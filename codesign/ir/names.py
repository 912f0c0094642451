"""Safe, unique identifiers for generated C++ and SystemVerilog from arbitrary layer names."""

from __future__ import annotations

import re

# C++ and SystemVerilog keywords that a layer name could collide with (lower case; both
# languages are case-sensitive, and our identifiers are lower case).
RESERVED = frozenset(
    """
    alignas alignof and and_eq asm auto bitand bitor bool break case catch char char8_t char16_t
    char32_t class compl concept const consteval constexpr constinit const_cast continue co_await
    co_return co_yield decltype default delete do double dynamic_cast else enum explicit export
    extern false float for friend goto if inline int long mutable namespace new noexcept not
    not_eq nullptr operator or or_eq private protected public register reinterpret_cast requires
    return short signed sizeof static static_assert static_cast struct switch template this
    thread_local throw true try typedef typeid typename union unsigned using virtual void volatile
    wchar_t while xor xor_eq main component
    always always_comb always_ff always_latch assign begin bit buf byte cell cmos config deassign
    defparam design disable edge end endcase endconfig endfunction endgenerate endmodule
    endpackage endprimitive endspecify endtable endtask event final force forever fork function
    generate genvar highz0 highz1 ifnone initial inout input instance integer interface join
    large liblist library localparam logic macromodule medium module nand negedge nmos nor
    noshowcancelled notif0 notif1 output package parameter pmos posedge primitive pull0 pull1
    pulldown pullup rcmos real realtime reg release repeat rnmos rpmos rtran rtranif0 rtranif1
    scalared showcancelled small specify specparam strong0 strong1 supply0 supply1 table task
    time tran tranif0 tranif1 tri tri0 tri1 triand trior trireg type unique uwire vectored wait
    wand weak0 weak1 wire wor xnor
    """.split()
)


def safe_identifier(name: str, taken: set[str]) -> str:
    """Map `name` to a lower-case identifier valid in C++ and SV, not in `taken`; add it there.

    Dots of PyTorch module paths become underscores; anything else non-alphanumeric too; a
    leading digit, a reserved word or a double underscore (reserved in C++) get a prefix.
    """
    base = re.sub(r"[^0-9a-zA-Z]+", "_", name).strip("_").lower()
    base = re.sub(r"_+", "_", base)
    if not base or base[0].isdigit() or base in RESERVED:
        base = f"layer_{base}" if base else "layer"
    candidate, suffix = base, 1
    while candidate in taken or candidate in RESERVED:
        suffix += 1
        candidate = f"{base}_{suffix}"
    taken.add(candidate)
    return candidate
