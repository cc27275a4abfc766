"""`Classifier`: raw text in, spam probability or label out, from a bundle, with no TensorFlow."""

from __future__ import annotations

import os
from collections.abc import Iterable

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

    def predict_proba(self, texts: Iterable[str]) -> np.ndarray:
        """float32 spam probability per text."""
        ids = self.encode(texts)
        if not len(ids):
            return np.zeros(0, dtype=np.float32)
        return self._session.run(ids)

    def predict(self, texts: Iterable[str]) -> list[str]:
        """The label of each text at the model's threshold (`threshold`: the model's own when the manifest
        gives one, else the bundle's): the second label ("spam") at or above it."""
        negative, positive = self.bundle.labels
        return [positive if p >= self.threshold else negative for p in self.predict_proba(texts)]

    def __repr__(self) -> str:
        return f"Classifier({str(self.bundle.path)!r}, backend={self.backend!r}, model={self.model.name!r})"


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
