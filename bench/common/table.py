"""Result tables in the terminal (rich)."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table


def print_table(title: str, columns: list[str], rows: list[list[Any]]) -> None:
    table = Table(title=title, title_justify="left")
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*("-" if v is None else str(v) for v in row))
    Console().print(table)


def verdict(value: float | None, target: float, higher_is_better: bool) -> str:
    """`met` / `MISSED` / `n/a` against a target."""
    if value is None:
        return "n/a"
    ok = value >= target if higher_is_better else value < target
    return "met" if ok else "MISSED"
