"""hilnet: a hardware-in-the-loop link emulator for delay-tolerant networks."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("hilnet")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0+unknown"
