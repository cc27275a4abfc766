"""gammu-smsd's SQL backend, on SQLite: the hook is given the message's inbox row IDs, one per part, and tags spam
there, in the table or the column the user names; ham, and gammu's own rows, are left as they are.

A tag is one transaction: a hook killed midway leaves the message tagged or not, never half. Nothing is deleted
and gammu's tables are never altered: a tag table is made on first use (`CREATE TABLE IF NOT EXISTS`), and a
tag column is one the user added to gammu's inbox table. gammu-smsd writes the whole text of a multi-part
message in the first part's TextDecoded (and "" in the others), which `text_of` reads for a run by hand.
"""

from __future__ import annotations

import contextlib
import sqlite3
import time
import urllib.parse
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from smsguard.runtime import SmsguardError

if TYPE_CHECKING:
    from smsguard.serve._gammu import Outcome

INBOX = "inbox"  # gammu-smsd's table of received messages (its schema since version 13)
BINARY_CODING = "8bit"  # gammu's Coding of a message without text


class SqlInbox:
    """gammu-smsd's inbox table in the SQLite database `database`; spam tagged in `table` or in `column`."""

    parts, done = "ids", "tagged"

    def __init__(self, database: Path, table: str | None, column: str | None, timeout: float) -> None:
        self.database, self.table, self.column, self.timeout = database, table, column, timeout

    def text_of(self, parts: Sequence[str]) -> str | None:
        ids = inbox_ids(parts)
        marks = ", ".join("?" * len(ids))
        with contextlib.closing(self._connect()) as connection:
            rows = connection.execute(f"SELECT ID, Coding, TextDecoded FROM {INBOX} WHERE ID IN ({marks}) ORDER BY ID", ids).fetchall()  # the marks are "?, ?": values are bound
        missing = sorted(set(ids) - {row[0] for row in rows})
        if missing:
            msg = f"inbox ID {', '.join(map(str, missing))} is not in the {INBOX} table of '{self.database}'; give the IDs gammu-smsd passed the hook"
            raise SmsguardError(msg)
        return None if any(row[1] == BINARY_CODING for row in rows) else "".join(row[2] or "" for row in rows)

    def set_aside(self, parts: Sequence[str], outcome: Outcome) -> None:
        try:
            ids = inbox_ids(parts)
            with contextlib.closing(self._connect()) as connection, connection:  # one transaction: committed whole, or rolled back
                self._tag(connection, ids, outcome)
        except (SmsguardError, sqlite3.Error) as error:
            outcome.notes.append(f"tag in '{self.database}': {error}")
            return
        outcome.action = "tagged"

    def _tag(self, connection: sqlite3.Connection, ids: list[int], outcome: Outcome) -> None:
        if self.column:
            marks = ", ".join("?" * len(ids))
            try:
                done = connection.execute(f'UPDATE {INBOX} SET "{self.column}" = ? WHERE ID IN ({marks})', [outcome.label, *ids])  # names checked by SQL_NAME
            except sqlite3.OperationalError as error:
                if "no such column" not in str(error):
                    raise
                msg = f"gammu's {INBOX} table has no column {self.column}; add it once: ALTER TABLE {INBOX} ADD COLUMN {self.column} TEXT"
                raise SmsguardError(msg) from None
            if done.rowcount != len(ids):
                msg = f"{len(ids) - done.rowcount} of inbox IDs {', '.join(map(str, ids))} are not in the {INBOX} table"
                raise SmsguardError(msg)
            return
        connection.execute(
            f'CREATE TABLE IF NOT EXISTS "{self.table}" (InboxID INTEGER PRIMARY KEY, Label TEXT NOT NULL, Probability REAL, '
            "Serial INTEGER, Via TEXT, TaggedAt TEXT NOT NULL)"
        )
        tagged = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        connection.executemany(
            f'INSERT INTO "{self.table}" (InboxID, Label, Probability, Serial, Via, TaggedAt) VALUES (?, ?, ?, ?, ?, ?) '  # names checked by SQL_NAME
            "ON CONFLICT (InboxID) DO UPDATE SET Label = excluded.Label, Probability = excluded.Probability, Serial = excluded.Serial, "
            "Via = excluded.Via, TaggedAt = excluded.TaggedAt",
            [(n, outcome.label, outcome.probability, outcome.serial, outcome.via, tagged) for n in ids],
        )

    def _connect(self) -> sqlite3.Connection:
        """The existing database, read-write (never a new empty one made by a wrong path); a lock held by gammu-smsd
        or a frontend is waited for up to `timeout` seconds."""
        uri = f"file:{urllib.parse.quote(str(self.database))}?mode=rw"
        try:
            return sqlite3.connect(uri, uri=True, timeout=self.timeout)
        except sqlite3.Error as error:
            msg = f"gammu-smsd database '{self.database}' cannot be opened: {error}; --sqlite must be the SQLite file of its [smsd] DBDir and Database"
            raise SmsguardError(msg) from None


def inbox_ids(parts: Sequence[str]) -> list[int]:
    """The hook's arguments as inbox row IDs."""
    if not parts:
        msg = "no inbox ID given: with --sqlite, gammu-smsd passes the hook the message's inbox row IDs"
        raise SmsguardError(msg)
    for part in parts:
        if not (part.isascii() and part.isdigit()):
            msg = f"inbox ID {part!r} is not a number: with --sqlite, gammu-smsd passes the hook the message's inbox row IDs"
            raise SmsguardError(msg)
    return [int(part) for part in parts]
