"""`Classifier`: raw text in, spam probability or label out, from a bundle, with no TensorFlow."""

from __future__ import annotations

import collections
import functools
import itertools
import os
import threading
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np

from smsguard._errors import BackendError, BundleError, ReloadError, SmsguardError
from smsguard.runtime._backends import (
    BACKENDS,
    BackendInfo,
    Session,
    backend_info,
    installed_backends,
    open_session,
    require_installed,
)
from smsguard.runtime._contract import Decision
from smsguard.runtime._explain import Explainer, Explanation, ngram_branch
from smsguard.runtime._inputs import as_texts
from smsguard.runtime._personal import Correction, Personal, PersonalError, PersonalModel, Report
from smsguard.runtime._selection import default_model
from smsguard.runtime._verify import golden_problems
from smsguard.runtime._vocabulary import Vocabulary
from smsguard.runtime.bundle import Bundle, BundleFile, ModelFormat
from smsguard.runtime.signing import PublicKey, trusted_keys_from

if TYPE_CHECKING:
    from concurrent.futures import Future, ThreadPoolExecutor

STREAM_CHUNK = 2048  # texts tokenized and run at a time: memory stays flat however many texts there are
THREAD_PIECE = 256  # texts a thread scores in one call in bulk: a chunk shared by every core, each call's own cost lost in it


@dataclass(frozen=True)
class _Loaded:
    """What a Classifier runs: swapped whole by `reload`, read once per call."""

    bundle: Bundle
    session: Session
    decision: Decision
    personal: PersonalModel | None = None  # the user's corrections, when a personal state folder was given and fits
    personal_note: str = ""  # why a personal state folder's state is not applied ("" when it is, or there is none)

    def score(self, texts: list[str]) -> np.ndarray:
        """The probabilities of a chunk of texts `as_texts` has checked: text to probability in one call of the
        session (one native call with the native backend); with corrections, the ids too, for the personal layer."""
        if self.personal is None:
            return self.session.run_texts(self.bundle.vocabulary, texts)
        ids = self.bundle.vocabulary.encode_checked(texts)
        return self.adjust(self.session.run(ids), ids, texts)

    def adjust(self, probabilities: np.ndarray, ids: np.ndarray, texts: Sequence[str]) -> np.ndarray:
        assert self.personal is not None
        return self.personal.adjust(probabilities, self.personal.bags(texts, ids, self.bundle.vocabulary))

    @functools.cached_property
    def explainer(self) -> Explainer:
        """Made on the first `explain` (a fused model's n-gram scores are read then), kept with this model."""
        entry = self.session.entry
        return Explainer(self.bundle.vocabulary, self.session.run, self.decision, entry.name, ngram_branch(self.bundle, entry))


@dataclass(frozen=True, eq=False)
class Classification:
    """What one call computed, all by one model: each text's probability, the decision that labels it, and the
    serial and model file that scored it (a `reload` during the call changes none of them)."""

    probabilities: np.ndarray  # float32, one per text
    decision: Decision
    serial: int
    model: str

    @property
    def labels(self) -> list[str]:
        return self.decision.labels_of(self.probabilities)


class Classifier:
    """A bundle's vocabulary and one of its models, loaded in one backend.

    >>> clf = Classifier.load("bundle")                      # doctest: +SKIP
    >>> clf.predict(["WINNER!! Claim your prize now", "see you at 6"])  # doctest: +SKIP
    ['spam', 'ham']
    """

    def __init__(self, bundle: Bundle, session: Session, trusted_keys: Sequence[PublicKey] | None = None, model: str | None = None,
                 personal: Personal | None = None) -> None:
        self._personal = personal
        self._loaded = _with_personal(_Loaded(bundle, session, _decision(bundle, session)), personal)
        self._trusted = None if trusted_keys is None else tuple(trusted_keys)
        self._model_asked = model  # a model named at load is kept across reloads; else the new bundle's recommended one
        self._reload_lock = threading.Lock()

    @classmethod
    def load(
        cls,
        bundle_dir: str | os.PathLike[str],
        backend: str = "auto",
        model: str | None = None,
        trusted_keys: Iterable[str | os.PathLike[str] | PublicKey] | None = None,
        min_serial: int | None = None,
        personal: str | os.PathLike[str] | None = None,
    ) -> Classifier:
        """Load `model` (a file name in the bundle; default: the recommended one) in `backend`.

        `backend="auto"` takes the first installed backend of `BACKENDS` (native, numba, litert,
        tflite-runtime, onnxruntime, numpy) that runs `model`; without `model`, the recommended one of its
        format, or, when the manifest's `min_runtime` says the installed backend is too old for it,
        another it can load. Every file used is checked against the manifest's SHA-256 first.
        `trusted_keys` (public key files; default: those named by $SMSGUARD_TRUSTED_KEYS) make a
        signature by one of them required; `min_serial` refuses a bundle older than that.
        `personal`: a folder of the user's corrections (`report`), applied to every score (docs/how-to/explain-and-correct.md);
        created empty when it is an empty folder. A state made for another n-gram bag is not applied (`personal_note` says why).
        """
        keys = trusted_keys_from(trusted_keys)
        bundle = Bundle.load(bundle_dir, keys, min_serial)
        info, entry = _choose(bundle, backend, model)
        return cls(bundle, open_session(info, bundle.model_path(entry), entry), keys, model, None if personal is None else Personal(personal))

    @property
    def bundle(self) -> Bundle:
        return self._loaded.bundle

    @property
    def vocabulary(self) -> Vocabulary:
        return self._loaded.bundle.vocabulary

    @property
    def threshold(self) -> float:
        """The model's own threshold when the manifest gives one, else the bundle's."""
        return self._loaded.decision.threshold

    @property
    def decision(self) -> Decision:
        """How the running model's probabilities become labels: its threshold and the bundle's labels."""
        return self._loaded.decision

    @property
    def serial(self) -> int:
        """The serial of the bundle being run."""
        return self._loaded.bundle.manifest.serial

    @property
    def session(self) -> Session:
        """The loaded model running now: its backend's interpreter or kernel."""
        return self._loaded.session

    @property
    def backend(self) -> str:
        return self._loaded.session.backend.name

    @property
    def model(self) -> BundleFile:
        return self._loaded.session.entry

    def encode(self, texts: Iterable[str | bytes]) -> np.ndarray:
        """The model's int32 input, (n, vocabulary.width): word ids (maxlen), then a fused model's n-gram ids,
        exactly as the model was trained on. Bytes are decoded as UTF-8."""
        return self.vocabulary.encode(texts)

    def predict_proba(self, texts: Iterable[str | bytes], workers: int = 1, threads: int = 0) -> np.ndarray:
        """float32 spam probability per text.

        Any iterable, a generator included, is read and run `STREAM_CHUNK` texts at a time, so a
        million messages take no more memory than a thousand. `workers` > 1 scores chunks in that
        many processes (0: one per core), with the same result as one. With one worker and a backend that
        releases the GIL (native, numba), the chunks are scored in `threads` threads of this process (0: one
        per core); `threads=1` scores on the calling thread alone, for a caller that runs one thread per core
        itself (a Dask worker's tasks). A call runs one model from start to end, whatever `reload` does meanwhile.
        """
        if type(threads) is not int or threads < 0:
            _check_threads(threads)
        if type(texts) is list and 0 < len(texts) <= THREAD_PIECE and (type(texts[0]) is str if len(texts) == 1 else all(type(text) is str for text in texts)):
            return self._loaded.score(texts)  # a few messages (a server's, one at a time): one model, one call on this thread
        return self._predict_proba(texts, workers, threads)

    def _predict_proba(self, texts: Iterable[str | bytes], workers: int, threads: int = 0) -> np.ndarray:
        if type(texts) is list and 0 < len(texts) <= THREAD_PIECE and (type(texts[0]) is str if len(texts) == 1 else all(type(text) is str for text in texts)):
            return self._loaded.score(texts)  # (predict_proba takes this path before the call, one frame less a message)
        probabilities = [p for _, p in self.iter_chunks(texts, workers, threads)]
        if len(probabilities) == 1:
            return probabilities[0]
        return np.concatenate(probabilities) if probabilities else np.zeros(0, dtype=np.float32)

    def iter_chunks(self, texts: Iterable[str | bytes], workers: int = 1, threads: int = 0) -> Iterator[tuple[list[str], np.ndarray]]:
        """(texts, probabilities) for each run of up to `STREAM_CHUNK` texts, in order: for a caller
        that writes results as they come (`smsguard predict`). All chunks come from one model. `workers`
        and `threads` as for `predict_proba`."""
        _check_threads(threads)
        snapshot = self._snapshot()
        chunks: Iterator[list[str]]
        if type(texts) is list and all(type(text) is str for text in texts):  # nothing to check or decode: slices of the list
            chunks = (texts[start : start + STREAM_CHUNK] for start in range(0, len(texts), STREAM_CHUNK))
        else:
            chunks = _chunks(as_texts(texts), STREAM_CHUNK)
        workers = workers or _cores()
        threads = threads or _cores()
        if workers == 1 and threads > 1 and getattr(snapshot._loaded.session, "releases_gil", False):
            return _score_in_threads(snapshot, chunks, threads)
        if workers == 1:
            return ((chunk, snapshot._score(chunk)) for chunk in chunks)
        return _score_in_processes(snapshot, chunks, workers)

    def _score(self, texts: list[str]) -> np.ndarray:
        return self._loaded.score(texts)  # texts: a chunk as_texts has checked

    def predict(self, texts: Iterable[str | bytes], workers: int = 1) -> list[str]:
        """The label of each text at the model's threshold (`threshold`: the model's own when the manifest
        gives one, else the bundle's): the second label ("spam") at or above it."""
        return self.classify(texts, workers).labels

    def classify(self, texts: Iterable[str | bytes], workers: int = 1) -> Classification:
        """Probabilities, and the decision, serial and model that go with them: everything from one model, so
        a caller that reports them (a server's response, a scored data set's columns) never mixes two."""
        snapshot = self._snapshot()
        loaded = snapshot._loaded
        return Classification(snapshot._predict_proba(texts, workers), loaded.decision, loaded.bundle.manifest.serial, loaded.session.entry.name)

    def explain(self, text: str | bytes) -> Explanation:
        """Why `text` scored what it did: its probability and label, and its words as spans of `text` (code point
        offsets), each with how much the model's score drops without it (`contribution`, both branches; its word
        part by occlusion, its bag part computed exactly), and the bag's exact split. The personal layer's move is
        `personal`. See docs/explanation/explain.md."""
        (message,) = as_texts([text])
        loaded = self._loaded
        adjust = None if loaded.personal is None else lambda p, ids: loaded.adjust(p, ids, [message])
        return loaded.explainer.explain(message, adjust)

    @property
    def personal(self) -> Personal | None:
        """The personal state folder this Classifier applies and records corrections in (None: none was given)."""
        return self._personal

    @property
    def personal_note(self) -> str:
        """Why the personal state is not applied to the running bundle ("" when it is, or when there is none)."""
        return self._loaded.personal_note

    def report(self, texts: Iterable[str | bytes], labels: Iterable[str]) -> list[Correction]:
        """Record that `texts` are `labels` (the bundle's label names, "spam" or "ham"): in the personal state folder,
        at once, and applied from the next call on. The message and its near-duplicates take the label; messages of
        the same kind move towards it. Returns the corrections recorded."""
        if self._personal is None:
            msg = "report needs a personal state folder: load with Classifier.load(bundle, personal=DIR)"
            raise PersonalError(msg)
        messages, names = list(as_texts(texts)), list(labels)
        if len(messages) != len(names):
            msg = f"report got {len(messages)} messages and {len(names)} labels: give one label per message"
            raise PersonalError(msg)
        with self._reload_lock:  # one writer, and no reload, at a time
            loaded = self._loaded
            known = loaded.bundle.labels
            for name in names:
                if name not in known:
                    msg = f"label {name!r} is not one of this bundle's labels: {', '.join(known)}"
                    raise PersonalError(msg)
            self._loaded, made = _reported(loaded, self._personal, messages, names)
        return made

    def snapshot(self) -> Classifier:
        """This Classifier fixed on the model running now: calls on it never see a later `reload` (for a caller
        that reads `decision`, `serial` or `model` beside the probabilities of several calls)."""
        return self._snapshot()

    def reload(self, bundle_dir: str | os.PathLike[str]) -> bool:
        """Take a new bundle while serving: load it completely (hashes, signature by a trusted key when
        this Classifier has any, a serial above the running one, golden vectors replayed in this
        backend) and only then swap it in, at once. Calls already running finish on the old model;
        calls after the swap get the new one; none sees a mix. If anything fails, the old model keeps
        serving and a `ReloadError` says why. Returns False when `bundle_dir` holds the bundle already
        running (the same manifest), True when it was swapped in."""
        with self._reload_lock:
            current = self._loaded
            try:
                new = _load_checked(bundle_dir, current, self._trusted, self._model_asked)
            except SmsguardError as error:
                msg = f"bundle '{bundle_dir}' not taken, still running serial {current.bundle.manifest.serial} from '{current.bundle.path}': {error}"
                raise ReloadError(msg) from None
            if new is None:
                if self._personal is not None:  # the same bundle: the corrections are read again all the same
                    self._loaded = _with_personal(replace(current, personal=None, personal_note=""), self._personal)
                return False
            self._loaded = _with_personal(new, self._personal)
            return True

    def _snapshot(self) -> Classifier:
        """A Classifier fixed on the model running now (for one call)."""
        snapshot = Classifier.__new__(Classifier)
        snapshot._loaded, snapshot._trusted, snapshot._model_asked = self._loaded, self._trusted, self._model_asked
        snapshot._reload_lock, snapshot._personal = self._reload_lock, self._personal
        return snapshot

    def __reduce__(self) -> tuple:
        """Sent to another process (multiprocessing with "spawn" or "forkserver"), a Classifier is loaded
        again there from its bundle, every hash (and signature) checked: interpreters cannot cross processes."""
        personal = None if self._personal is None else str(self._personal.folder)
        return Classifier.load, (str(self.bundle.path), self.backend, self.model.name, self._trusted, None, personal)

    def __repr__(self) -> str:
        return f"Classifier({str(self.bundle.path)!r}, backend={self.backend!r}, model={self.model.name!r})"


def _load_checked(bundle_dir: str | os.PathLike[str], current: _Loaded, trusted: Sequence[PublicKey] | None, model: str | None) -> _Loaded | None:
    """The new bundle, loaded and proven in the running backend; None when it is the running one."""
    running = current.bundle.manifest
    bundle = Bundle.load(bundle_dir, trusted, min_serial=running.serial)
    if bundle.manifest == running:
        return None
    bundle.check_files()  # every file, not only the model this backend runs: a bundle is taken whole or not at all
    if bundle.manifest.serial == running.serial:
        msg = f"its serial {running.serial} is the one running, but its manifest differs; a new bundle needs a higher serial (smsguard export --serial)"
        raise BundleError(msg)
    info = current.session.backend
    entry = bundle.model(model) if model else default_model(bundle, info)
    if entry is None:
        msg = f"it has no {info.format} model for backend '{info.name}'"
        raise BundleError(msg)
    session = open_session(info, bundle.model_path(entry), entry)
    problems = golden_problems(bundle, entry, session)
    if problems:
        msg = f"{entry.name} [{info.name}] does not reproduce its golden vectors: {problems[0]}"
        raise BundleError(msg)
    return _Loaded(bundle, session, _decision(bundle, session))


def _with_personal(loaded: _Loaded, personal: Personal | None) -> _Loaded:
    """`loaded` with the personal layer its bundle takes from `personal` (re-applied to a new bundle, or not applied
    with one message when the state was made for another n-gram bag)."""
    if personal is None:
        return loaded
    bundle = loaded.bundle
    vocabulary_sha256 = bundle.files[bundle.manifest.vocabulary].sha256
    model, note = personal.model_for(bundle.vocabulary, vocabulary_sha256, bundle.labels, loaded.decision.threshold)
    return replace(loaded, personal=model, personal_note=note)


def _reported(loaded: _Loaded, personal: Personal, texts: list[str], labels: list[str]) -> tuple[_Loaded, list[Correction]]:
    """Record the corrections; `loaded` with the layer they give."""
    bundle = loaded.bundle
    vocabulary = bundle.vocabulary
    ids = vocabulary.encode_checked(texts)
    probabilities = loaded.session.run(ids)  # the model's own, before any correction
    bags = PersonalModel.bags_of(vocabulary, texts, ids)
    reports = [Report(vocabulary.normalise(t), bag, label, float(p)) for t, bag, label, p in zip(texts, bags, labels, probabilities, strict=True)]
    vocabulary_sha256 = bundle.files[bundle.manifest.vocabulary].sha256
    _, note, made = personal.report(reports, vocabulary, vocabulary_sha256, bundle.labels, bundle.manifest.serial)
    new = _with_personal(replace(loaded, personal=None, personal_note=""), personal)
    return replace(new, personal_note=note or new.personal_note), made


def _decision(bundle: Bundle, session: Session) -> Decision:
    """The running model's decision, after checking that its file takes the rows the vocabulary gives."""
    layout, entry = bundle.vocabulary.layout, session.entry
    if session.layout is not None and session.layout != layout:
        msg = f"model '{entry.name}' of bundle '{bundle.path}' takes {session.layout.describe()}, but its vocabulary gives {layout.describe()}; re-export the bundle"
        raise BundleError(msg)
    return Decision(bundle.threshold_of(entry), bundle.labels)


@functools.cache
def _cores() -> int:
    """The cores this process may run on (`taskset` and cpusets count), once: reading it costs a system call each time."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # no affinity on this platform (macOS, Windows)
        return os.cpu_count() or 1


def _check_threads(threads: int) -> None:
    if not isinstance(threads, int) or isinstance(threads, bool) or threads < 0:
        msg = f"threads must be 0 (one per core) or a positive number of threads, found {threads!r}"
        raise ValueError(msg)


def _chunks(texts: Iterator[str], size: int) -> Iterator[list[str]]:
    while chunk := list(itertools.islice(texts, size)):
        yield chunk


_WORKER: Classifier | None = None  # in a worker process: the classifier it scores with


def _start_worker(classifier: Classifier) -> None:
    """A worker's initializer. Forked, it receives the parent's loaded classifier as it is; spawned, a
    pickled one, that is loaded again from its bundle (see `Classifier.__reduce__`)."""
    global _WORKER
    _WORKER = classifier


def _score_in_worker(texts: list[str]) -> np.ndarray:
    assert _WORKER is not None, "not in a worker process started by _score_in_processes"
    return _WORKER._score(texts)


def _score_in_processes(classifier: Classifier, chunks: Iterator[list[str]], workers: int) -> Iterator[tuple[list[str], np.ndarray]]:
    """Score chunks in `workers` processes, in order, at most two chunks per worker in flight so that
    memory stays bounded. Each call has its own pool and passes its classifier to the workers'
    initializer, so concurrent calls in one process cannot see each other's."""
    import multiprocessing  # here, not at import: a process scoring one message never needs it
    from concurrent.futures import ProcessPoolExecutor

    method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
    pending: collections.deque[tuple[list[str], Future[np.ndarray]]] = collections.deque()
    context = multiprocessing.get_context(method)
    with ProcessPoolExecutor(workers, mp_context=context, initializer=_start_worker, initargs=(classifier,)) as pool:
        for chunk in chunks:
            pending.append((chunk, pool.submit(_score_in_worker, chunk)))
            if len(pending) >= 2 * workers:
                done, future = pending.popleft()
                yield done, future.result()
        for done, future in pending:
            yield done, future.result()


def _score_in_threads(classifier: Classifier, chunks: Iterator[list[str]], threads: int) -> Iterator[tuple[list[str], np.ndarray]]:
    """Score chunks in `threads` threads, each piece of `THREAD_PIECE` texts from text to probability in one loop that
    releases the GIL (the native kernel featurises too), while this thread reads the next chunk: every core the process
    may use, no process pool, no thread that waits on another (beside a busy process, each gets its share of the cores).
    The threads are the process's (`_thread_pool`), shared by every call: calls made at once (a Dask worker's tasks, a
    server's requests) take turns piece by piece on as many threads as the cores, never one pool each, and the last call
    running has every core. The same results in the same order; at most two chunks in flight. A single short chunk (a
    single message included) is scored on the calling thread."""
    first = next(chunks, None)
    if first is None:
        return
    second = next(chunks, None)
    if second is None and len(first) <= THREAD_PIECE:
        yield first, classifier._score(first)
        return
    pool = _thread_pool(threads)
    pending: collections.deque[tuple[list[str], list[Future[np.ndarray]]]] = collections.deque()
    for chunk in itertools.chain([first], [second] if second else [], chunks):
        pending.append((chunk, [pool.submit(classifier._score, chunk[i : i + THREAD_PIECE]) for i in range(0, len(chunk), THREAD_PIECE)]))
        if len(pending) > 1:
            done, pieces = pending.popleft()
            yield done, _concatenated(pieces)
    for done, pieces in pending:
        yield done, _concatenated(pieces)


_POOLS: dict[int, ThreadPoolExecutor] = {}  # threads -> the process's scoring threads of that many
_POOLS_LOCK = threading.Lock()


def _thread_pool(threads: int) -> ThreadPoolExecutor:
    """The process's pool of `threads` scoring threads, started on first use and kept: a call neither starts nor joins
    threads, and calls made at once share them."""
    pool = _POOLS.get(threads)
    if pool is None:
        from concurrent.futures import ThreadPoolExecutor

        with _POOLS_LOCK:
            pool = _POOLS.get(threads)
            if pool is None:
                pool = _POOLS[threads] = ThreadPoolExecutor(threads, thread_name_prefix="smsguard-score")
    return pool


def _forget_pools() -> None:
    """In a forked child: the parent's threads did not come along, so neither do its pools."""
    global _POOLS_LOCK
    _POOLS.clear()
    _POOLS_LOCK = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pools)


def _concatenated(pieces: list[Future[np.ndarray]]) -> np.ndarray:
    return pieces[0].result() if len(pieces) == 1 else np.concatenate([piece.result() for piece in pieces])


def _choose(bundle: Bundle, backend: str, model: str | None) -> tuple[BackendInfo, BundleFile]:
    if backend != "auto":
        info = backend_info(backend)
        require_installed(info)
        entry = bundle.model(model) if model else default_model(bundle, info)
        if entry is None and not model and bundle.recommended(info.format) is not None:
            entry = bundle.recommended(info.format)  # every model is too new for it: loading says which op
        if entry is None:
            msg = f"bundle '{bundle.path}' has no {info.format} model for backend '{info.name}'{bundle.lacks(info.format)}"
            raise BundleError(msg)
        return info, entry
    candidates = installed_backends()  # never empty: NumPy is the base install
    if model:
        entry = bundle.model(model)
        for info in candidates:
            if info.format is entry.format:
                return info, entry
        extra = next(b.extra for b in BACKENDS if b.format is entry.format)
        msg = f"no installed backend runs {entry.format} model '{entry.name}'; pip install 'smsguard[{extra}]'"
        raise BackendError(msg)
    for info in candidates:
        entry = default_model(bundle, info)  # None when the bundle has none this version of the backend can load
        if entry is not None:
            return info, entry
    msg = f"bundle '{bundle.path}' has no model for the installed backends ({', '.join(b.name for b in candidates)}){_pack_hint(bundle)}"
    raise BundleError(msg)


def _pack_hint(bundle: Bundle) -> str:
    """For a pack none of whose models an installed backend runs: what would run them, or the pack that runs here."""
    needs = [f"{entry.name} needs pip install 'smsguard[{next(b.extra for b in BACKENDS if b.format is entry.format)}]'" for entry in bundle.models.values()]
    return bundle.lacks(ModelFormat.NPZ, f": {'; '.join(needs)}" if needs else " and holds no model the Python runtime runs", target="pi")
