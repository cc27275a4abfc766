"""The split that keeps a campaign whole (`smsguard train --split campaign`).

A campaign split puts every near-duplicate of a message (the same text with another name, number or link: bags of
n-grams that overlap by `CAMPAIGN_JACCARD` or more, joined transitively) in the same part, so that a test part holds
campaigns the model never saw in any form: what a filter meets after it ships."""

from __future__ import annotations

import numpy as np

from smsguard.runtime import NgramConfig, NgramHasher
from smsguard.train._config import SplitKind
from smsguard.train._data import DataError, Dataset, Split, check_sizes, frozen, stratified_split

CAMPAIGN_JACCARD = 0.5  # the near-duplicate line of the personal layer's memory (runtime LearnerConfig.near)
_BLOCK = 512  # rows compared at a time: memory stays small


def campaign_groups(ds: Dataset, threshold: float = CAMPAIGN_JACCARD) -> np.ndarray:
    """A group id per message: messages of one label whose n-gram bags overlap by `threshold` (Jaccard) or more are
    one group, transitively (union-find)."""
    from scipy import sparse  # with scikit-learn, which training needs anyway

    hasher = NgramHasher(NgramConfig())
    bags = hasher.encode(list(ds.texts))
    parent = np.arange(len(ds))

    def root(k: int) -> int:
        while parent[k] != k:
            parent[k] = parent[parent[k]]
            k = int(parent[k])
        return k

    for label in (0, 1):
        members = np.flatnonzero(ds.labels == label)
        rows = [np.unique(ids[ids > 0]) for ids in bags[members]]
        matrix = sparse.csr_matrix((np.ones(sum(map(len, rows)), dtype=np.float32), np.concatenate(rows), np.cumsum([0, *map(len, rows)])),
                                   shape=(len(members), hasher.config.buckets + 1))
        sizes = np.asarray([len(r) for r in rows], dtype=np.float32)
        for start in range(0, len(members), _BLOCK):
            common = (matrix[start : start + _BLOCK] @ matrix.T).toarray()
            jaccard = common / np.maximum(sizes[start : start + _BLOCK, None] + sizes[None, :] - common, 1.0)
            for a, b in zip(*np.nonzero(jaccard >= threshold), strict=True):
                ra, rb = root(int(members[start + a])), root(int(members[b]))
                if ra != rb:
                    parent[max(ra, rb)] = min(ra, rb)
    return np.array([root(k) for k in range(len(ds))])


def campaign_split(ds: Dataset, seed: int, test_size: float, validation_size: float) -> Split:
    """Whole groups (`campaign_groups`) into each part: for each label, groups in a seeded random order fill the test
    part to `test_size` of that label's messages, then validation to `validation_size`; the rest train."""
    check_sizes(test_size, validation_size)
    groups = campaign_groups(ds)
    rng = np.random.default_rng(seed)
    parts: dict[str, list[int]] = {"train": [], "validation": [], "test": []}
    for label in (0, 1):
        members = np.flatnonzero(ds.labels == label)
        ids, sizes = np.unique(groups[members], return_counts=True)
        order = rng.permutation(len(ids))
        goals = {"test": round(test_size * len(members)), "validation": round(validation_size * len(members))}
        filled = {"test": 0, "validation": 0}
        for group, size in zip(ids[order], sizes[order], strict=True):
            part = next((p for p in ("test", "validation") if filled[p] + size / 2 <= goals[p]), "train")
            if part != "train":
                filled[part] += int(size)
            parts[part].extend(members[groups[members] == group].tolist())
    for name, positions in parts.items():
        if not positions:
            msg = f"cannot make a campaign split of the {len(ds)} messages: the {name} part would be empty"
            raise DataError(msg)
    train, validation, test = (frozen(np.sort(np.asarray(parts[name], dtype=np.int64))) for name in ("train", "validation", "test"))
    return Split(train, validation, test, test_size=float(test_size), validation_size=float(validation_size), kind=SplitKind.CAMPAIGN.value)


def make_split(ds: Dataset, seed: int, test_size: float, validation_size: float, kind: SplitKind) -> Split:
    """The split of a run: stratified (by label, and by file too when there are several), or by campaign."""
    if kind is SplitKind.CAMPAIGN:
        return campaign_split(ds, seed, test_size, validation_size)
    return stratified_split(ds, seed, test_size, validation_size)
