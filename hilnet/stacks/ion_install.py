"""Where ION's programs are: a build by ``scripts/build-ion``, or an install on the PATH.

``HILNET_ION_PREFIX`` names an install prefix (its ``bin/`` and ``lib/``);
without it the build script's cache folder is tried, then the PATH (a board
where ION was installed system-wide, docs/stacks.md).
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from hilnet.errors import StackError

ION_VERSION = "4.1.3"
BUILD_SCRIPT = "scripts/build-ion"
# The programs every ION node needs; a prefix without them is not an ION install.
ION_PROGRAMS = ("ionadmin", "bpadmin", "ipnadmin", "ionstart", "ionstop", "bpsendfile", "bprecvfile")


@dataclass(frozen=True)
class IonInstall:
    bin_dir: Path
    lib_dir: Path | None  # None: the system's library path finds ION's libraries

    def program(self, name: str) -> str:
        return str(self.bin_dir / name)

    def env(self, base: dict[str, str] | None = None) -> dict[str, str]:
        """An environment whose PATH and LD_LIBRARY_PATH find this ION first (ionstart runs its admins by name)."""
        env = dict(os.environ if base is None else base)
        env["PATH"] = f"{self.bin_dir}{os.pathsep}{env.get('PATH', '')}"
        if self.lib_dir is not None:
            env["LD_LIBRARY_PATH"] = f"{self.lib_dir}{os.pathsep}{env.get('LD_LIBRARY_PATH', '')}".rstrip(os.pathsep)
        return env


def default_prefix() -> Path:
    """The build script's cache folder (it must say the same)."""
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "hilnet" / f"ion-{ION_VERSION}-ewchar"


def _complete(bin_dir: Path) -> bool:
    return all((bin_dir / p).is_file() and os.access(bin_dir / p, os.X_OK) for p in ION_PROGRAMS)


def find_ion() -> IonInstall | None:
    """The ION install to use, or None when there is none."""
    named = os.environ.get("HILNET_ION_PREFIX")
    for prefix in [Path(named)] if named else [default_prefix()]:
        if _complete(prefix / "bin"):
            return IonInstall(prefix / "bin", prefix / "lib")
    if named:
        return None  # a prefix was named: do not silently take another ION
    found = shutil.which("ionadmin")
    if found and _complete(Path(found).parent):
        return IonInstall(Path(found).parent, None)
    return None


def require_ion() -> IonInstall:
    """The ION install, or a StackError that says how to get one."""
    ion = find_ion()
    if ion is not None:
        return ion
    where = os.environ.get("HILNET_ION_PREFIX") or str(default_prefix())
    raise StackError(
        f"ION is not installed: no {', '.join(ION_PROGRAMS[:3])}... in {where}/bin or on the PATH; "
        f"build it with {BUILD_SCRIPT} (ION {ION_VERSION} from its source tarball), or set HILNET_ION_PREFIX"
    )
