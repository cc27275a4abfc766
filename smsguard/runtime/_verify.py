"""`verify`: replay a bundle's golden vectors on every model with every installed backend, so a
device can prove it computes what the export machine computed."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import numpy as np

from smsguard import _console as console
from smsguard._errors import BackendError
from smsguard.runtime._backends import Session, backend_info, installed_backends, open_session
from smsguard.runtime.bundle import Bundle, BundleFile, GoldenVector, ids_sha256
from smsguard.runtime.signing import PublicKey


@dataclass
class VerifyResult:
    model: str
    backend: str
    compared_to: str  # "keras" for float models; "export" (the model's own recorded output) or "export's builtin kernels" otherwise
    tolerance: float
    max_abs_diff: float = 0.0
    problems: list[str] = field(default_factory=list)
    skipped: str = ""  # why the backend could not run the model at all

    @property
    def passed(self) -> bool:
        return not self.problems and not self.skipped


class VerifyReport(NamedTuple):
    """What `verify_bundle` found: tokenizer problems, and one result per (model, backend) pair."""

    bundle: Bundle
    tokenizer_problems: list[str]
    results: list[VerifyResult]

    @property
    def ran(self) -> list[VerifyResult]:
        return [r for r in self.results if not r.skipped]

    @property
    def passed(self) -> bool:
        """Every (model, backend) pair ran and matches, there is at least one, and the tokenizer gives the golden ids:
        a pair a backend could not load is not a pass (the model cannot be trusted on this device until it runs)."""
        return bool(self.results) and all(r.passed for r in self.results) and not self.tokenizer_problems

    def print_checklist(self, summary: bool = True) -> None:
        """One line per check on stderr, then (with `summary`) the summary line: an error line when it did not pass."""
        n = len(self.bundle.golden)
        problems = self.tokenizer_problems
        console.step(f"Verifying {self.bundle.path} (serial {self.bundle.manifest.serial}) on its {n} golden messages")
        if self.bundle.signed_by:
            console.check(True, f"signature: manifest signed by trusted key {self.bundle.signed_by}")
        hashed = sum(g.ids is None for g in self.bundle.golden)
        by_hash = f" ({n - hashed} compared in full, {hashed} by their SHA-256)" if hashed else ""
        console.check(not problems, f"tokenizer: {n - len(problems)} of {n} messages give the export machine's ids{by_hash}")
        for problem in problems[:5]:
            console.info(f"        {problem}")
        for r in self.results:
            if r.skipped:
                console.check(False, f"{r.model} [{r.backend}]: not run: {r.skipped}")
                continue
            console.check(r.passed, f"{r.model} [{r.backend}]: max diff {r.max_abs_diff:.2g} vs {r.compared_to} (atol {r.tolerance:g}), batched and one at a time")
            for problem in r.problems:
                console.info(f"        {problem}")
        if summary:
            self.print_summary()

    def print_summary(self) -> None:
        """The closing line: every pair ran and matches, or an error line counting what did not run or match."""
        ran = self.ran
        failed = [r for r in ran if not r.passed]
        not_run = len(self.results) - len(ran)
        pack = self.bundle.manifest.pack
        if not ran and pack is not None:
            console.error(f"no model could be run: this pack for {pack.target} holds {', '.join(self.bundle.models) or 'no model'}, and no chosen backend ran it")
        elif not ran:
            console.error("no model could be run: install a backend (pip install 'smsguard[litert]' or 'smsguard[onnx]')")
        elif self.passed:
            console.step(f"All {len(ran)} model/backend pairs match")
        else:
            findings = [f"{len(failed)} {'does' if len(failed) == 1 else 'do'} not"] if failed else []
            findings += [f"{not_run} could not be run (listed above: use another model of the bundle, or install what it needs)"] if not_run else []
            findings += ["the tokenizer differs"] if self.tokenizer_problems else []
            matched = len(self.results) - len(failed) - not_run
            console.error(f"{matched} of {len(self.results)} model/backend pairs match the export machine; " + "; ".join(findings))


@dataclass(frozen=True, eq=False)
class GoldenInputs:
    """What the golden messages give on this device: the ids each model is run on, and the tokenizer's problems.

    A message whose ids the manifest lists runs on those ids, whatever this tokenizer computes, so that a model and a
    tokenizer problem show apart; one pinned by `ids_sha256` alone runs on the ids computed here when their hash
    matches, and is left out of the models' checks when it does not (its problem is the tokenizer's)."""

    ids: np.ndarray  # int32 (n, width): the listed ids, or those computed here
    usable: np.ndarray  # bool (n,): the rows whose ids are the export machine's
    tokenizer_problems: list[str]

    @classmethod
    def of(cls, bundle: Bundle) -> GoldenInputs:
        golden = bundle.golden
        if not golden:
            msg = f"bundle '{bundle.path}' has no golden vectors to verify against; re-export it"
            raise BackendError(msg)
        texts = [g.text for g in golden]
        computed = bundle.vocabulary.encode(texts)
        ids, usable, problems = computed.copy(), np.ones(len(golden), dtype=bool), []
        for i, g in enumerate(golden):
            if g.ids is not None:
                ids[i] = g.ids
                if (computed[i] != ids[i]).any():
                    problems.append(f"message {i} ({texts[i][:40]!r}...): ids differ from the export machine's{_where_ids_differ(bundle, computed[i], ids[i])}")
            elif ids_sha256(computed[i]) != g.ids_sha256:
                usable[i] = False
                problems.append(f"message {i} ({texts[i][:40]!r}...): ids differ from the export machine's (their SHA-256); its probabilities are not compared")
        return cls(ids, usable, problems)

    def run(self, session: Session) -> tuple[np.ndarray, np.ndarray]:
        """A session's outputs on the usable rows, in one batch and one at a time."""
        ids = self.ids[self.usable]
        batch = session.run(ids)
        single = np.concatenate([session.run(ids[i : i + 1]) for i in range(len(ids))]) if len(ids) else batch
        return batch, single


def verify_bundle(
    path: str | Path, backends: list[str] | None = None, trusted_keys: Sequence[PublicKey] | None = None
) -> VerifyReport:
    """Check the tokenizer against the golden ids, then every (model, backend) pair against the
    golden probabilities, with the messages in one batch and one at a time. With `trusted_keys`, the
    bundle must first carry a signature by one of them."""
    bundle = Bundle.load(path, trusted_keys)
    inputs = GoldenInputs.of(bundle)
    for name in backends or ():
        backend_info(name)  # an unknown name is an error, not a silent filter
    chosen = [b for b in installed_backends() if backends is None or b.name in backends]
    results = []
    for entry in bundle.models.values():
        for info in (b for b in chosen if b.format is entry.format):
            references = _references(entry, bundle.golden, inputs.usable)
            try:
                session = open_session(info, bundle.model_path(entry), entry)
            except BackendError as error:
                reference, tolerance, _ = references[0]
                results.append(VerifyResult(entry.name, info.name, reference, tolerance, skipped=str(error)))
                continue
            batch, single = inputs.run(session)
            compared = [_compare(entry.name, info.name, *reference, batch, single) for reference in references]
            results.append(next((r for r in compared if r.passed), compared[0]))
    return VerifyReport(bundle, inputs.tokenizer_problems, results)


def golden_problems(bundle: Bundle, entry: BundleFile, session: Session) -> list[str]:
    """What keeps one loaded model from reproducing its bundle's golden vectors (empty: nothing)."""
    inputs = GoldenInputs.of(bundle)
    problems = list(inputs.tokenizer_problems)
    batch, single = inputs.run(session)
    compared = [_compare(entry.name, session.backend.name, *reference, batch, single) for reference in _references(entry, bundle.golden, inputs.usable)]
    if not any(r.passed for r in compared):
        problems += compared[0].problems
    return problems


def _where_ids_differ(bundle: Bundle, got: np.ndarray, expected: np.ndarray) -> str:
    """Which part of the row differs, for a fused model: the word ids or the n-gram ids."""
    if not bundle.vocabulary.layout.ngram_length:
        return ""
    words, _ = bundle.vocabulary.layout.split(np.stack([got, expected]))
    return " (word ids)" if (words[0] != words[1]).any() else " (n-gram ids)"


def _references(entry: BundleFile, golden: tuple[GoldenVector, ...], usable: np.ndarray) -> list[tuple[str, float, np.ndarray]]:
    """What a model's outputs may equal: Keras for a float model; for a quantized one its own outputs on
    the export machine, or, for TFLite, those of LiteRT's builtin kernels (a runtime that runs the
    model without XNNPACK, such as tflite-runtime 2.14 with the full-integer model, rounds like them)."""
    golden = tuple(g for g, use in zip(golden, usable, strict=True) if use)
    if entry.is_float:
        return [("keras", entry.atol, np.array([g.keras_probability for g in golden]))]
    references = [("export", entry.atol, np.array([g.probabilities[entry.name] for g in golden]))]
    if all(entry.name in g.builtin_kernel_probabilities for g in golden):
        builtin = np.array([g.builtin_kernel_probabilities[entry.name] for g in golden])
        references.append(("export's builtin kernels", entry.atol, builtin))
    return references


def _compare(model: str, backend: str, reference: str, tolerance: float, expected: np.ndarray, batch: np.ndarray, single: np.ndarray) -> VerifyResult:
    result = VerifyResult(model, backend, reference, tolerance)
    for how, got in (("in one batch", batch), ("one at a time", single)):
        diff = np.abs(got.astype(np.float64) - expected)
        if not len(diff):
            continue
        result.max_abs_diff = max(result.max_abs_diff, float(diff.max()))
        bad = np.flatnonzero(diff > tolerance)
        if len(bad):
            result.problems.append(
                f"{len(bad)} of {len(diff)} messages {how} differ by more than {tolerance:g} "
                f"(max {diff.max():.3g}, first: message {bad[0]})"
            )
    return result


