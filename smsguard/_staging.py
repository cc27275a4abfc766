"""Write a whole output folder or file, or none of it: build it beside its target, then rename it into
place; and single files atomically (`write_atomic`, `write_json`)."""

from __future__ import annotations

import contextlib
import glob
import json
import os
import shutil
import signal
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO

from smsguard._errors import SmsguardError

_PARTIAL = ".partial-"  # `.NAME.partial-PID`: the folder being built
_OLD = ".old-"  # `.NAME.old-PID`: the earlier folder, moved aside for the moment of the swap
_DEFERRED = {signal.SIGINT, signal.SIGTERM}  # wait until both renames are done


def write_atomic(path: Path, content: bytes) -> None:
    """Write a file so that readers see the old one or the new one, never half of one."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.chmod(tmp, 0o644)  # mkstemp makes it private; these files are meant to be copied and read
        with os.fdopen(fd, "wb") as file:
            file.write(content)
            file.flush()
            os.fsync(file.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json(path: Path, data: Any, compact: bool = False) -> None:
    """UTF-8 JSON, indented for people to read, or `compact` (a vocabulary's tables: half the bytes on a device).
    A text holding a lone surrogate, which UTF-8 cannot carry, is written with JSON's \\u escapes instead."""
    layout: dict[str, Any] = {"separators": (",", ":")} if compact else {"indent": 2}
    try:
        encoded = json.dumps(data, ensure_ascii=False, **layout).encode("utf-8")
    except UnicodeEncodeError:
        encoded = json.dumps(data, ensure_ascii=True, **layout).encode("ascii")
    write_atomic(path, encoded + b"\n")


@contextlib.contextmanager
def staged_folder(target: Path, force: bool, what: str) -> Iterator[Path]:
    """Yield an empty folder that becomes `target` when the block ends without an error.

    An existing `target` is refused unless `force`, and replaced only once the new folder is whole.
    What a process killed midway left beside the target is cleaned up on the next run.
    """
    target = Path(target)
    check_target(target, force, what)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = target.parent / f".{target.name}{_PARTIAL}{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    try:
        yield staging
        _swap_into_place(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


@contextlib.contextmanager
def staged_file(target: Path) -> Iterator[TextIO]:
    """Yield a UTF-8 text file that becomes `target` when the block ends without an error; an existing
    `target` stays as it was until then, and a failed or interrupted block leaves nothing."""
    target = Path(target)
    if target.is_dir():
        msg = f"output '{target}' is a folder; give a file name"
        raise SmsguardError(msg)
    if not target.parent.is_dir():
        msg = f"output '{target}' cannot be written: folder '{target.parent}' does not exist"
        raise SmsguardError(msg)
    _recover_abandoned(target)
    staging = target.parent / f".{target.name}{_PARTIAL}{os.getpid()}"
    try:
        with open(staging, "w", encoding="utf-8", newline="\n") as file:
            yield file
            file.flush()
            os.fsync(file.fileno())
        os.replace(staging, target)
    except BaseException:
        staging.unlink(missing_ok=True)
        raise


def check_target(target: Path, force: bool, what: str) -> None:
    """Refuse an output folder up front, before any long work is spent on it; first clean up what a
    killed run left beside it."""
    target = Path(target)
    if target.parent.is_dir():
        _recover_abandoned(target)
    if target.exists() and not force:
        msg = f"{what} '{target}' already exists; pass --force to replace it, or choose another --out"
        raise SmsguardError(msg)
    if target.exists() and not target.is_dir():
        msg = f"{what} '{target}' exists and is not a folder; remove it or choose another --out"
        raise SmsguardError(msg)


def _swap_into_place(staging: Path, target: Path) -> None:
    """Rename `staging` to `target`, moving an earlier target aside first and deleting it after.

    SIGINT and SIGTERM are held back between the two renames, so the path never stays empty; a SIGKILL
    there leaves the earlier folder as `.NAME.old-PID`, which the next run puts back.
    """
    old = target.parent / f".{target.name}{_OLD}{os.getpid()}"
    blocked = hasattr(signal, "pthread_sigmask")
    if blocked:
        signal.pthread_sigmask(signal.SIG_BLOCK, _DEFERRED)
    try:
        replacing = target.exists()
        if replacing:
            os.replace(target, old)
        try:
            os.replace(staging, target)
        except BaseException:
            if replacing:
                os.replace(old, target)
            raise
    finally:
        if blocked:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, _DEFERRED)
    shutil.rmtree(old, ignore_errors=True)


def _recover_abandoned(target: Path) -> None:
    """Remove the partial folders of dead processes; put back an earlier folder that one moved aside."""
    for leftover in sorted(target.parent.glob(f".{glob.escape(target.name)}.*-*")):
        kind, _, pid = leftover.name.removeprefix(f".{target.name}").rpartition("-")
        if not pid.isdigit() or _alive(int(pid)) or f"{kind}-" not in (_PARTIAL, _OLD):
            continue
        if f"{kind}-" == _OLD and not target.exists():
            os.replace(leftover, target)  # killed between its two renames: the earlier folder is whole
        elif leftover.is_dir():
            shutil.rmtree(leftover, ignore_errors=True)
        else:
            leftover.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
