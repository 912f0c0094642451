"""Baselines and interoperability with hls4ml (its Quartus backend and C simulation)."""
