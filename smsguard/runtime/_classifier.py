"""`Classifier`: raw text in, spam probability or label out, from a bundle, with no TensorFlow."""

from __future__ import annotations

import collections
import itertools
import multiprocessing
import os
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor

import numpy as np

from smsguard.runtime._backends import (
    BACKENDS,
    BackendInfo,
    Session,
    backend_info,
    installed_backends,
    open_session,
    require_installed,
)
from smsguard.runtime._bundle import Bundle, BundleFile
from smsguard.runtime._errors import BackendError, BundleError

BATCH = 2048  # messages tokenized and run at a time: bounds memory whatever the input's size


class Classifier:
    """A bundle's vocabulary and one of its models, loaded in one backend.

    >>> clf = Classifier.load("bundle")                      # doctest: +SKIP
    >>> clf.predict(["WINNER!! Claim your prize now", "see you at 6"])  # doctest: +SKIP
    ['spam', 'ham']
    """

    def __init__(self, bundle: Bundle, session: Session) -> None:
        self.bundle = bundle
        self.vocabulary = bundle.vocabulary
        self.threshold = bundle.threshold
        self._session = session

    @classmethod
    def load(cls, bundle_dir: str | os.PathLike[str], backend: str = "auto", model: str | None = None) -> Classifier:
        """Load `model` (a file name in the bundle; default: the recommended one) in `backend`.

        `backend="auto"` takes the first installed of litert, tflite-runtime, onnxruntime that runs
        the model. Every file used is checked against the manifest's SHA-256 first.
        """
        bundle = Bundle.load(bundle_dir)
        info, entry = _choose(bundle, backend, model)
        return cls(bundle, open_session(info, bundle.model_path(entry), entry))

    @property
    def backend(self) -> str:
        return self._session.backend.name

    @property
    def model(self) -> BundleFile:
        return self._session.entry

    def encode(self, texts: Iterable[str]) -> np.ndarray:
        """int32 token ids of shape (n, maxlen), exactly as the model was trained on."""
        return self.vocabulary.encode(texts)

    def predict_proba(self, texts: Iterable[str], workers: int = 1) -> np.ndarray:
        """float32 spam probability per text.

        Any iterable of any length: it is read in batches of `BATCH` messages, so memory stays
        bounded by the batch and the result. `workers` > 1 scores batches in that many processes
        (0: one per core); each loads the bundle itself, so the result is the same as with one.
        """
        if isinstance(texts, (str, bytes)):
            msg = f"texts must be a list of strings, found a single {type(texts).__name__}; wrap it in a list"
            raise TypeError(msg)
        if isinstance(texts, Sequence) and len(texts) <= BATCH:
            return self._score(texts, 0)
        workers = workers or os.cpu_count() or 1
        batches = _batches(texts, BATCH)
        if workers == 1:
            parts = [self._score(batch, start) for start, batch in batches]
        else:
            parts = _score_in_processes(self, batches, workers)
        return np.concatenate(parts) if parts else np.zeros(0, dtype=np.float32)

    def _score(self, texts: Sequence[str], start: int) -> np.ndarray:
        ids = self.vocabulary.encode(texts, start=start)
        if not len(ids):
            return np.zeros(0, dtype=np.float32)
        return self._session.run(ids)

    def predict(self, texts: Iterable[str], workers: int = 1) -> list[str]:
        """The label of each text at the bundle's threshold: the second label ("spam") at or above it."""
        negative, positive = self.bundle.labels
        return [positive if p >= self.threshold else negative for p in self.predict_proba(texts, workers)]

    def __repr__(self) -> str:
        return f"Classifier({str(self.bundle.path)!r}, backend={self.backend!r}, model={self.model.name!r})"


def _batches(texts: Iterable[str], size: int) -> Iterator[tuple[int, list[str]]]:
    """(index of the first text, texts) for consecutive batches of at most `size` texts."""
    iterator = iter(texts)
    start = 0
    while batch := list(itertools.islice(iterator, size)):
        yield start, batch
        start += len(batch)


_WORKER: Classifier | None = None  # the classifier of a worker process


def _load_worker(bundle_dir: str, backend: str, model: str) -> None:
    global _WORKER
    _WORKER = Classifier.load(bundle_dir, backend=backend, model=model)


def _score_in_worker(job: tuple[int, list[str]]) -> np.ndarray:
    start, texts = job
    assert _WORKER is not None
    return _WORKER._score(texts, start)


def _score_in_processes(classifier: Classifier, batches: Iterator[tuple[int, list[str]]], workers: int) -> list[np.ndarray]:
    """Score batches in `workers` processes. Where fork exists, workers inherit the loaded
    classifier (no reload, no hash checks again); elsewhere each spawned worker loads the bundle."""
    global _WORKER
    if "fork" in multiprocessing.get_all_start_methods():
        context, initializer, args = multiprocessing.get_context("fork"), None, ()
        _WORKER = classifier
    else:
        context, initializer = multiprocessing.get_context("spawn"), _load_worker
        args = (str(classifier.bundle.path), classifier.backend, classifier.model.name)
    parts, pending = [], collections.deque()
    try:
        with ProcessPoolExecutor(workers, mp_context=context, initializer=initializer, initargs=args) as pool:
            for job in batches:  # at most two batches per worker in flight: memory stays bounded
                pending.append(pool.submit(_score_in_worker, job))
                if len(pending) >= 2 * workers:
                    parts.append(pending.popleft().result())
            parts.extend(future.result() for future in pending)
    finally:
        _WORKER = None
    return parts


def _choose(bundle: Bundle, backend: str, model: str | None) -> tuple[BackendInfo, BundleFile]:
    if backend != "auto":
        info = backend_info(backend)
        require_installed(info)
        entry = bundle.model(model) if model else bundle.recommended(info.format)
        if entry is None:
            msg = f"bundle '{bundle.path}' has no {info.format} model for backend '{info.name}'"
            raise BundleError(msg)
        return info, entry
    candidates = installed_backends()
    if not candidates:
        extras = ", ".join(f"smsguard[{b.extra}]" for b in BACKENDS)
        msg = f"no inference backend is installed; install one of: {extras}"
        raise BackendError(msg)
    if model:
        entry = bundle.model(model)
        for info in candidates:
            if info.format == entry.format:
                return info, entry
        extra = next(b.extra for b in BACKENDS if b.format == entry.format)
        msg = f"no installed backend runs {entry.format} model '{entry.name}'; pip install 'smsguard[{extra}]'"
        raise BackendError(msg)
    for info in candidates:
        entry = bundle.recommended(info.format)
        if entry is not None:
            return info, entry
    msg = f"bundle '{bundle.path}' has no model for the installed backends ({', '.join(b.name for b in candidates)})"
    raise BundleError(msg)
