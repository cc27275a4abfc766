"""Sending a bundle to the processes of an engine, and loading it there once per process.

The driver packs what the chosen model needs (manifest, vocabulary, model file) into one archive
named after the manifest's SHA-256 and the model, `smsguard-<sha>-<model>.zip`: an engine that keys
shipped files by name (Spark's `addFile`) then never mixes two bundles up. A worker unpacks it once,
checks that the manifest has the SHA-256 in the name and loads the `Classifier` (which checks the
vocabulary's and the model's SHA-256 against that manifest), and keeps it for every later batch.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
import threading
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from smsguard.runtime import BundleError, Classifier, IntegrityError
from smsguard.runtime.bundle import MANIFEST_NAME
from smsguard.runtime.signing import SIGNATURE_NAME
from smsguard.score._batch import ScoreError, Scorer, manifest_sha256

SHA_CHARS = 16  # of the manifest's SHA-256 in an archive's name: 64 bits, no clash between bundles in practice


@dataclass(frozen=True)
class Ticket:
    """What a worker needs to find, check and load a shipped bundle; small, sent with every task."""

    file_name: str  # the archive's name, as the engine ships it
    manifest_sha256: str
    backend: str  # the backend the driver loaded, so that every worker scores as the driver would
    model: str
    text_column: str
    out_col: str
    threads: int = 0  # predict_proba's threads in a worker: 0, one per core; 1 where the engine runs a task per core itself


def ticket_for(classifier: Classifier, text_column: str, out_col: str, threads: int = 0) -> Ticket:
    if not isinstance(threads, int) or isinstance(threads, bool) or threads < 0:  # on the driver, before any task
        msg = f"threads must be 0 (one per core) or a positive number of threads, found {threads!r}"
        raise ScoreError(msg)
    sha = manifest_sha256(classifier.bundle.path)
    name = f"smsguard-{sha[:SHA_CHARS]}-{classifier.model.name}.zip"
    return Ticket(name, sha, classifier.backend, classifier.model.name, text_column, out_col, threads)


_PACKED: dict[str, Path] = {}  # archive name -> its path in this (driver) process, kept until exit
_PACK_ROOT: list[Path] = []


def pack(classifier: Classifier, ticket: Ticket) -> Path:
    """The archive of `ticket`, written once per process into a private temporary folder. The same
    archive path is handed out again for the same bundle and model, as `addFile` requires."""
    if ticket.file_name in _PACKED and _PACKED[ticket.file_name].is_file():
        return _PACKED[ticket.file_name]
    if not _PACK_ROOT:
        _PACK_ROOT.append(Path(tempfile.mkdtemp(prefix="smsguard-ship-")))
        atexit.register(shutil.rmtree, _PACK_ROOT[0], True)
    bundle = classifier.bundle
    signature = (SIGNATURE_NAME,) if (bundle.path / SIGNATURE_NAME).is_file() else ()  # executors with trusted keys check it
    members = (MANIFEST_NAME, *signature, bundle.manifest.vocabulary, classifier.model.name)
    archive = _PACK_ROOT[0] / ticket.file_name
    partial = archive.with_name(archive.name + ".partial")
    with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_STORED) as zipped:
        for name in members:
            zipped.write(bundle.path / name, arcname=name)
    os.replace(partial, archive)
    if manifest_sha256(bundle.path) != ticket.manifest_sha256:  # changed while packing
        msg = f"bundle '{bundle.path}' changed while it was being packed; try again"
        raise BundleError(msg)
    _PACKED[ticket.file_name] = archive
    return archive


def unpack(archive: Path, ticket: Ticket, into: Path) -> Path:
    """Unpack a shipped archive into a new folder under `into` and check its manifest's SHA-256."""
    folder = Path(tempfile.mkdtemp(prefix=f"{ticket.file_name}.", dir=into))
    with zipfile.ZipFile(archive) as zipped:
        for info in zipped.infolist():
            if Path(info.filename).name != info.filename or info.is_dir():
                msg = f"shipped bundle '{ticket.file_name}' holds an unexpected entry {info.filename!r}"
                raise BundleError(msg)
            with zipped.open(info) as source, open(folder / info.filename, "wb") as target:
                shutil.copyfileobj(source, target)
    found = manifest_sha256(folder)
    if found != ticket.manifest_sha256:
        msg = (
            f"shipped bundle '{ticket.file_name}' on worker process {os.getpid()} does not match: manifest sha256 "
            f"{found}, expected {ticket.manifest_sha256}"
        )
        raise IntegrityError(msg)
    return folder


_SCORERS: dict[Ticket, Scorer] = {}  # this process's loaded scorers: a worker loads each bundle once
_LOCK = threading.Lock()
LOADS: list[Ticket] = []  # every load in this process, in order (tests read it)


def scorer_for(ticket: Ticket, archive: Callable[[], Path], into: Callable[[], Path]) -> Scorer:
    """This process's `Scorer` for `ticket`: unpacked, checked and loaded on first use, then kept.
    `archive` gives the shipped file's local path, `into` a folder to unpack it in; both are called only
    on first use."""
    scorer = _SCORERS.get(ticket)
    if scorer is not None:
        return scorer
    with _LOCK:
        scorer = _SCORERS.get(ticket)
        if scorer is None:
            folder = unpack(archive(), ticket, into())
            classifier = Classifier.load(folder, backend=ticket.backend, model=ticket.model)  # checks vocabulary and model hashes
            scorer = Scorer(classifier, ticket.text_column, ticket.out_col, ticket.manifest_sha256, ticket.threads)
            _SCORERS[ticket] = scorer
            LOADS.append(ticket)
        return scorer


def private_folder() -> Path:
    """A temporary folder of this process, removed when it exits."""
    folder = Path(tempfile.mkdtemp(prefix="smsguard-bundle-"))
    atexit.register(shutil.rmtree, folder, True)
    return folder
