"""codesign: block-sparse neural networks co-designed with Intel Arria 10-class FPGA hardware."""

from __future__ import annotations

__version__ = "0.1.0"
