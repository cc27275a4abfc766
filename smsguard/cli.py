"""The `smsguard` command. Heavy imports (TensorFlow) happen inside the commands that need them, so
`predict` and `verify` start fast on a device. Every error of the user's (a `SmsguardError`) leaves as
one line and exit status 2; anything else is a bug, and shows its traceback."""

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
import typing
from collections.abc import Callable, Iterable, Iterator
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from smsguard import __version__
from smsguard import _console as console
from smsguard._columns import TEXT_COLUMNS
from smsguard._library_output import library_output
from smsguard._staging import staged_file
from smsguard.runtime import BACKENDS, ConfigError, SmsguardError
from smsguard.runtime.bundle import ModelFormat
from smsguard.serve import add_commands as add_serve_commands

BACKEND_CHOICES = ("auto", *(b.name for b in BACKENDS))

if TYPE_CHECKING:
    from smsguard.runtime import Bundle

EXIT_MISMATCH = 1  # verify found a model that does not reproduce the golden vectors
EXIT_USAGE = 2  # bad input: a missing file, a bad flag value, a bundle that fails its checks
SAMPLE_MESSAGES = (
    "WINNER!! You have been selected to receive a £900 prize reward! To claim call 09061701461. Valid 12 hours only.",
    "Are we still on for dinner tonight? I'll be there around 7.",
)


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, _terminate)  # so a killed export still removes its partial folder
    try:
        with library_output(_library_log(args), args.verbose):
            status: int = args.run(args)
    except ConfigError as error:  # a flag value out of range
        console.error(f"invalid argument: {error}")
        return EXIT_USAGE
    except SmsguardError as error:
        if _TERMINATION:  # SIGTERM raised inside a converter's code, which turned it into its own failure
            console.error("interrupted; nothing was left half written")
            return 128 + signal.SIGTERM
        console.error(str(error))
        return EXIT_USAGE
    except KeyboardInterrupt as interrupt:
        console.error("interrupted; nothing was left half written")
        return 128 + (signal.SIGTERM if isinstance(interrupt, _Terminated) else signal.SIGINT)
    except BrokenPipeError:
        return 0
    return status


LIBRARY_LOGS = {"train": ("out", "train.log"), "export": ("run_dir", "export.log"), "demo": ("out", "demo.log")}  # command -> (its run folder's argument, the log's name)


def _library_log(args: argparse.Namespace) -> Path | None:
    """Where a command keeps what libraries printed: a file in its run folder; None (dropped) for the others."""
    folder, name = LIBRARY_LOGS.get(args.command, (None, ""))
    return Path(getattr(args, folder)) / name if folder else None


class _Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the program is, so that its cleanup runs as for Ctrl-C."""


_TERMINATION: list[int] = []  # the SIGTERM received, if any: a library that catches the exception cannot hide it


def _terminate(signum, frame) -> None:
    _TERMINATION.append(signum)
    raise _Terminated


# ---- commands -------------------------------------------------------------------------------------


def _train(args: argparse.Namespace) -> int:
    from smsguard.train import DEFAULT_PRESET, TrainConfig, train

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
    classifier = Classifier.load(args.bundle, backend=args.backend, model=args.model, trusted_keys=args.trusted_key, min_serial=args.min_serial,
                                 personal=args.personal).snapshot()
    _say_personal_note(classifier)
    count = 0
    with staged_file(Path(args.output)) if args.output else contextlib.nullcontext(sys.stdout) as out:
        for batch, probabilities in classifier.iter_chunks(texts):
            for text, probability, label in zip(batch, probabilities, classifier.decision.labels_of(probabilities), strict=True):
                print(_prediction_line(text, probability, label), file=out)
            count += len(batch)
            out.flush()
    if args.output:
        console.step(f"{count} predictions written to {args.output}")
    return 0


def _explain(args: argparse.Namespace) -> int:
    from smsguard.runtime import Classifier

    texts = _texts(args)
    classifier = Classifier.load(args.bundle, backend=args.backend, model=args.model, trusted_keys=args.trusted_key, personal=args.personal).snapshot()
    _say_personal_note(classifier)
    colour = sys.stdout.isatty() and not os.environ.get("NO_COLOR") and not args.json
    for text in texts:
        explanation = classifier.explain(text)
        if args.json:
            print(json.dumps(explanation.to_dict(), ensure_ascii=False))
            continue
        print(_explained_line(explanation, colour))
        model_probability = explanation.probability - explanation.personal
        for span in sorted(explanation.spans, key=lambda s: -abs(s.log_odds))[: args.top]:
            print(f"  {span.log_odds:+6.2f}  {span.text!r}: {model_probability:.4f} -> {model_probability - span.contribution:.4f} without it")
        if explanation.personal:
            print(f"  your corrections moved the score by {explanation.personal:+.4f}")
    return 0


def _report(args: argparse.Namespace) -> int:
    from smsguard.runtime import Classifier

    texts = list(_texts(args))
    classifier = Classifier.load(args.bundle, backend=args.backend, model=args.model, trusted_keys=args.trusted_key, personal=args.personal)
    label = classifier.bundle.labels[1] if args.spam else classifier.bundle.labels[0]
    before = classifier.predict_proba(texts)
    made = classifier.report(texts, [label] * len(texts))
    if classifier.personal_note:
        console.info(f"  note: {classifier.personal_note}")
    after = classifier.classify(texts)
    ids = [f"#{c.id}" for c in made] if len(made) == len(texts) else ["#"] * len(texts)  # a message given twice is one correction
    for number, text, old, new, new_label in zip(ids, texts, before, after.probabilities, after.labels, strict=True):
        shown = text if len(text) <= 60 else text[:57] + "..."
        print(f"{number} {label}: {old:.3f} -> {new:.3f} ({new_label})  {shown}")
    console.step(f"{len(made)} correction{'s' if len(made) != 1 else ''} recorded in {args.personal} ({len(classifier.personal.corrections) if classifier.personal else 0} in all)")
    if args.save_text:
        _append_labelled(Path(args.save_text), texts, label)
        console.step(f"{len(texts)} message{'s' if len(texts) != 1 else ''} and label{'s' if len(texts) != 1 else ''} appended to {args.save_text} (text in clear: for smsguard train --data)")
    return 0


def _append_labelled(path: Path, texts: list[str], label: str) -> None:
    """Append `label,text` rows to a CSV file `smsguard train --data` reads (created with its header), whole or not at all."""
    if path.is_dir():
        msg = f"--save-text '{path}' is a folder; give a CSV file name"
        raise SmsguardError(msg)
    if path.suffix.lower() != ".csv":
        msg = f"--save-text '{path}' must end in .csv (smsguard train reads other files as the UCI format)"
        raise SmsguardError(msg)
    old = path.read_text(encoding="utf-8") if path.exists() else "label,text\n"
    with staged_file(path) as out:
        out.write(old if old.endswith("\n") else old + "\n")
        csv.writer(out, lineterminator="\n").writerows([label, text] for text in texts)


def _personal(args: argparse.Namespace) -> int:
    from smsguard.runtime import Personal

    personal = Personal(args.folder)
    if args.undo:
        gone = personal.undo(args.undo)
        console.step(f"Forgot {len(gone)} correction{'s' if len(gone) != 1 else ''}: " + ", ".join(f"#{c.id} ({c.label}, {c.reported})" for c in gone))
        return 0
    if args.clear:
        console.step(f"Forgot all {personal.clear()} corrections of {args.folder} (and its salt)")
        return 0
    corrections = personal.corrections
    if args.json:
        for c in corrections:
            print(json.dumps({"id": c.id, "label": c.label, "reported": c.reported, "ngrams": len(c.bag), "probability": c.probability, "serial": c.serial}))
        return 0
    rows = [["id", "label", "reported (UTC)", "n-grams", "score then", "bundle serial"]]
    rows += [[f"#{c.id}", c.label, c.reported, str(len(c.bag)), f"{c.probability:.3f}", str(c.serial)] for c in corrections]
    print(console.table(rows) if corrections else f"no corrections in {args.folder}")
    return 0


def _say_personal_note(classifier: Any) -> None:
    if classifier.personal_note:
        console.info(f"  note: {classifier.personal_note}")


SPAN_COLOURS = ((0.5, "30;41"), (0.15, "30;43"), (-0.15, ""), (-1.0, "30;42"))  # share of the largest: red, yellow, none, green


def _explained_line(explanation: Any, colour: bool) -> str:
    """`label probability  message`, its spans on coloured backgrounds on a terminal: red and yellow push towards spam,
    green towards ham, by their share of the message's largest."""
    head = f"{explanation.label} {explanation.probability:.3f} (threshold {explanation.threshold:.3f})  "
    text = explanation.text
    if not colour:
        return head + text
    largest = max((abs(s.log_odds) for s in explanation.spans), default=0.0) or 1.0
    out, at = [], 0
    for span in explanation.spans:
        share = span.log_odds / largest
        code = next((code for bound, code in SPAN_COLOURS if share >= bound), SPAN_COLOURS[-1][1])
        out += [text[at : span.start], f"\033[{code}m{span.text}\033[0m" if code else span.text]
        at = span.end
    return head + "".join(out) + text[at:]


def _prediction_line(text: str, probability: float, label: str) -> str:
    return json.dumps({"text": text, "probability": round(float(probability), 6), "label": label}, ensure_ascii=False)


def _verify(args: argparse.Namespace) -> int:
    from smsguard.runtime import verify_bundle
    from smsguard.runtime.signing import trusted_keys_from

    report = verify_bundle(args.bundle, args.backend or None, trusted_keys_from(args.trusted_key))
    _say_if_native_is_missing(report.bundle)
    report.print_checklist(summary=False)
    client_failures, clients_checked = (0, 0) if args.backend else _verify_clients(report.bundle)
    if client_failures:
        console.error(f"the MediaPipe client models do not match the export machine ({client_failures} problems above)")
        return EXIT_MISMATCH
    if not report.bundle.models:  # a pack of client models alone: they are what there is to check
        if not clients_checked:
            console.error(f"bundle '{args.bundle}' holds no model the Python runtime runs, and its client models were not checked (see above)")
            return EXIT_MISMATCH
        passed = not report.tokenizer_problems
        (console.step if passed else console.error)(f"All {clients_checked} client models match" if passed else "the tokenizer differs from the export machine's")
        return 0 if passed else EXIT_MISMATCH
    report.print_summary()
    return 0 if report.passed else EXIT_MISMATCH


def _pack(args: argparse.Namespace) -> int:
    from smsguard.export import PackConfig, pack

    pack(Path(args.bundle), Path(args.out), PackConfig(args.target, model=args.model, sign_key=args.sign_key), force=args.force)
    return 0


def _keygen(args: argparse.Namespace) -> int:
    from smsguard.runtime.signing import generate_keys, read_public_key

    private, public = generate_keys(Path(args.out))
    console.step(f"Wrote {private} (private: keep it on the build machine, readable by you alone) and {public} (public: ship it to devices)")
    console.step(f"Key id {read_public_key(public).key_id}")
    return 0


def _sign(args: argparse.Namespace) -> int:
    from smsguard.runtime import Bundle
    from smsguard.runtime.signing import sign_manifest

    bundle = Bundle.load(args.bundle)
    bundle.check_files()  # sign only a whole bundle: every file matches its manifest
    path = sign_manifest(Path(args.bundle), args.key)
    console.step(f"Signed the manifest of {args.bundle} (serial {bundle.manifest.serial}): {path}")
    return 0


def _verify_clients(bundle: Bundle) -> tuple[int, int]:
    """The bundle's MediaPipe client models in MediaPipe's TextClassifier, when both are there: (problems, models checked)."""
    from smsguard.runtime.mediapipe import mediapipe_version, verify_clients

    if "mediapipe" not in bundle.manifest.clients:
        return 0, 0
    if mediapipe_version() is None:
        console.info("  (MediaPipe client models not checked: pip install 'smsguard[mediapipe]' to run them in MediaPipe's TextClassifier)")
        return 0, 0
    checked = verify_clients(bundle)
    if checked is None:
        return 0, 0
    id_problems, results = checked
    n = len(bundle.golden)
    console.check(not id_problems, f"MediaPipe tokenizer: {n - len(id_problems)} of {n} messages give the golden ids (probe model)")
    for problem in id_problems[:5]:
        console.info(f"        {problem}")
    for r in results:
        console.check(r.passed, f"{r.model} [{r.backend}]: max diff {r.max_abs_diff:.2g} vs {r.compared_to} (atol {r.tolerance:g})" + (f": not run: {r.skipped}" if r.skipped else ""))
        for problem in r.problems:
            console.info(f"        {problem}")
    return len(id_problems) + sum(not r.passed for r in results), sum(not r.skipped for r in results)


def _say_if_native_is_missing(bundle: Bundle) -> None:
    """Once per command: the .npz models run in NumPy because the C kernel was not built at install."""
    from smsguard.runtime import native_kernel

    kernel = native_kernel()
    if not kernel.available and any(entry.format is ModelFormat.NPZ for entry in bundle.models.values()):
        console.info(f"  note: {kernel.problem}")


def _bench(args: argparse.Namespace) -> int:
    from smsguard.bench import BenchConfig, run_benchmark

    run_benchmark(Path(args.bundle), _config(BenchConfig, args))
    return 0


def _conformance(args: argparse.Namespace) -> int:
    from smsguard.export import write_conformance

    data = write_conformance(Path(args.bundle), Path(args.out), Path(args.uci) if args.uci else None)
    console.step(f"Conformance file of {len(data['cases'])} cases for {', '.join(data['models'])} written to {args.out}")
    return 0


def _serve_web(args: argparse.Namespace) -> int:
    from smsguard._serve_web import WEB_DIR, make_server

    server = make_server(Path(args.bundle), args.port, Path(args.web) if args.web else WEB_DIR, log=None if args.quiet else console.info)
    port = server.server_address[1]
    console.step(f"Serving the web demo of {args.bundle} on http://127.0.0.1:{port}/ (Ctrl-C stops it)")
    try:
        server.serve_forever()
    finally:
        server.server_close()
    return 0


def _demo(args: argparse.Namespace) -> int:
    """train -> export -> verify -> bench -> two sample predictions, in one folder."""
    from smsguard.bench import BenchConfig, run_benchmark
    from smsguard.export import ExportConfig, export
    from smsguard.runtime import Classifier, verify_bundle
    from smsguard.train import RUN_MODEL_NAME, TrainConfig, train

    out = Path(args.out)
    run_dir, bundle_dir = out / "run", out / "bundle"
    console.info(f"== 1/5 train -> {run_dir}")
    train(TrainConfig(data=(args.data,) if args.data else ()), run_dir, force=True)
    console.info(f"\n== 2/5 export -> {bundle_dir}")
    export(run_dir, bundle_dir, ExportConfig(data=(args.data,) if args.data else ()), force=True)
    console.info("\n== 3/5 verify")
    report = verify_bundle(bundle_dir)
    report.print_checklist()
    if not report.passed:
        return EXIT_MISMATCH
    console.info("\n== 4/5 bench")
    run_benchmark(bundle_dir, BenchConfig(keras_model=str(run_dir / RUN_MODEL_NAME), json=str(out / "bench.json"), markdown=str(out / "bench.md")))
    console.info("\n== 5/5 predict")
    classifier = Classifier.load(bundle_dir)
    classified = classifier.classify(SAMPLE_MESSAGES)
    for text, probability, label in zip(SAMPLE_MESSAGES, classified.probabilities, classified.labels, strict=True):
        print(_prediction_line(text, probability, label))
    console.step(f"Done: run in {run_dir}, bundle in {bundle_dir}, benchmark in {out / 'bench.md'} (model {classifier.model.name}, backend {classifier.backend})")
    return 0


def _score(args: argparse.Namespace) -> int:
    from smsguard.score import InputFormat, ScoreConfig, engine_for, score_files

    engine = engine_for(args.engine, master=args.master, workers=args.workers)  # what it needs is installed, or one line says what to install
    config = ScoreConfig(text_column=args.text_column, id_column=args.id_column, out_col=args.out_col, backend=args.backend,
                         model=args.model, input_format=InputFormat(args.input_format), batch_rows=args.batch_rows)
    summary = score_files(args.bundle, args.input, args.output, config, force=args.force, engine=engine)
    if summary.errors and summary.error_ids:
        console.info(f"  rows with an error ({args.id_column}): {', '.join(map(str, summary.error_ids))}" + (" ..." if summary.errors > len(summary.error_ids) else ""))
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
        file = open(path, "rb")  # noqa: SIM115 -- closed by the generator below, which outlives this call
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
    chosen = column or next((c for c in TEXT_COLUMNS if c in columns), None)
    if chosen not in columns:
        file.close()
        wanted = repr(column) if column else "(looked for " + ", ".join(TEXT_COLUMNS) + ")"
        msg = f"{name} has no text column {wanted}; found {', '.join(map(repr, columns))}: pass --text-column NAME"
        raise SmsguardError(msg)
    index = columns.index(chosen)

    def rows() -> Iterator[str]:
        with file:
            for row in reader:
                if row:
                    yield row[index] if index < len(row) else ""

    return rows()


# ---- parser ---------------------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="smsguard", description="Train, export and run an on-device SMS spam filter.")
    parser.add_argument("--version", action="version", version=f"smsguard {__version__}")
    commands = parser.add_subparsers(title="commands", required=True, metavar="COMMAND")
    for add in (_add_build_commands, _add_pack_command, _add_predict_command, _add_explain_command, _add_personal_commands, _add_score_command, _add_verify_command, _add_signing_commands, _add_device_commands):
        add(commands)
    _add_verbose_flags(commands)
    return parser


def _add_build_commands(commands: Any) -> None:
    from smsguard.export import ExportConfig  # light: no TensorFlow at import
    from smsguard.train import PRESETS, TrainConfig

    p = commands.add_parser("train", help="train the LSTM and evaluate it on held-out data")
    p.add_argument("--out", required=True, metavar="RUN_DIR", help="folder to write the run to")
    p.add_argument("--force", action="store_true", help="replace RUN_DIR if it exists")
    _add_config_flags(p, TrainConfig, PRESETS)
    p.set_defaults(run=_train)

    p = commands.add_parser("export", help="export a run to quantized TFLite and ONNX models, checked for parity")
    p.add_argument("run_dir", metavar="RUN_DIR", help="the run folder `smsguard train` wrote")
    p.add_argument("--out", required=True, metavar="BUNDLE_DIR", help="folder to write the bundle to")
    p.add_argument("--force", action="store_true", help="replace BUNDLE_DIR if it exists")
    _add_config_flags(p, ExportConfig)
    p.set_defaults(run=_export)

    p = commands.add_parser("demo", help="train -> export -> verify -> bench -> predict, on the default data")
    p.add_argument("--data", help="the SMS Spam Collection (default: $SMSGUARD_DATA, ../shared/data, or a checked download)")
    p.add_argument("--out", default="smsguard-demo", help="folder for the run, bundle and benchmark (replaced; default: smsguard-demo)")
    p.set_defaults(run=_demo)


def _add_pack_command(commands: Any) -> None:
    from smsguard.export import PACK_TARGETS, PackConfig  # light: no TensorFlow at import

    comments = _field_comments(PackConfig)
    p = commands.add_parser("pack", help="copy what one device runs out of a bundle, as a bundle of its own (checked, re-signed)")
    p.add_argument("bundle", metavar="BUNDLE", help="the full bundle `smsguard export` wrote")
    targets = "; ".join(f"{spec.target}: {spec.runs_in}" for spec in PACK_TARGETS)
    p.add_argument("--for", dest="target", required=True, choices=[str(spec.target) for spec in PACK_TARGETS], metavar="TARGET", help=f"the device ({targets})")
    p.add_argument("--out", required=True, metavar="DIR", help="folder to write the pack to, whole or not at all")
    p.add_argument("--model", metavar="NAME", help=comments["model"] + " (one its runtime runs)")
    p.add_argument("--sign-key", metavar="KEY", help=comments["sign_key"] + "; needs smsguard[sign]")
    p.add_argument("--force", action="store_true", help="replace DIR if it exists")
    p.set_defaults(run=_pack)


def _add_predict_command(commands: Any) -> None:
    p = commands.add_parser("predict", help="classify messages; prints one JSON object per message")
    p.add_argument("texts", nargs="*", metavar="TEXT", help="messages (default: one per line on stdin)")
    p.add_argument("--bundle", required=True, metavar="DIR", help="the bundle folder `smsguard export` wrote")
    p.add_argument("--backend", default="auto", choices=BACKEND_CHOICES, help="the inference backend; auto: the first installed of " + ", ".join(b.name for b in BACKENDS))
    p.add_argument("--model", help="a model file of the bundle (default: the recommended one)")
    p.add_argument("--csv", metavar="FILE", help="read messages from this CSV file")
    p.add_argument("--text-column", help="the CSV column holding the messages (default: SMS, text, message or v2)")
    p.add_argument("--output", metavar="FILE", help="write the JSON lines to FILE, whole or not at all (default: stdout)")
    p.add_argument("--personal", metavar="DIR", help="apply the corrections recorded in this personal state folder (smsguard report)")
    _add_trust_flags(p)
    p.add_argument("--min-serial", type=int, metavar="N", help="refuse a bundle whose serial is below N (one the device has moved past)")
    p.set_defaults(run=_predict)


def _add_explain_command(commands: Any) -> None:
    p = commands.add_parser("explain", help="show why messages score what they do: what each word does to the score, coloured on a terminal")
    p.add_argument("texts", nargs="*", metavar="TEXT", help="messages (default: one per line on stdin)")
    p.add_argument("--bundle", required=True, metavar="DIR", help="the bundle folder")
    p.add_argument("--backend", default="auto", choices=BACKEND_CHOICES, help="the inference backend (default: auto)")
    p.add_argument("--model", help="a model file of the bundle (default: the recommended one)")
    p.add_argument("--csv", metavar="FILE", help="read messages from this CSV file")
    p.add_argument("--text-column", help="the CSV column holding the messages (default: SMS, text, message or v2)")
    p.add_argument("--top", type=int, default=5, metavar="N", help="spans listed under each message, largest effect first (default: 5)")
    p.add_argument("--json", action="store_true", help="one JSON object per message: probability, label and every span (start, end, text, contribution, log_odds, ...)")
    p.add_argument("--personal", metavar="DIR", help="apply the corrections recorded in this personal state folder (smsguard report)")
    _add_trust_flags(p)
    p.set_defaults(run=_explain)


def _add_personal_commands(commands: Any) -> None:
    p = commands.add_parser("report", help="correct the filter: record messages as spam or not, in a personal state folder (no text is kept)")
    p.add_argument("texts", nargs="*", metavar="TEXT", help="messages (default: one per line on stdin)")
    p.add_argument("--bundle", required=True, metavar="DIR", help="the bundle folder")
    p.add_argument("--personal", required=True, metavar="DIR", help="the personal state folder (must exist; the state is created in it)")
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--spam", action="store_true", help="these messages are spam (the bundle's second label)")
    which.add_argument("--ham", action="store_true", help="these messages are not spam (the bundle's first label)")
    p.add_argument("--backend", default="auto", choices=BACKEND_CHOICES, help="the inference backend (default: auto)")
    p.add_argument("--model", help="a model file of the bundle (default: the recommended one)")
    p.add_argument("--csv", metavar="FILE", help="read messages from this CSV file")
    p.add_argument("--text-column", help="the CSV column holding the messages (default: SMS, text, message or v2)")
    p.add_argument("--save-text", metavar="FILE.csv", help="also append each message and its label to this CSV file, the text in clear (your choice: training data for smsguard train --data)")
    _add_trust_flags(p)
    p.set_defaults(run=_report)

    p = commands.add_parser("personal", help="list the corrections of a personal state folder, or forget some or all of them")
    p.add_argument("folder", metavar="DIR", help="the personal state folder")
    action = p.add_mutually_exclusive_group()
    action.add_argument("--undo", type=int, nargs="+", metavar="ID", help="forget these corrections (ids as listed)")
    action.add_argument("--clear", action="store_true", help="forget every correction")
    action.add_argument("--json", action="store_true", help="list as JSON lines")
    p.set_defaults(run=_personal)


def _add_verify_command(commands: Any) -> None:
    p = commands.add_parser("verify", help="replay the bundle's golden vectors on every model and backend")
    p.add_argument("bundle", metavar="DIR", help="the bundle folder")
    p.add_argument("--backend", action="append", metavar="BACKEND", help=f"only this backend: {', '.join(b.name for b in BACKENDS)} (repeatable; default: every installed one)")
    _add_trust_flags(p)
    p.set_defaults(run=_verify)


def _add_device_commands(commands: Any) -> None:
    from smsguard.bench import BenchConfig  # light: no TensorFlow at import

    p = commands.add_parser("bench", help="latency, load time and size of every model with every backend")
    p.add_argument("bundle", metavar="DIR", help="the bundle folder")
    _add_config_flags(p, BenchConfig)
    p.set_defaults(run=_bench)

    _add_conformance_command(commands)

    p = commands.add_parser("serve-web", help="serve the browser demo of a bundle on 127.0.0.1: its full model in JavaScript, and its MediaPipe client model beside it")
    p.add_argument("bundle", metavar="DIR", help="the bundle folder")
    p.add_argument("--port", type=int, default=8000, help="port on 127.0.0.1 (default: 8000; 0 picks a free one)")
    p.add_argument("--web", metavar="DIR", help="the demo's folder, with node_modules from `make web` (default: web/ of this checkout)")
    p.add_argument("--quiet", action="store_true", help="do not log each request")
    p.set_defaults(run=_serve_web)

    add_serve_commands(commands, BACKEND_CHOICES)  # serve, gammu

def _add_verbose_flags(commands: Any) -> None:
    for name, command in commands.choices.items():
        command.add_argument("--verbose", action="store_true", help="show what TensorFlow, ONNX Runtime, MediaPipe and other libraries print as it comes "
                             "(by default train, export and demo keep it in a log file in the run folder, and other commands drop it)")
        command.set_defaults(command=name)


def _add_score_command(commands: Any) -> None:
    p = commands.add_parser("score", help="score a data set (Parquet, CSV or JSON lines) into Parquet, locally, with Spark or with Dask")
    p.add_argument("--bundle", required=True, metavar="DIR", help="the bundle folder `smsguard export` wrote")
    p.add_argument("--input", required=True, metavar="PATH", help="a file, a folder or a glob of .parquet, .csv or .jsonl files")
    p.add_argument("--output", required=True, metavar="DIR", help="folder to write Parquet to, whole or not at all")
    from smsguard.score import EngineName  # light: no pyarrow at import

    p.add_argument("--engine", default=EngineName.LOCAL.value, choices=[e.value for e in EngineName], help="where to run (default: local, this process)")
    p.add_argument("--text-column", default="text", help="the column holding the messages (default: text)")
    p.add_argument("--id-column", help="a column identifying rows: must exist; rows with an error are listed by it")
    p.add_argument("--out-col", default="spam", metavar="PREFIX", help="prefix of the added columns: PREFIX_probability, _label, _error, _model, _manifest_sha256 (default: spam)")
    p.add_argument("--backend", default="auto", help="auto, numba, litert, tflite-runtime, onnxruntime or numpy (default: auto)")
    p.add_argument("--model", help="a model file of the bundle (default: the recommended one)")
    p.add_argument("--input-format", default="auto", choices=["auto", "parquet", "csv", "json"], help="default: from the files' suffixes")
    p.add_argument("--batch-rows", type=int, default=10_000, help="rows scored at a time (Spark: Arrow batch size; default: 10000)")
    p.add_argument("--master", default="local[*]", help="--engine spark: the Spark master (default: local[*])")
    p.add_argument("--workers", type=int, help="--engine dask: worker processes (default: one per core)")
    p.add_argument("--force", action="store_true", help="replace DIR if it exists")
    p.set_defaults(run=_score)


def _add_conformance_command(commands: Any) -> None:
    p = commands.add_parser("conformance", help="write a bundle's conformance file: hard cases with their ids and probabilities, for every runtime to replay")
    p.add_argument("bundle", metavar="BUNDLE", help="the bundle folder")
    p.add_argument("--out", required=True, metavar="FILE", help="the JSON file to write")
    p.add_argument("--uci", metavar="PATH", help="add a seeded sample of real messages from the UCI file at PATH")
    p.set_defaults(run=_conformance)


def _add_signing_commands(commands: Any) -> None:
    p = commands.add_parser("keygen", help="make an Ed25519 key pair for signing bundles (needs smsguard[sign])")
    p.add_argument("--out", required=True, metavar="DIR", help="folder for smsguard.key (private, mode 0600) and smsguard.pub")
    p.set_defaults(run=_keygen)

    p = commands.add_parser("sign", help="sign a bundle's manifest, which pins every file (needs smsguard[sign])")
    p.add_argument("bundle", metavar="DIR", help="the bundle folder")
    p.add_argument("--key", required=True, metavar="KEY", help="the private key file (smsguard keygen)")
    p.set_defaults(run=_sign)


def _add_trust_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--trusted-key", action="append", metavar="PUB",
        help="require a signature by this public key (repeatable: any of them; default: $SMSGUARD_TRUSTED_KEYS, else none required)",
    )


def _add_config_flags(parser: argparse.ArgumentParser, config_class: type, presets: dict[str, dict] | None = None) -> None:
    """One flag per dataclass field, typed from its annotation, helped by its trailing comment; an enum
    field offers its values as `choices`.

    A flag not given is left out of the namespace (`_given`), so that a preset can supply it;
    `presets` adds each preset's value to the help where it differs from the default.
    """
    comments = _field_comments(config_class)
    hints = typing.get_type_hints(config_class)
    for f in dataclasses.fields(config_class):
        base, optional = _flag_type(hints[f.name])
        flag = "--" + f.name.replace("_", "-")
        help_text = comments.get(f.name, "").replace("%", "%%")  # argparse formats help with %
        default = f.default
        shown = [] if default is None else [f"default: {default}"]
        shown += [f"{name}: {values[f.name]}" for name, values in (presets or {}).items() if values.get(f.name, default) != default]
        shown_text = f" ({'; '.join(shown)})".replace("%", "%%") if shown else ""
        if base is bool:
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=argparse.SUPPRESS, help=help_text + shown_text)
            continue
        if typing.get_origin(base) is tuple:  # tuple[str, ...]: the flag repeats (--data A --data B)
            item = typing.get_args(base)[0]
            parser.add_argument(flag, type=item, action="append", default=argparse.SUPPRESS, metavar=f.name.upper(), help=help_text + " (repeatable)")
            continue
        choices = [str(member.value) for member in base] if isinstance(base, type) and issubclass(base, Enum) else None
        parse = str if choices else base  # the config turns a choice into its enum member
        parse = _or_none(parse) if optional else parse  # so that a flag can undo a preset's value: --target-ham-fpr none
        metavar = None if choices else f.name.upper()
        parser.add_argument(flag, type=parse, choices=choices, default=argparse.SUPPRESS, metavar=metavar, help=help_text + shown_text)


def _flag_type(annotation: Any) -> tuple[Any, bool]:
    """(the flag's type, whether it takes `none`) for a field annotated `T` or `T | None`."""
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if args and len(args) < len(typing.get_args(annotation)):
        return args[0], True
    return annotation, False


def _or_none(base: Callable[[str], Any]) -> Callable[[str], Any]:
    def parse(text: str) -> Any:
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
