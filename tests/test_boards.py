"""Board files and their loader: shipped figures, lookups, and errors for malformed files."""

from __future__ import annotations

from pathlib import Path

import pytest

from codesign.boards import DEFAULT_BOARD, Board, DspMode, available_boards, load_board
from codesign.errors import BoardError

SHIPPED = ["arria10-gx1150", "arria10-gx660", "cyclone10-gx220", "stratix10-gx2800"]

VALID_BOARD = """\
name = "Test board"
family = "Arria 10"
part = "10AX115S2F45I1SG"
hls_target = "Arria10"
clock_mhz = 200.0
dsp_blocks = 10
m20k_blocks = 20
m20k_bits = 20480
alms = 1000
registers = 4000

[[dsp_modes]]
max_operand_bits = 27
multipliers_per_dsp = 1
default_block = [1, 2]

[[dsp_modes]]
max_operand_bits = 18
multipliers_per_dsp = 2
default_block = [1, 4]
"""


def write_board(tmp_path: Path, text: str, name: str = "x") -> Path:
    path = tmp_path / f"{name}.toml"
    path.write_text(text)
    return path


def test_shipped_boards_are_listed() -> None:
    assert available_boards() == sorted(SHIPPED)
    assert DEFAULT_BOARD in available_boards()


@pytest.mark.parametrize("name", SHIPPED)
def test_every_shipped_board_loads(name: str) -> None:
    board = load_board(name)
    assert board.key == name
    assert [mode.max_operand_bits for mode in board.dsp_modes] == [18, 27]
    assert board.default_block(8) == (1, 4)
    assert board.default_block(27) == (1, 2)
    assert board.m20k_bits == 20480
    assert 200 <= board.clock_mhz <= 300


def test_default_board_figures() -> None:
    board = load_board(DEFAULT_BOARD)
    assert board.part == "10AX115S2F45I1SG"
    assert board.hls_target == "Arria10"
    assert board.dsp_blocks == 1518
    assert board.max_multipliers(18) == 3036
    assert board.max_multipliers(27) == 1518
    assert board.m20k_blocks == 2713
    assert board.alms == 427200
    assert board.registers == 4 * board.alms
    assert board.default_block(8) == (1, 4)
    assert board.default_block(16) == (1, 4)
    assert board.default_block(19) == (1, 2)
    assert board.default_block(27) == (1, 2)
    assert board.clock_period_ns == pytest.approx(5.0)


def test_dsp_mode_picks_the_narrowest_that_fits() -> None:
    board = load_board(DEFAULT_BOARD)
    assert board.dsp_mode(1) == DspMode(18, 2, (1, 4))
    assert board.dsp_mode(18) == DspMode(18, 2, (1, 4))
    assert board.dsp_mode(19) == DspMode(27, 1, (1, 2))


def test_dsps_for_rounds_up() -> None:
    board = load_board(DEFAULT_BOARD)
    assert board.dsps_for(4, 8) == 2
    assert board.dsps_for(5, 8) == 3
    assert board.dsps_for(5, 27) == 5
    assert board.dsps_for(0, 8) == 0


def test_operands_wider_than_27_bits_are_rejected() -> None:
    board = load_board(DEFAULT_BOARD)
    with pytest.raises(BoardError, match=r"arria10-gx1150.*28-bit.*widest it supports is 27"):
        board.dsp_mode(28)
    with pytest.raises(BoardError, match="27 bits"):
        board.max_multipliers(32)


def test_non_positive_operand_width_is_rejected() -> None:
    with pytest.raises(BoardError, match="at least 1 bit"):
        load_board(DEFAULT_BOARD).dsp_mode(0)


def test_board_is_frozen() -> None:
    board = load_board(DEFAULT_BOARD)
    assert isinstance(board, Board)
    with pytest.raises(AttributeError):
        board.dsp_blocks = 1  # type: ignore[misc]


def test_unknown_name_lists_known_boards() -> None:
    with pytest.raises(BoardError) as caught:
        load_board("arria11")
    message = str(caught.value)
    assert "'arria11'" in message
    for name in SHIPPED:
        assert name in message


def test_board_loads_from_a_path_and_sorts_modes(tmp_path: Path) -> None:
    board = load_board(str(write_board(tmp_path, VALID_BOARD, name="custom")))
    assert board.key == "custom"
    assert board.clock_mhz == 200.0
    assert [mode.max_operand_bits for mode in board.dsp_modes] == [18, 27]
    assert board.max_multipliers(16) == 20


def test_integer_clock_is_accepted(tmp_path: Path) -> None:
    text = VALID_BOARD.replace("clock_mhz = 200.0", "clock_mhz = 250")
    board = load_board(str(write_board(tmp_path, text)))
    assert board.clock_mhz == 250.0
    assert isinstance(board.clock_mhz, float)


def test_missing_path_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(BoardError, match="board file not found"):
        load_board(str(tmp_path / "absent.toml"))


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("dsp_blocks = 10\n", "", r"missing key 'dsp_blocks'"),
        ('part = "10AX115S2F45I1SG"\n', "", r"missing key 'part'"),
        (
            "dsp_blocks = 10",
            'dsp_blocks = "ten"',
            r"key 'dsp_blocks' must be a positive integer, got 'ten'",
        ),
        (
            "dsp_blocks = 10",
            "dsp_blocks = -3",
            r"key 'dsp_blocks' must be a positive integer, got -3",
        ),
        ("alms = 1000", "alms = 0", r"key 'alms' must be a positive integer, got 0"),
        ("alms = 1000", "alms = true", r"key 'alms' must be a positive integer, got True"),
        ("m20k_blocks = 20", "m20k_blocks = 20.5", r"key 'm20k_blocks' must be a positive integer"),
        ("clock_mhz = 200.0", "clock_mhz = -200.0", r"key 'clock_mhz' must be a positive number"),
        ("clock_mhz = 200.0", "clock_mhz = nan", r"key 'clock_mhz' must be a positive number"),
        ("clock_mhz = 200.0", "clock_mhz = inf", r"key 'clock_mhz' must be a finite"),
        ('name = "Test board"', 'name = ""', r"key 'name' must be a non-empty string"),
        (
            'hls_target = "Arria10"',
            "hls_target = 10",
            r"key 'hls_target' must be a non-empty string",
        ),
        ("registers = 4000\n", "registers = 4000\nluts = 5\n", r"unknown key 'luts'"),
        (
            "default_block = [1, 2]",
            "default_block = [1, 2, 3]",
            r"key 'dsp_modes\[0\]\.default_block' must be an array of two positive integers",
        ),
        (
            "default_block = [1, 4]",
            "default_block = [0, 4]",
            r"key 'dsp_modes\[1\]\.default_block' must be an array of two positive integers",
        ),
        (
            "default_block = [1, 4]",
            'default_block = "1x4"',
            r"key 'dsp_modes\[1\]\.default_block' must be an array",
        ),
        (
            "multipliers_per_dsp = 2\n",
            "",
            r"missing key 'dsp_modes\[1\]\.multipliers_per_dsp'",
        ),
        (
            "multipliers_per_dsp = 2\n",
            "multipliers_per_dsp = 2\nchainout = true\n",
            r"unknown key 'dsp_modes\[1\]\.chainout'",
        ),
        (
            "max_operand_bits = 27",
            "max_operand_bits = 18",
            r"key 'dsp_modes' has two modes with the same max_operand_bits",
        ),
    ],
)
def test_malformed_board_names_file_and_key(
    tmp_path: Path, old: str, new: str, expected: str
) -> None:
    assert old in VALID_BOARD
    path = write_board(tmp_path, VALID_BOARD.replace(old, new, 1))
    with pytest.raises(BoardError, match=expected) as caught:
        load_board(str(path))
    assert str(caught.value).startswith(f"{path}: ")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (VALID_BOARD.split("[[dsp_modes]]")[0], r"missing key 'dsp_modes'"),
        (
            VALID_BOARD.split("[[dsp_modes]]")[0] + "dsp_modes = []\n",
            r"key 'dsp_modes' must be a non-empty array of tables",
        ),
        (
            VALID_BOARD.split("[[dsp_modes]]")[0] + "dsp_modes = [1, 2]\n",
            r"key 'dsp_modes' must be a non-empty array of tables",
        ),
    ],
)
def test_missing_or_ill_formed_dsp_modes(tmp_path: Path, text: str, expected: str) -> None:
    path = write_board(tmp_path, text)
    with pytest.raises(BoardError, match=expected) as caught:
        load_board(str(path))
    assert str(caught.value).startswith(f"{path}: ")


def test_bad_toml_syntax_names_the_file(tmp_path: Path) -> None:
    path = write_board(tmp_path, VALID_BOARD.replace("dsp_blocks = 10", "dsp_blocks = = 10"))
    with pytest.raises(BoardError, match="not valid TOML") as caught:
        load_board(str(path))
    assert str(caught.value).startswith(f"{path}: ")
    assert "line" in str(caught.value)
