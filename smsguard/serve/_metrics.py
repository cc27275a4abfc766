"""Counters, gauges and a latency histogram, written out in the Prometheus text format (version 0.0.4).

Everything is updated on the event loop's thread, so nothing here needs a lock."""

from __future__ import annotations

import bisect
import collections
import time
from collections.abc import Iterable

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)  # seconds: sub-millisecond up to a slow batch
ENDPOINTS = ("/v1/classify", "/v1/model", "/v1/reload", "/healthz", "/metrics")  # other paths are counted as "other"


class Histogram:
    def __init__(self) -> None:
        self.counts = [0] * (len(BUCKETS) + 1)
        self.total = 0.0

    def observe(self, seconds: float) -> None:
        self.counts[bisect.bisect_left(BUCKETS, seconds)] += 1
        self.total += seconds

    def lines(self, name: str, labels: str) -> Iterable[str]:
        running = 0
        for bound, count in zip((*BUCKETS, float("inf")), self.counts, strict=True):
            running += count
            le = "+Inf" if bound == float("inf") else repr(bound)
            yield f'{name}_bucket{{{labels},le="{le}"}} {running}'
        yield f"{name}_sum{{{labels}}} {self.total!r}"
        yield f"{name}_count{{{labels}}} {running}"


class Metrics:
    def __init__(self) -> None:
        self.started = time.time()
        self.requests: collections.Counter[tuple[str, int]] = collections.Counter()
        self.errors: collections.Counter[str] = collections.Counter()
        self.messages: collections.Counter[str] = collections.Counter()
        self.reloads: collections.Counter[str] = collections.Counter()
        self.latency = {endpoint: Histogram() for endpoint in (*ENDPOINTS, "other")}
        self.serial = 0
        self.model_info: dict[str, str] = {}

    def request(self, path: str, status: int, seconds: float, error: str | None) -> None:
        endpoint = path if path in self.latency else "other"
        self.requests[endpoint, status] += 1
        self.latency[endpoint].observe(seconds)
        if error:
            self.errors[error] += 1

    def render(self, in_flight: int, connections: int) -> bytes:
        out = [
            "# HELP smsguard_requests_total HTTP requests answered, by endpoint and status.",
            "# TYPE smsguard_requests_total counter",
            *(f'smsguard_requests_total{{endpoint="{e}",status="{s}"}} {n}' for (e, s), n in sorted(self.requests.items())),
            "# HELP smsguard_request_errors_total Requests refused or failed, by error code (the `code` of the JSON error).",
            "# TYPE smsguard_request_errors_total counter",
            *(f'smsguard_request_errors_total{{code="{c}"}} {n}' for c, n in sorted(self.errors.items())),
            "# HELP smsguard_request_duration_seconds Time from a whole request read to its answer written.",
            "# TYPE smsguard_request_duration_seconds histogram",
        ]
        for endpoint, histogram in self.latency.items():
            if histogram.counts[-1] or any(histogram.counts):
                out.extend(histogram.lines("smsguard_request_duration_seconds", f'endpoint="{endpoint}"'))
        out += [
            "# HELP smsguard_messages_total Messages classified, by label.",
            "# TYPE smsguard_messages_total counter",
            *(f'smsguard_messages_total{{label="{label}"}} {n}' for label, n in sorted(self.messages.items())),
            "# HELP smsguard_reloads_total Reloads asked for (SIGHUP or POST /v1/reload), by result.",
            "# TYPE smsguard_reloads_total counter",
            *(f'smsguard_reloads_total{{result="{r}"}} {n}' for r, n in sorted(self.reloads.items())),
            "# HELP smsguard_model_serial The serial of the bundle being served.",
            "# TYPE smsguard_model_serial gauge",
            f"smsguard_model_serial {self.serial}",
            "# HELP smsguard_model_info The model being served (always 1).",
            "# TYPE smsguard_model_info gauge",
            "smsguard_model_info{" + ",".join(f'{k}="{v}"' for k, v in sorted(self.model_info.items())) + "} 1",
            "# HELP smsguard_in_flight_requests Requests being scored or waiting for a worker.",
            "# TYPE smsguard_in_flight_requests gauge",
            f"smsguard_in_flight_requests {in_flight}",
            "# HELP smsguard_open_connections Client connections open.",
            "# TYPE smsguard_open_connections gauge",
            f"smsguard_open_connections {connections}",
            "# HELP smsguard_start_time_seconds When the service started, in seconds since the epoch.",
            "# TYPE smsguard_start_time_seconds gauge",
            f"smsguard_start_time_seconds {self.started:.3f}",
        ]
        return ("\n".join(out) + "\n").encode()
