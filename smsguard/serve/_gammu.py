"""`smsguard gammu`: gammu-smsd's RunOnReceive hook for its files backend.

gammu-smsd runs the hook once per received message (all parts of a multi-part message at once), waits for
it, passes the message in its environment (DECODED_1_TEXT for a joined multi-part text, SMS_n_TEXT per
part, SMS_1_NUMBER) and appends the message's file names in its inbox folder. The hook asks `smsguard
serve` (its UNIX socket or URL) and, when that does not answer, loads the bundle itself. Spam is moved
into the spam folder; ham stays where gammu put it.

Fail open: when the message cannot be classified (no server and no bundle that loads, a killed hook) it
stays in the inbox as received, and the hook says why in its log. Nothing is ever deleted: a move is a
hard link in the spam folder made before the inbox name is removed, so a hook killed midway leaves the
message in both folders, never in neither. gammu-smsd closes the hook's stdout and stderr: give --log.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from smsguard.runtime import ConfigError, SmsguardError

EXIT_KEPT = 2  # not classified: the message was kept as received (fail open)


@dataclass(frozen=True)
class GammuConfig:
    inbox: str  # gammu-smsd's inboxpath: the folder its files backend writes received messages to
    spam_folder: str  # where spam is moved; on the inbox's filesystem, so that a move is a rename and never a copy
    unix: str | None = None  # the UNIX socket of `smsguard serve --unix` (asked first)
    server: str | None = None  # or its URL, http://127.0.0.1:8000
    bundle: str | None = None  # loaded in this process when no server answers (a cold start per message)
    trusted_key: tuple[str, ...] = ()  # public key files the in-process bundle must be signed by
    timeout: float = 5.0  # seconds to wait for the server before loading the bundle instead
    log: str | None = None  # append one JSON line per message to this file (gammu-smsd closes stdout and stderr)

    def __post_init__(self) -> None:
        if not (self.unix or self.server or self.bundle):
            msg = "smsguard gammu needs a classifier: --unix PATH or --server URL of smsguard serve, and/or --bundle DIR to load it in-process"
            raise ConfigError(msg)
        if self.server and not self.server.startswith("http://"):
            msg = f"--server must be an http:// URL of smsguard serve (for example http://127.0.0.1:8000), not {self.server!r}"
            raise ConfigError(msg)
        if not self.timeout > 0:
            msg = f"--timeout must be more than 0 seconds, not {self.timeout}"
            raise ConfigError(msg)


@dataclass(frozen=True)
class Message:
    files: tuple[str, ...]  # its file names in the inbox, one per part
    text: str | None  # None for a binary (8-bit) message: gammu gives it no text
    sender: str


@dataclass
class Outcome:
    """What happened to one message: written to the log as one JSON line."""

    files: tuple[str, ...]
    sender: str
    spam: bool | None = None  # None: not classified
    label: str | None = None
    probability: float | None = None
    serial: int | None = None
    via: str | None = None  # "server" or "in-process"
    action: str = "kept"  # "moved" (spam, into the spam folder) or "kept" (ham, or not classified, or not movable)
    notes: list[str] = field(default_factory=list)  # what failed on the way, in order


def read_message(files: Sequence[str], environ: Mapping[str, str], inbox: Path) -> Message:
    """The message gammu-smsd handed over: its text from the environment it sets, else from its files."""
    sender = _unicode(environ.get("SMS_1_NUMBER", ""))
    count = _number(environ.get("SMS_MESSAGES"))
    if _number(environ.get("DECODED_PARTS")) >= 1 and "DECODED_1_TEXT" in environ:
        return Message(tuple(files), _unicode(environ["DECODED_1_TEXT"]), sender)
    if count:
        parts = [environ.get(f"SMS_{n}_TEXT") for n in range(1, count + 1)]
        text = None if any(p is None for p in parts) else "".join(_unicode(p) for p in parts if p is not None)
        return Message(tuple(files), text, sender)
    return Message(tuple(files), _text_of_files(files, inbox), sender)


def _number(value: str | None) -> int:
    return int(value) if value and value.isdigit() else 0


def _unicode(value: str) -> str:
    """An environment value as text: bytes that were not UTF-8 (kept by Python as surrogates) become U+FFFD."""
    return value.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def _text_of_files(files: Sequence[str], inbox: Path) -> str | None:
    """Run by hand on files left in the inbox: the parts' texts, joined in order (UTF-8, or UTF-16 with a BOM)."""
    texts = []
    for name in files:
        if not name.endswith(".txt"):
            return None  # .bin: an 8-bit message, which has no text
        path = inbox / name
        try:
            raw = path.read_bytes()
        except OSError as error:
            msg = f"message file '{path}' cannot be read: {error.strerror}; is --inbox gammu-smsd's inboxpath?"
            raise SmsguardError(msg) from None
        texts.append(raw.decode("utf-16") if raw[:2] in (b"\xff\xfe", b"\xfe\xff") else raw.decode("utf-8", errors="replace"))
    return "".join(texts)


def run_hook(config: GammuConfig, files: Sequence[str], environ: Mapping[str, str]) -> int:
    """Classify the message gammu-smsd received and move it if it is spam. 0 when it was handled (spam moved,
    ham or a binary message kept); `EXIT_KEPT` when it was kept because it could not be classified or moved."""
    inbox, spam = Path(config.inbox), Path(config.spam_folder)
    message = read_message(files, environ, inbox)
    outcome = Outcome(message.files, message.sender)
    if message.text is None:
        outcome.notes.append("no text (a binary message): kept")
    else:
        _classify(config, message.text, outcome)
    if outcome.spam:
        _move_all(message.files, inbox, spam, outcome)
    _report(config.log, outcome)
    failed = (message.text is not None and outcome.spam is None) or (outcome.spam and outcome.action != "moved")
    return EXIT_KEPT if failed else 0


def _classify(config: GammuConfig, text: str, outcome: Outcome) -> None:
    """Ask the server, then the bundle in this process; each failure is noted, the first success kept."""
    if config.unix or config.server:
        try:
            _note(outcome, _ask_server(config, text), "server")
            return
        except (OSError, SmsguardError, ValueError, KeyError, IndexError) as error:
            outcome.notes.append(f"server: {_one_line(error)}")
    if config.bundle:
        try:
            _note(outcome, _in_process(config, text), "in-process")
        except SmsguardError as error:
            outcome.notes.append(f"in-process: {_one_line(error)}")


def _note(outcome: Outcome, result: dict[str, Any], via: str) -> None:
    outcome.label, outcome.probability, outcome.serial, outcome.via = result["label"], result["probability"], result["serial"], via
    outcome.spam = result["label"] == result["positive"]


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split()) or type(error).__name__


def _ask_server(config: GammuConfig, text: str) -> dict[str, Any]:
    from smsguard.serve._client import Client

    client = Client(unix=config.unix, url=config.server, timeout=config.timeout)
    answer = client.classify([text])
    model = client.model()
    labels = model["labels"]
    return {**answer["results"][0], "serial": answer["serial"], "positive": labels[1]}


def _in_process(config: GammuConfig, text: str) -> dict[str, Any]:
    from smsguard.runtime import Classifier
    from smsguard.serve._api import score

    classifier = Classifier.load(config.bundle or "", trusted_keys=list(config.trusted_key) or None)
    scored = score(classifier, [text])
    return {"label": scored.labels[0], "probability": scored.probabilities[0], "serial": scored.serial, "positive": classifier.bundle.labels[1]}


def _move_all(files: Sequence[str], inbox: Path, spam: Path, outcome: Outcome) -> None:
    try:
        spam.mkdir(parents=True, exist_ok=True)
        for name in files:
            _move(inbox / name, spam)
    except OSError as error:
        outcome.notes.append(f"move to '{spam}': {error.strerror or error}")
        return
    outcome.action = "moved"


def _move(source: Path, folder: Path) -> Path:
    """Move `source` into `folder` without ever overwriting or deleting: link the new name, then remove the old."""
    for n in range(1000):
        target = folder / (source.name if n == 0 else f"{source.name}.{n}")
        try:
            os.link(source, target)
        except FileExistsError:
            continue
        except OSError as error:
            if error.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP) or target.exists():
                raise
            os.rename(source, target)  # a filesystem without hard links (vfat): the name was free just now
            return target
        os.unlink(source)
        return target
    raise FileExistsError(errno.EEXIST, f"1000 files named {source.name}.N already in {folder}")


def _report(path: str | None, outcome: Outcome) -> None:
    """One JSON line: on stdout (for a run by hand; gammu-smsd closes it) and appended to `path`."""
    line = {
        "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()) + "Z",
        "files": list(outcome.files), "sender": outcome.sender, "label": outcome.label, "probability": outcome.probability,
        "serial": outcome.serial, "via": outcome.via, "action": outcome.action, "notes": outcome.notes,
    }
    text = json.dumps(line, ensure_ascii=False) + "\n"
    if sys.stdout is not None:
        with contextlib.suppress(OSError, ValueError):
            sys.stdout.write(text)
            sys.stdout.flush()
    if path:
        try:
            with open(path, "a", encoding="utf-8") as file:
                file.write(text)
        except OSError as error:
            msg = f"hook log '{path}' cannot be appended to: {error.strerror}; the message was {outcome.action} all the same"
            raise SmsguardError(msg) from None
