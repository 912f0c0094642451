// Shim of the Intel HLS Compiler's HLS/ac_fixed.h (codesign): the Algorithmic C ac_fixed type,
// taken from the ac_types headers on the include path (hls4ml ships them; AC_TYPES).
#pragma once
#include <ac_fixed.h>
