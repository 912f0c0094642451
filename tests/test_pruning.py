"""Pruning front end: criteria, schedules, masks, distillation, maskers, channel rebuild, APoZ,
the hardware cost model and budget allocators, and the errors users see."""

from __future__ import annotations

import copy
from collections import OrderedDict

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from codesign.boards import load_board
from codesign.data import Dataset
from codesign.errors import PruneError
from codesign.frontend.activation import apoz
from codesign.frontend.baseline import WeightNormMasker
from codesign.frontend.budget import Budget, allocate
from codesign.frontend.channel import (
    apply_resized,
    channel_groups,
    ratio_for_sparsity,
    rebuild,
    traced,
    weight_counts,
)
from codesign.frontend.criteria import importance
from codesign.frontend.distill import distillation_loss, frozen_teacher
from codesign.frontend.finetune import finetune
from codesign.frontend.hwcost import CostModel, geometry
from codesign.frontend.maskers import BlockMasker, ChannelMasker
from codesign.frontend.pipeline import PruneConfig, prune_model
from codesign.frontend.prune import (
    attach_masks,
    bake_masks,
    block_scores,
    keep_count,
    kept_block_count,
    kept_blocks,
    layer_pruning,
)
from codesign.frontend.schedules import Schedule, cubic_ramp
from codesign.models import digits_mlp, mnist_cnn


def tiny_dataset(shape: tuple[int, ...] = (64,), n: int = 96, classes: int = 10) -> Dataset:
    rng = np.random.default_rng(0)
    x = rng.random((n, *shape)).astype(np.float32)
    y = rng.integers(0, classes, n).astype(np.int64)
    return Dataset("tiny", x, y, x[:32], y[:32])


def calib(shape: tuple[int, ...] = (64,), n: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
    data = tiny_dataset(shape, n)
    return torch.from_numpy(data.x_train), torch.from_numpy(data.y_train)


# --- criteria -----------------------------------------------------------------------------------


def test_magnitude_criteria() -> None:
    torch.manual_seed(0)
    model = digits_mlp()
    layers = [("fc1", model.fc1)]
    assert torch.equal(importance(model, layers, "l1")["fc1"], model.fc1.weight.abs().detach())
    assert torch.allclose(importance(model, layers, "l2")["fc1"], model.fc1.weight.detach() ** 2)


def test_taylor_is_weight_times_gradient_and_sees_masks() -> None:
    torch.manual_seed(0)
    model = digits_mlp()
    x, y = calib()
    loss = F.cross_entropy(model(x), y, reduction="sum")
    grad = torch.autograd.grad(loss, model.fc2.weight)[0]
    scores = importance(model, [("fc2", model.fc2)], "taylor", x, y)["fc2"]
    assert torch.allclose(scores, (model.fc2.weight.detach() * grad).abs(), atol=1e-5)
    masks = attach_masks([("fc2", model.fc2)])
    masks["fc2"].mask[:, :32] = 0.0
    masked = importance(model, [("fc2", model.fc2)], "taylor", x, y)["fc2"]
    assert torch.all(masked[:, :32] == 0) and float(masked[:, 32:].sum()) > 0


def test_activation_criterion_scales_by_input_norms() -> None:
    torch.manual_seed(0)
    model = digits_mlp()
    x, _ = calib()
    x[:, 5] = 0.0  # a dead input pixel: its column can go first
    scores = importance(model, [("fc1", model.fc1)], "activation", x)["fc1"]
    expected = model.fc1.weight.abs().detach() * x.norm(dim=0)[None, :]
    assert torch.allclose(scores, expected, rtol=1e-5)
    assert torch.all(scores[:, 5] == 0)


def test_activation_criterion_on_conv_uses_unfolded_columns() -> None:
    torch.manual_seed(0)
    model = mnist_cnn()
    x, _ = calib((1, 28, 28), 8)
    scores = importance(model, [("conv2", model.conv2)], "activation", x)["conv2"]
    assert scores.shape == (16, 72)
    hidden = model.pool1(model.relu1(model.conv1(x))).detach()
    patches = F.unfold(hidden, kernel_size=3, padding=1)
    norms = patches.pow(2).sum(dim=(0, 2)).sqrt()
    assert torch.allclose(scores, model.conv2.weight.detach().reshape(16, 72).abs() * norms)


def test_unknown_criterion_is_refused() -> None:
    model = digits_mlp()
    with pytest.raises(PruneError, match="unknown criterion 'fisher'; use one of l1, l2"):
        importance(model, [("fc1", model.fc1)], "fisher")


# --- masks and schedules ------------------------------------------------------------------------


def test_keep_count_rounds_halves_up_and_keeps_one() -> None:
    assert keep_count(0.25, 18) == 5  # 4.5 -> 5 (Python's round would give 4)
    assert keep_count(0.25, 16) == 4
    assert keep_count(0.01, 3) == 1


def test_unbalanced_keeps_the_best_blocks_anywhere() -> None:
    scores = torch.tensor([[9.0, 8.0, 7.0], [1.0, 2.0, 3.0]])
    kept = kept_blocks(scores, 0.5, balanced=False)
    assert kept.tolist() == [[True, True, True], [False, False, False]]
    balanced = kept_blocks(scores, 0.5, balanced=True)
    assert balanced.sum(dim=1).tolist() == [2, 2]


def test_kept_block_count_matches_masks_with_padding() -> None:
    torch.manual_seed(0)
    weight = torch.randn(10, 30)  # 30 columns: 8 blocks of 4, the last padded
    for balanced in (True, False):
        for sparsity in (0.0, 0.3, 0.75, 0.95):
            kept = kept_blocks(block_scores(weight, (2, 4)), sparsity, balanced)
            assert int(kept.sum()) == kept_block_count((10, 30), (2, 4), sparsity, balanced)


def test_cubic_ramp_and_schedule_points() -> None:
    assert cubic_ramp(0.0) == 0.0 and cubic_ramp(1.0) == 1.0
    assert cubic_ramp(0.5) == pytest.approx(0.875)
    assert Schedule("oneshot").updates(100) == {0: 1.0}
    points = Schedule("gradual", steps=5, ramp_fraction=0.5).updates(101)
    assert list(points) == [0, 12, 25, 38, 50]
    assert list(points.values()) == [0.2, 0.4, 0.6, 0.8, 1.0]
    with pytest.raises(PruneError, match="unknown schedule 'linear'"):
        Schedule("linear")


@pytest.mark.parametrize("schedule", ["oneshot", "gradual"])
@pytest.mark.parametrize("criterion", ["l1", "l2", "taylor", "activation"])
def test_block_masker_reaches_balanced_target(schedule: str, criterion: str) -> None:
    torch.manual_seed(0)
    model = digits_mlp()
    data = tiny_dataset()
    masker = BlockMasker(
        {"fc1": 0.75, "fc2": 0.5, "fc3": 0.75}, (1, 4), True, criterion, Schedule(schedule), calib()
    )
    finetune(model, data, masker, Schedule(schedule), epochs=2, learning_rate=1e-3)
    assert not hasattr(model.fc1, "parametrizations")
    fc1 = layer_pruning("fc1", model.fc1.weight, (1, 4))
    assert fc1.nnz_blocks == 64 * 4 and fc1.sparsity == pytest.approx(0.75)
    kept = block_scores(model.fc2.weight.detach(), (1, 4)) > 0
    assert kept.sum(dim=1).tolist() == [8] * 32


def test_distillation_loss() -> None:
    torch.manual_seed(0)
    teacher = frozen_teacher(digits_mlp())
    assert not any(p.requires_grad for p in teacher.parameters())
    x, y = calib()
    logits = torch.randn(len(x), 10)
    hard = distillation_loss(teacher, alpha=0.0)(logits, y, x)
    assert hard == pytest.approx(float(F.cross_entropy(logits, y)))
    self_distilled = distillation_loss(teacher, alpha=1.0)(teacher(x), y, x)
    assert float(self_distilled) == pytest.approx(0.0, abs=1e-5)


def test_weight_norm_sparsifier_masker_handles_conv() -> None:
    torch.manual_seed(0)
    model = mnist_cnn()
    masker = WeightNormMasker(0.5, (1, 4), Schedule("oneshot"))
    masker.attach(model)
    masker.update(model, 1.0)
    masker.finish(model)
    conv2 = layer_pruning("conv2", model.conv2.weight, (1, 4))
    assert conv2.block_sparsity == pytest.approx(0.5) and conv2.shape == (16, 8, 3, 3)
    assert layer_pruning("fc", model.fc.weight, (1, 4)).block_sparsity == pytest.approx(0.5)


# --- channel pruning and APoZ -------------------------------------------------------------------


class BatchNormNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(2, 6, 3, padding=1)
        self.bn = nn.BatchNorm2d(6)
        self.fc = nn.Linear(6 * 4 * 4, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(F.max_pool2d(F.relu(self.bn(self.conv(x))), 2), 1))


class LeakyGlobalNet(nn.Module):
    """LeakyReLU, global average pooling and a view through x.size(0): all per-channel."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(2, 6, 3, padding=1)
        self.act = nn.LeakyReLU(0.1)
        self.conv2 = nn.Conv2d(6, 4, 3, padding=1)
        self.gap = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(4, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.gap(F.relu(self.conv2(self.act(self.conv1(x)))))
        return self.fc(y.view(y.size(0), -1))


def test_channel_groups_follow_the_graph() -> None:
    mlp = channel_groups(traced(digits_mlp(), (64,)))
    assert [(g.producer, g.consumer, g.spatial) for g in mlp] == [
        ("fc1", "fc2", 1),
        ("fc2", "fc3", 1),
    ]
    cnn = channel_groups(traced(mnist_cnn(), (1, 28, 28)))
    assert [(g.producer, g.consumer, g.spatial) for g in cnn] == [
        ("conv1", "conv2", 1),
        ("conv2", "fc", 49),
    ]
    bn = channel_groups(traced(BatchNormNet(), (2, 8, 8)))
    assert [(g.producer, g.norms, g.spatial) for g in bn] == [("conv", ["bn"], 16)]
    leaky = channel_groups(traced(LeakyGlobalNet(), (2, 8, 8)))
    assert [(g.producer, g.consumer, g.spatial) for g in leaky] == [
        ("conv1", "conv2", 1),
        ("conv2", "fc", 1),
    ]


def test_residual_outputs_keep_their_channels() -> None:
    class Residual(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a = nn.Linear(8, 8)
            self.b = nn.Linear(8, 8)
            self.c = nn.Linear(8, 3)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            h = torch.relu(self.a(x))
            return self.c(torch.relu(self.b(h)) + h)

    assert channel_groups(traced(Residual(), (8,))) == []
    with pytest.raises(PruneError, match="no layer can lose channels"):
        ratio_for_sparsity(Residual(), [], 0.5)


@pytest.mark.parametrize(
    ("build", "shape"),
    [(digits_mlp, (64,)), (mnist_cnn, (1, 28, 28)), (BatchNormNet, (2, 8, 8))],
)
def test_rebuild_keeping_everything_changes_nothing(build: type, shape: tuple[int, ...]) -> None:
    torch.manual_seed(0)
    model = build().eval()
    x = torch.randn(4, *shape)
    before = model(x)
    groups = channel_groups(traced(model, shape))
    rebuild(model, groups, {g.producer: torch.arange(g.channels) for g in groups})
    assert torch.allclose(model(x), before)


@pytest.mark.parametrize(
    ("build", "shape"),
    [
        (digits_mlp, (64,)),
        (mnist_cnn, (1, 28, 28)),
        (BatchNormNet, (2, 8, 8)),
        (LeakyGlobalNet, (2, 8, 8)),
    ],
)
def test_rebuilt_model_equals_the_channel_masked_one(build: type, shape: tuple[int, ...]) -> None:
    torch.manual_seed(0)
    model = build()
    if isinstance(model, BatchNormNet):  # non-trivial running statistics
        model.train()
        model(torch.randn(32, *shape))
    model.eval()
    groups = channel_groups(traced(model, shape))

    def by_l1(current: nn.Module) -> dict[str, torch.Tensor]:
        modules = dict(current.named_modules())
        return {
            g.producer: modules[g.producer].weight.detach().abs().flatten(1).sum(1) for g in groups
        }

    masker = ChannelMasker(groups, 0.5, by_l1, Schedule("oneshot"))
    masker.attach(model)
    masker.update(model, 1.0)
    masker.finish(model)
    x = torch.randn(4, *shape)
    masked = model.eval()(x)
    resized = rebuild(model, groups, masker.keep)
    assert torch.allclose(model(x), masked, atol=1e-6)
    for group in groups:
        kept = len(masker.keep[group.producer])
        assert kept == group.channels - round(0.5 * group.channels)
        sizes = resized[group.producer]
        assert sizes.get("out_features", sizes.get("out_channels")) == kept
    # the saved sizes rebuild the same architecture, which loads the weights
    fresh = build()
    apply_resized(fresh, resized)
    fresh.load_state_dict(model.state_dict())
    assert torch.allclose(fresh.eval()(x), masked, atol=1e-6)


def test_channel_ratio_reaches_the_weight_sparsity() -> None:
    model = digits_mlp()
    groups = channel_groups(traced(model, (64,)))
    ratio = ratio_for_sparsity(model, groups, 0.75)
    before, after = weight_counts(model, groups, ratio)
    assert before == 64 * 64 + 32 * 64 + 10 * 32
    assert 1 - after / before >= 0.75
    with pytest.raises(PruneError, match=r"removes at most 98\.\d%"):
        ratio_for_sparsity(model, groups, 0.995)


def test_apoz_finds_dead_neurons() -> None:
    torch.manual_seed(0)
    model = digits_mlp()
    with torch.no_grad():
        model.fc1.bias[3] = -1e3  # neuron 3 never fires
    graph_module = traced(model, (64,))
    groups = channel_groups(graph_module)
    zeros, mean = apoz(graph_module, groups, calib()[0])["fc1"]
    assert zeros[3] == 1.0 and mean[3] == 0.0
    assert float(zeros.mean()) < 0.9


def test_activation_method_removes_the_dead_neuron_first() -> None:
    torch.manual_seed(0)
    model = digits_mlp()
    with torch.no_grad():
        model.fc1.bias.fill_(10.0)  # every neuron fires...
        model.fc1.bias[3] = -1e3  # ...but neuron 3
        model.fc1.weight[3] *= 10  # the largest row by L1: magnitude would keep it
    config = PruneConfig(sparsity=0.1, method="activation", epochs=0, distill=False)
    before = model.fc1.weight.detach().clone()
    result = prune_model(model, tiny_dataset(), config)
    assert result.resized is not None and model.fc1.out_features < 64
    kept_rows = {tuple(row.tolist()) for row in model.fc1.weight.detach()}
    assert tuple(before[3].tolist()) not in kept_rows


# --- pipeline errors ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (PruneConfig(sparsity=1.0), r"sparsity must be in \[0, 1\), got 1.0"),
        (PruneConfig(sparsity=-0.1), r"sparsity must be in \[0, 1\)"),
        (PruneConfig(method="lottery"), "unknown method 'lottery'; use one of block"),
        (PruneConfig(criterion="random"), "unknown criterion 'random'"),
        (PruneConfig(schedule="cosine"), "unknown schedule 'cosine'"),
    ],
)
def test_bad_configs_are_refused(config: PruneConfig, message: str) -> None:
    with pytest.raises(PruneError, match=message):
        prune_model(digits_mlp(), tiny_dataset(), config)


def test_no_prunable_layers_is_refused() -> None:
    with pytest.raises(PruneError, match="no prunable layer"):
        prune_model(nn.Sequential(nn.ReLU()), tiny_dataset(), PruneConfig(epochs=0))


def test_unstructured_and_unbalanced_methods() -> None:
    torch.manual_seed(0)
    model = digits_mlp()
    result = prune_model(
        model, tiny_dataset(), PruneConfig(sparsity=0.6, method="unstructured", epochs=1)
    )
    assert result.achieved_sparsity == pytest.approx(0.6, abs=0.002)
    model = digits_mlp()
    config = PruneConfig(sparsity=0.5, balanced=False, epochs=1)
    result = prune_model(model, tiny_dataset(), config)
    assert [layer.block_sparsity for layer in result.layers] == pytest.approx([0.5] * 3)


# --- hardware cost and budgets ------------------------------------------------------------------


def cost_model(model: nn.Module, board: str, shape: tuple[int, ...]) -> CostModel:
    calibration = np.random.default_rng(0).random((32, *shape)).astype(np.float32)
    return CostModel(model, load_board(board), (1, 4), shape, calibration)


@pytest.mark.parametrize("board", ["arria10-gx1150", "cyclone10-gx220"])
def test_formulas_equal_the_hardware_ir_on_linear_chains(board: str) -> None:
    cost = cost_model(digits_mlp(), board, (64,))
    assert cost.lowerable
    for sparsities in ({}, {"fc1": 0.75, "fc2": 0.5}, {"fc1": 0.9, "fc2": 0.9, "fc3": 0.5}):
        masked = cost._masked_copy(sparsities)
        from_ir = cost._from_ir(masked)
        from_formulas = cost._from_layers(masked)
        assert from_ir.source == "hardware IR"
        assert (from_ir.est_cycles, from_ir.est_dsp, from_ir.reuse_factor) == (
            from_formulas.est_cycles,
            from_formulas.est_dsp,
            from_formulas.reuse_factor,
        )
        assert [layer.est_cycles for layer in from_ir.layers] == [
            layer.est_cycles for layer in from_formulas.layers
        ]


def test_conv_cost_counts_output_positions() -> None:
    layers = geometry(mnist_cnn(), (1, 28, 28))
    assert [(g.name, g.matrix, g.positions) for g in layers] == [
        ("conv1", (8, 9), 784),
        ("conv2", (16, 72), 196),
        ("fc", (10, 784), 1),
    ]
    cost = cost_model(mnist_cnn(), "arria10-gx1150", (1, 28, 28))
    assert cost.lowerable  # Conv2d and pooling lower to the hardware IR
    dense = cost.estimate({})
    assert dense.source == "hardware IR"
    conv1 = dense.layers[0]
    # 8 rows x 3 blocks; RF 1 -> compute = 1 cycle x 784 positions
    assert conv1.nnz_blocks == 24 and conv1.macs == 24 * 4 * 784
    # a sliding window: the first (two padded lines and two pixels, 30 values) is in after 8
    # beats and read from the ring in ceil(9 / 4) cycles (4 lanes: 9 values in RF 4 cycles),
    # the 784 positions follow back to back, then the last pixel's 2 beats
    assert conv1.reuse_factor == 4
    assert conv1.est_cycles == 8 + 3 + conv1.reuse_factor * 784 + 2
    # the prunable layers alone (how models that do not lower are costed) agree on every one
    formulas = cost._from_layers(cost._masked_copy({}))
    assert [layer.est_cycles for layer in formulas.layers] == [
        layer.est_cycles for layer in dense.layers
    ]
    sparse = cost.estimate({"conv1": 0.6, "conv2": 0.6, "fc": 0.6})
    assert sparse.est_cycles <= dense.est_cycles and sparse.est_dsp < dense.est_dsp


class Unlowerable(nn.Module):
    """Layers lowering refuses: a dilated, a "same"-padded and a grouped conv, and a Linear
    applied to every row of a feature map (8 x 16 input)."""

    def __init__(self) -> None:
        super().__init__()
        self.dilated = nn.Conv2d(1, 4, 3, dilation=2)  # 16x16 -> 12x12
        self.same = nn.Conv2d(4, 4, 3, padding="same")  # 12x12
        self.grouped = nn.Conv2d(4, 4, 3, groups=2)  # 10x10
        self.rows = nn.Linear(10, 6)  # every one of the 4 x 10 rows

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.rows(self.grouped(self.same(self.dilated(x))))


def test_models_that_do_not_lower_are_costed_at_their_measured_positions() -> None:
    cost = cost_model(Unlowerable(), "arria10-gx1150", (1, 16, 16))
    assert not cost.lowerable
    assert [(g.name, g.positions) for g in cost.layers] == [
        ("dilated", 144),
        ("same", 144),
        ("grouped", 100),
        ("rows", 40),
    ]
    design = cost.estimate({})
    assert design.source == "prunable layers"
    for geo, layer in zip(cost.layers, design.layers, strict=True):
        assert layer.macs == layer.nnz_blocks * 4 * geo.positions  # 1x4 blocks
        assert layer.est_cycles >= geo.positions * layer.reuse_factor
    # the layers are costed as a chain, each after the one before: never faster than one
    assert design.est_cycles > max(layer.est_cycles for layer in design.layers)
    # pruning halves the kept blocks and so the products
    half = cost.estimate({g.name: 0.5 for g in cost.layers})
    assert sum(layer.macs for layer in half.layers) < sum(layer.macs for layer in design.layers)


def flat_sensitivity(names: list[str], levels: int = 22) -> dict[str, list[float]]:
    # fc1 cheap to prune, fc3 expensive
    weights = {"fc1": 0.1, "fc2": 1.0, "fc3": 10.0}
    return {name: [weights[name] * k for k in range(levels)] for name in names}


@pytest.mark.parametrize("allocator", ["greedy", "knapsack"])
def test_allocators_meet_dsp_and_cycle_budgets(allocator: str) -> None:
    cost = cost_model(digits_mlp(), "cyclone10-gx220", (64,))
    sens = flat_sensitivity(["fc1", "fc2", "fc3"])
    dense = cost.estimate({})
    budget = Budget("cycles", 60)
    allocation = allocate(cost, sens, budget, allocator)
    assert allocation.met and allocation.design.est_cycles <= 60 < dense.est_cycles
    assert allocation.sparsity["fc1"] >= allocation.sparsity["fc3"]
    dsp = allocate(cost_model(digits_mlp(), "arria10-gx1150", (64,)), sens, Budget("dsp", 500))
    assert dsp.met and dsp.design.est_dsp <= 500


def test_knapsack_is_no_worse_than_greedy() -> None:
    cost = cost_model(digits_mlp(), "cyclone10-gx220", (64,))
    sens = flat_sensitivity(["fc1", "fc2", "fc3"])
    levels = [round(0.05 * k, 2) for k in range(20)] + [0.97, 0.98]

    def total(sparsity: dict[str, float]) -> float:
        return sum(sens[name][levels.index(value)] for name, value in sparsity.items())

    budget = Budget("cycles", 60)
    greedy = allocate(cost, sens, budget, "greedy")
    knapsack = allocate(cost, sens, budget, "knapsack")
    assert greedy.met and knapsack.met
    assert total(knapsack.sparsity) <= total(greedy.sparsity) + 1e-9


def test_unreachable_budget_states_the_best_reachable() -> None:
    cost = cost_model(digits_mlp(), "arria10-gx1150", (64,))
    with pytest.raises(
        PruneError, match=r"budget of 20 cycles cannot be met.*best reachable is 46"
    ):
        allocate(cost, flat_sensitivity(["fc1", "fc2", "fc3"]), Budget("cycles", 20))
    with pytest.raises(PruneError, match="unknown allocator 'random'"):
        allocate(cost, flat_sensitivity(["fc1", "fc2", "fc3"]), Budget("dsp", 100), "random")
    with pytest.raises(PruneError, match="positive integer"):
        Budget("dsp", 0)


def test_state_dict_of_masked_model_has_no_parametrizations() -> None:
    model = digits_mlp()
    attach_masks([("fc1", model.fc1)])
    bake_masks(model)
    assert set(model.state_dict()) == set(copy.deepcopy(digits_mlp()).state_dict())
    assert isinstance(OrderedDict(model.named_children())["fc1"], nn.Linear)
