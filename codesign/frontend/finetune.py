"""Fine-tuning with masks that tighten on a schedule (the loop every pruning method shares).

A `Masker` owns the masks of one pruning method: `attach` registers them, `update(progress)`
recomputes them for the schedule's progress, `finish` bakes the zeros into the weights. The
loop is Adam with a cosine learning-rate decay, seeded, CPU, optionally distilling.
"""

from __future__ import annotations

from typing import Protocol

import torch
from torch import nn

from codesign.data import Dataset
from codesign.frontend.distill import LossFn, cross_entropy_loss
from codesign.frontend.schedules import Schedule

FINAL_LR_FRACTION = 0.05


class Masker(Protocol):
    def attach(self, model: nn.Module) -> None: ...

    def update(self, model: nn.Module, progress: float) -> None: ...

    def finish(self, model: nn.Module) -> None: ...


def finetune(
    model: nn.Module,
    dataset: Dataset,
    masker: Masker | None,
    schedule: Schedule,
    epochs: int,
    learning_rate: float,
    seed: int = 0,
    batch_size: int = 64,
    loss_fn: LossFn = cross_entropy_loss,
    progress: bool = False,
) -> nn.Module:
    """Prune on `schedule` while fine-tuning `model` in place; return it with zeros baked in."""
    from codesign.progress import Progress

    if masker is not None:
        masker.attach(model)
    generator = torch.Generator().manual_seed(seed)
    x = torch.from_numpy(dataset.x_train)
    y = torch.from_numpy(dataset.y_train)
    batches = -(-len(x) // batch_size)
    total = epochs * batches
    updates = schedule.updates(total)
    if masker is not None and total == 0:
        masker.update(model, 1.0)
    optimizer = torch.optim.Adam(model.parameters(), lr=learning_rate)
    decay = torch.optim.lr_scheduler.CosineAnnealingLR(
        optimizer, T_max=max(1, total), eta_min=learning_rate * FINAL_LR_FRACTION
    )
    iteration = 0
    with Progress(total, "fine-tune", "batches", progress) as bar:
        for _ in range(epochs):
            model.train()
            order = torch.randperm(len(x), generator=generator)
            for start in range(0, len(x), batch_size):
                if masker is not None and iteration in updates:
                    masker.update(model, updates[iteration])
                    model.train()
                index = order[start : start + batch_size]
                loss = loss_fn(model(x[index]), y[index], x[index])
                optimizer.zero_grad()
                loss.backward()  # type: ignore[no-untyped-call]
                optimizer.step()
                decay.step()
                iteration += 1
                bar.update()
    model.eval()
    if masker is not None:
        masker.finish(model)
    return model
