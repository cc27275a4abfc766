"""Training data from several files: loaded in order, duplicates across them dropped, each message's file recorded in
split.json (format 2) and read back by hash; the campaign split keeps near-duplicates in one part; runs with one file
still write and read format 1."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import numpy as np
import pytest

from smsguard.cli import main
from smsguard.train import TrainConfig, deduplicate, read_split, split_dataset
from smsguard.train._campaigns import campaign_groups, make_split
from smsguard.train._config import SplitKind
from smsguard.train._data import DataError, load_sources

SPAM = ["WINNER!! You have won a £{n}00 prize, call 0906170{n}461 to claim now", "FREE entry {n} to win a holiday, text WIN to 8{n}121"]
HAM = ["see you at {n} tonight?", "ok lor, on my way, {n} minutes", "can you pick up {n} eggs", "happy birthday {n}!"]


def write_csv(path: Path, rows: list[tuple[str, str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["label", "text"])
        writer.writerows(rows)
    return path


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path]:
    first = write_csv(tmp_path / "first.csv", [("spam", t.format(n=n)) for t in SPAM for n in range(10)] + [("ham", t.format(n=n)) for t in HAM for n in range(20)])
    second = write_csv(tmp_path / "mine.csv", [("spam", f"your parcel {n} is held, pay the fee at parcel{n}.example") for n in range(12)]
                       + [("ham", f"dentist reminder for {n} May") for n in range(20)] + [("ham", HAM[0].format(n=3))])  # a copy of a first.csv message
    return first, second


def test_files_load_in_order_and_duplicates_across_them_go(files: tuple[Path, Path]) -> None:
    ds, dropped = deduplicate(load_sources(files))
    assert [f.name for f in ds.files] == ["first.csv", "mine.csv"] and [f.rows for f in ds.files] == [100, 33]
    assert dropped == 1 and np.bincount(ds.sources).tolist() == [100, 32]
    assert ds.texts.count(HAM[0].format(n=3)) == 1 and ds.sources[ds.texts.index(HAM[0].format(n=3))] == 0  # the first file's copy is kept


def test_the_same_file_twice_is_refused(files: tuple[Path, Path]) -> None:
    with pytest.raises(DataError, match="^" + re.escape(f"data file '{files[0]}' is the same file as '{files[0]}' (sha256 ")):
        load_sources([files[0], files[0]])


def test_several_files_split_by_file_and_label_and_read_back_by_hash(files: tuple[Path, Path], tmp_path: Path) -> None:
    ds, dropped = deduplicate(load_sources(files))
    split = make_split(ds, 7, 0.3, 0.1, SplitKind.STRATIFIED)
    for k in (0, 1):  # each file in each part, in its share
        for part in (split.train, split.test):
            assert (ds.sources[part] == k).any()
    split.to_json(ds, dropped, 7, tmp_path / "split.json")
    document = json.loads((tmp_path / "split.json").read_text())
    assert document["format"] == 2 and [s["name"] for s in document["sources"]] == ["first.csv", "mine.csv"]
    assert document["counts_by_source"]["mine.csv"]["test"] == {"ham": int(((ds.sources[split.test] == 1) & (ds.labels[split.test] == 0)).sum()),
                                                                 "spam": int(((ds.sources[split.test] == 1) & (ds.labels[split.test] == 1)).sum())}
    assert all(len(row) == 2 for row in document["test"])
    again, read = read_split(tmp_path / "split.json", list(reversed(files)))  # any order: found by hash
    assert again.texts == ds.texts and np.array_equal(again.sources, ds.sources)
    assert all(np.array_equal(getattr(read, p), getattr(split, p)) for p in ("train", "validation", "test"))
    with pytest.raises(DataError, match="^" + re.escape(f"split file '{tmp_path / 'split.json'}' names data file 'mine.csv' (sha256 {ds.files[1].sha256}), which is none of --data; pass --data PATH for it (one per file)") + "$"):
        read_split(tmp_path / "split.json", [files[0]])


def test_one_file_still_writes_and_reads_format_1(files: tuple[Path, Path], tmp_path: Path) -> None:
    ds, dropped = deduplicate(load_sources([files[0]]))
    split = split_dataset(ds, 7)
    split.to_json(ds, dropped, 7, tmp_path / "split.json")
    document = json.loads((tmp_path / "split.json").read_text())
    assert document["format"] == 1 and document["source"]["name"] == "first.csv" and isinstance(document["test"][0], int)
    _, read = read_split(tmp_path / "split.json", files[0])
    assert np.array_equal(read.test, split.test) and read.kind == "stratified"


def test_the_campaign_split_keeps_near_duplicates_in_one_part(files: tuple[Path, Path], tmp_path: Path) -> None:
    ds, dropped = deduplicate(load_sources(files))
    groups = campaign_groups(ds)
    assert len(set(groups[ds.labels == 1])) < int(ds.labels.sum())  # the campaigns group their copies
    split = make_split(ds, 7, 0.3, 0.1, SplitKind.CAMPAIGN)
    seen = set(groups[split.train]) | set(groups[split.validation])
    assert not seen & set(groups[split.test])
    assert set(np.concatenate([split.train, split.validation, split.test]).tolist()) == set(range(len(ds)))
    split.to_json(ds, dropped, 7, tmp_path / "split.json")
    assert json.loads((tmp_path / "split.json").read_text())["split"] == "campaign"
    assert read_split(tmp_path / "split.json", files)[1].kind == "campaign"


def test_the_flags_take_several_files_and_a_split_kind() -> None:
    assert TrainConfig(data="a.csv").data == ("a.csv",) and TrainConfig(data=None).data == ()  # as older runs recorded it
    assert TrainConfig.from_dict({"preset": "fused", "data": "x", "split": "campaign"}).split is SplitKind.CAMPAIGN
    with pytest.raises(ValueError, match=r"^split must be one of stratified, campaign, found 'random'$"):
        TrainConfig(split="random")


def test_train_refuses_a_missing_second_file_before_training(files: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["train", "--data", str(files[0]), "--data", str(tmp_path / "nope.csv"), "--out", str(tmp_path / "run")]) == 2
    assert capsys.readouterr().err.strip().endswith(f"'{tmp_path / 'nope.csv'}' does not exist: pass --data PATH to a local copy of SMSSpamCollection (see https://archive.ics.uci.edu/dataset/228/sms+spam+collection)")


@pytest.mark.slow
def test_a_run_on_two_files_reports_per_file_and_exports(data_path: Path, tmp_path: Path) -> None:
    """The UCI file and the out-of-domain set as a CSV of one's own: the test figures per file in metrics.json, each
    row's file in split.json, and export reading both back (the CSV named again by --data, the UCI file found)."""
    from smsguard.export import ExportConfig, export
    from smsguard.runtime import Classifier
    from smsguard.train import train

    own = Path(__file__).resolve().parents[1] / "benchmarks" / "ood" / "messages.csv"
    config = TrainConfig.from_preset("tuned", data=(str(data_path), str(own)), epochs=2, early_stopping_patience=0)
    result = train(config, tmp_path / "run")
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert set(metrics["test_by_source"]) == {"SMSSpamCollection", "messages.csv"}
    assert metrics["test_by_source"]["messages.csv"]["n"] + metrics["test_by_source"]["SMSSpamCollection"]["n"] == result.test.n
    split = json.loads((tmp_path / "run" / "split.json").read_text())
    assert split["format"] == 2 and {row[0] for row in split["test"]} == {0, 1}
    recorded = json.loads((tmp_path / "run" / "config.json").read_text())["train"]
    assert recorded["data"] is None and [f["name"] for f in recorded["data_files"]] == ["SMSSpamCollection", "messages.csv"]
    export(tmp_path / "run", tmp_path / "bundle", ExportConfig(data=(str(own), str(data_path))))
    assert Classifier.load(tmp_path / "bundle").predict(["see you at 6"]) == ["ham"]
