"""Write a report file whole or not at all.

``hilnet report`` rewrites the reports of a folder that may be open in a
browser or read by CI; a report is written beside its final name and renamed
over it, so a reader never sees half a file and a failed write leaves the old one.
"""

from __future__ import annotations

import os
from pathlib import Path


def write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (same-directory temp file + rename); returns the path."""
    target = Path(path)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return target


def write_text(path: str | os.PathLike[str], text: str) -> Path:
    """Write UTF-8 ``text`` to ``path`` atomically; returns the path."""
    return write_bytes(path, text.encode("utf-8"))
