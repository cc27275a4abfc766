"""Exception types. Each message names the input, what was expected, what was found, and what to do."""

from __future__ import annotations


class SmsguardError(Exception):
    """A problem the user can fix. The CLI prints it as one line and exits with status 2."""


class BundleError(SmsguardError):
    """A bundle folder, manifest, vocabulary or model file is missing, unreadable or inconsistent."""


class IntegrityError(BundleError):
    """A bundle file's SHA-256 differs from the one its manifest records."""


class BackendError(SmsguardError):
    """An inference backend is unknown, not installed, or cannot run the model."""


class ConfigError(SmsguardError, ValueError):
    """A setting is out of range or of the wrong kind (a flag value, a config field)."""


class ReloadError(SmsguardError):
    """A new bundle was refused by a running Classifier, which keeps serving the old one."""
