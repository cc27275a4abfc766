"""The `serve` and `gammu` commands' flags: one per field of their configs, registered by `smsguard.cli`."""

from __future__ import annotations

import argparse
from typing import Any

from smsguard.serve._config import DEFAULT_PORT, ServeConfig


def add_commands(commands: Any, backends: tuple[str, ...]) -> None:
    """Add `serve` and `gammu` to the `smsguard` command's subparsers; `backends`: the --backend choices."""
    p = commands.add_parser("serve", help="serve a bundle over HTTP on this machine (JSON API, /metrics, /healthz; SIGHUP reloads)")
    p.add_argument("--bundle", required=True, metavar="DIR", help="the bundle folder (a symlink an updater re-points works: reloads read it again)")
    p.add_argument("--trusted-key", action="append", metavar="PUB", help="require a signature by this public key (repeatable; default: $SMSGUARD_TRUSTED_KEYS, else none)")
    p.add_argument("--backend", default="auto", choices=backends, help="the inference backend (default: auto)")
    p.add_argument("--model", help="a model file of the bundle (default: the recommended one)")
    p.add_argument("--personal", metavar="DIR", help="apply the corrections recorded in this personal state folder (smsguard report); read at start and at each reload")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1, this machine only; another address exposes the API to its network)")
    p.add_argument("--port", type=int, help=f"TCP port (default: {DEFAULT_PORT}, unless only --unix is given; 0 picks a free one)")
    p.add_argument("--unix", metavar="PATH", help="listen on this UNIX socket (mode 0660), for local clients such as the gammu hook")
    defaults = ServeConfig(bundle="")
    limits = (
        ("--max-body", int, "BYTES", "bytes in one request body", defaults.max_body),
        ("--max-messages", int, "N", "messages in one /v1/classify request", defaults.max_messages),
        ("--max-text", int, "CHARS", "characters in one message", defaults.max_text),
        ("--read-timeout", float, "SECONDS", "to receive a whole request, and to keep an idle connection", defaults.read_timeout),
        ("--workers", int, "N", "threads that score requests", defaults.workers),
        ("--queue", int, "N", "requests waiting for a worker before 503", defaults.queue),
        ("--max-connections", int, "N", "open connections before 503", defaults.max_connections),
    )
    for flag, kind, metavar, text, default in limits:
        p.add_argument(flag, type=kind, default=default, metavar=metavar, help=f"{text} (default: {default})")
    p.add_argument("--access-log", default="-", metavar="FILE", help="one JSON line per request: '-' stderr, a file, or 'off' (default: -)")
    p.set_defaults(run=_serve)

    p = commands.add_parser("gammu", help="gammu-smsd's RunOnReceive hook: classify the message it received; move or tag spam, keep ham")
    p.add_argument("files", nargs="*", metavar="PART", help="the message's parts as gammu-smsd appends them: its files in the inbox, or its inbox row IDs (SQL)")
    p.add_argument("--inbox", metavar="DIR", help="files backend: gammu-smsd's inboxpath")
    p.add_argument("--spam-folder", metavar="DIR", help="files backend: where spam is moved; on the inbox's filesystem (nothing is ever deleted)")
    p.add_argument("--sqlite", metavar="FILE", help="SQL backend: the SQLite database gammu-smsd writes ([smsd] DBDir and Database)")
    p.add_argument("--spam-table", metavar="NAME", help="SQL backend: tag spam with a row in this table (made on first use), keyed by inbox ID")
    p.add_argument("--spam-column", metavar="NAME", help="SQL backend: or set this column of gammu's inbox table (added by you) to the label")
    p.add_argument("--unix", metavar="PATH", help="the UNIX socket of smsguard serve, asked first")
    p.add_argument("--server", metavar="URL", help="or its URL, such as http://127.0.0.1:8000")
    p.add_argument("--bundle", metavar="DIR", help="load this bundle in-process when the server does not answer")
    p.add_argument("--trusted-key", action="append", metavar="PUB", help="the in-process bundle must be signed by this key (repeatable)")
    p.add_argument("--timeout", type=float, default=5.0, metavar="SECONDS", help="to wait for the server before loading the bundle (default: 5)")
    p.add_argument("--log", metavar="FILE", help="append one JSON line per message (gammu-smsd closes stdout and stderr)")
    p.set_defaults(run=_gammu)


def serve_config(args: argparse.Namespace) -> ServeConfig:
    return ServeConfig(
        bundle=args.bundle, trusted_key=tuple(args.trusted_key or ()), backend=args.backend, model=args.model, personal=args.personal, host=args.host, port=args.port,
        unix=args.unix, max_body=args.max_body, max_messages=args.max_messages, max_text=args.max_text, read_timeout=args.read_timeout,
        workers=args.workers, queue=args.queue, max_connections=args.max_connections, access_log=args.access_log,
    )


def _serve(args: argparse.Namespace) -> int:
    from smsguard.serve._service import serve

    return serve(serve_config(args))


def _gammu(args: argparse.Namespace) -> int:
    import os

    from smsguard.serve._gammu import GammuConfig, run_hook

    config = GammuConfig(
        inbox=args.inbox, spam_folder=args.spam_folder, unix=args.unix, server=args.server, bundle=args.bundle,
        trusted_key=tuple(args.trusted_key or ()), timeout=args.timeout, log=args.log, sqlite=args.sqlite, spam_table=args.spam_table,
        spam_column=args.spam_column,
    )
    return run_hook(config, args.files, os.environ)
