"""Ed25519 signatures over a bundle's manifest (extra `smsguard[sign]`: the `cryptography` package).

The manifest pins every other file by SHA-256, so a detached signature over its exact bytes
(`manifest.sig`) covers the whole bundle. A device that is given trusted public keys refuses a bundle
that is unsigned, signed by another key, or whose manifest changed by a byte since it was signed (a
signature copied from another bundle is one of those). `cryptography` is imported only when keys are
used: the base runtime stays numpy-only.

Key files are PEM: the private key PKCS#8 (written 0600, unencrypted: keep it on the build machine), the
public key SubjectPublicKeyInfo. A key's id is the first 16 hex digits of the SHA-256 of its raw 32 bytes.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from smsguard._errors import BundleError, SmsguardError
from smsguard._files import read_bytes
from smsguard._staging import write_json
from smsguard.runtime._manifest import MANIFEST_NAME

SIGNATURE_NAME = "manifest.sig"
SIGNATURE_FORMAT = 1
TRUSTED_KEYS_ENV = "SMSGUARD_TRUSTED_KEYS"  # key files, separated by os.pathsep: trusted by every Classifier.load of the process
PRIVATE_KEY_NAME = "smsguard.key"
PUBLIC_KEY_NAME = "smsguard.pub"


class SignatureError(BundleError):
    """A bundle's signature is missing, made by a key that is not trusted, or does not match its manifest."""


class KeyFileError(SmsguardError):
    """A key file is missing, unreadable, or not an Ed25519 key of the kind asked for."""


@dataclass(frozen=True)
class PublicKey:
    key_id: str
    raw: bytes  # 32 bytes
    source: str  # the file it was read from, for messages

    def verify(self, signature: bytes, message: bytes) -> bool:
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

        try:
            Ed25519PublicKey.from_public_bytes(self.raw).verify(signature, message)
        except InvalidSignature:
            return False
        return True


def key_id(raw_public: bytes) -> str:
    return hashlib.sha256(raw_public).hexdigest()[:16]


def _crypto() -> Any:
    try:
        from cryptography.hazmat.primitives import serialization
    except ImportError:
        msg = "signing and checking signatures need the `cryptography` package: pip install 'smsguard[sign]'"
        raise SmsguardError(msg) from None
    return serialization


def generate_keys(out: Path) -> tuple[Path, Path]:
    """A new Ed25519 key pair in `out`: `smsguard.key` (private, 0600) and `smsguard.pub` (public).
    Refuses to overwrite either."""
    serialization = _crypto()
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    out = Path(out)
    private_path, public_path = out / PRIVATE_KEY_NAME, out / PUBLIC_KEY_NAME
    for path in (private_path, public_path):
        if path.exists():
            msg = f"key file '{path}' already exists; move it away or choose another --out (a key is never overwritten)"
            raise KeyFileError(msg)
    out.mkdir(parents=True, exist_ok=True)
    private = Ed25519PrivateKey.generate()
    private_pem = private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    public_pem = private.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    fd = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as file:
        file.write(private_pem)
    public_path.write_bytes(public_pem)
    return private_path, public_path


def read_public_key(path: str | os.PathLike[str]) -> PublicKey:
    serialization = _crypto()
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    data = _read_key_file(Path(path), "public key")
    try:
        key = serialization.load_pem_public_key(data)
    except ValueError:
        msg = f"public key '{path}' is not a PEM public key; give the .pub file that `smsguard keygen` wrote"
        raise KeyFileError(msg) from None
    if not isinstance(key, Ed25519PublicKey):
        msg = f"public key '{path}' is not an Ed25519 key; smsguard signs with Ed25519 (`smsguard keygen`)"
        raise KeyFileError(msg)
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return PublicKey(key_id(raw), raw, str(path))


def trusted_keys_from(paths: Iterable[str | os.PathLike[str] | PublicKey] | None) -> list[PublicKey] | None:
    """The keys a load should trust: `paths` when given, else those named by $SMSGUARD_TRUSTED_KEYS,
    else None (signatures are not checked, as before signing existed)."""
    if paths is None:
        env = os.environ.get(TRUSTED_KEYS_ENV, "")
        paths = [p for p in env.split(os.pathsep) if p]
        if not paths:
            return None
    keys = [p if isinstance(p, PublicKey) else read_public_key(p) for p in paths]
    if not keys:
        msg = "trusted keys were asked for, but none was given; pass at least one public key file"
        raise KeyFileError(msg)
    return keys


def read_private_key(path: str | os.PathLike[str]) -> Any:
    """An Ed25519 private key from a PEM file, or a one-line error."""
    serialization = _crypto()
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    data = _read_key_file(Path(path), "private key")
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError):
        msg = f"private key '{path}' is not an unencrypted PEM private key; give the .key file that `smsguard keygen` wrote"
        raise KeyFileError(msg) from None
    if not isinstance(key, Ed25519PrivateKey):
        msg = f"private key '{path}' is not an Ed25519 key; smsguard signs with Ed25519 (`smsguard keygen`)"
        raise KeyFileError(msg)
    return key


def sign_manifest(bundle: Path, private_key: str | os.PathLike[str]) -> Path:
    """Write `manifest.sig` beside `bundle`'s manifest: an Ed25519 signature over its exact bytes."""
    serialization = _crypto()


    key = read_private_key(private_key)
    manifest_path = Path(bundle) / MANIFEST_NAME
    try:
        manifest = manifest_path.read_bytes()
    except OSError as error:
        msg = f"manifest '{manifest_path}' cannot be read: {error.strerror}; is '{bundle}' a bundle?"
        raise BundleError(msg) from None
    raw_public = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    signature = {
        "format": SIGNATURE_FORMAT,
        "algorithm": "ed25519",
        "key_id": key_id(raw_public),
        "manifest_sha256": hashlib.sha256(manifest).hexdigest(),
        "signature": base64.b64encode(key.sign(manifest)).decode("ascii"),
    }
    path = Path(bundle) / SIGNATURE_NAME
    write_json(path, signature)
    return path


def check_signature(bundle: Path, manifest: bytes, trusted: Sequence[PublicKey]) -> str:
    """Refuse `manifest` (the exact bytes read) unless `bundle`'s signature over it is by one of `trusted`;
    return the signing key's id."""
    path = Path(bundle) / SIGNATURE_NAME
    trusted_ids = ", ".join(k.key_id for k in trusted)
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
        signer = str(document["key_id"])
        signature = base64.b64decode(document["signature"], validate=True)
    except FileNotFoundError:
        msg = f"bundle '{bundle}' is not signed (no {SIGNATURE_NAME}), and trusted keys were given; sign it with `smsguard sign {bundle} --key KEY`"
        raise SignatureError(msg) from None
    except (OSError, ValueError, KeyError, TypeError) as error:
        msg = f"bundle '{bundle}': {SIGNATURE_NAME} is malformed ({type(error).__name__}); sign the bundle again"
        raise SignatureError(msg) from None
    key = next((k for k in trusted if k.key_id == signer), None)
    if key is None:
        msg = f"bundle '{bundle}' is signed by key {signer}, which is not trusted here (trusted: {trusted_ids})"
        raise SignatureError(msg)
    if not key.verify(signature, manifest):
        msg = (
            f"bundle '{bundle}': the signature by key {signer} does not match its manifest; the manifest changed "
            "after signing, or the signature belongs to another bundle"
        )
        raise SignatureError(msg)
    return signer


def _read_key_file(path: Path, what: str) -> bytes:
    return read_bytes(path, what, KeyFileError)
