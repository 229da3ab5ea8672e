"""Every error hilnet raises on purpose, in one tree.

    HilnetError                      anything hilnet reports to a person (CLI exit 2)
    ├── InputError                   a value a person wrote is wrong
    │   ├── UnitError                "10 Mbps?" is not a rate
    │   ├── ScenarioError            a scenario or bench file; carries FILE:LINE:COL
    │   │   └── ScenarioErrors       several ScenarioErrors of one file, reported together
    │   ├── SpecError                an endpoint spec such as ``eth://`` without a name
    │   ├── ContactPlanError         an ION contact plan line that cannot be read
    │   ├── KeyFileError             a BPSec key file line that cannot be read; FILE:LINE:COL
    │   └── RunFolderError           a run folder or its events.jsonl is missing or corrupt; FILE:LINE
    ├── BundleError                  BPv7 (RFC 9171)
    │   ├── BundleEncodeError        a bundle that cannot be written as asked
    │   ├── FragmentError            fragments that cannot be made or reassembled
    │   ├── SecurityError            a BPSec block (RFC 9172) fails verification or decryption, or has no key
    │   └── BundleDecodeError        bytes that are not a valid bundle; carries the offset
    │       ├── CborError            wrong major type, indefinite length, truncation...
    │       ├── VersionError         primary block version is not 7
    │       ├── CrcError             a block's CRC does not match
    │       ├── BlockError           missing or misplaced payload, duplicate numbers...
    │       ├── EidError             an endpoint id that is not ipn:/dtn:
    │       └── LimitError           bigger or deeper than the configured bounds
    ├── StoreError                   the persistent bundle store
    │   ├── StoreFullError           quota reached: the put is refused, nothing dropped
    │   └── DuplicateBundleError     a put of a key the store already holds; nothing changed
    ├── LinkError                    an emulated link or one of its endpoints failed
    │   └── EndpointError            a port vanished, a socket could not be opened
    ├── ClaError                     a convergence layer session failed
    │   ├── ProtocolError            the peer broke the protocol (counted, logged)
    │   │   ├── FrameError           a serial CLA frame that fails its CRC or layout; has ``reason``
    │   │   └── WireError            a TCPCLv4 / MTCP message or LTP segment that does not parse; has ``reason``
    │   ├── TransferRefusedError     the peer refused a bundle (store full); the sender keeps it
    │   └── TooBigForPeerError       the peer said it takes no bundle this big; the sender keeps it
    ├── AgentError                   the node agent or its control channel
    │   ├── ControlError             a malformed control message
    │   └── NoAgentError             no agent listens at a control socket (not yet, or no more)
    ├── TestbedError                 a backend could not build or keep the testbed
    └── StackError                   a node's DTN stack (hilnet, ION) is missing or would not run

Errors from input carry where the input came from (file:line:col, link and
offset), so the message alone tells a person what to fix.
"""

from __future__ import annotations


class HilnetError(Exception):
    """Root of every error hilnet raises deliberately."""


class InputError(HilnetError):
    """Something a person wrote (a file, an option) is wrong."""


class UnitError(InputError, ValueError):
    """A quantity ("250ms", "10Mbit/s") that cannot be read."""


class ScenarioError(InputError):
    """One problem in a scenario (or bench) file, at a known place.

    ``str()`` reads ``FILE:LINE:COL: message`` with 1-based line and column.
    """

    def __init__(self, message: str, file: str = "<scenario>", line: int = 0, col: int = 0):
        self.message = message
        self.file = file
        self.line = line
        self.col = col
        super().__init__(str(self))

    def __str__(self) -> str:
        if self.line <= 0:  # about the file as a whole (unreadable, too big): no position
            return f"{self.file}: {self.message}"
        return f"{self.file}:{self.line}:{self.col}: {self.message}"


class ScenarioErrors(ScenarioError):
    """All the problems found in one file, in file order."""

    def __init__(self, errors: list[ScenarioError]):
        self.errors = sorted(errors, key=lambda e: (e.file, e.line, e.col))
        first = self.errors[0]
        super().__init__(first.message, first.file, first.line, first.col)

    def __str__(self) -> str:
        return "\n".join(ScenarioError.__str__(e) for e in self.errors)


class SpecError(InputError):
    """An endpoint spec (``pty:///tmp/x``, ``eth://veth0``) that cannot be used."""


class ContactPlanError(InputError):
    """An ION contact-plan line that cannot be read."""


class KeyFileError(InputError):
    """A BPSec key file that cannot be read; ``str()`` reads ``FILE:LINE:COL: message``."""

    def __init__(self, message: str, file: str = "<keys>", line: int = 0, col: int = 0):
        self.message = message
        self.file = file
        self.line = line
        self.col = col
        super().__init__(f"{file}:{line}:{col}: {message}" if line > 0 else f"{file}: {message}")


class RunFolderError(InputError):
    """A run folder (``runs/...``) that is missing a file or holds a corrupt one.

    ``str()`` names the file, and the line for a bad ``events.jsonl`` record.
    """


class BundleError(HilnetError):
    """Base of the Bundle Protocol errors."""


class BundleEncodeError(BundleError):
    """A bundle that cannot be encoded as asked."""


class FragmentError(BundleError):
    """Fragmenting a bundle that must not be, or fragments that do not reassemble."""


class SecurityError(BundleError):
    """A BPSec security operation (RFC 9172) that cannot be done or does not verify.

    ``reason`` is a short name for events and counters (``bib-mismatch``,
    ``bcb-tag-mismatch``, ``no-key``...); the message says which block and source.
    """

    def __init__(self, reason: str, message: str):
        self.reason = reason
        super().__init__(message)


class BundleDecodeError(BundleError):
    """Bytes that are not a valid BPv7 bundle.

    ``offset`` is the byte offset into the input where the problem was found.
    """

    def __init__(self, message: str, offset: int = 0):
        self.message = message
        self.offset = offset
        super().__init__(f"{message} (at byte {offset})")


class CborError(BundleDecodeError):
    """CBOR that is malformed or not the shape RFC 9171 requires."""


class VersionError(BundleDecodeError):
    """A primary block whose version is not 7."""


class CrcError(BundleDecodeError):
    """A block whose CRC does not match its contents."""


class BlockError(BundleDecodeError):
    """Blocks that break RFC 9171's rules (payload missing or not last, duplicates...)."""


class EidError(BundleDecodeError):
    """An endpoint id that is not a valid ipn: or dtn: EID."""


class LimitError(BundleDecodeError):
    """Input over the configured bounds (size, nesting depth, block count)."""


class StoreError(HilnetError):
    """The persistent bundle store failed."""


class StoreFullError(StoreError):
    """The store's quota is reached; the put was refused and nothing was dropped."""


class DuplicateBundleError(StoreError):
    """A put of a key the store already holds; the stored bundle is unchanged."""


class LinkError(HilnetError):
    """An emulated link failed."""


class EndpointError(LinkError):
    """A link endpoint could not be opened or vanished while running."""


class ClaError(HilnetError):
    """A convergence layer session failed."""


class ProtocolError(ClaError):
    """A peer sent something the convergence layer protocol does not allow."""


class FrameError(ProtocolError):
    """A serial CLA frame that cannot be used; ``reason`` is a short counter key (``crc``...)."""

    def __init__(self, reason: str, detail: str = ""):
        self.reason = reason
        super().__init__(f"{reason}: {detail}" if detail else reason)


class WireError(ProtocolError):
    """A TCPCLv4 or MTCP message or an LTP segment from a peer that cannot be used.

    ``reason`` is a short counter key (``bad_magic``, ``unknown_message_type``...);
    ``header`` is the offending message type octet where there is one.
    """

    def __init__(self, reason: str, detail: str = "", header: int | None = None):
        self.reason = reason
        self.header = header
        super().__init__(f"{reason}: {detail}" if detail else reason)


class TransferRefusedError(ClaError):
    """The peer refused a bundle (its store is full); the sender keeps its copy and retries later."""


class TooBigForPeerError(ClaError):
    """The peer said it takes no bundle this big (TCPCLv4 Transfer MRU, serial "too large").

    The sender keeps its copy; retrying the same peer will not help until its limit changes.
    """


class AgentError(HilnetError):
    """The node agent failed."""


class ControlError(AgentError):
    """A control-channel message that cannot be understood."""


class NoAgentError(AgentError):
    """Nothing listens at an agent's control socket: no file there, or a stale one."""


class TestbedError(HilnetError):
    """A backend could not build, run or tear down the testbed."""

    __test__ = False  # not a pytest test class despite the name


class StackError(HilnetError):
    """A node's DTN stack (hilnet's agent, ION) is missing, or could not be configured, started or stopped."""
