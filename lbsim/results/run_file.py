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
        DamagedRunFile: ``path`` is not a whole run file of this format.
        OSError: ``path`` cannot be read.
    """
    try:
        with np.load(path, allow_pickle=False) as archive:
            meta = json.loads(str(archive["meta"]))
            if meta.get("format") != FORMAT:
                raise DamagedRunFile(f"{path.name}: not a run file of format {FORMAT}.")
            frames = {
                name: pd.DataFrame(
                    {
                        column: pd.Series(archive[f"{name}.{k}"], dtype=dtype)
                        for k, (column, dtype) in enumerate(meta["frames"][name])
                    }
                )
                for name in _FRAMES
            }
            quantiles = archive["latency_quantiles"]
        tables = RunTables(
            summary=meta["summary"],
            latency_quantiles=quantiles,
            little=(meta["little"][0], meta["little"][1]),
            **frames,
        )
        return tables, float(meta["seconds"])
    except (zipfile.BadZipFile, EOFError, KeyError, IndexError, TypeError, ValueError) as exc:
        if isinstance(exc, DamagedRunFile):
            raise
        raise DamagedRunFile(f"{path.name}: {type(exc).__name__}") from None


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
