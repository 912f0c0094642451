"""Reading a project's JSON records back: the schema and the type of every key, or a clear error.

Every record (design, report, prune, csim, rtlsim) names its schema (`codesign.<kind>/N`);
a file of another schema, a missing key or a value of the wrong type is a CodesignError that
names the file and the key, never a KeyError or TypeError from deep inside a command.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar, cast

from codesign.errors import CodesignError

_T = TypeVar("_T")
JSONObject = Mapping[str, Any]


def dumps(data: JSONObject) -> bytes:
    """The bytes of a record file: indented JSON with a final newline."""
    return (json.dumps(data, indent=2) + "\n").encode()


def read_json(path: Path) -> dict[str, Any]:
    """A JSON object from `path`, or a CodesignError naming the file."""
    try:
        data = json.loads(path.read_text())
    except OSError as error:
        raise CodesignError(f"{path}: cannot read it ({error.strerror})") from error
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise CodesignError(f"{path}: not valid JSON ({error})") from error
    if not isinstance(data, dict):
        raise CodesignError(f"{path}: expected a JSON object")
    return data


def check_schema(data: JSONObject, schema: str, where: str) -> None:
    if data.get("schema") != schema:
        raise CodesignError(
            f"{where}: schema {data.get('schema')!r}, this codesign reads {schema!r}; "
            "run the command that wrote it again"
        )


def field(data: JSONObject, key: str, kind: type[_T] | tuple[type, ...], where: str) -> _T:
    """`data[key]`, checked to be of `kind` (an int is a float too; a bool is no int)."""
    if key not in data:
        raise CodesignError(f"{where}: key {key!r} is missing")
    value = data[key]
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if float in kinds and isinstance(value, int) and not isinstance(value, bool):
        return cast(_T, value)
    if isinstance(value, bool) and bool not in kinds:
        ok = False
    else:
        ok = isinstance(value, kinds)
    if not ok:
        names = " or ".join(k.__name__ for k in kinds)
        raise CodesignError(f"{where}: key {key!r} must be {names}, got {value!r}")
    return cast(_T, value)


def optional(
    data: JSONObject, key: str, kind: type[_T] | tuple[type, ...], where: str
) -> _T | None:
    """Like `field`, but an absent key or a null is None."""
    if data.get(key) is None:
        return None
    return field(data, key, kind, where)


def int_tuple(data: JSONObject, key: str, where: str) -> tuple[int, ...]:
    """A list of integers, as a tuple."""
    values = field(data, key, list, where)
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        raise CodesignError(f"{where}: key {key!r} must be a list of integers, got {values!r}")
    return tuple(values)


def str_tuple(data: JSONObject, key: str, where: str) -> tuple[str, ...]:
    """A list of strings, as a tuple."""
    values = field(data, key, list, where)
    if not all(isinstance(v, str) for v in values):
        raise CodesignError(f"{where}: key {key!r} must be a list of strings, got {values!r}")
    return tuple(values)
