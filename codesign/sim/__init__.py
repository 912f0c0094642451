"""Simulator wrappers: g++ C simulation (csim) and Verilator through cocotb (rtlsim)."""
