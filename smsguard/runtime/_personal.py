"""A user's corrections, kept on the device in a folder of their own (never in the signed bundle), and the layer they
add to the model's scores. The file format is docs/reference/personal-state.md; the method is
docs/explanation/personal.md and `_personal_fit.py`.

Two parts, applied to the model's log-odds of each message:
- a near-duplicate memory: a message whose n-gram bag overlaps a corrected one's by `near` (Jaccard) or more is put
  `near_margin` log-odds on that correction's side of the threshold (the closest correction wins): one "not spam"
  clears the message and its copies with another name, number or link;
- a linear shift over the bag, fitted to all corrections and held close to the shipped model (`_personal_fit.py`):
  messages of the same kind move, unrelated ones stay.

What is kept per correction: its label, the minute it was made, a salted SHA-256 of the normalised text (to find a
repeat), the bag's n-gram ids, the model's probability then and the bundle's serial. No text.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import secrets
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from smsguard._errors import SmsguardError
from smsguard._staging import write_atomic
from smsguard.runtime._ngrams import NgramConfig, NgramHasher
from smsguard.runtime._personal_fit import Bags, LearnerConfig, NearIndex, Weights, anchor_texts, fit
from smsguard.runtime._vocabulary import Vocabulary

STATE_NAME = "personal.json"
STATE_FORMAT = 1
STATE_KIND = "smsguard personal state"
MAX_CORRECTIONS = 500  # the oldest goes when a new one would make more: about 1.5 KB each, the file stays under 1 MB
LOCK_NAME = ".personal.lock"
SET_ASIDE = "personal.set-aside-{stamp}.json"


class PersonalError(SmsguardError):
    """A personal state folder or file is unusable, or a correction is malformed."""


class PersonalStateWarning(UserWarning):
    """A personal state does not fit the bundle loaded (another n-gram bag): it is not applied, and kept as it is."""


@dataclass(frozen=True, eq=False)
class Correction:
    """One message the user corrected (no text: its bag of n-gram ids and a salted hash)."""

    id: int
    label: str  # a label of the bundle that took it, e.g. "spam" or "ham"
    reported: str  # UTC, to the minute: "2026-12-05T10:12Z"
    message: str  # SHA-256 of the salt and the normalised text: finds a repeat of the same message, says nothing alone
    bag: np.ndarray  # its distinct n-gram ids, sorted
    probability: float  # the model's probability when it was reported (the fit starts from it)
    serial: int  # the serial of the bundle that scored it

    def to_dict(self) -> dict[str, Any]:
        """The correction's fields; its bag's ids go in the state's one `bags` array (`size` of them, in order)."""
        return {"id": self.id, "label": self.label, "reported": self.reported, "message": self.message, "size": len(self.bag),
                "probability": self.probability, "serial": self.serial}

    @classmethod
    def from_dict(cls, data: dict[str, Any], bag: np.ndarray) -> Correction:
        return cls(int(data["id"]), str(data["label"]), str(data["reported"]), str(data["message"]), bag, float(data["probability"]), int(data["serial"]))


@dataclass(frozen=True)
class BagSpec:
    """Which bag the corrections' ids come from: the n-gram settings and the text spec they are taken after. A fused
    bundle's own bag; for a word model alone, the default settings over its vocabulary's text spec."""

    ngrams: NgramConfig
    text: str  # SHA-256 of the vocabulary's `text` section (its lowercase and normaliser tables), "" for format 1

    @classmethod
    def of(cls, vocabulary: Vocabulary) -> BagSpec:
        digest = vocabulary.text.sha256 if vocabulary.text is not None else ""
        return cls(vocabulary.ngrams.config if vocabulary.ngrams is not None else NgramConfig(), digest)

    def to_dict(self) -> dict[str, Any]:
        config = self.ngrams
        return {"buckets": config.buckets, "min_n": config.min_n, "max_n": config.max_n, "length": config.length, "lower": config.lower, "text_sha256": self.text}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BagSpec:
        return cls(NgramConfig(*(data[k] for k in ("buckets", "min_n", "max_n", "length", "lower"))), str(data["text_sha256"]))

    def describe(self) -> str:
        c = self.ngrams
        return f"{c.buckets} buckets, n-grams of {c.min_n} to {c.max_n} characters, {c.length} ids, text spec {self.text[:12] or 'none'}"


@dataclass(frozen=True, eq=False)
class PersonalState:
    """What personal.json holds: the corrections, and the weights last fitted to them (a cache, refitted when stale)."""

    salt: str
    bag: BagSpec
    learner: LearnerConfig = field(default_factory=LearnerConfig)
    corrections: tuple[Correction, ...] = ()
    next_id: int = 1
    weights: Weights | None = None
    fitted_for: str = ""  # `fit_digest` of what the weights were fitted to

    @classmethod
    def new(cls, bag: BagSpec) -> PersonalState:
        return cls(secrets.token_hex(16), bag)

    def to_dict(self) -> dict[str, Any]:
        weights = None if self.weights is None else {"ids": _b64(self.weights.ids.astype("<u4")), "values": _b64(self.weights.values.astype("<f4")),
                                                     "fitted_for": self.fitted_for}
        bags = np.concatenate([c.bag for c in self.corrections]) if self.corrections else np.zeros(0, dtype=np.int64)
        return {"format": STATE_FORMAT, "kind": STATE_KIND, "salt": self.salt, "bag": self.bag.to_dict(), "learner": self.learner.to_dict(),
                "next_id": self.next_id, "corrections": [c.to_dict() for c in self.corrections], "bags": _b64(bags.astype("<u4")), "weights": weights}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PersonalState:
        if data.get("kind") != STATE_KIND or data.get("format") != STATE_FORMAT:
            msg = f"expected {STATE_KIND!r} format {STATE_FORMAT}, found kind {data.get('kind')!r} format {data.get('format')!r}"
            raise ValueError(msg)
        stored = data.get("weights")
        weights = None if stored is None else Weights(np.frombuffer(base64.b64decode(stored["ids"]), dtype="<u4").astype(np.int64),
                                                      np.frombuffer(base64.b64decode(stored["values"]), dtype="<f4").astype(np.float32))
        ids = np.frombuffer(base64.b64decode(data["bags"]), dtype="<u4").astype(np.int64)
        sizes = [int(c["size"]) for c in data["corrections"]]
        if sum(sizes) != len(ids):
            msg = f"the corrections' sizes add up to {sum(sizes)} n-gram ids, but 'bags' holds {len(ids)}"
            raise ValueError(msg)
        bags = np.split(ids, np.cumsum(sizes)[:-1]) if sizes else []
        return cls(str(data["salt"]), BagSpec.from_dict(data["bag"]), LearnerConfig(**data["learner"]),
                   tuple(Correction.from_dict(c, bag) for c, bag in zip(data["corrections"], bags, strict=True)), int(data["next_id"]), weights,
                   "" if stored is None else str(stored["fitted_for"]))


def _b64(array: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(array).tobytes()).decode("ascii")


def fit_digest(state: PersonalState, vocabulary_sha256: str) -> str:
    """What a fit depends on: the learner, the vocabulary (its anchors) and which corrections (every write that changes
    them refits or drops the weights, so their ids and labels name them)."""
    corrections = ",".join(f"{c.id}{c.label}" for c in state.corrections)
    return hashlib.sha256("\n".join([json.dumps(state.learner.to_dict(), sort_keys=True), vocabulary_sha256, corrections]).encode()).hexdigest()


@dataclass(frozen=True, eq=False)
class PersonalModel:
    """The layer a Classifier applies: fitted weights and the near-duplicate memory, for one bundle."""

    learner: LearnerConfig
    weights: Weights
    memory: Bags
    spam: np.ndarray  # bool per remembered correction: its label is the bundle's second ("spam")
    threshold_logit: float
    index: NearIndex = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "index", NearIndex.of(self.memory))

    def bags(self, texts: Sequence[str], rows: np.ndarray, vocabulary: Vocabulary) -> Bags:
        return Bags.of(self.bags_of(vocabulary, texts, rows))

    @staticmethod
    def bags_of(vocabulary: Vocabulary, texts: Sequence[str], rows: np.ndarray) -> list[np.ndarray]:
        """Each message's bag: the n-gram ids of a fused model's rows, or a word model's own (`_hasher`)."""
        if vocabulary.ngrams is not None:
            return list(rows[:, vocabulary.config.maxlen :])
        return list(_hasher(vocabulary).encode_checked([vocabulary.normalise(t) for t in texts]))

    def adjust(self, probabilities: np.ndarray, bags: Bags) -> np.ndarray:
        """The model's probabilities with the layer applied (float32, as every model outputs); a message the layer does
        not move keeps its probability bit for bit."""
        p = np.clip(probabilities.astype(np.float64), 1e-7, 1 - 1e-7)
        shift = self.weights.shift(bags, self.learner)
        z = np.log(p) - np.log1p(-p) + shift
        moved = shift != 0
        if len(self.memory):
            similarity = self.index.jaccard(bags)
            closest = similarity.shape[1] - 1 - np.argmax(similarity[:, ::-1], axis=1)  # the latest of equals
            near = similarity[np.arange(len(z)), closest] >= self.learner.near
            margin = self.learner.near_margin
            spam = self.spam[closest]
            z = np.where(near & spam, np.maximum(z, self.threshold_logit + margin), z)
            z = np.where(near & ~spam, np.minimum(z, self.threshold_logit - margin), z)
            moved |= near
        out = np.array(probabilities, dtype=np.float32)
        out[moved] = 1.0 / (1.0 + np.exp(-z[moved]))
        return out


def check_folder(folder: Path) -> None:
    if not Path(folder).is_dir():
        what = "is not a folder" if Path(folder).exists() else "does not exist"
        msg = f"personal state folder '{folder}' {what}; create it (mkdir) or give another --personal"
        raise PersonalError(msg)


def read_state(folder: Path) -> PersonalState | None:
    """The state in `folder` (None when it holds none yet); a PersonalError names what is wrong with it."""
    path = Path(folder) / STATE_NAME
    check_folder(folder)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as error:
        msg = f"personal state '{path}' cannot be read: {error.strerror}"
        raise PersonalError(msg) from None
    try:
        return PersonalState.from_dict(json.loads(data.decode("utf-8")))
    except (ValueError, KeyError, TypeError, UnicodeDecodeError, AttributeError) as error:
        msg = f"personal state '{path}' is not a state this smsguard reads ({type(error).__name__}: {error}); move it away to start afresh"
        raise PersonalError(msg) from None


def write_state(folder: Path, state: PersonalState) -> None:
    """Atomically (a reader sees the old file or the new one, whatever moment a writer dies at), then the folder synced.
    The caller holds the lock: a temporary file left beside the state is a dead writer's, and goes."""
    for leftover in Path(folder).glob(f".{STATE_NAME}.*.tmp"):
        leftover.unlink(missing_ok=True)
    write_atomic(Path(folder) / STATE_NAME, (json.dumps(state.to_dict(), separators=(",", ":")) + "\n").encode("ascii"))
    with contextlib.suppress(OSError):  # not every system can open a folder; the rename is done either way
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@contextlib.contextmanager
def locked(folder: Path) -> Iterator[None]:
    """One writer at a time across processes (a server and the command line), where the system has flock."""
    try:
        import fcntl
    except ImportError:  # no flock (Windows): one writer at a time is then the caller's care
        yield
        return
    with open(Path(folder) / LOCK_NAME, "a+b") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%MZ")


def warn_set_aside(folder: Path, state: PersonalState, fits: BagSpec) -> str:
    msg = (f"personal state '{Path(folder) / STATE_NAME}' ({len(state.corrections)} corrections) was made for another n-gram bag "
           f"({state.bag.describe()}) than this bundle's ({fits.describe()}): it is not applied; the next report sets it aside "
           f"as {SET_ASIDE.format(stamp='<time>')} and starts a new one")
    warnings.warn(msg, PersonalStateWarning, stacklevel=4)
    return msg


def refit(state: PersonalState, vocabulary: Vocabulary, vocabulary_sha256: str, labels: tuple[str, str]) -> PersonalState:
    """`state` with weights fitted to its corrections for this vocabulary."""
    digest = fit_digest(state, vocabulary_sha256)
    if state.weights is not None and state.fitted_for == digest:
        return state
    hasher = _hasher(vocabulary)
    words = [w for w, i in sorted(vocabulary.word_index.items(), key=lambda item: item[1]) if w != vocabulary.config.oov_token]
    anchors = Bags.of(list(hasher.encode_checked([vocabulary.normalise(t) for t in anchor_texts(words, state.learner)])))
    reports = Bags.of_sorted([c.bag for c in state.corrections])
    p = np.clip(np.array([c.probability for c in state.corrections]), 1e-7, 1 - 1e-7)
    y = np.array([c.label == labels[1] for c in state.corrections])
    weights = fit(reports, np.log(p) - np.log1p(-p), y, anchors, state.learner)
    return replace(state, weights=weights, fitted_for=digest)


def model_of(state: PersonalState, labels: tuple[str, str], threshold: float) -> PersonalModel:
    assert state.weights is not None
    spam = np.array([c.label == labels[1] for c in state.corrections], dtype=bool)
    t = min(max(threshold, 1e-7), 1 - 1e-7)
    return PersonalModel(state.learner, state.weights, Bags.of_sorted([c.bag for c in state.corrections]), spam, float(np.log(t) - np.log1p(-t)))


def _hasher(vocabulary: Vocabulary) -> NgramHasher:
    """The bag the corrections' ids come from: a fused vocabulary's own, else the default one with its lowercase."""
    return vocabulary.ngrams if vocabulary.ngrams is not None else NgramHasher(NgramConfig()).with_lowercase(vocabulary._lower)


@dataclass(frozen=True)
class Report:
    """One message to remember: its normalised text (hashed with the salt, never stored), bag, label, model probability."""

    normalised: str
    bag: np.ndarray
    label: str
    probability: float


class Personal:
    """A personal state folder: the corrections made on this device, and the layer they give any bundle that fits.
    Reading never writes, except a refreshed fit; every write holds the folder's lock and is atomic."""

    def __init__(self, folder: str | os.PathLike[str]) -> None:
        self.folder = Path(folder).expanduser()
        check_folder(self.folder)

    @property
    def corrections(self) -> tuple[Correction, ...]:
        state = read_state(self.folder)
        return () if state is None else state.corrections

    def model_for(self, vocabulary: Vocabulary, vocabulary_sha256: str, labels: tuple[str, str], threshold: float) -> tuple[PersonalModel | None, str]:
        """The layer for a bundle, and "" or the one message saying why its state does not fit it."""
        state = read_state(self.folder)
        if state is None or not state.corrections:
            return None, ""
        if state.weights is not None and state.fitted_for == fit_digest(state, vocabulary_sha256):  # fitted for this very vocabulary
            return model_of(state, labels, threshold), ""
        spec = BagSpec.of(vocabulary)
        if state.bag != spec:
            return None, warn_set_aside(self.folder, state, spec)
        fitted = refit(state, vocabulary, vocabulary_sha256, labels)
        if fitted is not state:
            self._save_fit(fitted)
        return model_of(fitted, labels, threshold), ""

    def _save_fit(self, fitted: PersonalState) -> None:
        """Keep a new fit when nobody changed the corrections meanwhile; a folder that cannot be written is no error here."""
        with contextlib.suppress(OSError), locked(self.folder):
            current = read_state(self.folder)
            if current is not None and [c.id for c in current.corrections] == [c.id for c in fitted.corrections] and current.salt == fitted.salt:
                write_state(self.folder, fitted)

    def report(self, reports: Sequence[Report], vocabulary: Vocabulary, vocabulary_sha256: str, labels: tuple[str, str],
               serial: int) -> tuple[PersonalState, str, list[Correction]]:
        """Remember `reports` (a repeat of a remembered message replaces it), refit, write; the new state, "" or the
        message saying an earlier state that did not fit this bundle was set aside, and the corrections made."""
        spec = BagSpec.of(vocabulary)
        note = ""
        with locked(self.folder):
            state = read_state(self.folder)
            if state is not None and state.bag != spec:
                aside = self.folder / SET_ASIDE.format(stamp=datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ"))
                os.replace(self.folder / STATE_NAME, aside)
                note = f"personal state made for another n-gram bag ({state.bag.describe()}) set aside as '{aside}'; a new one starts with these corrections"
                state = None
            state = state or PersonalState.new(spec)
            corrections, next_id = list(state.corrections), state.next_id
            for item in reports:
                message = hashlib.sha256(bytes.fromhex(state.salt) + item.normalised.encode("utf-8", "surrogatepass")).hexdigest()
                corrections = [c for c in corrections if c.message != message]
                corrections.append(Correction(next_id, item.label, now(), message, np.unique(item.bag[item.bag > 0]).astype(np.int64), round(float(item.probability), 7), serial))
                next_id += 1
            first = state.next_id
            state = replace(state, corrections=tuple(corrections[-MAX_CORRECTIONS:]), next_id=next_id)
            state = refit(state, vocabulary, vocabulary_sha256, labels)
            write_state(self.folder, state)
        return state, note, [c for c in state.corrections if c.id >= first]

    def undo(self, ids: Sequence[int]) -> list[Correction]:
        """Forget these corrections (the weights are fitted again at the next load); the ones forgotten."""
        with locked(self.folder):
            state = read_state(self.folder)
            if state is None:
                return []
            unknown = sorted(set(ids) - {c.id for c in state.corrections})
            if unknown:
                msg = f"personal state '{self.folder / STATE_NAME}' has no correction {unknown[0]}; `smsguard personal {self.folder}` lists them"
                raise PersonalError(msg)
            gone = [c for c in state.corrections if c.id in set(ids)]
            write_state(self.folder, replace(state, corrections=tuple(c for c in state.corrections if c.id not in set(ids)), weights=None, fitted_for=""))
        return gone

    def clear(self) -> int:
        """Forget every correction (the salt too); how many there were."""
        with locked(self.folder):
            state = read_state(self.folder)
            if state is None:
                return 0
            write_state(self.folder, PersonalState.new(state.bag))
        return len(state.corrections)
