"""Printing a command's figures: a human table, or one JSON object with ``--json``."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import Any


def add_json_flag(parser: argparse.ArgumentParser) -> None:
    """Add the ``--json`` flag every figure-reporting command takes."""
    parser.add_argument(
        "--json", action="store_true", help="print the figures as one JSON object on stdout"
    )


def emit(args: argparse.Namespace, result: dict[str, Any], human: Callable[[dict], str]) -> None:
    """Print ``result`` as JSON when ``args.json`` is set, else ``human(result)``."""
    if getattr(args, "json", False):
        json.dump(result, sys.stdout, sort_keys=True, default=_jsonable)
        sys.stdout.write("\n")
    else:
        print(human(result))
    sys.stdout.flush()


def _jsonable(value: Any) -> Any:
    # numpy scalars and arrays, paths
    if hasattr(value, "tolist"):
        return value.tolist()
    return str(value)


def table(rows: list[tuple], headers: tuple[str, ...]) -> str:
    """A plain aligned text table."""
    cells = [tuple(str(c) for c in headers)] + [tuple(str(c) for c in r) for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = [
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
