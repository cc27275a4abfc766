"""The arithmetic of the personal layer: bags of n-gram ids as rows, the layer's shift of a message's log-odds, and
fitting its weights to a user's corrections (a small L-BFGS in NumPy: the runtime has no SciPy).

The layer adds to the model's log-odds `z` of a message with bag B (its distinct n-gram ids):

    s(B) = sum(w[id] for id in B) / sqrt(|B|), then a dead zone: s - dead_zone above dead_zone,
           s + dead_zone + anchor_margin below -(dead_zone + anchor_margin), 0 between

The weights minimise, over the corrections j (bag B_j, label y_j, the model's log-odds z_j when it was reported)
and the anchors a (typical messages drawn from the bundle's own vocabulary):

    sum_j logloss(z_j + s(B_j), y_j) + l2 / 2 |w|^2 + anchor_weight / 2 sum_a max(0, s(B_a) + anchor_margin)^2

Only the ids of corrected messages get a weight. The logistic loss moves each corrected message to its label; `l2`
keeps the weights small, so the model stays as shipped wherever the corrections say nothing; the anchors keep the
shift of ordinary messages (words the model was trained on, in their usual proportions) at or below -anchor_margin,
so that a spam report cannot make every message a little more spam-like (an n-gram common in ordinary messages gets
a low weight, one of the campaign's own a high one); the dead zone, which sits around where the anchors rest, drops
what small shifts are left: a message as ordinary as the anchors keeps its score. The fit is deterministic: the same corrections and
vocabulary give the same weights on every machine that runs this code.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

ANCHOR_WORDS = (1, 30)  # words per anchor message, drawn uniformly from 1 to 29: short messages too (the shift of a short one is divided by less)


@dataclass(frozen=True)
class LearnerConfig:
    """How corrections become weights; written into the personal state, so that every runtime applies the same."""

    l2: float = 0.1  # weight decay: holds the layer close to the shipped model
    anchors: int = 800  # typical messages drawn from the vocabulary (word frequency by rank), kept from moving up (measured: 400 let more UCI ham drift up after many reports)
    anchor_weight: float = 10.0  # how hard the anchors hold
    anchor_margin: float = 1.0  # the anchors' shift is held at or below minus this
    dead_zone: float = 0.5  # shifts smaller than this (log-odds) are dropped: unrelated messages keep their score
    near: float = 0.5  # a message whose bag overlaps a corrected one's this much (Jaccard) is a near-duplicate of it
    near_margin: float = 2.0  # a near-duplicate is put this far (log-odds) on its correction's side of the threshold
    iterations: int = 200  # L-BFGS iterations at most
    seed: int = 0  # the anchors' draw

    def to_dict(self) -> dict[str, float | int]:
        return {name: getattr(self, name) for name in self.__dataclass_fields__}


@dataclass(frozen=True, eq=False)
class Bags:
    """Bags of distinct n-gram ids as rows: row k is `ids[indptr[k]:indptr[k + 1]]`."""

    indptr: np.ndarray  # int64 (rows + 1,)
    ids: np.ndarray  # int64, each row's ids sorted

    @classmethod
    def of(cls, rows: Sequence[np.ndarray]) -> Bags:
        """From rows of ids (zeros, padding, dropped; repeats counted once)."""
        distinct = [np.unique(np.asarray(row, dtype=np.int64)) for row in rows]
        distinct = [row[row > 0] for row in distinct]
        indptr = np.zeros(len(distinct) + 1, dtype=np.int64)
        indptr[1:] = np.cumsum([len(row) for row in distinct])
        return cls(indptr, np.concatenate(distinct) if distinct else np.zeros(0, dtype=np.int64))

    @classmethod
    def of_sorted(cls, rows: Sequence[np.ndarray]) -> Bags:
        """From rows already distinct, sorted and without padding (a personal state's own): no sorting again."""
        indptr = np.zeros(len(rows) + 1, dtype=np.int64)
        indptr[1:] = np.cumsum([len(row) for row in rows])
        return cls(indptr, np.concatenate(rows).astype(np.int64, copy=False) if len(rows) else np.zeros(0, dtype=np.int64))

    def __len__(self) -> int:
        return len(self.indptr) - 1

    @property
    def sizes(self) -> np.ndarray:
        return np.diff(self.indptr)

    @property
    def scale(self) -> np.ndarray:
        return 1.0 / np.sqrt(np.maximum(self.sizes, 1))

    def row(self, k: int) -> np.ndarray:
        return self.ids[self.indptr[k] : self.indptr[k + 1]]

    def ordered_sums(self, values: np.ndarray) -> np.ndarray:
        """Per row, the sum of `values` (aligned with `ids`) added left to right in float64: the order every runtime
        adds in (docs/reference/personal-state.md), so that a row's sum never depends on the other rows of a batch."""
        grid = np.zeros((len(self), int(self.sizes.max(initial=0)) + 1))
        grid[np.repeat(np.arange(len(self)), self.sizes), np.arange(len(self.ids)) - np.repeat(self.indptr[:-1], self.sizes)] = values
        return np.cumsum(grid, axis=1)[:, -1]  # cumsum adds in order (a sum may pair terms); the zeros after a row change nothing

    def sums(self, values: np.ndarray) -> np.ndarray:
        """Per row, the sum of `values` over its entries (`values` aligned with `ids`)."""
        totals = np.concatenate([[0.0], np.cumsum(values, dtype=np.float64)])
        return totals[self.indptr[1:]] - totals[self.indptr[:-1]]


@dataclass(frozen=True, eq=False)
class Weights:
    """The fitted weights, sparse: `ids` sorted, `values` float32."""

    ids: np.ndarray
    values: np.ndarray

    @classmethod
    def none(cls) -> Weights:
        return cls(np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32))

    def lookup(self, ids: np.ndarray) -> np.ndarray:
        if not len(self.ids):
            return np.zeros(len(ids))
        at = np.minimum(np.searchsorted(self.ids, ids), len(self.ids) - 1)
        return np.where(self.ids[at] == ids, self.values[at].astype(np.float64), 0.0)

    def shift(self, bags: Bags, config: LearnerConfig) -> np.ndarray:
        """The layer's shift of each bag's log-odds, after the dead zone [-(dead_zone + anchor_margin), dead_zone]: the
        anchors rest at -anchor_margin, and a message as ordinary as them keeps its score."""
        raw = bags.ordered_sums(self.lookup(bags.ids)) * bags.scale
        low = config.dead_zone + config.anchor_margin
        return np.where(raw > config.dead_zone, raw - config.dead_zone, np.where(raw < -low, raw + low, 0.0))


def fit(reports: Bags, logits: np.ndarray, labels: np.ndarray, anchors: Bags, config: LearnerConfig) -> Weights:
    """The weights for these corrections (see the module's docstring): only the n-gram ids of corrected messages get one."""
    if not len(reports):
        return Weights.none()
    space = np.unique(reports.ids)
    r_cols = np.searchsorted(space, reports.ids)
    a_cols = np.minimum(np.searchsorted(space, anchors.ids), len(space) - 1)
    a_in = space[a_cols] == anchors.ids  # an anchor's ids that no correction holds have no weight to move
    r_scale, a_scale = np.repeat(reports.scale, reports.sizes), np.repeat(anchors.scale, anchors.sizes) * a_in
    y = labels.astype(np.float64)

    def objective(w: np.ndarray) -> tuple[float, np.ndarray]:
        margin = logits + reports.sums(w[r_cols] * r_scale)
        held = anchors.sums(w[a_cols] * a_scale)
        outside = np.maximum(held + config.anchor_margin, 0.0) + np.minimum(held + config.anchor_margin + config.dead_zone, 0.0)
        value = float(np.sum(np.logaddexp(0.0, margin) - y * margin) + 0.5 * config.l2 * w @ w + 0.5 * config.anchor_weight * outside @ outside)
        residual = 0.5 * (1.0 + np.tanh(0.5 * margin)) - y  # the logistic function, without overflow
        grad = np.bincount(r_cols, weights=np.repeat(residual, reports.sizes) * r_scale, minlength=len(space)).astype(np.float64)
        grad += config.anchor_weight * np.bincount(a_cols, weights=np.repeat(outside, anchors.sizes) * a_scale, minlength=len(space))
        return value, grad + config.l2 * w

    w = lbfgs(objective, np.zeros(len(space)), config.iterations)
    return Weights(space, w.astype(np.float32))


def lbfgs(objective: Callable[[np.ndarray], tuple[float, np.ndarray]], x: np.ndarray, iterations: int, memory: int = 10) -> np.ndarray:
    """Minimise a smooth convex function: limited-memory BFGS with a backtracking (Armijo) line search."""
    value, grad = objective(x)
    steps: list[tuple[np.ndarray, np.ndarray, float]] = []
    for _ in range(iterations):
        if float(np.abs(grad).max(initial=0.0)) < 1e-6:
            break
        direction = -_two_loop(grad, steps)
        slope = float(grad @ direction)
        if slope >= 0:  # not a descent direction (curvature lost): start over from the gradient
            steps.clear()
            direction, slope = -grad, -float(grad @ grad)
        size = 1.0
        while True:
            candidate = x + size * direction
            new_value, new_grad = objective(candidate)
            if new_value <= value + 1e-4 * size * slope or size < 1e-10:
                break
            size *= 0.5
        s, g = candidate - x, new_grad - grad
        curvature = float(s @ g)
        if curvature > 1e-12:
            steps.append((s, g, 1.0 / curvature))
            del steps[:-memory]
        x, value, grad = candidate, new_value, new_grad
        if size < 1e-10:
            break
    return x


def _two_loop(grad: np.ndarray, steps: list[tuple[np.ndarray, np.ndarray, float]]) -> np.ndarray:
    q = grad.copy()
    alphas = []
    for s, y, rho in reversed(steps):
        alpha = rho * float(s @ q)
        alphas.append(alpha)
        q -= alpha * y
    if steps:
        s, y, _ = steps[-1]
        q *= float(s @ y) / float(y @ y)
    for (s, y, rho), alpha in zip(steps, reversed(alphas), strict=True):
        q += (alpha - rho * float(y @ q)) * s
    return q


def anchor_texts(words: Sequence[str], config: LearnerConfig) -> list[str]:
    """`config.anchors` messages of the vocabulary's words, each drawn with the frequency its rank implies (Zipf):
    what the model's own training messages look like, word by word, without any of them."""
    if not words:
        return []
    rng = np.random.default_rng(config.seed)
    ranks = np.arange(1, len(words) + 1, dtype=np.float64)
    weights = 1.0 / ranks
    weights /= weights.sum()
    lengths = rng.integers(ANCHOR_WORDS[0], ANCHOR_WORDS[1], size=config.anchors)
    return [" ".join(words[k] for k in rng.choice(len(words), size=int(n), p=weights)) for n in lengths]


@dataclass(frozen=True, eq=False)
class NearIndex:
    """An inverted index of remembered bags: for each id (`keys`, sorted), the bags that hold it,
    `holders[starts[i]:starts[i + 1]]`."""

    keys: np.ndarray
    starts: np.ndarray
    holders: np.ndarray
    sizes: np.ndarray

    @classmethod
    def of(cls, memory: Bags) -> NearIndex:
        small = len(memory.ids) and memory.ids.max() < 2**15  # a radix sort then: a default bag's ids are below 8,193
        order = np.argsort(memory.ids.astype(np.int16) if small else memory.ids, kind="stable")
        ordered = memory.ids[order]
        starts = np.flatnonzero(np.diff(ordered, prepend=-1)) if len(ordered) else np.zeros(0, dtype=np.int64)
        owner = np.repeat(np.arange(len(memory)), memory.sizes)
        return cls(ordered[starts], np.append(starts, len(order)), owner[order], memory.sizes)

    def jaccard(self, bags: Bags) -> np.ndarray:
        """(len(bags), remembered bags): the Jaccard similarity of each bag with each remembered one."""
        out = np.zeros((len(bags), len(self.sizes)))
        if not len(self.keys):
            return out
        keys, starts = self.keys, self.starts
        for k in range(len(bags)):
            row = bags.row(k)
            at = np.searchsorted(keys, row)
            at = at[(at < len(keys)) & (keys[np.minimum(at, len(keys) - 1)] == row)]
            if len(at):
                common = np.bincount(np.concatenate([self.holders[starts[i] : starts[i + 1]] for i in at]), minlength=len(self.sizes))
                out[k] = common / (len(row) + self.sizes - common)
        return out
