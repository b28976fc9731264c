"""Atomic text files: the one way ``analysis`` writes a file a reader may open at any moment.

The report (:mod:`analysis.report.publish`) and the findings baseline
(:mod:`analysis.findings`) both write through :func:`write_text`. The artifact
store has its own byte writer (``compress/store/files.py``: binary parts,
directory fsync): ``compress`` may not import this module (DESIGN.md, layers).
"""
from __future__ import annotations

import os
import secrets
from pathlib import Path

__all__ = ["write_text"]


def write_text(path: str | Path, text: str, *, mode: int | None = None) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically: a temporary file beside it, fsync, ``os.replace``.

    The file is created with mode ``0o666`` less the umask, like any file a
    program opens for writing (not ``0600`` as ``mkstemp`` would), or gets
    ``mode`` when given. On any failure the temporary file is removed and the
    error re-raised.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        if mode is not None:
            os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path
