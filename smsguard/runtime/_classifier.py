"""`Classifier`: raw text in, spam probability or label out, from a bundle, with no TensorFlow."""

from __future__ import annotations

import collections
import functools
import itertools
import os
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

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
from smsguard.runtime._selection import default_model
from smsguard.runtime._vocabulary import as_texts

if TYPE_CHECKING:
    from concurrent.futures import Future

STREAM_CHUNK = 2048  # texts tokenized and run at a time: memory stays flat however many texts there are


class Classifier:
    """A bundle's vocabulary and one of its models, loaded in one backend.

    >>> clf = Classifier.load("bundle")                      # doctest: +SKIP
    >>> clf.predict(["WINNER!! Claim your prize now", "see you at 6"])  # doctest: +SKIP
    ['spam', 'ham']
    """

    def __init__(self, bundle: Bundle, session: Session) -> None:
        self.bundle = bundle
        self.vocabulary = bundle.vocabulary
        self.threshold = bundle.threshold_of(session.entry)
        self._session = session

    @classmethod
    def load(cls, bundle_dir: str | os.PathLike[str], backend: str = "auto", model: str | None = None) -> Classifier:
        """Load `model` (a file name in the bundle; default: the recommended one) in `backend`.

        `backend="auto"` takes the first installed backend (see `BACKENDS`: native first) that runs
        the model; without `model`, the recommended one of its format, or, when the manifest's
        `min_runtime` says the installed backend is too old for it, another it can load. Every file
        used is checked against the manifest's SHA-256 first.
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

    def encode(self, texts: Iterable[str | bytes]) -> np.ndarray:
        """int32 token ids of shape (n, maxlen), exactly as the model was trained on. Bytes are decoded as UTF-8."""
        return self.vocabulary.encode(texts)

    def predict_proba(self, texts: Iterable[str | bytes], workers: int = 1) -> np.ndarray:
        """float32 spam probability per text.

        Any iterable, a generator included, is read and run `STREAM_CHUNK` texts at a time, so a
        million messages take no more memory than a thousand. `workers` > 1 scores chunks in that
        many processes (0: one per core), with the same result as one.
        """
        chunks = _chunks(as_texts(texts), STREAM_CHUNK)
        workers = workers or os.cpu_count() or 1
        if workers == 1 and getattr(self._session, "releases_gil", False) and _cores() > 1:
            probabilities = _score_overlapped(self, chunks)
        elif workers == 1:
            probabilities = [self._score(chunk) for chunk in chunks]
        else:
            probabilities = _score_in_processes(self, chunks, workers)
        if len(probabilities) == 1:
            return probabilities[0]
        return np.concatenate(probabilities) if probabilities else np.zeros(0, dtype=np.float32)

    def _score(self, texts: list[str]) -> np.ndarray:
        return self._session.run(self.vocabulary.encode_checked(texts))  # texts: a chunk as_texts has checked

    def predict(self, texts: Iterable[str | bytes], workers: int = 1) -> list[str]:
        """The label of each text at the model's threshold (`threshold`: the model's own when the manifest
        gives one, else the bundle's): the second label ("spam") at or above it."""
        negative, positive = self.bundle.labels
        return [positive if p >= self.threshold else negative for p in self.predict_proba(texts, workers)]

    def __reduce__(self):
        """Sent to another process (multiprocessing with "spawn" or "forkserver"), a Classifier is loaded
        again there from its bundle, every hash checked: interpreters cannot cross processes."""
        return Classifier.load, (str(self.bundle.path), self.backend, self.model.name)

    def __repr__(self) -> str:
        return f"Classifier({str(self.bundle.path)!r}, backend={self.backend!r}, model={self.model.name!r})"


@functools.cache
def _cores() -> int:
    """os.cpu_count(), once: it reads /sys on every call (30 µs measured here, half a message's time)."""
    return os.cpu_count() or 1


def _chunks(texts: Iterator[str], size: int) -> Iterator[list[str]]:
    while chunk := list(itertools.islice(texts, size)):
        yield chunk


_WORKER: Classifier | None = None  # the classifier of a worker process


def _start_worker(classifier: Classifier | None) -> None:
    global _WORKER
    if classifier is not None:  # spawn: it arrives pickled, that is loaded again from its bundle
        _WORKER = classifier


def _score_in_worker(texts: list[str]) -> np.ndarray:
    assert _WORKER is not None
    return _WORKER._score(texts)


def _score_in_processes(classifier: Classifier, chunks: Iterator[list[str]], workers: int) -> list[np.ndarray]:
    """Score chunks in `workers` processes. Where fork exists, workers inherit the loaded
    classifier; elsewhere each spawned worker loads the bundle again (see `__reduce__`)."""
    import multiprocessing  # here, not at import: a process scoring one message never needs it
    from concurrent.futures import ProcessPoolExecutor

    global _WORKER
    if "fork" in multiprocessing.get_all_start_methods():
        context, sent = multiprocessing.get_context("fork"), None
        _WORKER = classifier
    else:
        context, sent = multiprocessing.get_context("spawn"), classifier
    parts, pending = [], collections.deque()
    try:
        with ProcessPoolExecutor(workers, mp_context=context, initializer=_start_worker, initargs=(sent,)) as pool:
            for chunk in chunks:  # at most two chunks per worker in flight: memory stays bounded
                pending.append(pool.submit(_score_in_worker, chunk))
                if len(pending) >= 2 * workers:
                    parts.append(pending.popleft().result())
            parts.extend(future.result() for future in pending)
    finally:
        _WORKER = None
    return parts


def _score_overlapped(classifier: Classifier, chunks: Iterator[list[str]]) -> list[np.ndarray]:
    """Tokenize the next chunk (Python, holding the GIL) while one other thread runs the kernel on the
    last (which releases the GIL): two cores, no process pool, the same results in the same order.
    One chunk (a single message included) is scored directly, with no thread."""
    first = next(chunks, None)
    if first is None:
        return []
    second = next(chunks, None)
    if second is None:
        return [classifier._score(first)]
    from concurrent.futures import ThreadPoolExecutor

    run, encode = classifier._session.run, classifier.vocabulary.encode_checked
    parts: list[np.ndarray] = []
    with ThreadPoolExecutor(1, thread_name_prefix="smsguard-kernel") as kernel:
        pending: Future | None = kernel.submit(run, encode(first))
        for chunk in itertools.chain([second], chunks):
            ids = encode(chunk)  # while the kernel runs the previous chunk
            assert pending is not None
            parts.append(pending.result())
            pending = kernel.submit(run, ids)
        assert pending is not None
        parts.append(pending.result())
    return parts


def _choose(bundle: Bundle, backend: str, model: str | None) -> tuple[BackendInfo, BundleFile]:
    if backend != "auto":
        info = backend_info(backend)
        require_installed(info)
        entry = bundle.model(model) if model else default_model(bundle, info)
        if entry is None and not model and bundle.recommended(info.format) is not None:
            entry = bundle.recommended(info.format)  # every model is too new for it: loading says which op
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
        entry = default_model(bundle, info)  # None when the bundle has none this version of the backend can load
        if entry is not None:
            return info, entry
    msg = f"bundle '{bundle.path}' has no model for the installed backends ({', '.join(b.name for b in candidates)})"
    raise BundleError(msg)
