"""``hilnet pki init|issue``: a lab CA and node certificates for TCPCLv4 over TLS (docs/cla.md)."""

from __future__ import annotations

import click

from hilnet.agent.pki import init_ca, issue
from hilnet.bundle.eid import ipn_numbers
from hilnet.errors import InputError
from hilnet.scenario.load import load_scenario

DEFAULT_DIR = "pki"


@click.group("pki")
def command() -> None:
    """Make a lab CA and node certificates for TCPCLv4 over TLS."""


@command.command("init")
@click.argument("folder", default=DEFAULT_DIR, type=click.Path(file_okay=False))
@click.option("--name", default="hilnet lab CA", show_default=True, help="The CA's common name.")
@click.option("--days", type=click.IntRange(min=1), default=3650, show_default=True, help="Validity in days.")
@click.option("--force", is_flag=True, help="Replace a CA already in FOLDER (certificates it signed stop working).")
def init(folder: str, name: str, days: int, force: bool) -> None:
    """Make a CA in FOLDER (default ./pki): ca.key (mode 0600) and a self-signed ca.crt."""
    ca = init_ca(folder, name=name, days=days, force=force)
    click.echo(f"CA {name!r}: {ca.cert} (key {ca.key})")


@command.command("issue")
@click.argument("node")
@click.option("--ca", "folder", default=DEFAULT_DIR, show_default=True, help="The folder `hilnet pki init` made.")
@click.option("--scenario", type=click.Path(dir_okay=False), help="Read NODE's node id from this scenario.")
@click.option("--days", type=click.IntRange(min=1), default=825, show_default=True, help="Validity in days.")
@click.option("--force", is_flag=True, help="Replace the node's key and certificate if they exist.")
def issue_cmd(node: str, folder: str, scenario: str | None, days: int, force: bool) -> None:
    """Make NODE's key (0600) and a certificate for its node id, signed by the CA in --ca.

    NODE is a node name of --scenario, or a node id (ipn:4.0, dtn://ground/).
    The certificate carries the node id as a subjectAltName (URI and RFC 9174's BundleEID).
    """
    name, node_id = _resolve(node, scenario)
    files = issue(folder, name, node_id, days=days, force=force)
    click.echo(f"{name} ({node_id}): {files.cert} (key {files.key}, CA {files.ca})")


def _resolve(node: str, scenario: str | None) -> tuple[str, str]:
    """(file name, node id) for NODE."""
    if scenario is not None:
        sc = load_scenario(scenario)
        for n in sc.nodes:
            if node in (n.name, n.eid):
                return n.name, n.eid
        names = ", ".join(n.name for n in sc.nodes)
        raise InputError(f"{scenario} has no node {node!r}; expected one of {names} or a node id")
    if ipn_numbers(node) is not None or node.startswith("dtn:"):
        return node, node
    raise InputError(f"{node!r} is not a node id such as ipn:4.0; give --scenario FILE to name a node by its name")
