"""PyTorch front end: lowering nn.Modules to the IR, and pruning."""
