"""The cocotb bench of codesign's RTL simulation (design.md §5).

`bench` is the cocotb test module: it drives only the clock and reset of the generated
`harness` top and waits for `done`; stimulus, stalls and recording happen in SystemVerilog.
`scoreboard` parses the harness log in bulk afterwards and compares it bit for bit with the
expected raw outputs. `codesign.sim.rtlsim` launches the bench and reads its result file.
"""
