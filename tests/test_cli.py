"""The `smsguard` command on a real bundle: `main([...])` in this process for most, a real
`python -m smsguard` where the process boundary matters (stdin, encodings, exit status, imports)."""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
from bundle_edits import edit_manifest, replace_with_non_model

from smsguard import __version__
from smsguard.cli import main
from smsguard.runtime import BACKENDS, Bundle, Classifier, installed_backends
from smsguard.train._data import UPSTREAM_PAGE

COMMANDS = ("train", "export", "predict", "verify", "bench", "demo", "score")
SPAM = "URGENT! You have WON a guaranteed £1000 cash prize. To claim call 09061701461 now. T&C apply. Valid 12hrs only"
HAM = "Are we still on for dinner tonight? I will be there around 7."
UNICODE = ("Ça va? 😀 see you at 6 🎉", "你好，明天见 — 中文短信", "emoji only: 🙂🙃")
PRINTED_DECIMALS = 6  # predict rounds each probability to 6 decimals
TENSORFLOW = ("tensorflow", "keras")  # what refusing an existing --out should not need to load

slow = pytest.mark.slow


def run(capsys, *argv) -> tuple[int, str, str]:
    """`smsguard ARGV` in this process: exit status, stdout, stderr."""
    status = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return status, out, err


def smsguard(*argv, stdin: bytes | None = None, options=()) -> subprocess.CompletedProcess:
    """`python -m smsguard ARGV` in a fresh process, stdin /dev/null unless given; output decoded as UTF-8."""
    feed = {"stdin": subprocess.DEVNULL} if stdin is None else {"input": stdin}
    done = subprocess.run(
        [sys.executable, *options, "-m", "smsguard", *map(str, argv)], **feed, capture_output=True, timeout=300, check=False
    )
    done.stdout, done.stderr = done.stdout.decode("utf-8"), done.stderr.decode("utf-8")
    return done


def the_error(err: str) -> str:
    """The one `ERROR ...` line of stderr (litert may add its own INFO lines), and no traceback."""
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.startswith("ERROR")]
    assert len(lines) == 1, err
    return lines[0]


def predictions(out: str) -> list[dict]:
    rows = [json.loads(line) for line in out.splitlines()]
    assert all(list(row) == ["text", "probability", "label"] for row in rows)
    return rows


def write_csv(path: Path, content: str | bytes) -> Path:
    path.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)
    return path


def backend_version(name: str) -> str:
    return next(b for b in BACKENDS if b.name == name).version


@pytest.fixture(scope="module")
def expected_probability(bundle_dir: Path):
    """What the recommended model says about a text, as predict prints it."""
    classifier = Classifier.load(bundle_dir)
    return lambda texts: [round(float(p), PRINTED_DECIMALS) for p in classifier.predict_proba(list(texts))]


# ---- no bundle needed -------------------------------------------------------------------------------


def test_version(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out == f"smsguard {__version__}\n"


@pytest.mark.parametrize("command", COMMANDS)
def test_help_of_each_command(capsys, command):
    with pytest.raises(SystemExit) as exit_:
        main([command, "--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: smsguard {command} ")
    assert "--help" in out


def test_help_lists_every_command(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert all(re.search(rf"^\s+{command}\s", out, re.MULTILINE) for command in COMMANDS)


@pytest.mark.parametrize("argv", [
    ["predict", "--bundle", "{missing}", "hi"],
    ["verify", "{missing}"],
    ["bench", "{missing}", "--runs", "10"],
])
def test_a_missing_bundle_is_one_error_line(capsys, tmp_path, argv):
    missing = tmp_path / "no-bundle"
    status, out, err = run(capsys, *(a.format(missing=missing) for a in argv))
    assert status == 2
    assert out == ""
    assert the_error(err) == f"ERROR bundle '{missing}' does not exist; create one with `smsguard export RUN_DIR --out {missing}`"
    assert err.count("\n") == 1


def test_export_of_a_folder_that_is_not_a_run(capsys, tmp_path):
    not_a_run = tmp_path / "notes"
    not_a_run.mkdir()
    (not_a_run / "readme.txt").write_text("not a run")
    status, _, err = run(capsys, "export", not_a_run, "--out", tmp_path / "bundle")
    assert status == 2
    assert the_error(err) == f"ERROR run folder '{not_a_run}' has no model.keras; train one with `smsguard train --out {not_a_run}`"
    assert not (tmp_path / "bundle").exists()


def test_train_with_zero_epochs_is_an_invalid_argument(capsys, tmp_path, data_path):
    status, _, err = run(capsys, "train", "--out", tmp_path / "run", "--data", data_path, "--epochs", "0")
    assert status == 2
    assert the_error(err) == "ERROR invalid argument: epochs must be at least 1, found 0"
    assert err.count("\n") == 1
    assert not (tmp_path / "run").exists()


def test_train_with_a_missing_data_file(capsys, tmp_path):
    missing = tmp_path / "SMSSpamCollection"
    status, _, err = run(capsys, "train", "--out", tmp_path / "run", "--data", missing)
    assert status == 2
    assert the_error(err) == (
        f"ERROR '{missing}' does not exist: pass --data PATH to a local copy of SMSSpamCollection (see {UPSTREAM_PAGE})"
    )
    assert not (tmp_path / "run").exists()


def test_bench_with_too_few_runs_is_an_invalid_argument(capsys, tmp_path):
    status, _, err = run(capsys, "bench", tmp_path, "--runs", "5")
    assert status == 2
    assert the_error(err) == "ERROR invalid argument: runs must be at least 10 to give a p99, found 5"


# ---- predict ---------------------------------------------------------------------------------------------


@slow
def test_predict_prints_one_json_object_per_text(capsys, bundle_dir, expected_probability):
    status, out, err = run(capsys, "predict", "--bundle", bundle_dir, SPAM, HAM)
    assert (status, err) == (0, "")
    rows = predictions(out)
    assert [row["text"] for row in rows] == [SPAM, HAM]
    assert [row["label"] for row in rows] == ["spam", "ham"]
    assert [row["probability"] for row in rows] == expected_probability([SPAM, HAM])


@slow
def test_predict_with_each_model_and_backend(capsys, bundle_dir):
    for name, entry in Bundle.load(bundle_dir).models.items():
        backend = next(b.name for b in installed_backends() if b.format == entry.format)
        status, out, _ = run(capsys, "predict", "--bundle", bundle_dir, "--backend", backend, "--model", name, SPAM, HAM)
        assert status == 0
        assert [row["label"] for row in predictions(out)] == ["spam", "ham"], name


@slow
def test_predict_reads_one_message_per_stdin_line(bundle_dir, expected_probability):
    texts = ["hello", SPAM, "", "windows line end", UNICODE[0]]
    stdin = f"hello\n{SPAM}\n\nwindows line end\r\n{UNICODE[0]}\n".encode()
    done = smsguard("predict", "--bundle", bundle_dir, stdin=stdin)
    assert done.returncode == 0, done.stderr
    rows = predictions(done.stdout)
    assert [row["text"] for row in rows] == texts
    assert [row["probability"] for row in rows] == expected_probability(texts)


@slow
def test_predict_with_an_empty_stdin_prints_nothing(bundle_dir):
    done = smsguard("predict", "--bundle", bundle_dir)  # stdin is /dev/null: not a terminal, no lines
    assert done.returncode == 0, done.stderr
    assert done.stdout == ""
    assert "ERROR" not in done.stderr


@slow
def test_predict_round_trips_utf8_text_through_a_real_process(bundle_dir, expected_probability):
    done = smsguard("predict", "--bundle", bundle_dir, *UNICODE)
    assert done.returncode == 0, done.stderr
    assert [row["text"] for row in predictions(done.stdout)] == list(UNICODE)
    assert all(text in done.stdout for text in UNICODE)  # printed as UTF-8, not as \u escapes


@slow
def test_predict_reads_the_sms_column_of_a_csv_file(capsys, bundle_dir, tmp_path, expected_probability):
    texts = [SPAM, HAM, 'a "quoted", multi-line\nmessage', "", *UNICODE]
    rows = "".join(f'{label},"{text.replace(chr(34), chr(34) * 2)}"\n' for label, text in zip("shmhhhh", texts, strict=False))
    csv = write_csv(tmp_path / "messages.csv", "label,SMS\n" + rows)
    status, out, err = run(capsys, "predict", "--bundle", bundle_dir, "--csv", csv)
    assert (status, err) == (0, "")
    printed = predictions(out)
    assert [row["text"] for row in printed] == texts
    assert [row["probability"] for row in printed] == expected_probability(texts)
    assert [row["label"] for row in printed[:2]] == ["spam", "ham"]


@slow
def test_predict_reads_the_column_named_by_text_column(capsys, bundle_dir, tmp_path):
    csv = write_csv(tmp_path / "messages.csv", f"id,SMS,body\n1,not this,{HAM}\n2,nor this,{UNICODE[1]}\n")
    status, out, _ = run(capsys, "predict", "--bundle", bundle_dir, "--csv", csv, "--text-column", "body")
    assert status == 0
    assert [row["text"] for row in predictions(out)] == [HAM, UNICODE[1]]


# ---- predict errors ------------------------------------------------------------------------------------


@slow
def test_predict_with_a_file_that_is_not_a_model(capsys, bundle_copy):
    replace_with_non_model(bundle_copy, "model.float32.tflite")
    status, out, err = run(capsys, "predict", "--bundle", bundle_copy, "--model", "model.float32.tflite", "hi")
    assert (status, out) == (2, "")
    assert the_error(err) == (
        f"ERROR litert {backend_version('litert')} cannot load model 'model.float32.tflite': "
        "The model is not a valid Flatbuffer buffer"
    )


@slow
def test_predict_with_a_file_that_is_not_a_model_in_a_real_process(bundle_copy):
    path = replace_with_non_model(bundle_copy, "model.float32.onnx")
    done = smsguard("predict", "--bundle", bundle_copy, "--model", "model.float32.onnx", "hi")
    assert (done.returncode, done.stdout) == (2, "")
    assert the_error(done.stderr) == (
        f"ERROR onnxruntime {backend_version('onnxruntime')} cannot load model 'model.float32.onnx': "
        f"[ONNXRuntimeError] : 7 : INVALID_PROTOBUF : Load model from {path} failed:Protobuf parsing failed."
    )


@slow
def test_predict_with_a_missing_bundle_in_a_real_process(tmp_path):
    done = smsguard("predict", "--bundle", tmp_path / "gone", "hi")
    assert (done.returncode, done.stdout) == (2, "")
    assert the_error(done.stderr).startswith(f"ERROR bundle '{tmp_path / 'gone'}' does not exist")


@slow
@pytest.mark.parametrize(("content", "column", "message"), [
    ("id,body\n1,hello\n", "text", "has no text column 'text'; found 'id', 'body': pass --text-column NAME"),
    ("id,body\n1,hello\n", None, "has no text column (looked for SMS, sms, text, message, Message, v2); found 'id', 'body': pass --text-column NAME"),
    ("", None, "is empty: expected a header row with a text column"),
    (b"SMS\n\xff\xfe\n", None, "is not UTF-8 text: line 2 has the byte 0xff at column 1"),
], ids=["named column missing", "no known column", "empty file", "not utf-8"])
def test_predict_refuses_a_bad_csv_file(capsys, bundle_dir, tmp_path, content, column, message):
    csv = write_csv(tmp_path / "messages.csv", content)
    status, out, err = run(capsys, "predict", "--bundle", bundle_dir, "--csv", csv, *(["--text-column", column] if column else []))
    assert (status, out) == (2, "")
    assert the_error(err) == f"ERROR CSV file '{csv}' {message}"


@slow
def test_predict_refuses_a_missing_csv_file(capsys, bundle_dir, tmp_path):
    status, _, err = run(capsys, "predict", "--bundle", bundle_dir, "--csv", tmp_path / "nope.csv")
    assert status == 2
    assert the_error(err) == f"ERROR CSV file '{tmp_path / 'nope.csv'}' does not exist"


@slow
def test_predict_reads_a_csv_file_with_a_byte_order_mark(capsys, bundle_dir, tmp_path):
    csv = write_csv(tmp_path / "excel.csv", b"\xef\xbb\xbfSMS\r\nhello\r\n")
    status, out, err = run(capsys, "predict", "--bundle", bundle_dir, "--csv", csv)
    assert (status, err) == (0, "")
    assert [row["text"] for row in predictions(out)] == ["hello"]


@slow
def test_a_bad_byte_deep_in_a_csv_file_is_reported_at_its_line(capsys, bundle_dir, tmp_path):
    lines = [b"SMS"] + [f"message number {i}".encode() for i in range(2000)]
    lines[1500] = b"bad \xff byte"  # file line 1501
    csv = write_csv(tmp_path / "long.csv", b"\n".join(lines) + b"\n")
    status, _, err = run(capsys, "predict", "--bundle", bundle_dir, "--csv", csv)
    assert status == 2
    assert the_error(err) == f"ERROR CSV file '{csv}' is not UTF-8 text: line 1501 has the byte 0xff at column 5"


@slow
def test_predict_refuses_a_message_argument_that_is_not_utf8(bundle_dir):
    done = subprocess.run(
        [sys.executable, "-m", "smsguard", "predict", "--bundle", str(bundle_dir), "fine", b"caf\xe9 au lait"],
        capture_output=True, timeout=300, check=False,
    )
    assert (done.returncode, done.stdout) == (2, b"")
    assert the_error(done.stderr.decode()) == "ERROR message argument 2 is not UTF-8 text: it has the byte 0xe9 at column 4"


def as_unprivileged(call):
    """`call()` in a forked child that cannot read what only its owner may (root drops to nobody):
    returns its result. Everything it needs must be imported already: nobody cannot read /root."""
    read, write = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - the child
        try:
            os.close(read)
            if os.geteuid() == 0:
                os.setgroups([])
                os.setgid(65534)
                os.setuid(65534)
            os.write(write, json.dumps(call()).encode())
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read, "rb") as pipe:
        result = pipe.read()
    os.waitpid(child, 0)
    return json.loads(result)


@pytest.fixture
def shared_bundle(bundle_dir):
    """A copy of the bundle in a folder anyone may enter, for `as_unprivileged`."""
    folder = Path(tempfile.mkdtemp(prefix="smsguard-test-"))
    folder.chmod(0o755)
    shutil.copytree(bundle_dir, folder / "bundle")
    yield folder / "bundle"
    shutil.rmtree(folder)


def captured_main(*argv) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = main([str(a) for a in argv])
    return status, out.getvalue(), err.getvalue()


@slow
@pytest.mark.parametrize(("name", "what"), [("manifest.json", "manifest"), ("vocab.json", "bundle file"), ("model.dynamic_int8.tflite", "bundle file")])
def test_predict_with_an_unreadable_bundle_file(shared_bundle, name, what):
    (shared_bundle / name).chmod(0)
    status, out, err = as_unprivileged(lambda: captured_main("predict", "--bundle", shared_bundle, "--model", "model.dynamic_int8.tflite", "hi"))
    assert (status, out) == (2, "")
    assert the_error(err) == f"ERROR {what} '{shared_bundle / name}' cannot be read: Permission denied"


@slow
def test_predict_with_a_bundle_folder_that_cannot_be_listed(shared_bundle):
    shared_bundle.chmod(0)
    status, out, err = as_unprivileged(lambda: captured_main("predict", "--bundle", shared_bundle, "hi"))
    assert (status, out) == (2, "")
    assert the_error(err) == f"ERROR manifest '{shared_bundle / 'manifest.json'}' cannot be read: Permission denied"


@slow
def test_predict_with_a_manifest_that_is_a_folder(capsys, bundle_copy):
    (bundle_copy / "manifest.json").unlink()
    (bundle_copy / "manifest.json").mkdir()
    status, out, err = run(capsys, "predict", "--bundle", bundle_copy, "hi")
    assert (status, out) == (2, "")
    assert the_error(err) == f"ERROR manifest '{bundle_copy / 'manifest.json'}' cannot be read: Is a directory"


@slow
def test_predict_output_file_holds_what_stdout_would(capsys, bundle_dir, tmp_path):
    texts = [SPAM, HAM, *UNICODE]
    _, printed, _ = run(capsys, "predict", "--bundle", bundle_dir, *texts)
    output = tmp_path / "predictions.jsonl"
    status, out, err = run(capsys, "predict", "--bundle", bundle_dir, "--output", output, *texts)
    assert (status, out) == (0, "")
    assert err == f"* 5 predictions written to {output}\n"
    assert output.read_text(encoding="utf-8") == printed
    assert sorted(p.name for p in tmp_path.iterdir()) == ["predictions.jsonl"]


@slow
@pytest.mark.parametrize("case", ["bad byte at line 1501", "missing bundle", "missing column"])
def test_predict_output_file_is_never_half_written(capsys, bundle_dir, tmp_path, case):
    """An error midway leaves an earlier output file as it was, and no partial file beside it."""
    lines = [b"SMS"] + [f"message number {i}".encode() for i in range(2000)]
    if case == "bad byte at line 1501":
        lines[1500] = b"bad \xff byte"
    csv = write_csv(tmp_path / "messages.csv", b"\n".join(lines).replace(b"SMS", b"body" if case == "missing column" else b"SMS", 1) + b"\n")
    output = tmp_path / "predictions.jsonl"
    output.write_text("earlier results\n")
    bundle = tmp_path / "no-bundle" if case == "missing bundle" else bundle_dir
    status, out, err = run(capsys, "predict", "--bundle", bundle, "--csv", csv, "--output", output)
    assert (status, out) == (2, "")
    assert the_error(err).startswith("ERROR ")
    assert output.read_text() == "earlier results\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["messages.csv", "predictions.jsonl"]


@slow
def test_predict_output_into_a_missing_folder(capsys, bundle_dir, tmp_path):
    output = tmp_path / "nowhere" / "out.jsonl"
    status, _, err = run(capsys, "predict", "--bundle", bundle_dir, "--output", output, "hi")
    assert status == 2
    assert the_error(err) == f"ERROR output '{output}' cannot be written: folder '{output.parent}' does not exist"


# ---- export and train refuse an existing folder --------------------------------------------------------


@slow
def test_export_to_an_existing_folder_without_force_leaves_it_untouched(capsys, run_dir, tmp_path):
    existing = tmp_path / "bundle"
    existing.mkdir()
    (existing / "keep.txt").write_text("mine")
    status, _, err = run(capsys, "export", run_dir, "--out", existing)
    assert status == 2
    assert the_error(err) == f"ERROR bundle '{existing}' already exists; pass --force to replace it, or choose another --out"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bundle"]  # no partial folder beside it
    assert [(p.name, p.read_text()) for p in existing.iterdir()] == [("keep.txt", "mine")]


@slow
def test_export_refuses_an_existing_folder_before_loading_tensorflow(run_dir, tmp_path):
    (tmp_path / "bundle").mkdir()
    done = smsguard("export", run_dir, "--out", tmp_path / "bundle", options=("-X", "importtime"))
    assert done.returncode == 2
    assert the_error(done.stderr).startswith(f"ERROR bundle '{tmp_path / 'bundle'}' already exists")
    imported = re.findall(r"^import time:\s+\d+ \|\s+\d+ \|\s*(\S+)$", done.stderr, re.MULTILINE)
    assert "smsguard.cli" in imported  # the report was parsed
    assert [name for name in imported if name.startswith(TENSORFLOW)] == []


@slow
def test_train_refuses_an_existing_folder_before_training(tmp_path, data_path):
    (tmp_path / "run").mkdir()
    done = smsguard("train", "--out", tmp_path / "run", "--data", data_path, "--epochs", "1", options=("-X", "importtime"))
    assert done.returncode == 2
    assert the_error(done.stderr).startswith(f"ERROR run folder '{tmp_path / 'run'}' already exists")
    imported = re.findall(r"^import time:\s+\d+ \|\s+\d+ \|\s*(\S+)$", done.stderr, re.MULTILINE)
    assert "smsguard.cli" in imported  # the report was parsed
    assert [name for name in imported if name.startswith(TENSORFLOW)] == []


# ---- verify ------------------------------------------------------------------------------------------------


def pairs(bundle_dir: Path) -> list[tuple[str, str]]:
    return [
        (name, b.name) for name, entry in Bundle.load(bundle_dir).models.items() for b in installed_backends() if b.format == entry.format
    ]


@slow
def test_verify_checks_every_model_with_every_backend(capsys, bundle_dir):
    status, out, err = run(capsys, "verify", bundle_dir)
    assert status == 0, err
    assert out == ""
    assert len(pairs(bundle_dir)) >= 6
    for model, backend in pairs(bundle_dir):
        assert re.search(rf"^  -\[✓\] {re.escape(model)} \[{backend}\]: max diff ", err, re.MULTILINE), (model, backend)
    assert "-[x]" not in err
    assert "ERROR" not in err
    assert err.splitlines()[-1] == f"* All {len(pairs(bundle_dir))} model/backend pairs match"


@slow
def test_verify_fails_and_names_the_model_whose_golden_output_was_changed(capsys, bundle_copy):
    def change(manifest: dict) -> None:
        probabilities = manifest["golden"][5]["probabilities"]
        p = probabilities["model.dynamic_int8.onnx"]
        probabilities["model.dynamic_int8.onnx"] = p + 0.5 if p < 0.5 else p - 0.5

    edit_manifest(bundle_copy, change)
    status, _, err = run(capsys, "verify", bundle_copy)
    assert status == 1
    failed = [line for line in err.splitlines() if line.startswith("  -[x]")]
    assert len(failed) == 1
    assert failed[0].startswith("  -[x] model.dynamic_int8.onnx [onnxruntime]: max diff 0.5 vs export (atol 0.01)")
    n = len(pairs(bundle_copy))
    assert the_error(err) == f"ERROR {n - 1} of {n} model/backend pairs match the export machine; 1 does not"


@slow
def test_verify_in_a_real_process(bundle_dir):
    done = smsguard("verify", bundle_dir, "--backend", "onnxruntime")
    assert done.returncode == 0, done.stderr
    checked = re.findall(r"^  -\[✓\] (\S+) \[(\S+)\]", done.stderr, re.MULTILINE)
    assert checked == [(m, b) for m, b in pairs(bundle_dir) if b == "onnxruntime"]


@slow
def test_verify_with_an_unknown_backend_name_says_so(capsys, bundle_dir):
    status, _, err = run(capsys, "verify", bundle_dir, "--backend", "onnx")
    assert status == 2
    assert the_error(err).startswith("ERROR unknown backend 'onnx'; choose one of: ")


# ---- bench ----------------------------------------------------------------------------------------------------


@slow
def test_bench_writes_json_and_markdown(capsys, bundle_dir, run_dir, tmp_path):
    json_path, markdown_path = tmp_path / "bench.json", tmp_path / "bench.md"
    status, out, err = run(
        capsys, "bench", bundle_dir, "--runs", "10", "--keras-runs", "10", "--warmup", "0", "--threads", "3",
        "--json", json_path, "--markdown", markdown_path, "--keras-model", run_dir / "model.keras",
    )
    assert status == 0, err
    report = json.loads(json_path.read_text(encoding="utf-8"))
    results = report["results"]
    assert sorted((r["system"], r["backend"]) for r in results if r["system"] != "Keras model.predict") == sorted(pairs(bundle_dir))
    keras = [r for r in results if r["system"] == "Keras model.predict"]
    assert len(keras) == 1 and keras[0]["backend"].startswith("keras ")
    assert all(r["runs"] == 10 for r in results)
    assert all(np.isfinite([r["p50_us"], r["p95_us"], r["p99_us"], r["load_ms"], r["first_ms"]]).all() for r in results)
    throughput = report["throughput"]
    assert [(t["system"], t["backend"], t["threads"]) for t in throughput] == [(m, b, n) for m, b in pairs(bundle_dir) for n in (1, 2, 3)]
    assert all(t["messages"] == 30 and t["messages_per_s"] > 0 for t in throughput)  # 10 runs x 3 threads, split among them
    assert report["update"]["reload_ms"] > 0 and report["update"]["signature_verify_ms"] > 0  # measured, whatever they are
    assert "  update: signature check " in err
    markdown = markdown_path.read_text(encoding="utf-8")
    assert "| model | backend | size | load | first call | p50 | p95 | p99 |\n|---|---|---:|---:|---:|---:|---:|---:|\n" in markdown
    assert "| model | backend | 1 thread | 2 threads | 3 threads |\n|---|---|---:|---:|---:|\n" in markdown
    assert markdown.count("\n| ") == len(results) + 1 + len(pairs(bundle_dir)) + 1  # headers and one row per result
    assert out == markdown + "\n"


@slow
def test_bench_refuses_a_keras_model_the_bundle_was_not_exported_from(capsys, bundle_dir, tmp_path):
    other = tmp_path / "model.keras"
    other.write_bytes(b"not the source model")
    status, out, err = run(capsys, "bench", bundle_dir, "--runs", "10", "--keras-model", other)
    assert out == ""
    assert status == 2
    source = Bundle.load(bundle_dir).manifest.source
    assert the_error(err).startswith(
        f"ERROR Keras model '{other}' is not the one bundle '{bundle_dir}' was exported from (run '{source.run}', model.keras sha256 "
    )
