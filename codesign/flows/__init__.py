"""The flows behind the commands, as library functions (the CLI only parses and prints).

generate  lower → build steps (codesign.passes.pipeline) → emit → report.json
prune     train or load, prune for the board, fine-tune, prune.json + model.pt
project   rebuild a pruned model; C-simulate and RTL-simulate a project
source    where generate's model comes from (a prune folder, a spec, training)
estimates the report.json record of a built graph
"""
