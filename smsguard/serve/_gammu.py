"""`smsguard gammu`: gammu-smsd's RunOnReceive hook, for its files backend and its SQL backend (SQLite).

gammu-smsd runs the hook once per received message (all parts of a multi-part message at once), waits for
it, passes the message in its environment (DECODED_1_TEXT for a joined multi-part text, SMS_n_TEXT per
part, SMS_1_NUMBER) and appends the message's parts: their file names in its inbox folder (files backend)
or their row IDs in its inbox table (SQL backend). The hook asks `smsguard serve` (its UNIX socket or URL)
and, when that does not answer, loads the bundle itself. Spam is moved into the spam folder (files) or
tagged in the table or column the user names (SQL, `_gammu_sql.py`); ham stays where gammu put it.

Fail open: when the message cannot be classified (no server and no bundle that loads, a killed hook) it
stays in the inbox as received, and the hook says why in its log. Nothing is ever deleted: a move is a
hard link in the spam folder made before the inbox name is removed, so a hook killed midway leaves the
message in both folders, never in neither; a tag is one transaction. gammu-smsd closes the hook's stdout
and stderr: give --log.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from smsguard.runtime import ConfigError, SmsguardError

EXIT_KEPT = 2  # not classified: the message was kept as received (fail open)


@dataclass(frozen=True)
class GammuConfig:
    inbox: str | None = None  # files backend: gammu-smsd's inboxpath, the folder it writes received messages to
    spam_folder: str | None = None  # files backend: where spam is moved; on the inbox's filesystem (a rename, never a copy)
    unix: str | None = None  # the UNIX socket of `smsguard serve --unix` (asked first)
    server: str | None = None  # or its URL, http://127.0.0.1:8000
    bundle: str | None = None  # loaded in this process when no server answers (a cold start per message)
    trusted_key: tuple[str, ...] = ()  # public key files the in-process bundle must be signed by
    timeout: float = 5.0  # seconds to wait for the server before loading the bundle instead (and for a locked database)
    log: str | None = None  # append one JSON line per message to this file (gammu-smsd closes stdout and stderr)
    sqlite: str | None = None  # SQL backend: the SQLite database gammu-smsd writes (its [smsd] DBDir and Database)
    spam_table: str | None = None  # SQL backend: spam gets a row in this table (made on first use), keyed by inbox ID
    spam_column: str | None = None  # SQL backend: or this column of gammu's inbox table (added by the user) is set to the label

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
        _check_backend(self)


BACKENDS = "--inbox DIR and --spam-folder DIR (files backend), or --sqlite FILE and --spam-table NAME or --spam-column NAME (SQL backend)"
SQL_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")  # a table or column name written into SQL: nothing to quote, nothing to inject


def _check_backend(config: GammuConfig) -> None:
    """One gammu-smsd backend, whole: its flags together, and nothing of the other's."""
    files, sql = config.inbox or config.spam_folder, config.sqlite or config.spam_table or config.spam_column
    if files and sql:
        msg = f"smsguard gammu takes one gammu-smsd backend, not both: {BACKENDS}"
        raise ConfigError(msg)
    if not files and not sql:
        msg = f"smsguard gammu needs gammu-smsd's backend: {BACKENDS}"
        raise ConfigError(msg)
    if files and not (config.inbox and config.spam_folder):
        msg = "the files backend needs both --inbox DIR (gammu-smsd's inboxpath) and --spam-folder DIR"
        raise ConfigError(msg)
    if sql and (not config.sqlite or bool(config.spam_table) == bool(config.spam_column)):
        msg = "the SQL backend needs --sqlite FILE (gammu-smsd's database) and one of --spam-table NAME or --spam-column NAME"
        raise ConfigError(msg)
    for flag, name in (("--spam-table", config.spam_table), ("--spam-column", config.spam_column)):
        if name is not None and not SQL_NAME.match(name):
            msg = f"{flag} {name!r} is not an SQL name: use letters, digits and _, not starting with a digit"
            raise ConfigError(msg)


@dataclass(frozen=True)
class Message:
    files: tuple[str, ...]  # its parts as gammu-smsd names them: file names in the inbox, or inbox row IDs (SQL)
    text: str | None  # None for a binary (8-bit) message: gammu gives it no text
    sender: str


class Inbox(Protocol):
    """Where gammu-smsd keeps received messages, and how spam is set aside there."""

    parts: str  # what the hook's arguments are, as the log names them: "files" or "ids"
    done: str  # the action when spam was set aside: "moved" or "tagged"

    def text_of(self, parts: Sequence[str]) -> str | None:
        """The message's text from the inbox itself (a run by hand, without gammu-smsd's environment)."""

    def set_aside(self, parts: Sequence[str], outcome: Outcome) -> None:
        """Move or tag spam; on failure, a note in `outcome` and its action left "kept"."""


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
    action: str = "kept"  # "moved" (spam, into the spam folder), "tagged" (spam, SQL), or "kept" (ham, not classified, not movable)
    notes: list[str] = field(default_factory=list)  # what failed on the way, in order


def read_message(files: Sequence[str], environ: Mapping[str, str], inbox: Inbox) -> Message:
    """The message gammu-smsd handed over: its text from the environment it sets, else from the inbox."""
    sender = _unicode(environ.get("SMS_1_NUMBER", ""))
    count = _number(environ.get("SMS_MESSAGES"))
    if _number(environ.get("DECODED_PARTS")) >= 1 and "DECODED_1_TEXT" in environ:
        return Message(tuple(files), _unicode(environ["DECODED_1_TEXT"]), sender)
    if count:
        parts = [environ.get(f"SMS_{n}_TEXT") for n in range(1, count + 1)]
        text = None if any(p is None for p in parts) else "".join(_unicode(p) for p in parts if p is not None)
        return Message(tuple(files), text, sender)
    return Message(tuple(files), inbox.text_of(files), sender)


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


class FilesInbox:
    """gammu-smsd's files backend: a message is one file per part in `folder`; spam is moved to `spam`."""

    parts, done = "files", "moved"

    def __init__(self, folder: Path, spam: Path) -> None:
        self.folder, self.spam = folder, spam

    def text_of(self, parts: Sequence[str]) -> str | None:
        return _text_of_files(parts, self.folder)

    def set_aside(self, parts: Sequence[str], outcome: Outcome) -> None:
        _move_all(parts, self.folder, self.spam, outcome)


def inbox_of(config: GammuConfig) -> Inbox:
    if config.sqlite:
        from smsguard.serve._gammu_sql import SqlInbox

        return SqlInbox(Path(config.sqlite), config.spam_table, config.spam_column, config.timeout)
    return FilesInbox(Path(config.inbox or ""), Path(config.spam_folder or ""))


def run_hook(config: GammuConfig, files: Sequence[str], environ: Mapping[str, str]) -> int:
    """Classify the message gammu-smsd received and set it aside if it is spam. 0 when it was handled (spam moved or
    tagged, ham or a binary message kept); `EXIT_KEPT` when it was kept because it could not be classified or set aside."""
    inbox = inbox_of(config)
    message = read_message(files, environ, inbox)
    outcome = Outcome(message.files, message.sender)
    if message.text is None:
        outcome.notes.append("no text (a binary message): kept")
    else:
        _classify(config, message.text, outcome)
    if outcome.spam:
        inbox.set_aside(message.files, outcome)
    _report(config.log, outcome, inbox.parts)
    failed = (message.text is not None and outcome.spam is None) or (outcome.spam and outcome.action != inbox.done)
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


def _report(path: str | None, outcome: Outcome, parts: str = "files") -> None:
    """One JSON line: on stdout (for a run by hand; gammu-smsd closes it) and appended to `path`."""
    line = {
        "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()) + "Z",
        parts: list(outcome.files), "sender": outcome.sender, "label": outcome.label, "probability": outcome.probability,
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
