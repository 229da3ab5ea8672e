"""Every ION 4.1.3 configuration that holds contacts imports, and the scenario it gives validates.

The ION source tarball is a third-party file kept beside the checkout
(``../shared/vendor``, or the folder ``HILNET_VENDOR_DIR`` names); it is
extracted into a temporary folder and every file under ``configs/``,
``demos/`` and ``contrib/`` with an ``a contact`` line is tried: ionrc files
must import and validate, shell scripts (``#!``, which generate rc lines with
``${VARIABLES}``) must be refused with a FILE:LINE: message.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from hilnet.errors import ContactPlanError
from hilnet.scenario.ion_import import import_ion
from hilnet.scenario.load import load_scenario_text

ROOT = Path(__file__).resolve().parents[2]
VENDOR = Path(os.environ.get("HILNET_VENDOR_DIR") or ROOT.parent / "shared" / "vendor")
TARBALL = VENDOR / "ion-dtn-4.1.3-src.tar.xz"
FOLDERS = ("configs/", "demos/", "contrib/")
CONTACT = re.compile(r"^\s*a\s+contact\b", re.M)

pytestmark = pytest.mark.skipif(
    not TARBALL.is_file(), reason=f"ION source tarball not found at {TARBALL} (set HILNET_VENDOR_DIR)"
)


@pytest.fixture(scope="module")
def ion_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Relative path -> text of every text file under the three folders that has an ``a contact`` line."""
    dest = tmp_path_factory.mktemp("ion")
    with tarfile.open(TARBALL) as tar:
        members = [m for m in tar.getmembers() if m.isfile() and m.name.split("/", 1)[-1].startswith(FOLDERS)]
        tar.extractall(dest, members=members, filter="data")
    out = {}
    for path in sorted(p for p in dest.rglob("*") if p.is_file()):
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue  # archives, images: not ionrc
        if CONTACT.search(text):
            out[str(path.relative_to(dest)).split("/", 1)[1]] = text
    return out


def test_every_ionrc_with_contacts_imports_and_validates(ion_files: dict[str, str]) -> None:
    ionrc = {name: text for name, text in ion_files.items() if not text.startswith("#!")}
    links = 0
    for name, text in ionrc.items():
        imported = import_ion(text, source=name)
        scenario = load_scenario_text(imported.text, f"{name}.yaml")
        links += len(scenario.links)
    print(f"\n{len(ionrc)} of {len(ion_files)} ION files with 'a contact' lines are ionrc; all import and validate")
    assert len(ion_files) == 40 and len(ionrc) == 38
    assert links >= 38  # most configurations join two or more nodes; the loopback ones only themselves


def test_a_plan_that_runs_until_2009_comes_in_whole_with_an_epoch(ion_files: dict[str, str]) -> None:
    """``+0 2009/01/01-00:00:00``: written in 2008 for "from now until well after"; without an epoch
    the earliest time, 2009-01-01, is time 0 and the contacts are empty (each noted)."""
    name = "configs/3node-ltp-brs/iontest.ipn.node5/node5.ionrc"
    bare = import_ion(ion_files[name], source=name)
    assert sum("is empty once placed" in note for note in bare.notes) == 6
    placed = load_scenario_text(import_ion(ion_files[name], source=name, epoch="2008-12-31T00:00:00Z").text)
    assert sorted(link.name for link in placed.links) == ["node-5-node-10", "node-5-node-7"]
    assert placed.link("node-5-node-7").forward.delay_ns == 600 * 10**9


def test_shell_scripts_are_refused_at_their_line(ion_files: dict[str, str]) -> None:
    scripts = {name: text for name, text in ion_files.items() if text.startswith("#!")}
    assert len(scripts) == 2
    for name, text in scripts.items():
        with pytest.raises(ContactPlanError, match=rf"^{re.escape(name)}:\d+: cannot read '\$\{{THROUGHPUT\}}'"):
            import_ion(text, source=name)


def test_the_cli_imports_one_and_hilnet_validate_accepts_it(ion_files: dict[str, str], tmp_path: Path) -> None:
    name = "configs/3node-stcp-ltp/host2.rc"
    rc = tmp_path / "host2.rc"
    rc.write_text(ion_files[name])
    run = [sys.executable, "-m", "hilnet"]
    p = subprocess.run([*run, "contacts", "import", str(rc)], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    assert f"hilnet: note: {rc}:26: contact 1->1 is node 1's contact with itself; skipped" in p.stderr
    scenario = tmp_path / "host2.yaml"
    scenario.write_text(p.stdout)
    v = subprocess.run([*run, "validate", str(scenario)], capture_output=True, text=True, timeout=60)
    assert v.returncode == 0, v.stdout + v.stderr
