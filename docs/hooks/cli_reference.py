"""MkDocs hook: the command-line reference, generated from `smsguard.cli`'s argparse parser at every build,
so that it cannot drift from the code.

In a page, a line `<!-- smsguard-cli COMMAND -->` becomes that command's section: its help, its usage and
a table of every argument with its values, default and help text. The build fails (and so does
tests/test_docs.py) when an argument has no help text, or when a command of the parser has no such line.
"""

from __future__ import annotations

import argparse
import re

MARKER = re.compile(r"^<!-- smsguard-cli (\S+) -->$", re.MULTILINE)
DEFAULTS_ONLY = re.compile(r"\s*\((?:[^()]|\([^()]*\))*\)\s*$")  # the "(default: ...; preset: ...)" that cli.py appends
USAGE_WIDTH = 100  # fixed, so that the page does not depend on the terminal that built it


def parser() -> argparse.ArgumentParser:
    from smsguard.cli import _parser  # the one parser `smsguard` runs

    return _parser()


def commands(root: argparse.ArgumentParser) -> dict[str, tuple[argparse.ArgumentParser, str]]:
    """Each command's name -> (its parser, its one-line help), in the order `smsguard --help` lists them."""
    (sub,) = (a for a in root._actions if isinstance(a, argparse._SubParsersAction))
    helps = {choice.dest: choice.help or "" for choice in sub._choices_actions}
    return {name: (command, helps.get(name, "")) for name, command in sub.choices.items()}


def arguments(command: argparse.ArgumentParser) -> list[argparse.Action]:
    return [a for a in command._actions if not isinstance(a, argparse._HelpAction)]


def undocumented(root: argparse.ArgumentParser) -> list[str]:
    """`smsguard COMMAND --flag` for every argument without a help text, and every command without one."""
    missing = []
    for name, (command, help_text) in commands(root).items():
        if not help_text.strip():
            missing.append(f"smsguard {name}")
        missing += [f"smsguard {name} {'/'.join(a.option_strings) or a.metavar or a.dest}" for a in arguments(command) if not described(a.help)]
    return missing


def described(help_text: str | None) -> bool:
    """Whether a help text says something besides its defaults: `" (default: 128)"` alone does not."""
    return bool(DEFAULTS_ONLY.sub("", help_text or "").strip())


def _escape(text: str) -> str:
    """Markdown-safe outside `code spans`: a table cell's `|`, and `<`, `*`, `_` that would become HTML or emphasis."""
    parts = re.split(r"(`[^`]*`)", text)
    for i in range(0, len(parts), 2):
        parts[i] = parts[i].replace("\\", "\\\\").replace("|", "\\|").replace("<", "&lt;").replace("*", "\\*").replace("_", "\\_")
    return "".join(p.replace("|", "\\|") if p.startswith("`") else p for p in parts)


def _expanded_help(action: argparse.Action, prog: str) -> str:
    """The help text as `--help` prints it (`%%` is a percent sign, `%(default)s` the default)."""
    params = dict(vars(action), prog=prog)
    if params.get("choices") is not None:
        params["choices"] = ", ".join(map(str, params["choices"]))
    return (action.help or "") % params


def _argument(action: argparse.Action) -> str:
    if not action.option_strings:
        return f"`{action.metavar or action.dest}`"
    if isinstance(action, argparse.BooleanOptionalAction):
        return " / ".join(f"`{flag}`" for flag in action.option_strings)
    value = "" if action.nargs == 0 else " " + (action.metavar or action.dest.upper())
    return ", ".join(f"`{flag}{value}`" for flag in action.option_strings)


def _values(action: argparse.Action) -> str:
    notes = []
    if action.choices is not None:
        notes.append(" \\| ".join(f"`{choice}`" for choice in action.choices))
    if action.required and action.nargs not in ("*", "?"):
        notes.append("required")
    if action.nargs in ("*", "+") or isinstance(action, argparse._AppendAction):
        notes.append("repeatable" if action.option_strings else "any number")
    return "; ".join(notes)


def usage(command: argparse.ArgumentParser) -> str:
    formatter = argparse.HelpFormatter(prog=command.prog, width=USAGE_WIDTH)
    formatter.add_usage(command.usage, command._actions, command._mutually_exclusive_groups)
    return formatter.format_help().strip()


def command_markdown(name: str, command: argparse.ArgumentParser, help_text: str) -> str:
    rows = [f"| {_argument(a)} | {_values(a)} | {_escape(_expanded_help(a, command.prog))} |" for a in arguments(command)]
    return "\n".join([
        f"## smsguard {name}",
        "",
        _escape(help_text[:1].upper() + help_text[1:]) + ".",
        "",
        "```text",
        usage(command),
        "```",
        "",
        "| argument | values | what it does |",
        "|---|---|---|",
        *rows,
        "",
    ])


def render(markdown: str, root: argparse.ArgumentParser | None = None) -> str:
    """`markdown` with every `<!-- smsguard-cli COMMAND -->` line replaced by that command's section."""
    root = root or parser()
    known = commands(root)
    problems = [f"an argument or command without a help text: {item}" for item in undocumented(root)]
    named = MARKER.findall(markdown)
    problems += [f"the page names a command the parser does not have: {name}" for name in named if name not in known]
    problems += [f"the page has no line `<!-- smsguard-cli {name} -->` for the command {name}" for name in known if name not in named]
    if problems:
        msg = "the CLI reference cannot be generated: " + "; ".join(problems)
        raise ValueError(msg)
    return MARKER.sub(lambda m: command_markdown(m[1], *known[m[1]]), markdown)


def on_page_markdown(markdown: str, page, config, files) -> str:  # MkDocs calls it for every page
    if not MARKER.search(markdown):
        return markdown
    from mkdocs.exceptions import PluginError

    try:
        return render(markdown)
    except ValueError as error:
        raise PluginError(f"{page.file.src_path}: {error}") from None
