"""The data step on the real SMS Spam Collection and on small files written here: no mocks."""

from __future__ import annotations

import hashlib
import json
import re
import zipfile
from pathlib import Path

import numpy as np
import pytest
from conftest import cannot_run, needs

from smsguard.train._data import (
    UPSTREAM_SHA256,
    DataError,
    Dataset,
    Split,
    _download_upstream,
    deduplicate,
    load_messages,
    locate_data,
    split_dataset,
)

SHARED = Path(__file__).resolve().parents[1].parent / "shared/data/SMSSpamCollection"
MISSING = f"the SMS Spam Collection is not at {SHARED} (see ../shared/data/README.md)"
needs_shared = needs("" if SHARED.is_file() else MISSING)

MESSAGES, HAM, SPAM, DUPLICATES = 5574, 4827, 747, 403
SHARE_TOLERANCE = 0.01  # spam share of each part within 1 point of the whole: stratified, not exact
SEED = 1234


@pytest.fixture(scope="module")
def uci() -> Dataset:
    if not SHARED.is_file():
        cannot_run(MISSING)
    return load_messages(SHARED)


@pytest.fixture(scope="module")
def unique(uci) -> Dataset:
    return deduplicate(uci)[0]


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch, tmp_path):
    # Never read the caller's data settings, never write to the real user cache.
    for name in ("SMSGUARD_DATA", "SMSGUARD_DATA_URL", "XDG_CACHE_HOME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SMSGUARD_CACHE", str(tmp_path / "cache"))


def write(path: Path, content: str | bytes) -> Path:
    path.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)
    return path


def err(text: str) -> str:
    """An exact-message pattern for pytest.raises(match=...)."""
    return "^" + re.escape(text) + "$"


# -- the real file -------------------------------------------------------------------------------


def test_uci_file_loads_with_the_published_counts(uci):
    assert len(uci) == len(uci.texts) == MESSAGES
    assert uci.labels.dtype == np.int8 and uci.rows.dtype == np.int64
    assert int((uci.labels == 0).sum()) == HAM
    assert int((uci.labels == 1).sum()) == SPAM
    assert np.array_equal(uci.rows, np.arange(MESSAGES))
    assert uci.sha256 == UPSTREAM_SHA256
    assert uci.source == SHARED.resolve()
    assert uci.texts[0].startswith("Go until jurong point, crazy..")
    assert uci.labels[2] == 1 and uci.texts[2].startswith("Free entry in 2 a wkly comp")


def test_deduplicate_drops_the_403_exact_duplicates_and_keeps_first_occurrences(uci, unique):
    dropped = deduplicate(uci)[1]
    assert dropped == DUPLICATES
    assert len(unique) == MESSAGES - DUPLICATES == len(set(uci.texts))
    first = {}
    for i, text in enumerate(uci.texts):
        first.setdefault(text, i)
    assert unique.rows.tolist() == sorted(first.values())
    for row, text, label in zip(unique.rows, unique.texts, unique.labels, strict=False):
        assert (uci.texts[row], uci.labels[row]) == (text, label)
    assert deduplicate(unique)[1] == 0


def test_split_is_stratified_disjoint_and_covers_everything(unique):
    split = split_dataset(unique, seed=SEED)
    n = len(unique)
    parts = {"train": split.train, "validation": split.validation, "test": split.test}
    assert len(split.test) == pytest.approx(0.30 * n, abs=1)
    assert len(split.validation) == pytest.approx(0.10 * n, abs=1)
    assert len(split.train) == pytest.approx(0.60 * n, abs=2)
    for positions in parts.values():
        assert positions.dtype == np.int64
        assert np.array_equal(positions, np.sort(positions))
    everything = np.concatenate(list(parts.values()))
    assert len(everything) == n and np.array_equal(np.sort(everything), np.arange(n))
    share = unique.labels.mean()
    for name, positions in parts.items():
        assert abs(unique.labels[positions].mean() - share) <= SHARE_TOLERANCE, name


def test_split_is_fixed_by_its_seed(unique):
    a, b, c = split_dataset(unique, SEED), split_dataset(unique, SEED), split_dataset(unique, SEED + 1)
    for name in ("train", "validation", "test"):
        assert np.array_equal(getattr(a, name), getattr(b, name))
    assert not np.array_equal(a.test, c.test)


def test_split_json_lists_source_rows_that_match_the_raw_file(uci, unique, tmp_path):
    split = split_dataset(unique, SEED)
    out = tmp_path / "split.json"
    split.to_json(unique, DUPLICATES, SEED, out)
    assert [p.name for p in tmp_path.iterdir() if p.name != "cache"] == ["split.json"]  # no temp file left
    doc = json.loads(out.read_text(encoding="utf-8"))

    assert doc["format"] == 1
    assert doc["source"] == {"name": SHARED.name, "sha256": UPSTREAM_SHA256, "rows": MESSAGES}  # a name, never a path of this machine
    assert (doc["seed"], doc["test_size"], doc["validation_size"]) == (SEED, 0.30, 0.10)
    assert doc["duplicates_dropped"] == DUPLICATES
    assert "line number - 1" in doc["row_numbers_are"]

    raw = SHARED.read_bytes()
    assert hashlib.sha256(raw).hexdigest() == doc["source"]["sha256"]
    lines = raw.decode("utf-8", errors="replace").split("\n")
    total = 0
    for name in ("train", "validation", "test"):
        rows = doc[name]
        total += len(rows)
        assert rows == unique.rows[getattr(split, name)].tolist()
        labels = [lines[r].split("\t", 1)[0] for r in rows]
        assert doc["counts"][name] == {"ham": labels.count("ham"), "spam": labels.count("spam")}
        for r in rows:
            label, text = lines[r].split("\t", 1)
            position = int(np.searchsorted(unique.rows, r))
            assert unique.texts[position] == text
            assert unique.labels[position] == (label == "spam")
    assert total == MESSAGES - DUPLICATES


@pytest.mark.parametrize(
    ("test_size", "validation_size"), [(0, 0.1), (0.3, 0), (-0.1, 0.1), (0.6, 0.4), (0.9, 0.2)]
)
def test_split_sizes_must_be_positive_and_leave_a_training_part(unique, test_size, validation_size):
    expected = (
        f"cannot split with test_size={test_size} and validation_size={validation_size}: "
        "expected both above 0 and their sum below 1"
    )
    with pytest.raises(DataError, match=err(expected)):
        split_dataset(unique, SEED, test_size=test_size, validation_size=validation_size)


def test_split_too_small_to_stratify_is_a_data_error(tmp_path):
    ds = load_messages(write(tmp_path / "tiny.txt", "ham\ta\nspam\tb\nham\tc\n"))
    with pytest.raises(DataError, match=r"^cannot split the 3 messages from .* stratified by label: "):
        split_dataset(ds, SEED)


# -- small UCI files -----------------------------------------------------------------------------


def test_uci_lines_split_on_the_first_tab_and_keep_quotes_and_spaces(tmp_path):
    path = write(tmp_path / "m.txt", 'ham\t"quoted, text" \twith a tab \r\n\nspam\tWIN\x0bnow\nham\t\n')
    ds = load_messages(path)
    assert ds.texts == ('"quoted, text" \twith a tab ', "WIN\x0bnow", "")
    assert ds.labels.tolist() == [0, 1, 0]
    assert ds.rows.tolist() == [0, 2, 3]  # line 2 is empty and skipped, numbering is kept


def test_stray_bytes_become_replacement_characters(tmp_path):
    ds = load_messages(write(tmp_path / "m.txt", b"ham\tcaf\xff ok\nspam\tfree\n"))
    assert ds.texts[0] == "caf\ufffd ok"


def test_line_without_a_tab_names_file_line_and_content(tmp_path):
    path = write(tmp_path / "x.txt", "ham\tfine\nspam\tfine\nhello\n")
    expected = f"'{path}' line 3: expected 'label<TAB>text' with label spam or ham, found 'hello'"
    with pytest.raises(DataError, match=err(expected)):
        load_messages(path)


def test_unknown_uci_label_names_file_line_and_label(tmp_path):
    path = write(tmp_path / "x.txt", "ham\tfine\nSPAM\tloud\n")
    expected = f"'{path}' line 2: expected 'label<TAB>text' with label spam or ham, found label 'SPAM'"
    with pytest.raises(DataError, match=err(expected)):
        load_messages(path)


def test_empty_file(tmp_path):
    path = write(tmp_path / "x.txt", b"")
    expected = f"'{path}' is empty: expected the SMS Spam Collection ('label<TAB>text' lines) or a CSV file"
    with pytest.raises(DataError, match=err(expected)):
        load_messages(path)


def test_file_of_blank_lines_has_no_messages(tmp_path):
    path = write(tmp_path / "x.txt", "\n\r\n\n")
    expected = f"'{path}' has no messages: expected at least one spam and one ham message"
    with pytest.raises(DataError, match=err(expected)):
        load_messages(path)


def test_only_one_class(tmp_path):
    path = write(tmp_path / "x.txt", "ham\ta\nham\tb\n")
    expected = f"'{path}' has only ham messages (2): expected both spam and ham"
    with pytest.raises(DataError, match=err(expected)):
        load_messages(path)


def test_missing_path(tmp_path):
    path = tmp_path / "nope.txt"
    expected = (
        f"'{path}' does not exist: pass --data PATH to a local copy of SMSSpamCollection "
        "(see https://archive.ics.uci.edu/dataset/228/sms+spam+collection)"
    )
    with pytest.raises(DataError, match=err(expected)):
        load_messages(path)


def test_directory(tmp_path):
    expected = f"'{tmp_path}' is a directory: expected the SMSSpamCollection file or a CSV file"
    with pytest.raises(DataError, match=err(expected)):
        load_messages(tmp_path)


# -- CSV files -----------------------------------------------------------------------------------


def test_csv_with_sms_and_label_columns(tmp_path):
    path = write(tmp_path / "m.CSV", 'SMS,Label\n"Hi, see you at 5",ham\nWIN now,Spam \n"two\nlines",HAM\n')
    ds = load_messages(path)
    assert ds.texts == ("Hi, see you at 5", "WIN now", "two\nlines")
    assert ds.labels.tolist() == [0, 1, 0]
    assert ds.rows.tolist() == [0, 1, 2]
    assert ds.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()


def test_csv_with_1_and_0_labels_and_extra_columns(tmp_path):
    path = write(tmp_path / "m.csv", "v1,v2,Unnamed: 2\n1,free prize,\n0,NA,\n0,,x\n")
    ds = load_messages(path)
    assert ds.texts == ("free prize", "NA", "")  # NA stays text, empty stays empty
    assert ds.labels.tolist() == [1, 0, 0]


def test_csv_with_custom_column_names(tmp_path):
    path = write(tmp_path / "m.csv", "body,is_spam,label\nhello,0,junk\nbuy,1,junk\n")
    ds = load_messages(path, text_column="body", label_column="is_spam")
    assert ds.texts == ("hello", "buy") and ds.labels.tolist() == [0, 1]


def test_csv_stray_bytes_become_replacement_characters(tmp_path):
    ds = load_messages(write(tmp_path / "m.csv", b"text,label\ncaf\xe9,ham\nwin,spam\n"))
    assert ds.texts[0] == "caf\ufffd"


def test_csv_missing_default_column_lists_what_was_tried_and_found(tmp_path):
    path = write(tmp_path / "m.csv", "body,Label\nhi,ham\n")
    expected = (
        f"'{path}' has no text column (looked for 'SMS', 'sms', 'text', 'message', 'Message', 'v2'); "
        "found columns 'body', 'Label': pass --text-column/--label-column to name the right ones"
    )
    with pytest.raises(DataError, match=err(expected)):
        load_messages(path)


def test_csv_missing_named_column(tmp_path):
    path = write(tmp_path / "m.csv", "SMS,Label\nhi,ham\n")
    expected = (
        f"'{path}' has no label column 'kind'; "
        "found columns 'SMS', 'Label': pass --text-column/--label-column to name the right ones"
    )
    with pytest.raises(DataError, match=err(expected)):
        load_messages(path, label_column="kind")


def test_csv_bad_label_names_file_row_and_value(tmp_path):
    path = write(tmp_path / "m.csv", "SMS,Label\nhi,ham\nwin,spam\nhm,maybe\n")
    expected = f"'{path}' row 3: expected label spam, ham, 1 or 0 in column 'Label', found 'maybe'"
    with pytest.raises(DataError, match=err(expected)):
        load_messages(path)


def test_csv_with_header_only_has_no_messages(tmp_path):
    path = write(tmp_path / "m.csv", "SMS,Label\n")
    expected = f"'{path}' has no messages: expected at least one spam and one ham message"
    with pytest.raises(DataError, match=err(expected)):
        load_messages(path)


def test_csv_of_blank_lines_has_no_header(tmp_path):
    path = write(tmp_path / "m.csv", "\n\n")
    expected = f"'{path}' has no header row: expected a CSV file with a text and a label column"
    with pytest.raises(DataError, match=err(expected)):
        load_messages(path)


# -- locating and downloading --------------------------------------------------------------------


def make_zip(path: Path, content: bytes, member: str = "SMSSpamCollection") -> str:
    with zipfile.ZipFile(path, "w") as bundle:
        bundle.writestr("readme", "SMS Spam Collection v.1\n")
        bundle.writestr(member, content)
    return path.as_uri()


@needs_shared
def test_download_unzips_checks_and_caches(tmp_path, monkeypatch, capsys):
    archive = tmp_path / "sms+spam+collection.zip"
    monkeypatch.setenv("SMSGUARD_DATA_URL", make_zip(archive, SHARED.read_bytes()))
    cached = tmp_path / "cache" / "SMSSpamCollection"

    assert _download_upstream() == cached
    assert cached.read_bytes() == SHARED.read_bytes()
    assert capsys.readouterr() == ("", f"* Downloading the SMS Spam Collection to {cached} ...\n")
    assert [p.name for p in cached.parent.iterdir()] == ["SMSSpamCollection"]  # no temp file left

    archive.unlink()  # a second call must not need the network
    assert _download_upstream() == cached
    assert capsys.readouterr() == ("", "")
    assert len(load_messages(cached)) == MESSAGES


@needs_shared
def test_download_replaces_a_corrupt_cached_copy(tmp_path, monkeypatch):
    monkeypatch.setenv("SMSGUARD_DATA_URL", make_zip(tmp_path / "a.zip", SHARED.read_bytes()))
    cached = tmp_path / "cache" / "SMSSpamCollection"
    cached.parent.mkdir()
    cached.write_bytes(b"ham\ttruncated")
    assert _download_upstream() == cached
    assert hashlib.sha256(cached.read_bytes()).hexdigest() == UPSTREAM_SHA256


@needs_shared
def test_download_uses_xdg_cache_home(tmp_path, monkeypatch):
    monkeypatch.delenv("SMSGUARD_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("SMSGUARD_DATA_URL", make_zip(tmp_path / "a.zip", SHARED.read_bytes()))
    assert _download_upstream() == tmp_path / "xdg" / "smsguard" / "SMSSpamCollection"


HINT = (
    "pass --data PATH to a local copy of SMSSpamCollection "
    "(see https://archive.ics.uci.edu/dataset/228/sms+spam+collection)"
)


def test_download_with_wrong_bytes_fails_the_checksum(tmp_path, monkeypatch):
    content = b"ham\tnot the real collection\nspam\twin\n"
    url = make_zip(tmp_path / "a.zip", content)
    monkeypatch.setenv("SMSGUARD_DATA_URL", url)
    expected = (
        f"could not download the SMS Spam Collection from {url} (SMSSpamCollection has SHA-256 "
        f"{hashlib.sha256(content).hexdigest()}, expected {UPSTREAM_SHA256}); {HINT}"
    )
    with pytest.raises(DataError, match=err(expected)):
        _download_upstream()
    assert not (tmp_path / "cache").exists()


def test_download_from_a_missing_url_gives_the_data_hint(tmp_path, monkeypatch):
    url = (tmp_path / "missing.zip").as_uri()
    monkeypatch.setenv("SMSGUARD_DATA_URL", url)
    expected = (
        f"could not download the SMS Spam Collection from {url} "
        f"([Errno 2] No such file or directory: '{tmp_path / 'missing.zip'}'); {HINT}"
    )
    with pytest.raises(DataError, match=err(expected)):
        _download_upstream()


def test_download_of_a_non_zip_or_a_zip_without_the_member(tmp_path, monkeypatch):
    monkeypatch.setenv("SMSGUARD_DATA_URL", write(tmp_path / "page.zip", b"<html>moved</html>").as_uri())
    with pytest.raises(DataError, match=r"\(BadZipFile: File is not a zip file\); pass --data PATH"):
        _download_upstream()
    monkeypatch.setenv("SMSGUARD_DATA_URL", make_zip(tmp_path / "b.zip", b"x", member="other"))
    with pytest.raises(DataError, match=r"\(the zip has no member 'SMSSpamCollection'\); pass --data PATH"):
        _download_upstream()


@needs_shared
def test_locate_data_precedence(tmp_path, monkeypatch):
    explicit = write(tmp_path / "explicit.txt", "ham\ta\nspam\tb\n")
    from_env = write(tmp_path / "env.txt", "ham\ta\nspam\tb\n")
    beside = tmp_path / "shared" / "data" / "SMSSpamCollection"
    beside.parent.mkdir(parents=True)
    write(beside, "ham\ta\nspam\tb\n")
    project = tmp_path / "project"
    project.mkdir()
    monkeypatch.chdir(project)
    monkeypatch.setenv("SMSGUARD_DATA_URL", (tmp_path / "never.zip").as_uri())  # a download would fail

    assert locate_data() == beside.resolve()  # ../shared/data relative to the current directory
    monkeypatch.chdir(tmp_path)
    assert locate_data() == SHARED.resolve()  # ../shared/data relative to the source checkout
    monkeypatch.setenv("SMSGUARD_DATA", str(from_env))
    assert locate_data() == from_env
    assert locate_data(explicit) == explicit
    assert locate_data(str(explicit)) == explicit


def test_locate_data_never_downloads_past_a_missing_explicit_or_env_path(tmp_path, monkeypatch):
    monkeypatch.setenv("SMSGUARD_DATA_URL", (tmp_path / "never.zip").as_uri())
    missing = tmp_path / "missing"
    with pytest.raises(DataError, match=err(f"'{missing}' does not exist: {HINT}")):
        locate_data(missing)
    monkeypatch.setenv("SMSGUARD_DATA", str(missing))
    with pytest.raises(DataError, match=err(f"SMSGUARD_DATA='{missing}' does not exist: {HINT}")):
        locate_data()
    monkeypatch.setenv("SMSGUARD_DATA", str(tmp_path))
    expected = f"SMSGUARD_DATA='{tmp_path}' is a directory: expected the SMSSpamCollection file or a CSV file"
    with pytest.raises(DataError, match=err(expected)):
        locate_data()


def test_datasets_and_splits_are_read_only(tmp_path):
    ds = load_messages(write(tmp_path / "m.txt", "ham\ta\nspam\tb\nham\tc\nspam\td\nham\te\nspam\tf\n" * 3))
    with pytest.raises(ValueError):
        ds.labels[0] = 1
    split = split_dataset(deduplicate(ds)[0], SEED, test_size=0.34, validation_size=0.33)
    assert isinstance(split, Split)
    with pytest.raises(ValueError):
        split.train[0] = 0
