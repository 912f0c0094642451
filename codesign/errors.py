"""Errors the user can act on. The CLI prints their message and exits non-zero; no traceback."""

from __future__ import annotations


class CodesignError(Exception):
    """Base of every error caused by input the user can fix."""


class BoardError(CodesignError):
    """A board name is unknown or a board file is malformed."""


class ModelError(CodesignError):
    """A model cannot be loaded, lowered or is not supported."""


class DatasetError(CodesignError):
    """A dataset name is unknown or a dataset file is malformed."""


class PruneError(CodesignError):
    """Pruning options are invalid (sparsity, block shape, method)."""


class ToolError(CodesignError):
    """An external tool (g++, Verilator) is missing or failed."""


class OutputDirError(CodesignError):
    """An output folder is not empty and --force was not given, or it is not a project."""


class FormatError(CodesignError, ValueError):
    """A layer's formats or parameters cannot be implemented exactly by the kernels."""
