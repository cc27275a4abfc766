"""What the scoring tests of every engine share: bad-row cases, the reference scores, the backends to run."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from smsguard.runtime import Classifier

NOT_UTF8 = b"caf\xe9 tonight? \xff"  # latin-1 bytes: 0xe9 at offset 3 is the first bad byte
NOT_UTF8_ERROR = "text is bytes that are not UTF-8: byte 0xe9 at offset 3"

# Exactness needs batch-invariant scoring. LiteRT and ONNX Runtime are; numba and NumPy (the default
# `auto` backend, with the `fast` extra) differ by up to 3e-7 between batch sizes until issue 11 lands.
EXACT_BACKENDS = ["litert", "onnxruntime", "auto"]  # auto: native (or numba), one code path per message whatever the batch


def reference(bundle: Path, backend: str, texts: list[str]) -> np.ndarray:
    """Plain scoring on one machine, in one call: what every engine must reproduce bit for bit."""
    return Classifier.load(bundle, backend=backend).predict_proba(texts)


def same_bits(a: np.ndarray, b: np.ndarray) -> bool:
    a, b = np.asarray(a, dtype=np.float32), np.asarray(b, dtype=np.float32)
    return a.shape == b.shape and bool(np.array_equal(a.view(np.uint32), b.view(np.uint32)))


def bad_rows_table(texts: list[str]) -> pa.Table:
    """Good texts around a null and a row of bytes that are not UTF-8, text read as binary, with ids."""
    raw: list[bytes | None] = [t.encode("utf-8") for t in texts]
    raw[1] = None
    raw[3] = NOT_UTF8
    return pa.table({"id": pa.array(range(100, 100 + len(raw)), pa.int64()), "text": pa.array(raw, pa.binary()),
                     "note": pa.array([f"n{i}" for i in range(len(raw))])})


def check_bad_rows(out: pa.Table, table: pa.Table, bundle: Path, backend: str = "onnxruntime", prefix: str = "spam") -> None:
    """The output has exactly the input's rows and ids, in order; the two bad rows say why; the rest are scored."""
    assert out.column("id").to_pylist() == table.column("id").to_pylist()
    assert out.column("note").to_pylist() == table.column("note").to_pylist()
    errors = out.column(f"{prefix}_error").to_pylist()
    probabilities = out.column(f"{prefix}_probability").to_pylist()
    labels = out.column(f"{prefix}_label").to_pylist()
    assert errors[1] == "text is null"
    assert errors[3].startswith(NOT_UTF8_ERROR)
    assert probabilities[1] is None and probabilities[3] is None and labels[1] is None and labels[3] is None
    good = [i for i in range(len(errors)) if i not in (1, 3)]
    assert all(errors[i] is None for i in good)
    texts = [table.column("text")[i].as_py().decode("utf-8") for i in good]
    expected = reference(bundle, backend, texts)
    assert same_bits(np.array([probabilities[i] for i in good], dtype=np.float32), expected)


def write_parts(table: pa.Table, folder: Path, parts: int) -> Path:
    """`table` as `parts` Parquet files of about equal rows, in order."""
    folder.mkdir(parents=True, exist_ok=True)
    size = -(-len(table) // parts)
    for number in range(parts):
        pq.write_table(table.slice(number * size, size), folder / f"part-{number:03d}.parquet")
    return folder


def read_output(folder: Path) -> pa.Table:
    """Every Parquet part of an output folder, in name order."""
    files = sorted(p for p in folder.glob("*.parquet") if not p.name.startswith(("_", ".")))
    return pa.concat_tables([pq.read_table(p) for p in files])
