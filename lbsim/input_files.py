"""Files a scenario names (trace replays, ``empirical()`` sizes), checked before they are read.

A scenario can name any path, so one that names a device (``/dev/zero`` reads forever), a
pseudo-file of the kernel (``/proc/self/environ``: size 0, secret contents) or a huge file
must be refused without reading it.
"""

from __future__ import annotations

import stat
from pathlib import Path

from lbsim.errors import ConfigError, shown

# The largest input file read, in bytes (a 512 MiB trace holds about 25 million requests).
MAX_BYTES = 512 * 2**20


def input_path(file: str, base_dir: Path | None, confined: bool = False) -> Path:
    """The file a scenario names: ``file`` relative to the scenario's folder ``base_dir``.

    Raises:
        ConfigError: ``confined`` (``--safe``) and the file, with every symbolic link
            followed, is not inside ``base_dir`` (the current folder when None).
    """
    path = Path(file)
    if base_dir is not None and not path.is_absolute():
        path = base_dir / path
    if confined and not path.resolve().is_relative_to((base_dir or Path.cwd()).resolve()):
        raise ConfigError(f"must be inside the scenario's folder with --safe; got {shown(file)}.")
    return path


def read_input_bytes(path: Path, what: str = "") -> bytes:
    """The bytes of ``path``, a regular, non-empty file of at most MAX_BYTES; ``what`` starts
    each error message (the key names the file otherwise).

    Raises:
        ConfigError: ``path`` is missing or unreadable, not a regular file, empty (as the
            kernel's pseudo-files report themselves) or larger than MAX_BYTES.
    """
    name = shown(str(path))
    try:
        status = path.stat()
        if not stat.S_ISREG(status.st_mode):
            raise ConfigError(f"{what}must be a regular file; got {name}, which is not.")
        if status.st_size == 0:
            raise ConfigError(f"{what}must be a file with contents; got {name}, which is empty.")
        if status.st_size > MAX_BYTES:
            raise ConfigError(
                f"{what}must be at most {MAX_BYTES // 2**20} MiB; "
                f"got {name} of {status.st_size / 2**20:.0f} MiB."
            )
        return path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{what}must be a readable file; got {name} ({exc.strerror}).") from None


def read_input(path: Path, what: str = "") -> str:
    """The text of ``path`` (:func:`read_input_bytes`), which must be UTF-8.

    Raises:
        ConfigError: as :func:`read_input_bytes`, or the file is not UTF-8.
    """
    try:
        return read_input_bytes(path, what).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"{what}must be UTF-8 text; got {shown(str(path))}, not text at byte {exc.start}."
        ) from None
