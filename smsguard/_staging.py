"""Write a whole output folder or none of it: build it beside its target, then rename it into place."""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

from smsguard.runtime._errors import SmsguardError

_PARTIAL = ".partial-"


@contextlib.contextmanager
def staged_folder(target: Path, force: bool, what: str) -> Iterator[Path]:
    """Yield an empty folder that becomes `target` when the block ends without an error.

    An existing `target` is refused unless `force`, and replaced only once the new folder is whole.
    A folder left by a process that was killed midway is removed on the next run.
    """
    target = Path(target)
    check_target(target, force, what)
    target.parent.mkdir(parents=True, exist_ok=True)
    _remove_abandoned(target)
    staging = target.parent / f".{target.name}{_PARTIAL}{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    try:
        yield staging
        old = target.parent / f".{target.name}.old-{os.getpid()}"
        if target.exists():
            os.replace(target, old)
        os.replace(staging, target)
        shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def check_target(target: Path, force: bool, what: str) -> None:
    """Refuse an output folder up front, before any long work is spent on it."""
    if target.exists() and not force:
        msg = f"{what} '{target}' already exists; pass --force to replace it, or choose another --out"
        raise SmsguardError(msg)
    if target.exists() and not target.is_dir():
        msg = f"{what} '{target}' exists and is not a folder; remove it or choose another --out"
        raise SmsguardError(msg)


def _remove_abandoned(target: Path) -> None:
    for leftover in target.parent.glob(f".{target.name}{_PARTIAL}*"):
        pid = leftover.name.rsplit("-", 1)[-1]
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(leftover, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
