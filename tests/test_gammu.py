"""`smsguard gammu` as gammu-smsd's RunOnReceive hook, end to end with Debian's real gammu-smsd and Gammu's
dummy phone (a folder): spam and ham, multi-part and Unicode messages go in through `gammu savesms`, and
each must end where it belongs (spam in the spam folder, ham in the inbox) with the server up, with it
down (the bundle loaded in the hook), and with the hook killed mid-message (kept in the inbox: fail open).
The same with gammu-smsd's SQL backend on SQLite (libdbi's sqlite3 driver): spam tagged in a table or a
column, ham untagged, every row still in gammu's inbox table. Nothing may be lost. Under CI (CI=true) a
missing gammu-smsd (or its SQLite driver or schema) fails these tests; elsewhere they skip."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import cannot_run
from serve_helpers import ROOT, running

from smsguard.runtime import Classifier, ConfigError, SmsguardError
from smsguard.serve._gammu import BACKENDS, FilesInbox, GammuConfig, _move, read_message, run_hook

slow = pytest.mark.slow
RECEIVE_TIMEOUT = 90.0  # seconds for gammu-smsd to receive every message and run the hook on each

LONG_SPAM = (
    "URGENT! You have won a guaranteed £1000 cash or a £2000 prize. To claim your prize call 09050000327 now. "
    "T&C apply, 150p/msg, 18+ only. This offer ends tonight, reply STOP to opt out. Claim code: WIN2000. "
    "Call now to collect your award, valid 12 hours only!"
)
LONG_HAM = (
    "Hi mum, the train was late again so I will be home around eight tonight. Could you leave some dinner in the "
    "oven? Also, tell dad I found his glasses in the car, they were under the seat. Love you, see you soon!"
)
MESSAGES = {  # sender -> text: the senders name the messages in gammu's file names
    "+4470001": "WINNER!! You have been selected to receive a £900 prize reward! To claim call 09061701461. Valid 12 hours only.",
    "+4470002": "Are we still on for dinner tonight? I'll be there around 7.",
    "+4470003": LONG_SPAM,  # two parts or more
    "+4470004": LONG_HAM,  # two parts or more
    "+4470005": "Привет! Ты придёшь завтра на ужин? Я приготовлю борщ 🙂",  # Unicode (UCS-2 parts)
    "+4470006": "FREE entry into our £250 weekly competition just text the word WIN to 80086 NOW. 18 T&C www.txttowin.co.uk",
    "+4470007": "好的，明天见！我们在车站门口等你 🚉",
}


def _gammu_tools() -> tuple[str, str]:
    gammu, smsd = shutil.which("gammu"), shutil.which("gammu-smsd")
    if gammu and smsd:
        return gammu, smsd
    cannot_run("Debian's gammu and gammu-smsd are not installed (apt-get install gammu gammu-smsd; .ci/run does it as root)")


# gammu-smsd polls the dummy phone every second, with the checks a real modem needs turned off
SMSD_POLLING = "LoopSleep = 1\nCommTimeout = 1\nReceiveFrequency = 1\nStatusFrequency = 0\nCheckSecurity = 0\nCheckBattery = 0\nCheckSignal = 0\nCheckNetwork = 0\n"


@dataclass
class Gateway:
    """gammu-smsd with the files backend on a dummy phone, its hook set to `smsguard gammu`."""

    root: Path
    gammu: str
    smsd: str

    @property
    def inbox(self) -> Path:
        return self.root / "inbox"

    @property
    def spam(self) -> Path:
        return self.root / "spam"

    @property
    def log(self) -> Path:
        return self.root / "hook.jsonl"

    def write_hook(self, backend_flags: list[str], hook_flags: list[str]) -> Path:
        """The RunOnReceive script: `smsguard gammu` with the backend's flags, the log, then the test's flags."""
        hook = self.root / "hook.sh"
        flags = " ".join(f"'{f}'" for f in [*backend_flags, "--log", str(self.log), *hook_flags])
        hook.write_text(f'#!/bin/sh\ncd {ROOT}\nexec {sys.executable} -m smsguard gammu {flags} "$@"\n', encoding="utf-8")
        hook.chmod(0o755)
        return hook

    def configure(self, hook_flags: list[str]) -> None:
        for folder in ("phone", "inbox", "outbox", "sent", "error"):
            (self.root / folder).mkdir(parents=True, exist_ok=True)
        hook = self.write_hook(["--inbox", str(self.inbox), "--spam-folder", str(self.spam)], hook_flags)
        (self.root / "smsdrc").write_text(
            f"[gammu]\nmodel = dummy\nconnection = none\ndevice = {self.root / 'phone'}\n\n"
            f"[smsd]\nservice = files\nlogfile = {self.root / 'smsd.log'}\ndebuglevel = 1\n"
            f"inboxpath = {self.inbox}/\noutboxpath = {self.root / 'outbox'}/\nsentsmspath = {self.root / 'sent'}/\nerrorsmspath = {self.root / 'error'}/\n"
            f"RunOnReceive = {hook}\n{SMSD_POLLING}",
            encoding="utf-8",
        )

    def deliver(self, sender: str, text: str) -> None:
        """Put a message in the dummy phone's inbox, split into parts as a network would."""
        subprocess.run(
            [self.gammu, "-c", str(self.root / "smsdrc"), "savesms", "TEXT", "-folder", "1", "-unread", "-sender", sender, "-autolen", "1000", "-textutf8", text],
            check=True, capture_output=True, timeout=30,
        )

    def start(self) -> subprocess.Popen:
        return subprocess.Popen([self.smsd, "-c", str(self.root / "smsdrc")], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def outcomes(self) -> dict[str, dict]:
        if not self.log.exists():
            return {}
        return {entry["sender"]: entry for entry in map(json.loads, self.log.read_text(encoding="utf-8").splitlines())}

    def wait_for(self, senders: set[str]) -> dict[str, dict]:
        deadline = time.monotonic() + RECEIVE_TIMEOUT
        while time.monotonic() < deadline:
            outcomes = self.outcomes()
            if senders <= set(outcomes):
                return outcomes
            time.sleep(0.3)
        log = (self.root / "smsd.log").read_text(errors="replace")[-3000:] if (self.root / "smsd.log").exists() else ""
        raise AssertionError(f"the hook did not report {sorted(senders - set(self.outcomes()))} within {RECEIVE_TIMEOUT} s; gammu-smsd log:\n{log}")

    def where(self, sender: str) -> dict[str, list[str]]:
        return {name: sorted(p.name for p in folder.glob(f"IN*_{sender}_*")) for name, folder in (("inbox", self.inbox), ("spam", self.spam)) if folder.exists()}


SQLITE_SCHEMA = Path("/usr/share/doc/gammu-smsd/examples/sqlite.sql")  # Debian's gammu-smsd ships it
DBD_SQLITE3 = "libdbdsqlite3.so"  # libdbi's SQLite driver (Debian: libdbd-sqlite3), which gammu-smsd's `driver = sqlite3` loads


def _sql_backend() -> str:
    """gammu-smsd's SQLite schema, once the SQL backend can run here."""
    if not any(Path("/usr/lib").glob(f"*/dbd/{DBD_SQLITE3}")) and not any(Path("/usr/lib/dbd").glob(DBD_SQLITE3)):
        cannot_run("libdbi's SQLite driver is not installed (apt-get install libdbd-sqlite3; .ci/run does it as root)")
    if not SQLITE_SCHEMA.exists():
        cannot_run(f"gammu-smsd's SQLite schema {SQLITE_SCHEMA} is missing (a Debian image that leaves out /usr/share/doc?)")
    return SQLITE_SCHEMA.read_text(encoding="utf-8")


@dataclass
class SqlGateway(Gateway):
    """gammu-smsd with the SQL backend on SQLite, on a dummy phone, its hook set to `smsguard gammu --sqlite`.

    `gammu savesms` stores a message as sent (an SMS-SUBMIT), and the SQL backend saves only received ones (SMS-DELIVER:
    it skips the others silently and deletes them from the phone). So a message is saved on a second dummy phone, its
    parts marked as received, and then renamed into this phone's inbox, as a network would deliver them."""

    @property
    def database(self) -> Path:
        return self.root / "smsd.db"

    def configure(self, hook_flags: list[str]) -> None:
        schema = _sql_backend()
        for folder in ("phone/sms/1", "staging/sms/1"):
            (self.root / folder).mkdir(parents=True, exist_ok=True)
        with contextlib.closing(sqlite3.connect(self.database)) as connection:
            connection.executescript(schema)
        hook = self.write_hook(["--sqlite", str(self.database)], hook_flags)
        (self.root / "staging.rc").write_text(f"[gammu]\nmodel = dummy\nconnection = none\ndevice = {self.root / 'staging'}\n", encoding="utf-8")
        (self.root / "smsdrc").write_text(
            f"[gammu]\nmodel = dummy\nconnection = none\ndevice = {self.root / 'phone'}\n\n"
            f"[smsd]\nservice = sql\ndriver = sqlite3\nsql = sqlite\ndbdir = {self.root}/\ndatabase = {self.database.name}\n"
            f"logfile = {self.root / 'smsd.log'}\ndebuglevel = 1\nRunOnReceive = {hook}\n{SMSD_POLLING}",
            encoding="utf-8",
        )

    def deliver(self, sender: str, text: str) -> None:
        subprocess.run(
            [self.gammu, "-c", str(self.root / "staging.rc"), "savesms", "TEXT", "-folder", "1", "-unread", "-sender", sender, "-autolen", "1000", "-textutf8", text],
            check=True, capture_output=True, timeout=30,
        )
        inbox = self.root / "phone" / "sms" / "1"
        for part in sorted((self.root / "staging" / "sms" / "1").iterdir(), key=lambda p: int(p.name)):
            saved = part.read_bytes()  # gammu's backup format; its comment line may cut a UTF-8 character in two
            assert b"\nPDU = Submit\n" in saved, saved
            part.write_bytes(saved.replace(b"\nPDU = Submit\n", b"\nPDU = Deliver\n"))
            location = max((int(p.name) for p in inbox.iterdir() if p.name.isdigit()), default=0) + 1
            part.rename(inbox / str(location))

    def rows(self) -> dict[int, str]:
        """gammu's inbox: each row's ID and sender."""
        with contextlib.closing(sqlite3.connect(self.database)) as connection:
            return dict(connection.execute("SELECT ID, SenderNumber FROM inbox").fetchall())


def _check_tagged(gateway: SqlGateway, outcomes: dict[str, dict], expected: dict[str, str], via: str, tags: dict[int, str]) -> None:
    """Spam tagged (every part's row), ham not; every part still in gammu's inbox table under its sender."""
    rows = gateway.rows()
    for sender, label in expected.items():
        outcome = outcomes[sender]
        assert (outcome["label"], outcome["via"], outcome["action"]) == (label, via, "tagged" if label == "spam" else "kept"), outcome
        ids = [int(n) for n in outcome["ids"]]
        assert {rows[n] for n in ids} == {sender}, (sender, ids)
        assert {n: tags.get(n) for n in ids} == dict.fromkeys(ids, "spam" if label == "spam" else None), sender
    assert sorted(n for o in outcomes.values() for n in map(int, o["ids"])) == sorted(rows)  # nothing lost, nothing else
    assert len(outcomes["+4470003"]["ids"]) >= 2 and len(outcomes["+4470004"]["ids"]) >= 2  # multi-part messages arrive as one


@pytest.fixture
def sql_gateway(tmp_path: Path) -> SqlGateway:
    gammu, smsd = _gammu_tools()
    return SqlGateway(tmp_path / "gateway", gammu, smsd)


def stop(process: subprocess.Popen) -> None:
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@pytest.fixture
def gateway(tmp_path: Path) -> Gateway:
    gammu, smsd = _gammu_tools()
    return Gateway(tmp_path / "gateway", gammu, smsd)


@pytest.fixture(scope="module")
def expected(fused_bundle: Path) -> dict[str, str]:
    """Each message's label from the bundle in this process: where the hook must put it."""
    labels = Classifier.load(fused_bundle).predict(list(MESSAGES.values()))
    assert {"spam", "ham"} <= set(labels), labels  # the mix the test is about
    return dict(zip(MESSAGES, labels, strict=True))


def _check_placed(gateway: Gateway, outcomes: dict[str, dict], expected: dict[str, str], via: str) -> None:
    for sender, label in expected.items():
        outcome = outcomes[sender]
        assert (outcome["label"], outcome["via"], outcome["notes"] if via == "server" else []) == (label, via, []), outcome
        where = gateway.where(sender)
        parts = outcome["files"]
        assert where == ({"inbox": [], "spam": sorted(parts)} if label == "spam" else {"inbox": sorted(parts), "spam": []}), (sender, where)
    assert len(outcomes["+4470003"]["files"]) >= 2 and len(outcomes["+4470004"]["files"]) >= 2  # multi-part messages arrive as one


@slow
def test_with_the_server_up_spam_is_moved_and_ham_stays(gateway: Gateway, fused_bundle: Path, expected: dict[str, str], tmp_path: Path) -> None:
    socket_path = tmp_path / "serve.sock"
    with running(fused_bundle, "--unix", str(socket_path), "--access-log", "off"):
        gateway.configure(["--unix", str(socket_path)])
        gateway.spam.mkdir()
        for sender, text in MESSAGES.items():
            gateway.deliver(sender, text)
        smsd = gateway.start()
        try:
            outcomes = gateway.wait_for(set(MESSAGES))
        finally:
            stop(smsd)
    _check_placed(gateway, outcomes, expected, "server")
    assert {o["serial"] for o in outcomes.values()} == {Classifier.load(fused_bundle).serial}


@slow
def test_with_the_server_down_the_hook_loads_the_bundle(gateway: Gateway, fused_bundle: Path, expected: dict[str, str], tmp_path: Path) -> None:
    gateway.configure(["--unix", str(tmp_path / "nobody.sock"), "--bundle", str(fused_bundle)])
    gateway.spam.mkdir()
    for sender, text in MESSAGES.items():
        gateway.deliver(sender, text)
    smsd = gateway.start()
    try:
        outcomes = gateway.wait_for(set(MESSAGES))
    finally:
        stop(smsd)
    _check_placed(gateway, outcomes, expected, "in-process")
    assert all(o["notes"][0].startswith("server: [Errno 2] No such file or directory") for o in outcomes.values())


@slow
def test_a_hook_killed_mid_message_leaves_it_in_the_inbox_and_the_next_one_is_handled(gateway: Gateway, fused_bundle: Path, expected: dict[str, str], tmp_path: Path) -> None:
    """The server is frozen (SIGSTOP), so the hook waits on it; it is killed with SIGKILL there. Fail open: the
    message stays in the inbox as received. With the server thawed, the next message goes where it belongs."""
    socket_path = tmp_path / "serve.sock"
    spam_sender, next_sender = "+4470001", "+4470006"
    with running(fused_bundle, "--unix", str(socket_path), "--access-log", "off") as server:
        gateway.configure(["--unix", str(socket_path), "--timeout", "60"])
        smsd = gateway.start()
        try:
            server.process.send_signal(signal.SIGSTOP)
            gateway.deliver(spam_sender, MESSAGES[spam_sender])
            hook = _wait_for_hook(gateway.root)
            os.kill(hook, signal.SIGKILL)
            server.process.send_signal(signal.SIGCONT)
            gateway.deliver(next_sender, MESSAGES[next_sender])
            outcomes = gateway.wait_for({next_sender})
        finally:
            server.process.send_signal(signal.SIGCONT)
            stop(smsd)
    assert spam_sender not in outcomes  # killed before it could say anything
    assert len(gateway.where(spam_sender)["inbox"]) == 1 and not gateway.where(spam_sender).get("spam")  # kept as received
    assert outcomes[next_sender]["label"] == expected[next_sender] == "spam"
    assert gateway.where(next_sender)["spam"] == outcomes[next_sender]["files"]


@slow
def test_sql_backend_with_the_server_up_spam_is_tagged_in_a_table_and_ham_left_alone(
    sql_gateway: SqlGateway, fused_bundle: Path, expected: dict[str, str], tmp_path: Path
) -> None:
    socket_path = tmp_path / "serve.sock"
    with running(fused_bundle, "--unix", str(socket_path), "--access-log", "off"):
        sql_gateway.configure(["--spam-table", "smsguard_spam", "--unix", str(socket_path)])
        for sender, text in MESSAGES.items():
            sql_gateway.deliver(sender, text)
        smsd = sql_gateway.start()
        try:
            outcomes = sql_gateway.wait_for(set(MESSAGES))
        finally:
            stop(smsd)
    with contextlib.closing(sqlite3.connect(sql_gateway.database)) as connection:
        tagged = connection.execute("SELECT InboxID, Label, Serial, Via FROM smsguard_spam").fetchall()
    assert {(serial, via) for _, _, serial, via in tagged} == {(Classifier.load(fused_bundle).serial, "server")}
    _check_tagged(sql_gateway, outcomes, expected, "server", {n: label for n, label, _, _ in tagged})


@slow
def test_sql_backend_with_the_server_down_spam_is_tagged_in_a_column_by_the_bundle_in_the_hook(
    sql_gateway: SqlGateway, fused_bundle: Path, expected: dict[str, str], tmp_path: Path
) -> None:
    sql_gateway.configure(["--spam-column", "smsguard", "--unix", str(tmp_path / "nobody.sock"), "--bundle", str(fused_bundle)])
    with contextlib.closing(sqlite3.connect(sql_gateway.database)) as connection:
        connection.execute("ALTER TABLE inbox ADD COLUMN smsguard TEXT")
    for sender, text in MESSAGES.items():
        sql_gateway.deliver(sender, text)
    smsd = sql_gateway.start()
    try:
        outcomes = sql_gateway.wait_for(set(MESSAGES))
    finally:
        stop(smsd)
    with contextlib.closing(sqlite3.connect(sql_gateway.database)) as connection:
        column = dict(connection.execute("SELECT ID, smsguard FROM inbox").fetchall())
    _check_tagged(sql_gateway, outcomes, expected, "in-process", {n: label for n, label in column.items() if label is not None})


def _wait_for_hook(root: Path) -> int:
    """The pid of the hook process gammu-smsd started (its command line names this gateway's folder)."""
    deadline = time.monotonic() + RECEIVE_TIMEOUT
    while time.monotonic() < deadline:
        for proc in Path("/proc").iterdir():
            if not proc.name.isdigit():
                continue
            try:
                cmdline = (proc / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if b"gammu" in cmdline and b"smsguard" in cmdline and str(root).encode() + b"/inbox" in cmdline:
                time.sleep(0.5)  # let it reach its request to the frozen server
                return int(proc.name)
        time.sleep(0.1)
    raise AssertionError("gammu-smsd did not start the hook")


# ---- the hook alone: what gammu-smsd hands it, and the fail-open policy (fast) ----


def test_a_multi_part_message_is_read_from_its_decoded_text() -> None:
    environ = {"SMS_MESSAGES": "2", "DECODED_PARTS": "1", "SMS_1_TEXT": "Hello ", "SMS_2_TEXT": "world", "DECODED_1_TEXT": "Hello world", "SMS_1_NUMBER": "+1"}
    assert read_message(["a_00.txt", "a_01.txt"], environ, FilesInbox(Path("/nonexistent"), Path("/nonexistent"))).text == "Hello world"
    del environ["DECODED_1_TEXT"]
    environ["DECODED_PARTS"] = "0"
    assert read_message(["a_00.txt", "a_01.txt"], environ, FilesInbox(Path("/nonexistent"), Path("/nonexistent"))).text == "Hello world"


def test_bytes_of_the_environment_that_are_not_utf8_become_replacement_characters() -> None:
    environ = {"SMS_MESSAGES": "1", "SMS_1_TEXT": b"caf\xe9 ok".decode("utf-8", "surrogateescape"), "SMS_1_NUMBER": "+1"}
    assert read_message(["a_00.txt"], environ, FilesInbox(Path("/nonexistent"), Path("/nonexistent"))).text == "caf\ufffd ok"


def test_without_gammus_environment_the_text_is_read_from_the_inbox_files(tmp_path: Path) -> None:
    (tmp_path / "IN1_00_+1_00.txt").write_text("Привет, ", encoding="utf-8")
    (tmp_path / "IN1_00_+1_01.txt").write_text("мир", encoding="utf-16")
    assert read_message(["IN1_00_+1_00.txt", "IN1_00_+1_01.txt"], {}, FilesInbox(tmp_path, tmp_path / "spam")).text == "Привет, мир"
    assert read_message(["IN1_00_+1_00.bin"], {}, FilesInbox(tmp_path, tmp_path / "spam")).text is None  # an 8-bit message has no text


def test_when_nothing_can_classify_the_message_is_kept_as_received(tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "IN1_00_+1_00.txt").write_text("WIN a prize", encoding="utf-8")
    config = GammuConfig(inbox=str(inbox), spam_folder=str(tmp_path / "spam"), unix=str(tmp_path / "none.sock"), bundle=str(tmp_path / "no-bundle"), log=str(tmp_path / "log"))
    assert run_hook(config, ["IN1_00_+1_00.txt"], {"SMS_MESSAGES": "1", "SMS_1_TEXT": "WIN a prize", "SMS_1_NUMBER": "+1"}) == 2
    assert [p.name for p in inbox.iterdir()] == ["IN1_00_+1_00.txt"]
    entry = json.loads((tmp_path / "log").read_text(encoding="utf-8"))
    assert (entry["label"], entry["action"]) == (None, "kept")
    assert entry["notes"] == [
        "server: [Errno 2] No such file or directory",
        f"in-process: bundle '{tmp_path / 'no-bundle'}' does not exist; create one with `smsguard export RUN_DIR --out {tmp_path / 'no-bundle'}`",
    ]


def test_a_log_that_cannot_be_written_is_one_line_after_the_message_was_handled(tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "IN1_00_+1_00.txt").write_text("hi", encoding="utf-8")
    args = ["gammu", "--inbox", str(inbox), "--spam-folder", str(tmp_path / "spam"), "--unix", str(tmp_path / "none.sock"), "--log", str(tmp_path / "no" / "log"), "IN1_00_+1_00.txt"]
    done = subprocess.run([sys.executable, "-m", "smsguard", *args], cwd=ROOT, capture_output=True, text=True, timeout=60, check=False, env={**os.environ, "SMS_MESSAGES": "0"})
    assert (done.returncode, done.stderr.strip()) == (2, f"ERROR hook log '{tmp_path / 'no' / 'log'}' cannot be appended to: No such file or directory; the message was kept all the same")
    assert (inbox / "IN1_00_+1_00.txt").exists()


def test_a_move_never_overwrites(tmp_path: Path) -> None:
    (tmp_path / "spam").mkdir()
    (tmp_path / "spam" / "IN1.txt").write_text("earlier", encoding="utf-8")
    (tmp_path / "IN1.txt").write_text("later", encoding="utf-8")
    target = _move(tmp_path / "IN1.txt", tmp_path / "spam")
    assert target.name == "IN1.txt.1" and target.read_text(encoding="utf-8") == "later"
    assert (tmp_path / "spam" / "IN1.txt").read_text(encoding="utf-8") == "earlier"
    assert not (tmp_path / "IN1.txt").exists()


def test_the_hook_needs_a_server_or_a_bundle(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "smsguard", "gammu", "--inbox", str(tmp_path), "--spam-folder", str(tmp_path / "s"), "x.txt"], cwd=ROOT, capture_output=True, text=True, timeout=60, check=False)
    assert (done.returncode, done.stderr.strip()) == (
        2, "ERROR invalid argument: smsguard gammu needs a classifier: --unix PATH or --server URL of smsguard serve, and/or --bundle DIR to load it in-process"
    )


# ---- the SQL backend's hook alone (fast): a table shaped as gammu's inbox, the tags, the refusals ----


def _inbox_table(path: Path, rows: list[tuple[int, str, str, str]]) -> Path:
    """An SQLite file with gammu's inbox columns that the hook reads (ID, SenderNumber, Coding, TextDecoded)."""
    with contextlib.closing(sqlite3.connect(path)) as connection, connection:
        connection.execute("CREATE TABLE inbox (ID INTEGER PRIMARY KEY, SenderNumber TEXT, Coding TEXT, TextDecoded TEXT)")
        connection.executemany("INSERT INTO inbox VALUES (?, ?, ?, ?)", rows)
    return path


def test_sql_a_message_is_read_from_its_inbox_rows_without_gammus_environment(tmp_path: Path) -> None:
    from smsguard.serve._gammu_sql import SqlInbox

    database = _inbox_table(tmp_path / "smsd.db", [(7, "+1", "Unicode_No_Compression", "Привет, мир 🙂"), (8, "+1", "Unicode_No_Compression", ""), (9, "+2", "8bit", "")])
    inbox = SqlInbox(database, "spam", None, 1.0)
    assert read_message(["7", "8"], {}, inbox).text == "Привет, мир 🙂"  # gammu keeps a multi-part text whole in its first row
    assert read_message(["9"], {}, inbox).text is None  # an 8-bit message has no text
    with pytest.raises(SmsguardError, match=f"^inbox ID 10 is not in the inbox table of '{re.escape(str(database))}'; give the IDs gammu-smsd passed the hook$"):
        read_message(["7", "10"], {}, inbox)
    with pytest.raises(SmsguardError, match="^" + re.escape("inbox ID 'IN1.txt' is not a number: with --sqlite, gammu-smsd passes the hook the message's inbox row IDs") + "$"):
        read_message(["IN1.txt"], {}, inbox)


def test_sql_when_nothing_can_classify_nothing_is_tagged(tmp_path: Path) -> None:
    database = _inbox_table(tmp_path / "smsd.db", [(1, "+1", "Default_No_Compression", "WIN a prize")])
    config = GammuConfig(sqlite=str(database), spam_table="spam", unix=str(tmp_path / "none.sock"), log=str(tmp_path / "log"))
    assert run_hook(config, ["1"], {}) == 2
    entry = json.loads((tmp_path / "log").read_text(encoding="utf-8"))
    assert (entry["ids"], entry["label"], entry["action"], entry["notes"]) == (["1"], None, "kept", ["server: [Errno 2] No such file or directory"])
    with contextlib.closing(sqlite3.connect(database)) as connection:
        assert connection.execute("SELECT name FROM sqlite_master WHERE name = 'spam'").fetchall() == []  # not even the table


def test_sql_a_tag_column_that_is_missing_keeps_the_message_and_says_how_to_add_it(tmp_path: Path) -> None:
    from smsguard.serve._gammu import Outcome
    from smsguard.serve._gammu_sql import SqlInbox

    database = _inbox_table(tmp_path / "smsd.db", [(1, "+1", "Default_No_Compression", "WIN")])
    outcome = Outcome(("1",), "+1", spam=True, label="spam", probability=0.99, serial=3, via="server")
    SqlInbox(database, None, "smsguard", 1.0).set_aside(["1"], outcome)
    assert (outcome.action, outcome.notes) == ("kept", [f"tag in '{database}': gammu's inbox table has no column smsguard; add it once: ALTER TABLE inbox ADD COLUMN smsguard TEXT"])
    with contextlib.closing(sqlite3.connect(database)) as connection, connection:
        connection.execute("ALTER TABLE inbox ADD COLUMN smsguard TEXT")
    SqlInbox(database, None, "smsguard", 1.0).set_aside(["1"], outcome)
    SqlInbox(database, "smsguard_spam", None, 1.0).set_aside(["1"], outcome)
    with contextlib.closing(sqlite3.connect(database)) as connection:
        assert connection.execute("SELECT ID, smsguard FROM inbox").fetchall() == [(1, "spam")]
        assert connection.execute("SELECT InboxID, Label, Probability, Serial, Via FROM smsguard_spam").fetchall() == [(1, "spam", 0.99, 3, "server")]
    assert outcome.action == "tagged"


def test_sql_a_database_that_does_not_exist_is_not_created(tmp_path: Path) -> None:
    from smsguard.serve._gammu import Outcome
    from smsguard.serve._gammu_sql import SqlInbox

    outcome = Outcome(("1",), "+1", spam=True, label="spam")
    SqlInbox(tmp_path / "no.db", "spam", None, 1.0).set_aside(["1"], outcome)
    assert outcome.action == "kept" and not (tmp_path / "no.db").exists()
    assert outcome.notes == [
        f"tag in '{tmp_path / 'no.db'}': gammu-smsd database '{tmp_path / 'no.db'}' cannot be opened: unable to open database file; "
        "--sqlite must be the SQLite file of its [smsd] DBDir and Database"
    ]


@pytest.mark.parametrize(
    ("flags", "error"),
    [
        ({}, "smsguard gammu needs gammu-smsd's backend: " + BACKENDS),
        ({"inbox": "i", "spam_folder": "s", "sqlite": "d", "spam_table": "t"}, "smsguard gammu takes one gammu-smsd backend, not both: " + BACKENDS),
        ({"inbox": "i"}, "the files backend needs both --inbox DIR (gammu-smsd's inboxpath) and --spam-folder DIR"),
        ({"sqlite": "d"}, "the SQL backend needs --sqlite FILE (gammu-smsd's database) and one of --spam-table NAME or --spam-column NAME"),
        ({"sqlite": "d", "spam_table": "t", "spam_column": "c"}, "the SQL backend needs --sqlite FILE (gammu-smsd's database) and one of --spam-table NAME or --spam-column NAME"),
        ({"spam_table": "t"}, "the SQL backend needs --sqlite FILE (gammu-smsd's database) and one of --spam-table NAME or --spam-column NAME"),
        ({"sqlite": "d", "spam_table": "spam; DROP TABLE inbox"}, "--spam-table 'spam; DROP TABLE inbox' is not an SQL name: use letters, digits and _, not starting with a digit"),
        ({"sqlite": "d", "spam_column": "1st"}, "--spam-column '1st' is not an SQL name: use letters, digits and _, not starting with a digit"),
    ],
)
def test_the_hook_takes_one_backend_whole(flags: dict, error: str) -> None:
    with pytest.raises(ConfigError, match=f"^{re.escape(error)}$"):
        GammuConfig(unix="s.sock", **flags)
