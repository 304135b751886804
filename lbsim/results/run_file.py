"""One run's tables as a file that holds only data, so reading it can never run code.

A run file is a numpy ``.npz`` archive (a zip of ``.npy`` arrays, read with
``allow_pickle=False``): one array per table column, the latency quantiles, and ``meta``, a
JSON text with the summary row, both sides of Little's law, the wall time, and each table's
column names and pandas dtypes. Floats keep every bit (arrays store them raw; JSON writes the
shortest repr that reads back exactly), so a run read back gives byte-identical tables.

Anything that does not read back as such a file (truncated, empty, planted, from another
version of the format) raises :class:`DamagedRunFile`; the cache then treats it as missing.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from lbsim.results.metrics import RunTables

# The layout this module writes; a file of another layout is not read.
FORMAT = 1

_FRAMES = ("servers", "timeseries", "faults", "events", "regions", "tiers")


class DamagedRunFile(ValueError):
    """A run file that cannot be read back as one run's tables."""


def write_run(path: Path, tables: RunTables, seconds: float) -> None:
    """Write ``tables`` (and the run's wall time in ``seconds``) to ``path``.

    Raises:
        TypeError: a table holds a column of Python objects other than text, or has an
            index other than 0..n-1 (the engine's tables never do).
    """
    arrays: dict[str, np.ndarray] = {"latency_quantiles": np.asarray(tables.latency_quantiles)}
    frames: dict[str, list[tuple[str, str]]] = {}
    for name in _FRAMES:
        frame: pd.DataFrame = getattr(tables, name)
        if not frame.index.equals(pd.RangeIndex(len(frame))):
            raise TypeError(f"{name}: a run file keeps only tables indexed 0..n-1.")
        frames[name] = []
        for k, (column, series) in enumerate(frame.items()):
            frames[name].append((str(column), str(series.dtype)))
            arrays[f"{name}.{k}"] = _data_only(name, str(column), series.to_numpy())
    meta = {
        "format": FORMAT,
        "summary": {key: _plain(value) for key, value in tables.summary.items()},
        "little": [float(x) for x in tables.little],
        "seconds": seconds,
        "frames": frames,
    }
    arrays["meta"] = np.array(json.dumps(meta))
    with path.open("wb") as file:
        np.savez(file, allow_pickle=False, **arrays)


def read_run(path: Path) -> tuple[RunTables, float]:
    """The tables and wall time kept in ``path``.

    Raises:
        DamagedRunFile: ``path`` is not a whole run file of this format: not an archive of
            arrays, or its parts are missing or of other types or shapes than this module
            writes (a planted file included).
        OSError: ``path`` cannot be read.
    """
    try:
        with np.load(path, allow_pickle=False) as archive:
            if not isinstance(archive, np.lib.npyio.NpzFile):
                raise DamagedRunFile(f"{path.name}: not an archive of arrays.")
            meta = json.loads(str(archive["meta"][()]))
            _check_meta(meta)
            frames = {name: _frame(archive, name, meta["frames"][name]) for name in _FRAMES}
            quantiles = archive["latency_quantiles"]
            if quantiles.ndim != 1 or quantiles.dtype != np.float64:
                raise DamagedRunFile(f"{path.name}: latency quantiles of another shape or type.")
        tables = RunTables(
            summary=meta["summary"],
            latency_quantiles=quantiles,
            little=(float(meta["little"][0]), float(meta["little"][1])),
            **frames,
        )
        return tables, float(meta["seconds"])
    except DamagedRunFile as exc:
        raise DamagedRunFile(f"{path.name}: {exc}") from None
    except (zipfile.BadZipFile, EOFError, LookupError, TypeError, ValueError, AttributeError, ArithmeticError,
            RecursionError, MemoryError) as exc:  # fmt: skip
        raise DamagedRunFile(f"{path.name}: {type(exc).__name__}") from None


# The pandas dtypes the engine's tables have (text is "str" with pandas 3, "object" before).
_DTYPES = {"float64", "int64", "int32", "int8", "bool", "object", "str"}


def _check_meta(meta: Any) -> None:
    """Raise DamagedRunFile unless ``meta`` has the parts, types and format this module writes."""

    def number(value: Any) -> bool:
        return isinstance(value, int | float) and not isinstance(value, bool)

    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise DamagedRunFile(f"not a run file of format {FORMAT}.")
    summary, little, frames = meta.get("summary"), meta.get("little"), meta.get("frames")
    if not (
        isinstance(summary, dict)
        and all(isinstance(value, int | float | str | None) for value in summary.values())
        and isinstance(little, list)
        and len(little) == 2
        and all(number(x) for x in little)
        and number(meta.get("seconds"))
        and isinstance(frames, dict)
        and set(frames) == set(_FRAMES)
        and all(
            isinstance(columns, list)
            and all(
                isinstance(pair, list) and len(pair) == 2 and isinstance(pair[0], str) and pair[1] in _DTYPES
                for pair in columns
            )
            and len({pair[0] for pair in columns}) == len(columns)
            for columns in frames.values()
        )
    ):
        raise DamagedRunFile("its description has other parts or types than a run file's.")


def _frame(archive: Any, name: str, columns: list[list[str]]) -> pd.DataFrame:
    """Table ``name`` of ``archive``: one 1-D column array per (column, dtype), of equal lengths."""
    arrays = [archive[f"{name}.{k}"] for k in range(len(columns))]
    if any(array.ndim != 1 or array.dtype.kind not in "biufU" for array in arrays):
        raise DamagedRunFile(f"table {name}: a column of another shape or type.")
    if len({array.size for array in arrays}) > 1:
        raise DamagedRunFile(f"table {name}: columns of different lengths.")
    return pd.DataFrame(
        {
            column: pd.Series(array, dtype=dtype)
            for array, (column, dtype) in zip(arrays, columns, strict=True)
        }
    )


def _data_only(frame: str, column: str, values: np.ndarray) -> np.ndarray:
    """``values`` as an array that needs no pickling: text columns become fixed-width text."""
    if values.dtype != object:
        return values
    if not all(isinstance(value, str) for value in values):
        raise TypeError(f"{frame}.{column}: a run file keeps numbers and text only.")
    return values.astype(str) if len(values) else np.zeros(0)


def _plain(value: Any) -> Any:
    """A summary value as JSON writes it: numpy scalars become Python numbers."""
    return value.item() if isinstance(value, np.generic) else value
