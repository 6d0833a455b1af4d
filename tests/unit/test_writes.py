"""Every file the project writes goes through pipeline/files.py: into a temporary sibling that `atomic`
renames into place (a rename replaces a symlink at the path, never writes through it), or, for a file
written in place such as a lock, opened by `files.open_owned` without following links. This scans the
code for writes that bypass both."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from conftest import ROOT

PACKAGE = ROOT / "src/ladder"
HELPERS = PACKAGE / "pipeline/files.py"
# a write whose target is a temporary sibling that a caller's `atomic` handed down says so on its line
MARKER = "# atomic:"
WRITERS = {"write_text", "write_bytes", "to_csv", "to_json", "to_parquet", "savefig", "save", "save_file"}


def _is_atomic(item: ast.withitem) -> bool:
    """`with atomic(...)`, or a file opened through `open_owned` (`with os.fdopen(open_owned(...))`)."""
    for call in ast.walk(item.context_expr):
        f = call.func if isinstance(call, ast.Call) else None
        name = f.id if isinstance(f, ast.Name) else f.attr if isinstance(f, ast.Attribute) else None
        if name in ("atomic", "open_owned"):
            return True
    return False


def _writes(call: ast.Call) -> str | None:
    """What kind of write `call` is, or None."""
    f = call.func
    if isinstance(f, ast.Name) and f.id == "open":
        mode = call.args[1] if len(call.args) > 1 else next((k.value for k in call.keywords if k.arg == "mode"), None)
        if isinstance(mode, ast.Constant) and isinstance(mode.value, str) and set(mode.value) & set("wax+"):
            return f"open(..., {mode.value!r})"
        return None
    if isinstance(f, ast.Name) and f.id == "save_file":
        return "save_file"
    if isinstance(f, ast.Attribute):
        if f.attr == "open" and isinstance(f.value, ast.Name) and f.value.id == "os":
            return "os.open"
        ours = isinstance(f.value, ast.Name) and f.value.id == "checkpoint"  # checkpoint.save writes via atomic
        if f.attr in WRITERS and not ours:
            return f".{f.attr}"
    return None


def bypasses(path: Path) -> list[str]:
    lines = path.read_text().splitlines()
    found = []

    def visit(node: ast.AST, inside: bool) -> None:
        if isinstance(node, ast.With | ast.AsyncWith) and any(_is_atomic(i) for i in node.items):
            inside = True
        if isinstance(node, ast.Call) and (kind := _writes(node)) and not inside:
            if MARKER not in lines[node.lineno - 1]:
                found.append(f"{path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}:{node.lineno}: {kind}")
        for child in ast.iter_child_nodes(node):
            visit(child, inside)

    visit(ast.parse(path.read_text()), False)
    return found


def test_every_write_goes_through_the_helpers():
    found = [b for p in sorted(PACKAGE.rglob("*.py")) if p != HELPERS for b in bypasses(p)]
    assert not found, (
        "writes that bypass pipeline/files.py (write into `with atomic(...)`'s temporary siblings, open a file "
        f"written in place with files.open_owned, or mark a write into a sibling a caller's atomic made with "
        f"'{MARKER} <where it comes from>'):\n" + "\n".join(found)
    )


@pytest.mark.parametrize(
    "code, caught",
    [
        ("open(p, 'w').write('x')", True),
        ("p.write_text('x')", True),
        ("df.to_csv(p)", True),
        ("os.open(p, os.O_RDWR)", True),
        ("with atomic(p) as (t,):\n    t.write_text('x')", False),
        ("with files.atomic(p) as (t,):\n    df.to_csv(t)", False),
        ("fig.savefig(out)  # atomic: the caller's temporary sibling", False),
        ("with os.fdopen(open_owned(p, os.O_WRONLY)) as f:\n    df.to_csv(f)", False),
        ("with os.fdopen(os.open(p, os.O_WRONLY)) as f:\n    df.to_csv(f)", True),
        ("open(p).read()", False),
    ],
)
def test_the_scan_sees_what_it_should(tmp_path, code, caught):
    path = tmp_path / "probe.py"
    path.write_text(code + "\n")
    assert bool(bypasses(path)) is caught
