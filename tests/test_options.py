"""Option parsing: blocks, reuse factors; build plans and output folders."""

from __future__ import annotations

from pathlib import Path

import pytest

from codesign.boards import load_board
from codesign.emit.plan import BuildPlan, write_plan
from codesign.errors import CodesignError, OutputDirError, PruneError
from codesign.options import (
    BalancedReuse,
    FoldedReuse,
    PerLayerReuse,
    UniformFitReuse,
    UniformReuse,
    parse_block,
    parse_reuse,
    resolve_block,
)


def test_block_parsing() -> None:
    assert parse_block("1x4") == (1, 4)
    assert parse_block(" 2X2 ") == (2, 2)
    for bad in ("1x0", "4", "ax4", "1x4x2", "-1x4"):
        with pytest.raises(PruneError, match="does not fit"):
            parse_block(bad)


def test_block_larger_than_the_board_does_not_fit() -> None:
    board = load_board("cyclone10-gx220")  # 384 multipliers at 18 bits
    assert resolve_block(None, board, 16) == (1, 4)
    assert resolve_block(None, board, 27) == (1, 2)
    with pytest.raises(PruneError, match="needs 400 multipliers, cyclone10-gx220 has 384"):
        resolve_block(parse_block("20x20"), board, 16)


def test_reuse_parsing() -> None:
    assert parse_reuse(None) == FoldedReuse()
    assert parse_reuse("fold") == FoldedReuse()
    assert parse_reuse(None, 12) == FoldedReuse(12)
    assert parse_reuse("uniform") == UniformFitReuse()
    assert parse_reuse("3") == UniformReuse(3)
    assert parse_reuse("fc1=1, fc2=4") == PerLayerReuse((("fc1", 1), ("fc2", 4)))
    assert parse_reuse("balanced") == BalancedReuse()
    for bad in ("0", "x", "fc1=0", "=3", "fc1=a", "fc1=1,fc1=2"):
        with pytest.raises(CodesignError, match="reuse"):
            parse_reuse(bad)
    assert parse_reuse("fold", 12) == FoldedReuse(12)
    with pytest.raises(CodesignError, match="give it alone or with --reuse fold"):
        parse_reuse("3", 12)


def test_plan_refuses_a_non_empty_folder_and_keeps_it(tmp_path: Path) -> None:
    out = tmp_path / "proj"
    out.mkdir()
    (out / "mine.txt").write_text("user data")
    with pytest.raises(OutputDirError, match="not empty; pass --force"):
        write_plan(BuildPlan({"a.txt": b"x"}), out)
    assert (out / "mine.txt").read_text() == "user data"
    write_plan(BuildPlan({"a/b.txt": b"x"}), out, force=True)
    assert sorted(p.name for p in out.rglob("*")) == ["a", "b.txt"]
    assert [p.name for p in tmp_path.iterdir()] == ["proj"]  # no staging folder left


def test_plan_digest_is_deterministic_and_content_sensitive() -> None:
    a = BuildPlan({"x": b"1", "y": b"2"})
    assert a.digest() == BuildPlan({"y": b"2", "x": b"1"}).digest()
    assert a.digest() != BuildPlan({"x": b"1", "y": b"3"}).digest()
    with pytest.raises(ValueError):
        BuildPlan({"../escape": b""})
