"""`smsguard score` with the local engine, and the per-batch function every engine maps, on a real bundle."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from score_cases import (
    EXACT_BACKENDS,
    NOT_UTF8,
    NOT_UTF8_ERROR,
    bad_rows_table,
    check_bad_rows,
    read_output,
    reference,
    same_bits,
    write_parts,
)

from smsguard.cli import main
from smsguard.runtime import Classifier, IntegrityError
from smsguard.score import LocalEngine, OutputColumns, ScoreConfig, ScoreError, Scorer, manifest_sha256, score_files
from smsguard.score._shipping import pack, scorer_for, ticket_for, unpack

COLUMNS = ["spam_probability", "spam_label", "spam_error", "spam_model", "spam_manifest_sha256"]


def run(capsys, *argv) -> tuple[int, str, str]:
    status = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return status, out, err


def one_error_line(err: str) -> str:
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.startswith("ERROR")]
    assert len(lines) == 1, err
    return lines[0]


@pytest.fixture(scope="module")
def onnx_scorer(bundle_dir: Path) -> Scorer:
    return Scorer(Classifier.load(bundle_dir, backend="onnxruntime"))


@pytest.fixture(scope="module")
def uci_table(uci_texts: list[str]) -> pa.Table:
    return pa.table({"id": pa.array(range(len(uci_texts)), pa.int64()), "text": uci_texts})


# ---- the per-batch function ---------------------------------------------------------------------


def test_a_batch_keeps_its_rows_and_columns_and_gains_five(onnx_scorer, bundle_dir):
    texts = ["WINNER!! claim your prize now", "see you at 6", "", "😀 中文"]
    batch = pa.record_batch({"id": [7, 8, 9, 10], "text": texts, "extra": [1.5, None, 2.5, 3.5]})
    out = onnx_scorer(batch)
    assert out.schema.names == ["id", "text", "extra", *COLUMNS]
    assert out.schema.field("spam_probability").type == pa.float32()
    for name in ("id", "text", "extra"):
        assert out.column(name).equals(batch.column(name))
    classifier = Classifier.load(bundle_dir, backend="onnxruntime")
    assert same_bits(out.column("spam_probability").to_numpy(), classifier.predict_proba(texts))
    assert out.column("spam_label").to_pylist() == classifier.predict(texts)
    assert out.column("spam_error").to_pylist() == [None] * 4
    assert set(out.column("spam_model").to_pylist()) == {classifier.model.name}
    assert set(out.column("spam_manifest_sha256").to_pylist()) == {manifest_sha256(bundle_dir)}


def test_a_null_text_keeps_its_row_with_a_null_probability_and_says_why(onnx_scorer):
    out = onnx_scorer(pa.record_batch({"id": [1, 2, 3], "text": ["hello", None, "prize"]}))
    assert out.column("id").to_pylist() == [1, 2, 3]
    assert out.column("spam_probability").is_null().to_pylist() == [False, True, False]
    assert out.column("spam_label").is_null().to_pylist() == [False, True, False]
    assert out.column("spam_error").to_pylist() == [None, "text is null", None]


def test_bytes_that_are_not_utf8_fail_their_row_only_with_the_runtimes_message(onnx_scorer, bundle_dir, uci_texts):
    table = bad_rows_table(uci_texts[:8])
    out = pa.Table.from_batches([onnx_scorer(b) for b in table.to_batches()])
    check_bad_rows(out, table, bundle_dir)
    with pytest.raises(ValueError, match=re.escape(NOT_UTF8_ERROR.replace("text is", "text at index 0 is"))):
        Classifier.load(bundle_dir, backend="onnxruntime").predict_proba([NOT_UTF8])  # the runtime's own words


def test_a_string_column_holding_bytes_that_are_not_utf8_is_read_row_by_row(onnx_scorer):
    good = b"see you at 6"
    data = good + NOT_UTF8
    column = pa.Array.from_buffers(pa.string(), 2, [None, pa.py_buffer(np.array([0, len(good), len(data)], np.int32).tobytes()), pa.py_buffer(data)])
    out = onnx_scorer(pa.record_batch([pa.array([1, 2]), column], names=["id", "text"]))
    errors = out.column("spam_error").to_pylist()
    assert errors[0] is None and errors[1].startswith(NOT_UTF8_ERROR)


def test_a_dictionary_and_an_all_null_text_column_are_text(onnx_scorer):
    out = onnx_scorer(pa.record_batch({"text": pa.array(["a", "b", "a"]).dictionary_encode()}))
    assert out.column("spam_error").null_count == 3
    out = onnx_scorer(pa.record_batch({"text": pa.nulls(2)}))
    assert out.column("spam_error").to_pylist() == ["text is null"] * 2


@pytest.mark.parametrize(
    ("schema", "message"),
    [
        (pa.schema([("text", pa.int64())]), "input: text column 'text' is int64, expected strings (string or binary)"),
        (pa.schema([("body", pa.string())]), "input has no text column 'text'; found 'body': pass --text-column NAME"),
        (pa.schema([("text", pa.string()), ("spam_label", pa.string())]), "input already has column 'spam_label', which scoring adds"),
        (pa.schema([("text", pa.list_(pa.string()))]), "text column 'text' is list<item: string>"),
    ],
)
def test_a_schema_that_cannot_be_scored_is_refused_in_one_line(onnx_scorer, schema, message):
    with pytest.raises(ScoreError, match=re.escape(message)) as caught:
        onnx_scorer.check(schema)
    assert "\n" not in str(caught.value)


def test_output_columns_take_their_prefix():
    assert OutputColumns("sms").names == ("sms_probability", "sms_label", "sms_error", "sms_model", "sms_manifest_sha256")
    with pytest.raises(ScoreError, match="out_col must be a non-empty column prefix"):
        OutputColumns("")


# ---- shipping: the archive a worker unpacks, checks and loads ------------------------------------


def test_a_shipped_bundle_is_named_by_its_manifest_hash_and_loaded_once_per_process(bundle_dir, tmp_path):
    classifier = Classifier.load(bundle_dir, backend="onnxruntime")
    ticket = ticket_for(classifier, "text", "spam")
    assert ticket.file_name == f"smsguard-{manifest_sha256(bundle_dir)[:16]}-{classifier.model.name}.zip"
    archive = pack(classifier, ticket)
    assert pack(classifier, ticket) == archive  # the same path again, as Spark's addFile needs
    calls = []
    first = scorer_for(ticket, lambda: calls.append(1) or archive, lambda: tmp_path)
    again = scorer_for(ticket, lambda: calls.append(1) or archive, lambda: tmp_path)
    assert first is again and calls == [1]
    assert first.classifier.model.name == classifier.model.name and first.classifier.backend == "onnxruntime"


def test_a_ticket_carries_the_threads_a_worker_scores_with_and_refuses_a_bad_count(tiny_bundle, tmp_path):
    classifier = Classifier.load(tiny_bundle)
    ticket = ticket_for(classifier, "text", "spam", threads=1)
    scorer = scorer_for(ticket, lambda: pack(classifier, ticket), lambda: tmp_path)
    assert scorer.threads == 1 and ticket_for(classifier, "text", "spam").threads == 0
    for bad in (-1, 2.0, None):
        with pytest.raises(ScoreError, match=rf"^threads must be 0 \(one per core\) or a positive number of threads, found {bad!r}$"):
            ticket_for(classifier, "text", "spam", threads=bad)


def test_a_worker_refuses_a_shipped_bundle_whose_hashes_differ(bundle_copy, tmp_path):
    import zipfile

    classifier = Classifier.load(bundle_copy, backend="onnxruntime")
    ticket = ticket_for(classifier, "text", "spam")
    archive = pack(classifier, ticket)
    with zipfile.ZipFile(archive) as zipped:
        members = {name: zipped.read(name) for name in zipped.namelist()}

    def repacked(name: str, change) -> Path:
        path = tmp_path / name / ticket.file_name
        path.parent.mkdir()
        with zipfile.ZipFile(path, "w") as zipped:
            for member, data in members.items():
                zipped.writestr(member, change(member, data))
        return path

    wrong_manifest = repacked("m", lambda m, d: d + b" " if m == "manifest.json" else d)
    with pytest.raises(IntegrityError, match="does not match: manifest sha256"):
        unpack(wrong_manifest, ticket, tmp_path)
    wrong_model = repacked("x", lambda m, d: d[:-1] + bytes([d[-1] ^ 1]) if m == classifier.model.name else d)
    folder = unpack(wrong_model, ticket, tmp_path)
    with pytest.raises(IntegrityError, match="does not match its manifest"):
        Classifier.load(folder, backend="onnxruntime", model=classifier.model.name)


# ---- the local engine ---------------------------------------------------------------------------


def test_score_writes_every_row_and_column_of_a_parquet_folder(capsys, bundle_dir, uci_table, tmp_path):
    inputs = write_parts(uci_table.append_column("when", pa.array(range(len(uci_table)), pa.int32())), tmp_path / "in", 3)
    status, out, err = run(capsys, "score", "--bundle", bundle_dir, "--input", inputs, "--output", tmp_path / "out", "--backend", "onnxruntime")
    assert status == 0, err
    assert out == ""
    assert "5,574 rows scored (0 with an error)" in err
    written = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert written == ["_smsguard.json", "part-00000.parquet", "part-00001.parquet", "part-00002.parquet"]
    table = read_output(tmp_path / "out")
    assert table.schema.names == ["id", "text", "when", *COLUMNS]
    assert table.column("id").to_pylist() == uci_table.column("id").to_pylist()
    assert table.column("text").to_pylist() == uci_table.column("text").to_pylist()
    texts = uci_table.column("text").to_pylist()
    assert same_bits(table.column("spam_probability").to_numpy(), reference(bundle_dir, "onnxruntime", texts))
    summary = json.loads((tmp_path / "out" / "_smsguard.json").read_text())
    assert summary["rows"] == len(texts) and summary["errors"] == 0 and summary["backend"] == "onnxruntime"
    assert summary["bundle_manifest_sha256"] == manifest_sha256(bundle_dir)
    assert [f["input"] for f in summary["files"]] == ["part-000.parquet", "part-001.parquet", "part-002.parquet"]
    assert str(tmp_path) not in json.dumps(summary)  # names and hashes, never the machine's paths


@pytest.mark.parametrize("backend", EXACT_BACKENDS)
@pytest.mark.parametrize("batch_rows", [1, 100, 4096])
def test_local_scores_equal_plain_scoring_bit_for_bit_whatever_the_batch(bundle_dir, uci_table, tmp_path, backend, batch_rows):
    table = uci_table if batch_rows > 1 else uci_table.slice(0, 1500)  # one row at a time is slow: fewer rows
    inputs = write_parts(table, tmp_path / "in", 2)
    score_files(bundle_dir, str(inputs), tmp_path / "out", ScoreConfig(backend=backend, batch_rows=batch_rows), engine=LocalEngine(progress=False))
    out = read_output(tmp_path / "out")
    assert same_bits(out.column("spam_probability").to_numpy(), reference(bundle_dir, backend, table.column("text").to_pylist()))


def test_bad_rows_keep_their_row_and_id_in_the_output(capsys, bundle_dir, uci_texts, tmp_path):
    table = bad_rows_table(uci_texts[:50])
    write_parts(table, tmp_path / "in", 2)
    status, _, err = run(capsys, "score", "--bundle", bundle_dir, "--input", tmp_path / "in", "--output", tmp_path / "out",
                         "--backend", "onnxruntime", "--id-column", "id")
    assert status == 0, err
    assert "50 rows scored (2 with an error)" in err
    assert "rows with an error (id): 101, 103" in err
    out = read_output(tmp_path / "out")
    assert out.schema.field("text").type == pa.binary()  # kept as it was read
    check_bad_rows(out, table, bundle_dir)


def test_csv_and_json_lines_inputs(capsys, bundle_dir, tmp_path):
    (tmp_path / "in.csv").write_text('id,text\n1,"hello, see you at 6"\n2,12345\n3,"WINNER!! claim your prize: call now"\n', encoding="utf-8")
    status, _, err = run(capsys, "score", "--bundle", bundle_dir, "--input", tmp_path / "in.csv", "--output", tmp_path / "csv", "--backend", "onnxruntime")
    assert status == 0, err
    out = read_output(tmp_path / "csv")
    texts = ["hello, see you at 6", "12345", "WINNER!! claim your prize: call now"]
    assert out.column("text").to_pylist() == texts  # a message of digits is still a message
    assert same_bits(out.column("spam_probability").to_numpy(), reference(bundle_dir, "onnxruntime", texts))
    lines = [{"id": "a", "text": "see you at 6"}, {"id": "b", "text": None}, {"id": "c"}, {"id": "d", "text": "free prize"}]
    (tmp_path / "j").mkdir()
    (tmp_path / "j" / "1.jsonl").write_text("\n".join(json.dumps(line) for line in lines[:2]) + "\n", encoding="utf-8")
    (tmp_path / "j" / "2.jsonl").write_text("\n".join(json.dumps(line) for line in lines[2:]) + "\n", encoding="utf-8")
    status, _, err = run(capsys, "score", "--bundle", bundle_dir, "--input", str(tmp_path / "j" / "*.jsonl"), "--output", tmp_path / "json",
                         "--backend", "onnxruntime", "--id-column", "id")
    assert status == 0, err
    out = read_output(tmp_path / "json")
    assert out.column("id").to_pylist() == ["a", "b", "c", "d"]
    assert out.column("spam_error").to_pylist() == [None, "text is null", "text is null", None]


@pytest.mark.parametrize(
    ("make", "argv", "message"),
    [
        (lambda d: pq.write_table(pa.table({"text": [1, 2]}), d / "a.parquet"), [], "text column 'text' is int64, expected strings"),
        (lambda d: pq.write_table(pa.table({"body": ["x"]}), d / "a.parquet"), [], "has no text column 'text'; found 'body'"),
        (lambda d: pq.write_table(pa.table({"text": ["x"]}), d / "a.parquet"), ["--id-column", "id"], "has no id column 'id'; found 'text'"),
        (lambda d: pq.write_table(pa.table({"text": ["x"], "spam_error": ["y"]}), d / "a.parquet"), [], "already has column 'spam_error'"),
        (lambda d: (d / "a.txt").write_text("hello"), [], "cannot tell the format of input file"),
        (lambda d: None, [], "holds no files"),
        (lambda d: (d / "a.csv").write_bytes(b"text\ncaf\xe9\n"), [], "cannot be read"),
    ],
)
def test_score_refuses_bad_input_in_one_line_and_writes_nothing(capsys, bundle_dir, tmp_path, make, argv, message):
    (tmp_path / "in").mkdir()
    make(tmp_path / "in")
    status, _, err = run(capsys, "score", "--bundle", bundle_dir, "--input", tmp_path / "in", "--output", tmp_path / "out", *argv)
    assert status == 2
    assert message in one_error_line(err)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in"]  # no output, nothing half written beside it


def test_a_second_file_of_another_type_is_refused_before_anything_is_written(capsys, bundle_dir, tmp_path):
    (tmp_path / "in").mkdir()
    pq.write_table(pa.table({"text": ["hello"]}), tmp_path / "in" / "a.parquet")
    pq.write_table(pa.table({"text": [3]}), tmp_path / "in" / "b.parquet")
    status, _, err = run(capsys, "score", "--bundle", bundle_dir, "--input", tmp_path / "in", "--output", tmp_path / "out")
    assert status == 2
    assert f"input file '{tmp_path / 'in' / 'b.parquet'}': text column 'text' is int64" in one_error_line(err)
    assert not (tmp_path / "out").exists()


def test_a_file_that_breaks_midway_leaves_no_output(capsys, bundle_dir, uci_table, tmp_path):
    inputs = write_parts(uci_table, tmp_path / "in", 2)
    broken = inputs / "part-001.parquet"
    data = broken.read_bytes()
    broken.write_bytes(data[:4] + b"\0" * (len(data) // 2) + data[4 + len(data) // 2 :])  # footer intact, pages broken
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "earlier.txt").write_text("kept")
    status, _, err = run(capsys, "score", "--bundle", bundle_dir, "--input", inputs, "--output", tmp_path / "out", "--force")
    assert status == 2
    assert f"input file '{broken}' cannot be read" in one_error_line(err)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["earlier.txt"]  # the earlier output, untouched
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in", "out"]


def test_an_existing_output_is_refused_without_force(capsys, bundle_dir, tmp_path):
    (tmp_path / "in.parquet").write_bytes(b"")
    (tmp_path / "out").mkdir()
    status, _, err = run(capsys, "score", "--bundle", bundle_dir, "--input", tmp_path / "in.parquet", "--output", tmp_path / "out")
    assert status == 2
    assert "output" in one_error_line(err) and "already exists; pass --force" in err


def test_an_unknown_engine_is_refused_by_argparse(capsys, bundle_dir, tmp_path):
    with pytest.raises(SystemExit) as exit_:
        main(["score", "--bundle", str(bundle_dir), "--input", "x", "--output", "y", "--engine", "ray"])
    assert exit_.value.code == 2
    assert re.search(r"invalid choice: 'ray' \(choose from '?local'?, '?spark'?, '?dask'?\)", capsys.readouterr().err)
