"""Exact per-request records as tables: a DataFrame for ``simulate``, a Parquet file per run
for ``lbsim run --keep-requests``.

The engine hands records over in chunks; both keepers take them as sinks, so a kept file is
written chunk by chunk and never needs the whole run in memory.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from lbsim.errors import ConfigError
from lbsim.results.recorder import Records
from lbsim.status import STATUSES


def requests_frame(records: Records, server_names: np.ndarray) -> pd.DataFrame:
    """One row per request that ended: arrival, start and end instants, latency, size, server
    name ("" when none was chosen), status, client, session."""
    return pd.DataFrame(
        {
            "t_arrival": records.t_arrival,
            "t_start": records.t_start,
            "t_done": records.t_done,
            "latency": records.t_done - records.t_arrival,
            "size": records.size,
            "server": server_names[records.server],
            "status": pd.Categorical.from_codes(
                records.status.astype(np.int64), categories=pd.Index(STATUSES)
            ),
            "client": records.client,
            "session": records.session,
        }
    )


class RequestsInMemory:
    """Keeps every chunk; ``frame`` joins them once the run is over."""

    def __init__(self) -> None:
        self.chunks: list[Records] = []

    def __call__(self, chunk: Records) -> None:
        self.chunks.append(chunk)

    def frame(self, server_names: list[str]) -> pd.DataFrame:
        """The requests of the run, in the order they ended."""
        return requests_frame(Records.join(self.chunks), np.array([*server_names, ""]))


def require_parquet() -> None:
    """Raise a ConfigError saying what to install when pyarrow is missing."""
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        raise ConfigError(
            "--keep-requests needs pyarrow to write Parquet: pip install 'lbsim[parquet]'."
        ) from None


class RequestsFile:
    """Writes every chunk to a Parquet file as it comes; the file appears under its name only
    when ``close`` is called, so an interrupted run leaves no truncated file.

    Server numbers are stored (names are in servers.csv, in the same order); status is the
    category name.
    """

    def __init__(self, path: Path) -> None:
        require_parquet()
        import pyarrow as pa
        import pyarrow.parquet as pq

        self.path = path
        self.partial = path.with_name(f".{path.name}.partial")
        path.parent.mkdir(parents=True, exist_ok=True)
        self.schema = pa.schema(
            [("t_arrival", pa.float64()), ("t_start", pa.float64()), ("t_done", pa.float64()),
             ("latency", pa.float64()), ("size", pa.float64()), ("server", pa.int32()),
             ("status", pa.dictionary(pa.int8(), pa.string())), ("client", pa.int32()),
             ("session", pa.int64())]
        )  # fmt: skip
        self.writer = pq.ParquetWriter(self.partial, self.schema)
        self.statuses = pa.array(STATUSES)

    def __call__(self, chunk: Records) -> None:
        import pyarrow as pa

        columns = [
            chunk.t_arrival, chunk.t_start, chunk.t_done, chunk.t_done - chunk.t_arrival, chunk.size,
            chunk.server, pa.DictionaryArray.from_arrays(chunk.status, self.statuses), chunk.client,
            chunk.session,
        ]  # fmt: skip
        self.writer.write_table(pa.Table.from_arrays(columns, schema=self.schema))

    def close(self) -> None:
        """Finish the file and give it its name."""
        self.writer.close()
        self.partial.replace(self.path)
