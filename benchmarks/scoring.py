"""Scoring a data set on one machine, with Spark and with Dask (docs/how-to/scoring.md), on the default (fused) bundle
with the word model as a second row.

    python benchmarks/scoring.py [--bundle DIR] [--word-bundle DIR] [--rows 1000000] [--files 8] [--rounds 1] [--backend auto] [--only plain-1,spark,...]

The data: the UCI messages replicated to `--rows` rows (with an `id`), written as `--files` Parquet
files to a temporary folder. Each case runs in a fresh process; the parent samples the resident memory
of that process and all its children (JVMs, Python workers, Dask nannies and workers) every 0.1 s and
reports the peak of the sum. Figures per case:

- start-up: from the process's start until the engine can score (bundle loaded; Spark session up and
  the bundle shipped; Dask LocalCluster up);
- rows/s: rows / the seconds of the job: for plain scoring `predict_proba` of the texts already read;
  for the engines read Parquet -> score -> write Parquet;
- equal: the probabilities, ordered by id, against plain scoring in one process, bit for bit.

The cases that tune what the adapters control: Spark's Arrow batch size (10,000 rows, the default, 50,000 and 100),
its partitions (the files' own, and as many as the cores) and its JVM's compiler (C1 alone); Dask's partitions (one per
file, and one per core) and its threads per task (one, the default, and a pool of one per core in each task, as before
issue 22). Every process runs with nothing tuned in its environment. Without --bundle it trains and exports the default model first,
without --word-bundle the word model (the tuned preset; a few minutes each). Writes benchmarks/results/scoring.json and
scoring.md (scoring-BACKEND.* with --backend), with the date, the CPU and the load average. Also profiles the per-batch
function on 100,000 rows in 10,000-row batches (where the time of a batch goes, beside the engine's own read -> Python ->
write).
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import platform
import pstats
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
from _results import command_line, cpu_name, write_results  # benchmarks/, beside this script

RESULTS = Path(__file__).resolve().parent / "results"
STARTED = time.time()  # a child's start-up is measured from here (close to the interpreter's start)

CASES = {
    # name: description; a case of the word model is "word:" + its name
    "plain-1": "plain `predict_proba`, 1 process (threads, as many as the cores)",
    "plain-2": "plain `predict_proba(workers=2)`",
    "spark": "Spark {version} `local[2]`, `mapInArrow`, 10,000-row batches (the default)",
    "spark-50000": "Spark {version} `local[2]`, same, 50,000-row batches",
    "spark-100": "Spark {version} `local[2]`, same, 100-row batches",
    "spark-cores": "Spark {version} `local[2]`, 10,000-row batches, repartitioned to one partition per core",
    "spark-warm": "Spark {version} `local[2]`, 10,000-row batches, the same job a second time in the session (a warm JVM)",
    "spark-c1": "Spark {version} `local[2]`, 10,000-row batches, the JVM compiling with C1 alone (`-XX:TieredStopAtLevel=1`: less JIT work, slower code)",
    "spark-noscore": "Spark {version} `local[2]`, read -> Python (`mapInArrow`, identity) -> write, no scoring",
    "dask": "Dask {version} `map_partitions`, `local_client()`: 1 worker x 2 threads in the client's process, a partition per file (the defaults)",
    "dask-own-thread": "Dask {version} `map_partitions`, same, each task scoring on its own thread (`score(threads=1)`, the default before 2026-12-05)",
    "dask-cores": "Dask {version} `map_partitions`, same, repartitioned to one partition per core",
    "dask-processes": "Dask {version} `map_partitions`, `local_client(threads=False)`: 2 worker processes x 1 thread, a partition per file",
}
WORD_CASES = ("plain-1", "plain-2", "spark", "dask")  # the word model's rows
WORD = "word:"


# ---- the cases, each in its own process ----------------------------------------------------------


def child(kind: str, bundle: str, data: str, work: str, backend: str) -> dict:
    """One case in this (fresh) process: `kind` is a name of CASES, "word:" before it for the word model's bundle."""
    files = sorted(str(p) for p in Path(data).glob("*.parquet"))
    case, out = kind.removeprefix(WORD), Path(work) / f"out-{kind.replace(':', '-')}"
    if case.startswith("plain"):
        return plain(case, bundle, files, out, backend)
    result = spark_case(case, bundle, files, out, backend) if case.startswith("spark") else dask_case(case, bundle, files, out, backend)
    if case != "spark-noscore":
        import pyarrow.dataset as ds

        table = ds.dataset(str(out), format="parquet").to_table(columns=["id", "spam_probability", "spam_model"])
        order = np.argsort(table.column("id").to_numpy(), kind="stable")
        np.save(out.with_suffix(".npy"), table.column("spam_probability").to_numpy()[order])
        result["model"] = table.column("spam_model")[0].as_py()
    result["rows"] = _rows(files)
    return result


def plain(case: str, bundle: str, files: list[str], out: Path, backend: str) -> dict:
    import pyarrow.parquet as pq

    from smsguard.runtime import Classifier

    classifier = Classifier.load(bundle, backend=backend)
    classifier.predict_proba(["warm up"])
    ready = time.time()
    table = pq.read_table(files, columns=["id", "text"])
    texts = table.column("text").to_pylist()
    began = time.time()
    probabilities = classifier.predict_proba(texts, workers=2 if case == "plain-2" else 1)
    seconds = time.time() - began
    order = np.argsort(table.column("id").to_numpy(), kind="stable")
    np.save(out.with_suffix(".npy"), probabilities[order])
    return {"startup_seconds": ready - STARTED, "seconds": seconds, "rows": len(texts), "backend": classifier.backend, "model": classifier.model.name}


def spark_case(case: str, bundle: str, files: list[str], out: Path, backend: str) -> dict:
    from smsguard.spark import local_session, score

    batch = {"spark-100": 100, "spark-50000": 50_000}.get(case, 10_000)
    conf = {"spark.sql.execution.arrow.maxRecordsPerBatch": str(batch)}
    if case == "spark-c1":
        conf["spark.driver.extraJavaOptions"] = "-XX:TieredStopAtLevel=1"  # local[N]: the executor is the driver's JVM
    spark = local_session("local[2]", **conf)
    df = spark.read.parquet(*files)
    if case == "spark-cores":
        df = df.repartition(2)
    if case == "spark-noscore":
        spark.range(2).collect()
        scored = df.mapInArrow(_identity, df.schema)
    else:
        scored = score(df, bundle, backend=backend)
    if case == "spark-warm":  # the first run warms the JVM (its compiler) and the Python workers up; the second is timed
        scored.write.mode("overwrite").parquet(str(out) + "-first")
    ready = time.time()
    scored.write.mode("overwrite").parquet(str(out))
    seconds = time.time() - ready
    version = spark.version
    partitions = df.rdd.getNumPartitions()
    spark.stop()
    return {"startup_seconds": ready - STARTED, "seconds": seconds, "version": version, "batch_rows": batch, "partitions": partitions}


def dask_case(case: str, bundle: str, files: list[str], out: Path, backend: str) -> dict:
    import dask
    import dask.dataframe as dd

    from smsguard.dask import local_client, score

    with local_client(workers=2, threads=None if case != "dask-processes" else False) as client:
        client.wait_for_workers(len(client.nthreads()))
        ddf = dd.read_parquet(files)
        if case == "dask-cores":
            ddf = ddf.repartition(npartitions=2)
        scored = score(ddf, bundle, backend=backend, **({"threads": 1} if case == "dask-own-thread" else {}))
        shutil.rmtree(out, ignore_errors=True)  # a round before this one's parts
        ready = time.time()
        scored.to_parquet(str(out), write_index=False)
        seconds = time.time() - ready
    return {"startup_seconds": ready - STARTED, "seconds": seconds, "version": dask.__version__, "partitions": ddf.npartitions}


def _identity(batches):
    yield from batches


def _rows(files: list[str]) -> int:
    import pyarrow.parquet as pq

    return sum(pq.ParquetFile(f).metadata.num_rows for f in files)


def in_fresh_process(kind: str, bundle: Path, data: Path, work: Path, backend: str) -> dict:
    """Run one case in a new process; its result plus the peak resident memory of its whole process tree."""
    import psutil

    command = [sys.executable, __file__, "--child", kind, "--bundle", str(bundle), "--data", str(data), "--work", str(work), "--backend", backend]
    started = time.time()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    peak = [0]
    done = threading.Event()

    def sample() -> None:
        root = psutil.Process(process.pid)
        while not done.is_set():
            try:
                tree = [root, *root.children(recursive=True)]
                peak[0] = max(peak[0], sum(_rss(p) for p in tree))
            except psutil.Error:
                pass
            time.sleep(0.1)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    stdout, stderr = process.communicate()
    done.set()
    sampler.join()
    if process.returncode != 0:
        raise RuntimeError(f"case {kind} failed:\n{stderr[-3000:]}")
    result = json.loads(stdout.strip().splitlines()[-1])
    result["peak_rss_mb"] = peak[0] / 2**20
    result["wall_seconds"] = time.time() - started
    result["rows_per_second"] = result["rows"] / result["seconds"]
    return result


def _rss(process) -> int:
    import psutil

    try:
        return process.memory_info().rss
    except psutil.Error:  # a process that ended between listing and reading
        return 0


# ---- the data, the profile, the table ------------------------------------------------------------


def write_data(texts: list[str], rows: int, files: int, folder: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    replicated = (texts * (rows // len(texts) + 1))[:rows]
    table = pa.table({"id": pa.array(np.arange(rows, dtype=np.int64)), "text": replicated})
    size = -(-rows // files)
    folder.mkdir(parents=True, exist_ok=True)
    for number in range(files):
        pq.write_table(table.slice(number * size, size), folder / f"part-{number:02d}.parquet")


def profile_batches(bundle: Path, texts: list[str], backend: str) -> dict:
    """Where the time of the per-batch function goes: 100,000 rows in 10,000-row batches, in this process."""
    import pyarrow as pa

    from smsguard.runtime import Classifier
    from smsguard.score import Scorer

    scorer = Scorer(Classifier.load(bundle, backend=backend))
    rows = texts * (100_000 // len(texts) + 1)
    batches = [pa.record_batch({"id": np.arange(10_000), "text": rows[i * 10_000 : (i + 1) * 10_000]}) for i in range(10)]
    scorer(batches[0])
    profiler = cProfile.Profile()
    began = time.perf_counter()
    profiler.enable()
    for batch in batches:
        scorer(batch)
    profiler.disable()
    total = time.perf_counter() - began
    stats = pstats.Stats(profiler, stream=io.StringIO())
    parts = {  # label: (file, function)
        "read_texts (Arrow -> Python str)": ("score/_batch.py", "read_texts"),
        "predict_proba (text to probability in C, in threads)": ("runtime/_classifier.py", "predict_proba"),
    }
    found = {}
    for label, (where, name) in parts.items():
        found[label] = max((v[3] for k, v in stats.stats.items() if k[2] == name and where in k[0]), default=0.0)  # type: ignore[attr-defined]
    found["output columns (labels, Arrow arrays)"] = total - sum(found.values())
    found["whole batch function"] = total
    return {"rows": 100_000, "batch_rows": 10_000, "seconds": found}


TARGETS = (("spark", 0.8), ("dask", 0.9))  # issue 22: an engine's rows/s over plain predict_proba(workers=2)'s, at least


def targets(cases: dict) -> list[dict]:
    out = []
    for name, goal in TARGETS:
        if name in cases and "plain-2" in cases:
            ratio = cases[name]["rows_per_second"] / cases["plain-2"]["rows_per_second"]
            engine = "Spark local[2]" if name == "spark" else "Dask local_client()"
            out.append({"figure": f"{engine} / plain workers=2, default settings", "ratio": ratio, "target": f">= {goal:g}", "met": ratio >= goal})
    return out


def markdown(result: dict) -> str:
    cases = result["cases"]
    lines = [
        (
            f"Scoring {result['rows']:,} rows ({result['files']} Parquet files, the UCI messages replicated), {result['date'][:16].replace('T', ' ')} UTC, "
            f"{result['machine']['cpu']} ({result['machine']['cores']} cores), load average before: {result['load_before']}, after: {result['load_after']}"
            + (" — measured under load: ratios hold better than absolute figures." if result["under_load"] else ".")
        ),
        f"Command: `{result['command']}`. Models: **fused**, the default; **word**, the word LSTM alone (tuned preset). Nothing tuned in any "
        "process's environment; the rows below vary only what the adapters control.",
        "",
        "| figure | measured | target | met |",
        "|---|---:|---:|:---:|",
        *(f"| {t['figure']} | {t['ratio']:.2f} | {t['target']} | {'yes' if t['met'] else 'no'} |" for t in result["targets"]),
        "",
        "| model | engine | backend / model file | rows/s | / plain workers=2 | start-up | peak memory (all processes) | equal to plain scoring |",
        "|---|---|---|---:|---:|---:|---:|---|",
    ]
    for kind, case in cases.items():
        model, name = ("word", kind.removeprefix(WORD)) if kind.startswith(WORD) else ("fused", kind)
        reference = cases.get(("" if model == "fused" else WORD) + "plain-2", {}).get("rows_per_second")
        engine = CASES[name].format(version=case.get("version", ""))
        file = f"{result['backend_used']} / {case['model']}" if case.get("model") else "—"
        ratio = f"{case['rows_per_second'] / reference:.2f}" if reference else "—"
        lines.append(
            f"| {model} | {engine} | {file} | {case['rows_per_second']:,.0f} | {ratio} | {case['startup_seconds']:.1f} s | "
            f"{case['peak_rss_mb']:,.0f} MB | {case['equal']} |"
        )
    prof = result.get("profile")
    if prof:
        lines += ["", f"Per-batch function (fused), {prof['rows']:,} rows in {prof['batch_rows']:,}-row batches, one process (cProfile, cumulative seconds):", ""]
        lines += ["| part | seconds | share |", "|---|---:|---:|"]
        whole = prof["seconds"]["whole batch function"]
        lines += [f"| {label} | {seconds:.2f} | {seconds / whole:.0%} |" for label, seconds in prof["seconds"].items()]
    return "\n".join(lines) + "\n"


def prepare(args: argparse.Namespace, work: Path) -> dict[str, Path]:
    """The bundle of each model: as given, or trained and exported here (the default preset; the tuned one for the word model)."""
    bundles = {}
    for model, given, preset in (("fused", args.bundle, "fused"), ("word", args.word_bundle, "tuned"))[: 2 if args.word else 1]:
        if not given:
            from smsguard.export import ExportConfig, export
            from smsguard.train import TrainConfig, train

            print(f"* Training and exporting the {model} model (--preset {preset})", file=sys.stderr, flush=True)
            train(TrainConfig.from_preset(preset, data=args.data), work / f"{model}-run")
            export(work / f"{model}-run", work / f"{model}-bundle", ExportConfig(data=args.data))
        bundles[model] = Path(given) if given else work / f"{model}-bundle"
    return bundles


def _median_run(runs: list[dict]) -> dict:
    """A case's runs as one: the run of the median rows/s (its start-up and memory with it), and every round's rows/s."""
    ordered = sorted(runs, key=lambda run: run["rows_per_second"])
    return ordered[(len(ordered) - 1) // 2] | {"rounds_rows_per_second": [run["rows_per_second"] for run in runs]}


def run_cases(args: argparse.Namespace, bundles: dict[str, Path], data: Path, work: Path) -> dict[str, dict]:
    """Every case asked for (plain-1 first: the reference of "equal"), the fused model's then the word model's."""
    wanted = [name for name in args.only.split(",") if name]
    wanted = ["plain-1", *(name for name in wanted if name != "plain-1")]
    kinds = wanted + ([WORD + name for name in wanted if name in WORD_CASES] if args.word else [])
    runs: dict[str, list[dict]] = {kind: [] for kind in kinds}
    for round_number in range(args.rounds):  # every case once a round: a load that comes and goes weighs on all alike
        for kind in kinds:
            print(f"* {kind} (round {round_number + 1} of {args.rounds})", file=sys.stderr, flush=True)
            run = in_fresh_process(kind, bundles["word" if kind.startswith(WORD) else "fused"], data, work, args.backend)
            runs[kind].append(run)
            print(f"  {run['rows_per_second']:,.0f} rows/s, start-up {run['startup_seconds']:.1f} s, peak {run['peak_rss_mb']:,.0f} MB", file=sys.stderr, flush=True)
    cases = {kind: _median_run(done) for kind, done in runs.items()}
    for kind, case in cases.items():
        prefix = WORD if kind.startswith(WORD) else ""
        reference, path = np.load(work / f"out-{prefix.replace(':', '-')}plain-1.npy"), work / f"out-{kind.replace(':', '-')}.npy"
        if not path.exists():
            case["equal"] = "—"
            continue
        scores = np.load(path)
        same = scores.shape == reference.shape and np.array_equal(scores.view(np.uint32), reference.view(np.uint32))
        case["max_abs_diff"] = float(np.max(np.abs(scores - reference))) if scores.shape == reference.shape else None
        case["equal"] = "reference" if kind.endswith("plain-1") else ("yes" if same else f"**no** (max diff {case['max_abs_diff']:.2g})")
    return cases


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bundle", help="the default (fused) bundle (default: train and export one first)")
    parser.add_argument("--word-bundle", help="a word model's bundle, the second row (default: train and export one, tuned preset)")
    parser.add_argument("--data", help="the SMS Spam Collection (default: ../shared/data); with --child: the Parquet folder")
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--files", type=int, default=8)
    parser.add_argument("--backend", default="auto")
    parser.add_argument("--only", default=",".join(CASES), help="cases to run, comma-separated (default: all): " + ", ".join(CASES))
    parser.add_argument("--rounds", type=int, default=1, help="rounds of every case, interleaved; a case's figure is its median round")
    parser.add_argument("--no-word", dest="word", action="store_false", help="the default model's rows alone (no word model trained or scored)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--work", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.bundle, args.data, args.work, args.backend)))
        return 0

    began, load_before = time.time(), os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="smsguard-scoring-") as work_dir:
        work = Path(work_dir)
        bundles = prepare(args, work)
        from smsguard.runtime import Classifier
        from smsguard.train import load_messages
        from smsguard.train._data import locate_data

        texts = list(load_messages(locate_data(args.data)).texts)
        data = work / "data"
        write_data(texts, args.rows, args.files, data)
        cases = run_cases(args, bundles, data, work)
        print("* profile of the per-batch function", file=sys.stderr, flush=True)
        profile = profile_batches(bundles["fused"], texts, args.backend)
        backend_used = Classifier.load(bundles["fused"], backend=args.backend).backend

    load_after = os.getloadavg()
    result = {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": command_line("scoring.py"),
        "machine": {"cpu": cpu_name(), "cores": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "load_before": " ".join(f"{x:.2f}" for x in load_before),
        "load_after": " ".join(f"{x:.2f}" for x in load_after),
        "under_load": max(*load_before, *load_after) > 1.0,
        "rows": args.rows,
        "files": args.files,
        "backend": args.backend,
        "backend_used": backend_used,
        "cases": cases,
        "targets": targets(cases),
        "profile": profile,
    }
    name = "scoring" if args.backend == "auto" else f"scoring-{args.backend}"
    write_results(RESULTS, name, result, markdown(result), f"{time.time() - began:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
