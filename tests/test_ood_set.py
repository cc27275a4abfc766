"""The out-of-domain set (benchmarks/ood/messages.csv): it loads with the project's own loader, and it
shares no message with the UCI data it is meant to test against. Fast: no training."""

from __future__ import annotations

import csv
import re
from collections import Counter
from pathlib import Path

import pytest

from smsguard.train import load_messages

OOD = Path(__file__).resolve().parents[1] / "benchmarks" / "ood"
MIN_PER_LABEL = 150


def _normal(text: str) -> str:
    """Case, spacing and punctuation aside: a copied message with a changed comma is still a copy."""
    return re.sub(r"[\W_]+", " ", text.casefold()).strip()


@pytest.fixture(scope="module")
def rows() -> list[dict[str, str]]:
    with (OOD / "messages.csv").open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def test_loads_with_the_projects_loader_with_both_labels() -> None:
    dataset = load_messages(OOD / "messages.csv")
    counts = Counter(int(label) for label in dataset.labels)
    assert counts[1] >= MIN_PER_LABEL, f"{counts[1]} spam"
    assert counts[0] >= MIN_PER_LABEL, f"{counts[0]} ham"


def test_every_row_has_label_category_and_text(rows: list[dict[str, str]]) -> None:
    assert rows and list(rows[0]) == ["label", "category", "text"]
    for number, row in enumerate(rows, start=1):
        assert row["label"] in ("spam", "ham"), f"row {number}: label {row['label']!r}"
        assert re.fullmatch(r"[a-z_]+", row["category"]), f"row {number}: category {row['category']!r}"
        assert row["text"].strip() and None not in row, f"row {number}: {row}"


def test_each_category_belongs_to_one_label(rows: list[dict[str, str]]) -> None:
    labels_of: dict[str, set[str]] = {}
    for row in rows:
        labels_of.setdefault(row["category"], set()).add(row["label"])
    mixed = {category: labels for category, labels in labels_of.items() if len(labels) > 1}
    assert not mixed


def test_no_duplicate_texts(rows: list[dict[str, str]]) -> None:
    counts = Counter(_normal(row["text"]) for row in rows)
    assert [text for text, n in counts.items() if n > 1] == []


def test_no_text_is_in_the_uci_data(rows: list[dict[str, str]], uci_texts: list[str]) -> None:
    uci = {_normal(text) for text in uci_texts}
    assert len(uci) > 5000  # the real file, not an empty stand-in
    assert [row["text"] for row in rows if _normal(row["text"]) in uci] == []


def test_readme_gives_each_categorys_count(rows: list[dict[str, str]]) -> None:
    readme = (OOD / "README.md").read_text(encoding="utf-8")
    for category, count in Counter(row["category"] for row in rows).items():
        assert re.search(rf"`{category}`\s*\|\s*{count}\s*\|", readme), f"README.md: no row '`{category}` | {count} |'"
