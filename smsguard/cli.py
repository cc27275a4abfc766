"""The `smsguard` command. Heavy imports (TensorFlow) happen inside the commands that need them, so
`predict` and `verify` start fast on a device; every error leaves as one line and exit status 2."""

from __future__ import annotations

import argparse
import contextlib
import csv
import dataclasses
import inspect
import json
import os
import re
import signal
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path

from smsguard import __version__
from smsguard import _console as console
from smsguard._staging import staged_file
from smsguard.runtime._errors import SmsguardError

EXIT_MISMATCH = 1  # verify found a model that does not reproduce the golden vectors
EXIT_USAGE = 2  # bad input: a missing file, a bad flag value, a bundle that fails its checks
SAMPLE_MESSAGES = (
    "WINNER!! You have been selected to receive a £900 prize reward! To claim call 09061701461. Valid 12 hours only.",
    "Are we still on for dinner tonight? I'll be there around 7.",
)
CSV_TEXT_COLUMNS = ("SMS", "sms", "text", "message", "Message", "v2")


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, _terminate)  # so a killed export still removes its partial folder
    try:
        return args.run(args)
    except SmsguardError as error:
        console.error(str(error))
        return EXIT_USAGE
    except (ValueError, TypeError) as error:  # config validation: a flag value out of range
        console.error(f"invalid argument: {error}")
        return EXIT_USAGE
    except KeyboardInterrupt as interrupt:
        console.error("interrupted; nothing was left half written")
        return 128 + (signal.SIGTERM if isinstance(interrupt, _Terminated) else signal.SIGINT)
    except BrokenPipeError:
        return 0
    except Exception as error:  # a bug, not a user error: still one line, with how to see more
        if os.environ.get("SMSGUARD_DEBUG"):
            raise
        console.error(f"unexpected {type(error).__name__}: {error} (set SMSGUARD_DEBUG=1 for the traceback, and please report it)")
        return 3


class _Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the program is, so that its cleanup runs as for Ctrl-C."""


def _terminate(signum, frame) -> None:
    raise _Terminated


# ---- commands -------------------------------------------------------------------------------------


def _train(args: argparse.Namespace) -> int:
    from smsguard.train import TrainConfig, train
    from smsguard.train._config import DEFAULT_PRESET

    given = _given(TrainConfig, args)
    train(TrainConfig.from_preset(given.pop("preset", DEFAULT_PRESET), **given), Path(args.out), force=args.force)
    return 0


def _export(args: argparse.Namespace) -> int:
    from smsguard.export import ExportConfig, export

    export(Path(args.run_dir), Path(args.out), _config(ExportConfig, args), force=args.force)
    return 0


def _predict(args: argparse.Namespace) -> int:
    from smsguard.runtime import Classifier

    texts = _texts(args)
    classifier = Classifier.load(args.bundle, backend=args.backend, model=args.model)
    negative, positive = classifier.bundle.labels
    count = 0
    with staged_file(Path(args.output)) if args.output else contextlib.nullcontext(sys.stdout) as out:
        for batch in _batches(texts, 512):
            for text, probability in zip(batch, classifier.predict_proba(batch)):
                label = positive if probability >= classifier.threshold else negative
                print(json.dumps({"text": text, "probability": round(float(probability), 6), "label": label}, ensure_ascii=False), file=out)
            count += len(batch)
        out.flush()
    if args.output:
        console.step(f"{count} predictions written to {args.output}")
    return 0


def _verify(args: argparse.Namespace) -> int:
    from smsguard.runtime._verify import verify_bundle

    bundle, tokenizer_problems, results = verify_bundle(args.bundle, args.backend or None)
    n = len(bundle.golden)
    console.step(f"Verifying {args.bundle} on its {n} golden messages")
    _say_if_native_is_missing(bundle)
    console.check(not tokenizer_problems, f"tokenizer: {n - len(tokenizer_problems)} of {n} messages give the export machine's ids")
    for problem in tokenizer_problems[:5]:
        console.info(f"        {problem}")
    for r in results:
        if r.skipped:
            console.check(False, f"{r.model} [{r.backend}]: not run: {r.skipped}")
            continue
        console.check(r.passed, f"{r.model} [{r.backend}]: max diff {r.max_abs_diff:.2g} vs {r.compared_to} (atol {r.tolerance:g}), batched and one at a time")
        for problem in r.problems:
            console.info(f"        {problem}")
    ran = [r for r in results if not r.skipped]
    failed = [r for r in ran if not r.passed]
    if not ran:
        console.error("no model could be run: install a backend (pip install 'smsguard[litert]' or 'smsguard[onnx]')")
        return EXIT_MISMATCH
    skipped = len(results) - len(ran)
    if failed or tokenizer_problems:
        console.error(f"{len(failed)} of {len(ran)} model/backend pairs do not match the export machine" + (", and the tokenizer differs" if tokenizer_problems else ""))
        return EXIT_MISMATCH
    console.step(f"All {len(ran)} model/backend pairs match" + (f" ({skipped} could not be loaded by this backend, listed above)" if skipped else ""))
    return 0


def _say_if_native_is_missing(bundle) -> None:
    """Once per command: the .npz models run in NumPy because the C kernel was not built at install."""
    from smsguard.runtime._lstm_native import NOT_BUILT, available

    if not available() and any(entry.format == "npz" for entry in bundle.models.values()):
        console.info(f"  note: {NOT_BUILT}")


def _bench(args: argparse.Namespace) -> int:
    from smsguard.bench import BenchConfig, run_benchmark

    run_benchmark(Path(args.bundle), _config(BenchConfig, args))
    return 0


def _demo(args: argparse.Namespace) -> int:
    """train -> export -> verify -> bench -> two sample predictions, in one folder."""
    from smsguard.bench import BenchConfig, run_benchmark
    from smsguard.export import ExportConfig, export
    from smsguard.runtime import Classifier
    from smsguard.train import TrainConfig, train

    out = Path(args.out)
    run_dir, bundle_dir = out / "run", out / "bundle"
    console.info(f"== 1/5 train -> {run_dir}")
    train(TrainConfig(data=args.data), run_dir, force=True)
    console.info(f"\n== 2/5 export -> {bundle_dir}")
    export(run_dir, bundle_dir, ExportConfig(data=args.data), force=True)
    console.info("\n== 3/5 verify")
    status = _verify(argparse.Namespace(bundle=str(bundle_dir), backend=None))
    if status:
        return status
    console.info("\n== 4/5 bench")
    run_benchmark(bundle_dir, BenchConfig(keras_model=str(run_dir / "model.keras"), json=str(out / "bench.json"), markdown=str(out / "bench.md")))
    console.info("\n== 5/5 predict")
    classifier = Classifier.load(bundle_dir)
    for text, probability, label in zip(SAMPLE_MESSAGES, classifier.predict_proba(SAMPLE_MESSAGES), classifier.predict(SAMPLE_MESSAGES)):
        print(json.dumps({"text": text, "probability": round(float(probability), 6), "label": label}, ensure_ascii=False))
    console.step(f"Done: run in {run_dir}, bundle in {bundle_dir}, benchmark in {out / 'bench.md'} (model {classifier.model.name}, backend {classifier.backend})")
    return 0


# ---- input ----------------------------------------------------------------------------------------


def _texts(args: argparse.Namespace) -> Iterator[str]:
    """The messages to classify. A CSV header is checked here, before any model is loaded."""
    if args.csv:
        return _csv_texts(Path(args.csv), args.text_column)
    if args.texts:
        return (_utf8_argument(text, number) for number, text in enumerate(args.texts, 1))
    if sys.stdin is None or sys.stdin.isatty():
        msg = "no messages: give them as arguments, one per line on stdin, or with --csv FILE"
        raise SmsguardError(msg)
    return (line.rstrip("\r\n") for line in _utf8_lines(sys.stdin.buffer, "standard input"))


def _utf8_lines(binary: Iterable[bytes], name: str) -> Iterator[str]:
    """Decode line by line, so a bad byte is reported at its own line; a leading BOM is dropped."""
    for number, raw in enumerate(binary, 1):
        try:
            line = raw.decode("utf-8-sig" if number == 1 else "utf-8")
        except UnicodeDecodeError as error:
            msg = f"{name} is not UTF-8 text: line {number} has the byte 0x{raw[error.start]:02x} at column {error.start + 1}"
            raise SmsguardError(msg) from None
        yield line


def _utf8_argument(text: str, number: int) -> str:
    """A message given on the command line; Python keeps bytes that are not UTF-8 as lone surrogates."""
    raw = os.fsencode(text)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as error:
        msg = f"message argument {number} is not UTF-8 text: it has the byte 0x{raw[error.start]:02x} at column {error.start + 1}"
        raise SmsguardError(msg) from None


def _csv_texts(path: Path, column: str | None) -> Iterator[str]:
    name = f"CSV file '{path}'"
    try:
        file = open(path, "rb")
    except FileNotFoundError:
        msg = f"{name} does not exist"
        raise SmsguardError(msg) from None
    except OSError as error:
        msg = f"{name} cannot be read: {error.strerror}"
        raise SmsguardError(msg) from None
    reader = csv.reader(_utf8_lines(file, name))
    try:
        columns = next(reader, [])
    except BaseException:
        file.close()
        raise
    if not columns:
        file.close()
        msg = f"{name} is empty: expected a header row with a text column"
        raise SmsguardError(msg)
    chosen = column or next((c for c in CSV_TEXT_COLUMNS if c in columns), None)
    if chosen not in columns:
        file.close()
        wanted = repr(column) if column else "(looked for " + ", ".join(CSV_TEXT_COLUMNS) + ")"
        msg = f"{name} has no text column {wanted}; found {', '.join(map(repr, columns))}: pass --text-column NAME"
        raise SmsguardError(msg)
    index = columns.index(chosen)

    def rows() -> Iterator[str]:
        with file:
            for row in reader:
                if row:
                    yield row[index] if index < len(row) else ""

    return rows()


def _batches(texts: Iterator[str], size: int) -> Iterator[list[str]]:
    batch: list[str] = []
    for text in texts:
        batch.append(text)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


# ---- parser ---------------------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="smsguard", description="Train, export and run an on-device SMS spam filter.")
    parser.add_argument("--version", action="version", version=f"smsguard {__version__}")
    commands = parser.add_subparsers(title="commands", required=True, metavar="COMMAND")

    from smsguard.bench import BenchConfig  # light: no TensorFlow at import
    from smsguard.export._config import ExportConfig
    from smsguard.train._config import PRESETS, TrainConfig

    p = commands.add_parser("train", help="train the LSTM and evaluate it on held-out data")
    p.add_argument("--out", required=True, metavar="RUN_DIR", help="folder to write the run to")
    p.add_argument("--force", action="store_true", help="replace RUN_DIR if it exists")
    _add_config_flags(p, TrainConfig, PRESETS)
    p.set_defaults(run=_train)

    p = commands.add_parser("export", help="export a run to quantized TFLite and ONNX models, checked for parity")
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("--out", required=True, metavar="BUNDLE_DIR", help="folder to write the bundle to")
    p.add_argument("--force", action="store_true", help="replace BUNDLE_DIR if it exists")
    _add_config_flags(p, ExportConfig)
    p.set_defaults(run=_export)

    p = commands.add_parser("predict", help="classify messages; prints one JSON object per message")
    p.add_argument("texts", nargs="*", metavar="TEXT", help="messages (default: one per line on stdin)")
    p.add_argument("--bundle", required=True, metavar="DIR")
    p.add_argument("--backend", default="auto", help="auto, litert, tflite-runtime or onnxruntime (default: auto)")
    p.add_argument("--model", help="a model file of the bundle (default: the recommended one)")
    p.add_argument("--csv", metavar="FILE", help="read messages from this CSV file")
    p.add_argument("--text-column", help="the CSV column holding the messages (default: SMS, text, message or v2)")
    p.add_argument("--output", metavar="FILE", help="write the JSON lines to FILE, whole or not at all (default: stdout)")
    p.set_defaults(run=_predict)

    p = commands.add_parser("verify", help="replay the bundle's golden vectors on every model and backend")
    p.add_argument("bundle", metavar="DIR")
    p.add_argument("--backend", action="append", help="only this backend (repeatable; default: every installed one)")
    p.set_defaults(run=_verify)

    p = commands.add_parser("bench", help="latency, load time and size of every model with every backend")
    p.add_argument("bundle", metavar="DIR")
    _add_config_flags(p, BenchConfig)
    p.set_defaults(run=_bench)

    p = commands.add_parser("demo", help="train -> export -> verify -> bench -> predict, on the default data")
    p.add_argument("--data", help="the SMS Spam Collection (default: $SMSGUARD_DATA, ../shared/data, or a checked download)")
    p.add_argument("--out", default="smsguard-demo", help="folder for the run, bundle and benchmark (replaced; default: smsguard-demo)")
    p.set_defaults(run=_demo)
    return parser


def _add_config_flags(parser: argparse.ArgumentParser, config_class: type, presets: dict[str, dict] | None = None) -> None:
    """One flag per dataclass field, typed from its annotation, helped by its trailing comment.

    A flag not given is left out of the namespace (`_given`), so that a preset can supply it;
    `presets` adds each preset's value to the help where it differs from the default.
    """
    comments = _field_comments(config_class)
    for f in dataclasses.fields(config_class):
        kind = str(f.type).replace(" ", "")
        base = {"int": int, "float": float, "str": str, "bool": bool}[kind.removesuffix("|None")]
        flag = "--" + f.name.replace("_", "-")
        help_text = comments.get(f.name, "")
        if kind.endswith("|None") and base is not bool:
            base = _or_none(base)  # so that a flag can undo a preset's value: --target-ham-fpr none
        default = f.default
        if base is bool:
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=argparse.SUPPRESS, help=help_text)
        else:
            shown = [] if default is None else [f"default: {default}"]
            shown += [f"{name}: {values[f.name]}" for name, values in (presets or {}).items() if values.get(f.name, default) != default]
            shown_text = f" ({'; '.join(shown)})" if shown else ""
            parser.add_argument(flag, type=base, default=argparse.SUPPRESS, metavar=f.name.upper(), help=help_text + shown_text)


def _or_none(base: type):
    def parse(text: str):
        return None if text.lower() == "none" else base(text)

    parse.__name__ = base.__name__  # argparse names the type in its errors: "invalid float value: 'x'"
    return parse


def _field_comments(config_class: type) -> dict[str, str]:
    try:
        source = inspect.getsource(config_class)
    except (OSError, TypeError):
        return {}
    return {m[1]: m[2].strip() for m in re.finditer(r"^\s+(\w+): [^#\n]*#\s*(.*)$", source, re.MULTILINE)}


def _given(config_class: type, args: argparse.Namespace) -> dict:
    """The fields of `config_class` whose flags were given on the command line."""
    return {f.name: getattr(args, f.name) for f in dataclasses.fields(config_class) if hasattr(args, f.name)}


def _config(config_class: type, args: argparse.Namespace):
    return config_class(**_given(config_class, args))
