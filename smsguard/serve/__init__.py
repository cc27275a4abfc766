"""`smsguard serve` (a local HTTP service for a bundle) and `smsguard gammu` (gammu-smsd's RunOnReceive hook).

Importing this package is light (no asyncio, no NumPy): the CLI registers the commands from here, and
the heavy modules are imported when a command runs."""

from smsguard.serve._cli import add_commands
from smsguard.serve._client import Client, ServerError
from smsguard.serve._config import ServeConfig

__all__ = ["Client", "ServeConfig", "ServerError", "add_commands"]
