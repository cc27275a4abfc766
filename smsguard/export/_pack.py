"""`smsguard pack`: a bundle cut down to what one device runs (`_pack_targets.PACK_TARGETS`).

A pack is a bundle: the files it holds, copied byte for byte and checked against the full bundle's hashes; its own
manifest (format, serial, source and thresholds kept; golden vectors for its models only, their ids pinned by
hash but for the edge cases; what it left out and which pack holds it); signed again when asked, since the
signature covers the manifest, which is new. It appears whole or not at all."""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from smsguard import __version__
from smsguard import _console as console
from smsguard._errors import BundleError, IntegrityError
from smsguard._files import read_bytes
from smsguard._staging import check_target, staged_folder, write_atomic, write_json
from smsguard.export._golden import EDGE_TEXTS
from smsguard.export._pack_targets import PACK_TARGETS, PackSpec, PackTarget, pack_spec
from smsguard.runtime import Bundle, BundleFile, FileKind, GoldenVector, Manifest
from smsguard.runtime.bundle import FORMAT_VERSION, MANIFEST_NAME, LeftOut, ModelFormat, PackInfo
from smsguard.runtime.mediapipe import CLIENT
from smsguard.runtime.signing import SIGNATURE_NAME, read_private_key, sign_manifest


@dataclass(frozen=True)
class PackConfig:
    """Every field is a `smsguard pack` flag."""

    target: PackTarget  # --for: the device the pack is for
    model: str | None = None  # a model file of the bundle instead of the target's default
    sign_key: str | None = None  # sign the packed manifest with this Ed25519 private key (`smsguard keygen`)

    def __post_init__(self) -> None:
        object.__setattr__(self, "target", PackTarget(self.target))


@dataclass(frozen=True)
class PackReport:
    """What `pack` wrote: each file (the manifest and its signature included) with its size."""

    path: Path
    target: PackTarget
    files: tuple[tuple[str, int], ...]  # (name, bytes)

    @property
    def total(self) -> int:
        return sum(size for _, size in self.files)


def pack(bundle_dir: str | Path, out: str | Path, config: PackConfig, force: bool = False) -> PackReport:
    """Write the pack of `bundle_dir` for `config.target` to `out`; refuse an existing `out` unless `force`."""
    bundle_dir, out = Path(bundle_dir), Path(out)
    check_target(out, force, "pack")
    if config.sign_key:
        read_private_key(config.sign_key)  # a bad key fails before anything is written
    bundle = Bundle.load(bundle_dir)
    if bundle.manifest.pack is not None:
        msg = f"bundle '{bundle_dir}' is already a pack (for {bundle.manifest.pack.target}); pack the full bundle it was made from"
        raise BundleError(msg)
    spec = pack_spec(config.target)
    console.step(f"Packing {bundle_dir} for {spec.target} ({spec.runs_in})")
    held = held_files(bundle, spec, config.model)
    manifest = packed_manifest(bundle, spec, held)
    with staged_folder(out, force, "pack") as folder:
        for name in held:
            write_atomic(folder / name, _checked_bytes(bundle, bundle.files[name]))
        write_json(folder / MANIFEST_NAME, manifest.to_dict(), compact=True)
        if config.sign_key:
            sign_manifest(folder, config.sign_key)
        written = tuple((path.name, path.stat().st_size) for path in sorted(folder.iterdir(), key=lambda p: _order(p.name, held)))
    report = PackReport(out, spec.target, written)
    _print_report(bundle, spec, report, signed=bool(config.sign_key))
    return report


def held_files(bundle: Bundle, spec: PackSpec, model: str | None) -> tuple[str, ...]:
    """The files a pack for `spec` holds: the vocabulary, then its model (the target's default, or `model`)."""
    clients = bundle.manifest.clients
    if model is not None:
        entry = bundle.files.get(model)
        if entry is None or entry.kind not in (FileKind.MODEL, FileKind.CLIENT):
            has = ", ".join(e.name for e in bundle.manifest.files if e.kind in (FileKind.MODEL, FileKind.CLIENT))
            msg = f"bundle '{bundle.path}' has no model '{model}'; it has: {has}"
            raise BundleError(msg)
        if not spec.accepts(entry, clients):
            can = [e.name for e in bundle.manifest.files if spec.accepts(e, clients)]
            what = f"a model of format {entry.format}" if entry.format else "a client model"
            msg = f"model '{model}' is {what}, which {spec.runs_in} does not run; a pack for {spec.target} holds one of: {', '.join(can) or 'none of its files'}"
            raise BundleError(msg)
        names = spec.held_with(model, clients)
    else:
        choice = spec.default(bundle)
        if not choice.names:
            has = ", ".join(e.name for e in bundle.manifest.files if e.kind in (FileKind.MODEL, FileKind.CLIENT))
            msg = f"bundle '{bundle.path}' has no model to pack for {spec.target}: {spec.runs_in} runs {spec.runs}; it has: {has}"
            raise BundleError(msg)
        if choice.note:
            console.info(f"  note: {choice.note}")
        names = tuple(n for name in choice.names for n in spec.held_with(name, clients))
    return (bundle.manifest.vocabulary, *names)


def packed_manifest(bundle: Bundle, spec: PackSpec, held: Iterable[str]) -> Manifest:
    """The full bundle's manifest cut down to `held`: the same entries, threshold, serial and source; golden vectors
    for the held models, ids in full for the edge cases only; the client section of a held client; what was left out."""
    source = bundle.manifest
    held = tuple(held)
    entries = tuple(entry for entry in source.files if entry.name in held)
    models = {entry.name: entry for entry in entries if entry.kind is FileKind.MODEL}
    recommended = {fmt: name for fmt, name in source.recommended.items() if name in models}
    for entry in models.values():
        recommended.setdefault(entry.format or ModelFormat.NPZ, entry.name)
    info = PackInfo(
        target=spec.target.value,
        runs_in=spec.runs_in,
        source_manifest_sha256=hashlib.sha256(read_bytes(bundle.path / MANIFEST_NAME, "manifest")).hexdigest(),
        created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        left_out=tuple(left_out(bundle, held)),
    )
    return dataclasses.replace(
        source,
        files=entries,
        recommended=recommended,
        golden=packed_golden(source.golden, set(models)),
        clients=_clients(source.clients, set(held)),
        pack=info,
        format_version=FORMAT_VERSION,
        smsguard_version=__version__,
    )


def packed_golden(golden: Iterable[GoldenVector], models: set[str]) -> tuple[GoldenVector, ...]:
    """Each golden message with its text, label and Keras probability, the probabilities of `models`, the SHA-256 of
    its ids, and its ids in full when it is one of export's edge cases (`EDGE_CASES`)."""
    return tuple(
        GoldenVector(
            text=g.text,
            ids=g.ids if g.text in EDGE_TEXTS else None,
            label=g.label,
            keras_probability=g.keras_probability,
            probabilities={name: p for name, p in g.probabilities.items() if name in models},
            builtin_kernel_probabilities={name: p for name, p in g.builtin_kernel_probabilities.items() if name in models},
            ids_sha256=g.digest,
        )
        for g in golden
    )


def left_out(bundle: Bundle, held: tuple[str, ...]) -> list[LeftOut]:
    """Every file of the full bundle a pack does not hold, with the `smsguard pack` arguments of one that does."""
    clients = bundle.manifest.clients
    defaults = {spec.target: _default_files(bundle, spec) for spec in PACK_TARGETS}
    recommended = set(bundle.manifest.recommended.values())
    out = []
    for entry in sorted(bundle.manifest.files, key=lambda e: e.name not in recommended):  # a format's recommended model first
        if entry.name in held:
            continue
        targets = tuple(str(spec.target) for spec in PACK_TARGETS if entry.name in defaults[spec.target])
        args = f"--for {targets[0]}" if targets else None
        if args is None:  # a target whose runtime runs this format first of all (android for .tflite), else any that runs it
            accepting = sorted((spec for spec in PACK_TARGETS if spec.accepts(entry, clients)), key=lambda spec: spec.formats[:1] != (entry.format,))
            args = f"--for {accepting[0].target} --model {entry.name}" if accepting else None
        out.append(LeftOut(entry.name, entry.kind, entry.format, args, targets))
    return out


def _default_files(bundle: Bundle, spec: PackSpec) -> set[str]:
    clients = bundle.manifest.clients
    return {n for name in spec.default(bundle).names for n in spec.held_with(name, clients)}


def _clients(clients: Mapping[str, Any], held: set[str]) -> dict[str, Any]:
    """The MediaPipe section when the pack holds one of its models, cut down to the held ones."""
    section = clients.get(CLIENT)
    if not section or not any(m["name"] in held for m in section.get("models", ())):
        return {}
    cut = dict(section)
    cut["models"] = [m for m in section["models"] if m["name"] in held]
    cut["parity"] = [p for p in section.get("parity", ()) if p.get("model") in held]
    cut["golden_probabilities"] = {name: p for name, p in section.get("golden_probabilities", {}).items() if name in held}
    return {CLIENT: cut}


def _checked_bytes(bundle: Bundle, entry: BundleFile) -> bytes:
    """A file's bytes, read once and checked against the full bundle's manifest (what is copied is what was checked)."""
    path = bundle.path / entry.name
    data = read_bytes(path, "bundle file")
    actual = hashlib.sha256(data).hexdigest()
    if actual != entry.sha256:
        msg = (
            f"bundle file '{path}' does not match its manifest: expected sha256 {entry.sha256}, found {actual}; "
            "the full bundle was changed, export it again before packing"
        )
        raise IntegrityError(msg)
    return data


def _order(name: str, held: tuple[str, ...]) -> tuple[int, str]:
    """The held files in their order, then the manifest, then its signature."""
    ranks = {name: i for i, name in enumerate(held)} | {MANIFEST_NAME: len(held), SIGNATURE_NAME: len(held) + 1}
    return ranks.get(name, len(held) + 2), name


def _print_report(bundle: Bundle, spec: PackSpec, report: PackReport, signed: bool) -> None:
    rows = [[name, f"{size:,} bytes", f"{size / 1e6:.2f} MB"] for name, size in report.files]
    rows.append(["total", f"{report.total:,} bytes", f"{report.total / 1e6:.2f} MB"])
    for line in console.table(rows).splitlines():
        console.info(f"  {line}")
    if not signed and (bundle.path / SIGNATURE_NAME).exists():
        console.info("  note: the full bundle is signed, the pack is not (a signature covers one manifest, and the pack's is new): pass --sign-key to sign it")
    kept = len(report.files) - 1 - signed
    console.step(f"Pack for {spec.target} written to {report.path} ({kept} of the bundle's {len(bundle.manifest.files)} files, serial {bundle.manifest.serial}); check it with {spec.check.format(pack=report.path)}")
