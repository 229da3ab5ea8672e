"""Which hilnet this is: its version and a digest of its sources, the same on a board and here.

A version number alone does not change between two commits of a checkout;
the digest of the package's Python sources does, so a board that runs other
code than the controller is refused even when both say 0.1.0.
"""

from __future__ import annotations

import hashlib
import os

import hilnet

DIGEST_CHARS = 12


def source_digest(package_dir: str | None = None) -> str:
    """SHA-256 (first 12 hex digits) over every ``.py`` file of the hilnet package: path and bytes."""
    root = package_dir or os.path.dirname(os.path.abspath(hilnet.__file__))
    h = hashlib.sha256()
    files = []
    for folder, dirs, names in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__")
        files += [os.path.join(folder, n) for n in names if n.endswith(".py")]
    for path in sorted(files, key=lambda p: os.path.relpath(p, root)):
        rel = os.path.relpath(path, root).replace(os.sep, "/")
        with open(path, "rb") as f:
            data = f.read()
        h.update(f"{rel}\0{len(data)}\0".encode())
        h.update(data)
    return h.hexdigest()[:DIGEST_CHARS]


def identity() -> str:
    """``VERSION+DIGEST``, e.g. ``0.1.0+3f2a9c01b7de``."""
    return f"{hilnet.__version__}+{source_digest()}"
