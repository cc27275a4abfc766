"""`smsguard serve` under sustained load, on 127.0.0.1, with its defaults (nothing tuned; the access log on,
to a file as the journal would take it):

    python benchmarks/serve.py BUNDLE [--seconds 60] [--rate 500] [--batch 100] [--limit-batch 1000] [--stack-seconds 10] [--data FILE]
                                      [--aiohttp-path DIR] [--out benchmarks/results]

- start to first answer: from `exec` of `smsguard serve` to its first 200 on /healthz (which scores a
  message), the median of 5 starts (target: 0.5 s);
- single-message requests, closed loop: Debian's `wrk` (apt-get install wrk), 8 connections kept alive,
  for `--seconds`: requests a second, p50/p99/p99.9;
- single-message requests at a fixed `--rate` (500/s), open loop: a small asyncio client here, 32
  connections kept alive, each request sent on its schedule, latency from its send to its whole answer
  (target: p99 at most 5 ms);
- batched requests: `wrk`, 4 connections, `--batch` messages each (the data set's messages in turn, a
  request after another: the messages the in-process round scores), for `--seconds` cut in 6 rounds, each
  after a round of the in-process bulk rate (`Classifier.predict_proba` of every message of the data set,
  in this process, the server idle): messages a second, and the median of the rounds' ratios (target:
  at least 0.8x; alternating keeps a load that comes and goes from favouring either side); then the same
  with `--limit-batch` messages a request, the most `--max-messages` lets a request hold by default
  (1,000): what a client sending a backlog gets;
- the HTTP stacks considered (benchmarks/_serve_stacks.py: the standard library's http.server, tornado,
  aiohttp) and `smsguard serve`, each serving the same work with no access log, all started at once and
  measured in turn for 3 rounds: start to first answer, single and batched throughput for
  `--stack-seconds` a run (medians), memory (RSS) after.

Every figure carries the time it was taken and the load average then: this machine has 2 cores shared
with other agents, so figures taken while they work are low. Writes benchmarks/results/serve.{json,md}.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
from _results import cpu_name, write_results  # benchmarks/, beside this script

from smsguard.runtime import Classifier
from smsguard.serve import ServeConfig

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "SMSSpamCollection"
SINGLE = "WINNER!! You have been selected to receive a £900 prize reward! To claim call 09061701461. Valid 12 hours only."
LIMIT = next(f.default for f in dataclasses.fields(ServeConfig) if f.name == "max_messages")  # what `smsguard serve` takes in one request by default
START_LIMIT = 30.0  # seconds before a server that has not answered counts as failed to start
WRK_SCRIPT = """
local bodies = {}
for line in io.lines(os.getenv("BODY_FILE")) do bodies[#bodies + 1] = line end
local sent = 0
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
request = function()
  sent = sent % #bodies + 1
  return wrk.format(nil, nil, nil, bodies[sent])
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('{"requests": %d, "duration_us": %d, "socket_errors": %d, "non_2xx": %d, "p50_us": %d, "p99_us": %d, "p999_us": %d, "max_us": %d}\\n',
    summary.requests, summary.duration, e.connect + e.read + e.write + e.timeout, e.status,
    latency:percentile(50), latency:percentile(99), latency:percentile(99.9), latency.max))
end
"""


def now() -> dict:
    """When a figure was taken, and the machine's load average then (1 and 5 minutes)."""
    one, five, _ = os.getloadavg()
    return {"at": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC"), "load": [round(one, 2), round(five, 2)]}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_answer(port: int, process: subprocess.Popen, started: float) -> float:
    """Seconds from `started` to the first 200 of /healthz."""
    while time.perf_counter() - started < START_LIMIT:
        if process.poll() is not None:
            raise SystemExit(f"the server exited with status {process.returncode} before answering")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as response:
                if response.status == 200:
                    return time.perf_counter() - started
        except OSError:
            time.sleep(0.002)
    raise SystemExit(f"no answer on port {port} within {START_LIMIT} s")


def server_command(stack: str, bundle: Path, port: int) -> list[str]:
    if stack == "smsguard serve":
        return [sys.executable, "-m", "smsguard", "serve", "--bundle", str(bundle), "--port", str(port)]
    if stack == "smsguard serve, no access log":
        return [*server_command("smsguard serve", bundle, port), "--access-log", "off"]
    return [sys.executable, str(ROOT / "benchmarks" / "_serve_stacks.py"), stack, "--bundle", str(bundle), "--port", str(port)]


@contextlib.contextmanager
def server(stack: str, bundle: Path, env: dict, log: Path) -> Iterator[tuple[int, subprocess.Popen, float]]:
    """A server on a free port: (port, process, seconds from exec to its first answer)."""
    port = free_port()
    with open(log, "ab") as stderr:
        started = time.perf_counter()
        process = subprocess.Popen(server_command(stack, bundle, port), cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=stderr)
        try:
            yield port, process, wait_for_answer(port, process, started)
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def start_times(stack: str, bundle: Path, env: dict, log: Path, runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        with server(stack, bundle, env, log) as (_, _, seconds):
            times.append(seconds)
    return times


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system, all threads) a process has used: unlike wall time, it hardly depends on what else runs."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    return float("nan")


def wrk(port: int, body: Path, connections: int, seconds: int, script: Path) -> dict:
    """Debian's wrk on one thread: a closed loop of `connections` kept-alive connections."""
    done = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "-s", str(script), f"http://127.0.0.1:{port}/v1/classify"],
        env={**os.environ, "BODY_FILE": str(body)}, capture_output=True, text=True, timeout=seconds + 60, check=True,
    )
    line = next(line for line in done.stdout.splitlines() if line.startswith("{"))
    result = json.loads(line)
    result["requests_per_s"] = round(result["requests"] / (result["duration_us"] / 1e6), 1)
    return result


# ---- the open-loop client ----


async def _connection_worker(port: int, request: bytes, queue: asyncio.Queue, latencies: list[float], errors: list[str], late: list[float]) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    loop = asyncio.get_running_loop()
    while True:
        scheduled = await queue.get()
        if scheduled is None:
            break
        sent = loop.time()
        late.append(sent - scheduled)
        try:
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            length = int(next(line.split(b":")[1] for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")))
            await reader.readexactly(length)
            if not head.startswith(b"HTTP/1.1 200"):
                errors.append(head.split(b"\r\n")[0].decode())
        except (OSError, asyncio.IncompleteReadError) as error:
            errors.append(type(error).__name__)
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            continue
        latencies.append(loop.time() - sent)
    writer.close()


async def open_loop(port: int, body: bytes, rate: float, seconds: float, connections: int = 32) -> dict:
    """Requests sent at `rate` a second on their schedule, whatever the answers do; latency from each send."""
    request = b"POST /v1/classify HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
    queue: asyncio.Queue = asyncio.Queue()
    latencies: list[float] = []
    errors: list[str] = []
    late: list[float] = []
    workers = [asyncio.create_task(_connection_worker(port, request, queue, latencies, errors, late)) for _ in range(connections)]
    loop = asyncio.get_running_loop()
    start = loop.time() + 0.2
    total = int(rate * seconds)
    for n in range(total):
        due = start + n / rate
        delay = due - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        queue.put_nowait(due)
    for _ in workers:
        queue.put_nowait(None)
    await asyncio.gather(*workers)
    elapsed = loop.time() - start
    ms = np.array(latencies) * 1000
    return {
        "sent": total, "answered_200": len(latencies) - len(errors), "errors": len(errors), "achieved_per_s": round(len(latencies) / elapsed, 1),
        "p50_ms": round(float(np.percentile(ms, 50)), 3), "p99_ms": round(float(np.percentile(ms, 99)), 3), "p999_ms": round(float(np.percentile(ms, 99.9)), 3),
        "max_ms": round(float(ms.max()), 3), "sent_over_1ms_late": int(sum(d > 0.001 for d in late)),
    }


# ---- in process ----


def batch_bodies(texts: list[str], batch: int) -> str:
    """The data set's messages as requests of `batch` each, one JSON body a line, that wrk sends in turn: the
    messages the in-process bulk rate scores (the last, shorter chunk left out, so that every request holds
    `batch`). Sending the first `batch` again and again would compare other messages (the first 100 of the UCI
    set are longer than its average, and more of them are not ASCII)."""
    chunks = [texts[start : start + batch] for start in range(0, len(texts) - batch + 1, batch)]
    return "".join(json.dumps({"messages": [{"id": n, "text": t} for n, t in enumerate(chunk)]}) + "\n" for chunk in chunks)


def load_texts(path: Path) -> list[str]:
    return [line.split("\t", 1)[1].rstrip("\n") for line in path.read_text(encoding="utf-8").splitlines() if "\t" in line]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bundle", type=lambda value: Path(value).resolve())  # absolute: the servers run from the repository
    parser.add_argument("--seconds", type=int, default=60, help="each sustained run (default: 60)")
    parser.add_argument("--rate", type=float, default=500, help="single-message requests a second, open loop (default: 500)")
    parser.add_argument("--batch", type=int, default=100, help="messages per batched request (default: 100)")
    parser.add_argument("--limit-batch", type=int, default=LIMIT,
                        help=f"messages per request of the second batched run: the most a request may hold (default: --max-messages's default, {LIMIT}; 0 skips it)")
    parser.add_argument("--stack-seconds", type=int, default=10, help="each run of the stack comparison (default: 10; 0 skips it)")
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--aiohttp-path", help="a folder with aiohttp installed (pip install --target DIR aiohttp), for the comparison")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("this benchmark needs Debian's wrk: apt-get install wrk")
    began = time.perf_counter()
    texts = load_texts(args.data)
    work = Path(tempfile.mkdtemp(prefix="smsguard-serve-bench-"))
    script = work / "post.lua"
    script.write_text(WRK_SCRIPT, encoding="utf-8")
    single, batch, limit_batch = work / "single.json", work / "batch.json", work / "limit-batch.json"
    single.write_text(json.dumps({"messages": [{"id": 1, "text": SINGLE}]}), encoding="utf-8")
    batch.write_text(batch_bodies(texts, args.batch), encoding="utf-8")
    limit_batch.write_text(batch_bodies(texts, args.limit_batch) if args.limit_batch else "", encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    log = work / "server.log"

    print("* start to first answer", file=sys.stderr)
    starts = {**now(), "seconds": [round(s, 3) for s in start_times("smsguard serve", args.bundle, env, log, 5)]}
    sustained: dict = {}
    with server("smsguard serve", args.bundle, env, log) as (port, process, _):
        print(f"* single-message requests, wrk, {args.seconds} s", file=sys.stderr)
        cpu = cpu_seconds(process.pid)
        sustained["single_wrk"] = {**now(), **wrk(port, single, 8, args.seconds, script)}
        sustained["single_wrk"]["server_cpu_us_per_request"] = round((cpu_seconds(process.pid) - cpu) / sustained["single_wrk"]["requests"] * 1e6, 1)
        print(f"* single-message requests at {args.rate:g}/s, open loop, {args.seconds} s", file=sys.stderr)
        sustained["single_rate"] = {**now(), "rate": args.rate, **asyncio.run(open_loop(port, single.read_bytes(), args.rate, args.seconds))}
        print(f"* batched requests of {args.batch}, wrk, {args.seconds} s in {ROUNDS} rounds, each beside an in-process bulk round", file=sys.stderr)
        sustained["batched_wrk"] = batched_vs_bulk(port, process.pid, batch, args.batch, script, args, texts)
        if args.limit_batch:
            print(f"* batched requests of {args.limit_batch} (the limit), wrk, {args.seconds} s in {ROUNDS} rounds, each beside an in-process bulk round", file=sys.stderr)
            sustained["batched_wrk_limit"] = batched_vs_bulk(port, process.pid, limit_batch, args.limit_batch, script, args, texts)
        sustained["rss_mb"] = rss_mb(process.pid)
    stacks = compare_stacks(args, env, log, single, batch, script) if args.stack_seconds else {}
    result = {
        "date": now()["at"], "cpu": cpu_name(), "cores": os.cpu_count(), "python": platform.python_version(), "bundle": args.bundle.name,
        "start_to_first_answer": starts, "sustained": sustained, "stacks": stacks,
        "note": "2 cores shared with other agents: figures taken under load are low; see each figure's load average",
    }
    took = f"{time.perf_counter() - began:.0f} s"
    write_results(args.out, "serve", result, markdown(result, args), took)
    shutil.rmtree(work, ignore_errors=True)
    return 0


BULK_SECONDS = 3.0  # each in-process round: the data set scored again and again for this long
ROUNDS = 6  # the batched run is cut in rounds, each next to an in-process round, so that a load that comes and goes weighs on both


def batched_vs_bulk(port: int, pid: int, bodies: Path, batch: int, script: Path, args: argparse.Namespace, texts: list[str]) -> dict:
    """Batched requests against the in-process bulk rate, measured in alternating rounds (the server idles
    during the in-process rounds): the ratio of each pair, and its median."""
    classifier = Classifier.load(args.bundle)
    classifier.predict_proba(texts[:200])
    rounds = []
    for _ in range(ROUNDS):
        started, cpu, scored = time.perf_counter(), time.process_time(), 0
        while time.perf_counter() - started < BULK_SECONDS:
            classifier.predict_proba(texts)
            scored += len(texts)
        bulk, bulk_cpu = scored / (time.perf_counter() - started), (time.process_time() - cpu) / scored
        server_cpu = cpu_seconds(pid)
        result = wrk(port, bodies, 4, max(1, args.seconds // ROUNDS), script)
        served_cpu = (cpu_seconds(pid) - server_cpu) / (result["requests"] * batch)
        rounds.append({
            **now(), "bulk_messages_per_s": round(bulk), "messages_per_s": round(result["requests_per_s"] * batch),
            "bulk_cpu_us_per_message": round(bulk_cpu * 1e6, 2), "server_cpu_us_per_message": round(served_cpu * 1e6, 2), **result,
        })
    ratios = [r["messages_per_s"] / r["bulk_messages_per_s"] for r in rounds]
    worst = max(rounds, key=lambda r: r["p99_us"])
    return {
        **rounds[0], "batch": batch, "rounds": rounds, "model": classifier.model.name, "backend": classifier.backend, "texts": len(texts),
        "messages_per_s": round(statistics.median(r["messages_per_s"] for r in rounds)),
        "bulk_messages_per_s": round(statistics.median(r["bulk_messages_per_s"] for r in rounds)),
        "requests_per_s": round(statistics.median(r["requests_per_s"] for r in rounds), 1),
        "vs_in_process_bulk": round(statistics.median(ratios), 2), "ratios": [round(x, 2) for x in ratios],
        "bulk_cpu_us_per_message": statistics.median(r["bulk_cpu_us_per_message"] for r in rounds),
        "server_cpu_us_per_message": statistics.median(r["server_cpu_us_per_message"] for r in rounds),
        "p50_us": statistics.median(r["p50_us"] for r in rounds), "p99_us": worst["p99_us"], "p999_us": max(r["p999_us"] for r in rounds),
        "non_2xx": sum(r["non_2xx"] for r in rounds), "socket_errors": sum(r["socket_errors"] for r in rounds),
    }


def compare_stacks(args: argparse.Namespace, env: dict, log: Path, single: Path, batch: Path, script: Path) -> dict:
    """Every stack started at once (idle servers cost nothing), then measured in turn, round after round, so
    that a load that comes and goes weighs on all alike; medians of the rounds. No access log on any."""
    envs = {}
    for stack in ("smsguard serve, no access log", "http.server", "tornado", "aiohttp"):
        stack_env = dict(env)
        if stack == "aiohttp":
            if not args.aiohttp_path:
                continue
            stack_env["PYTHONPATH"] = env["PYTHONPATH"] + os.pathsep + args.aiohttp_path
        version = _version(stack, stack_env)
        if version is None:
            print(f"* {stack}: not installed, left out", file=sys.stderr)
            continue
        envs[stack] = (stack_env, version)
    starts: dict[str, list[float]] = {stack: [] for stack in envs}
    for _ in range(3):
        for stack, (stack_env, _) in envs.items():
            starts[stack] += start_times(stack, args.bundle, stack_env, log, 1)
    runs: dict[str, list[dict]] = {stack: [] for stack in envs}
    with contextlib.ExitStack() as servers:
        up = {stack: servers.enter_context(server(stack, args.bundle, stack_env, log)) for stack, (stack_env, _) in envs.items()}
        for n in range(3):
            for stack, (port, _, _) in up.items():
                print(f"* stack {stack}, round {n + 1} of 3", file=sys.stderr)
                one, many = wrk(port, single, 8, args.stack_seconds, script), wrk(port, batch, 4, args.stack_seconds, script)
                runs[stack].append({**now(), "single": one["requests_per_s"], "p99": one["p99_us"], "batched": many["requests_per_s"] * args.batch})
        rss = {stack: rss_mb(process.pid) for stack, (_, process, _) in up.items()}
    return {
        stack: {
            "version": envs[stack][1], **runs[stack][0], "start_s": round(statistics.median(starts[stack]), 3),
            "single_per_s": round(statistics.median(r["single"] for r in runs[stack])), "single_p99_ms": round(statistics.median(r["p99"] for r in runs[stack]) / 1000, 2),
            "batched_messages_per_s": round(statistics.median(r["batched"] for r in runs[stack])), "rss_mb": rss[stack], "rounds": runs[stack],
        }
        for stack in envs
    }


def _version(stack: str, env: dict) -> str | None:
    module = {"smsguard serve, no access log": "smsguard", "http.server": "http.server", "tornado": "tornado", "aiohttp": "aiohttp"}[stack]
    code = f"import {module} as m, platform; print(getattr(m, '__version__', None) or getattr(m, 'version', None) or 'Python ' + platform.python_version())"
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=False)
    return done.stdout.strip() if done.returncode == 0 else None


def batched_rows(bw: dict, what: str = "") -> list[str]:
    return [
        f"| batched requests of {bw['batch']:,}{what} (wrk, 4 connections, the data set's messages in turn; median of {len(bw['rounds'])} rounds) | {bw['messages_per_s']:,} messages/s ({bw['requests_per_s']:,.0f} requests/s); p50 {bw['p50_us'] / 1000:.1f} ms, worst round's p99 / p99.9 {bw['p99_us'] / 1000:.1f} / {bw['p999_us'] / 1000:.1f} ms ({bw['non_2xx'] + bw['socket_errors']} errors) | | {bw['at']} ({bw['load'][0]}/{bw['load'][1]}) |",
        f"| in-process bulk rate, `predict_proba` of {bw['texts']:,} messages ({bw['model']}, {bw['backend']}), a round before each batched round | {bw['bulk_messages_per_s']:,} messages/s (median) | | |",
        f"| batched over HTTP vs in-process bulk, {bw['batch']:,} a request (median of the rounds' ratios: {', '.join(f'{x:.2f}' for x in bw['ratios'])}) | {bw['vs_in_process_bulk']:.2f}x | ≥ 0.8x | |",
        f"| CPU time a message (all threads; hardly depends on the load): batched over HTTP ({bw['batch']:,} a request), server process / in-process bulk | {bw['server_cpu_us_per_message']:.1f} / {bw['bulk_cpu_us_per_message']:.1f} µs ({bw['bulk_cpu_us_per_message'] / bw['server_cpu_us_per_message']:.2f}x the in-process efficiency) | | |",
    ]


def markdown(r: dict, args: argparse.Namespace) -> str:
    s, starts = r["sustained"], r["start_to_first_answer"]
    sw, sr, bw = s["single_wrk"], s["single_rate"], s["batched_wrk"]
    rows = [
        "| figure | value | target | taken (load avg 1/5 min) |",
        "| --- | --- | --- | --- |",
        f"| start to first answer (median of 5; all: {', '.join(f'{x:.2f}' for x in starts['seconds'])} s) | {statistics.median(starts['seconds']):.2f} s | ≤ 0.5 s | {starts['at']} ({starts['load'][0]}/{starts['load'][1]}) |",
        f"| single-message requests at {sr['rate']:g}/s (open loop, 32 connections): p50 / p99 / p99.9 | {sr['p50_ms']:.2f} / {sr['p99_ms']:.2f} / {sr['p999_ms']:.2f} ms ({sr['answered_200']:,} answered 200, {sr['errors']} errors) | p99 ≤ 5 ms | {sr['at']} ({sr['load'][0]}/{sr['load'][1]}) |",
        f"| single-message requests, closed loop (wrk, 8 connections) | {sw['requests_per_s']:,.0f} requests/s; p50 / p99 / p99.9 {sw['p50_us'] / 1000:.2f} / {sw['p99_us'] / 1000:.2f} / {sw['p999_us'] / 1000:.2f} ms ({sw['non_2xx'] + sw['socket_errors']} errors) | | {sw['at']} ({sw['load'][0]}/{sw['load'][1]}) |",
        *batched_rows(bw),
        *(batched_rows(s["batched_wrk_limit"], ", the most a request may hold by default") if "batched_wrk_limit" in s else []),
        f"| CPU time a single-message request, server process (closed loop) | {sw['server_cpu_us_per_request']:.0f} µs | | |",
        f"| server memory (RSS) after the runs | {s['rss_mb']} MB | | |",
    ]
    out = [
        f"`smsguard serve` on {r['cpu']} ({r['cores']} cores, shared with other agents), Python {r['python']}, bundle `{r['bundle']}`, defaults (access log on); "
        f"{r['date']}. Command: `python benchmarks/serve.py BUNDLE --seconds {args.seconds}`.",
        "",
        *rows,
    ]
    if r["stacks"]:
        out += [
            "",
            f"HTTP stacks considered, each serving the same work with no access log (benchmarks/_serve_stacks.py): medians of 3 rounds taken in turn, {args.stack_seconds} s a run; start to first answer: median of 3:",
            "",
            "| stack | version | start to first answer | single (wrk, 8 conn.) | single p99 | batched of " + str(args.batch) + " | RSS | first round taken (load avg) |",
            "| --- | --- | --- | --- | --- | --- | --- | --- |",
            *(
                f"| {name} | {e['version']} | {e['start_s']:.2f} s | {e['single_per_s']:,.0f} requests/s | {e['single_p99_ms']:.2f} ms | {e['batched_messages_per_s']:,} messages/s | {e['rss_mb']} MB | {e['at']} ({e['load'][0]}/{e['load'][1]}) |"
                for name, e in r["stacks"].items()
            ),
        ]
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    sys.exit(main())
