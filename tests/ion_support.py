"""ION for tests: the install the build script made, or a skip that says why.

Where ION should have been built (``HILNET_REQUIRE_ION=1``, as CI sets after
building it) a missing install fails the test instead of skipping it.
"""

from __future__ import annotations

import os
import shutil

import pytest

from hilnet.errors import StackError
from hilnet.stacks.ion_install import IonInstall, require_ion


def ion_or_skip() -> IonInstall:
    """The ION install; skips (or fails under HILNET_REQUIRE_ION=1) without one or without root."""
    problem = None
    try:
        ion = require_ion()
    except StackError as e:
        problem = str(e)
    if problem is None and os.geteuid() != 0:
        problem = "ION nodes run in their own IPC namespace (unshare --ipc): needs root"
    if problem is None and shutil.which("unshare") is None:
        problem = "unshare (util-linux) is missing"
    if problem is not None:
        if os.environ.get("HILNET_REQUIRE_ION") == "1":
            pytest.fail(f"ION was required here: {problem}")
        pytest.skip(problem)
    return ion


@pytest.fixture
def ion() -> IonInstall:
    return ion_or_skip()
