"""Tables shared by the commands: GitHub-flavoured Markdown text, or a rich ``Table``."""

from collections.abc import Iterable, Sequence

from rich.table import Table


def markdown_table(header: Sequence[str], rows: Iterable[Sequence[str]], text_columns: int = 1) -> str:
    """A GitHub-flavoured Markdown table; the columns after the first ``text_columns`` are right-aligned."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * text_columns + "---:|" * (len(header) - text_columns)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def rich_table(title: str, header: Sequence[str], rows: Iterable[Sequence[str]], text_columns: int = 1) -> Table:
    """A rich ``Table``; the columns after the first ``text_columns`` are right-aligned."""
    table = Table(title=title)
    for index, column in enumerate(header):
        table.add_column(column, justify="left" if index < text_columns else "right")
    for row in rows:
        table.add_row(*row)
    return table
