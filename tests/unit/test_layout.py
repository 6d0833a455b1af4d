"""The layout is the architecture: a package per role, imports that only run downward, one way
to register a command, one source of defaults, and code dependencies that are complete."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest
import yaml
from conftest import ROOT, sh

from ladder import cli
from ladder.pipeline import config, dag

PACKAGE = ROOT / "src/ladder"
# A module may import from its own package and lower layers only: the pipeline's machinery knows nothing of
# data, networks or results; data knows no network; the network reads data; analysis reads runs.
LAYERS = {"pipeline": 0, "data": 1, "nn": 2, "analysis": 3, "stages": 4, "tools": 4, "cli.py": 5}


def modules() -> dict[str, Path]:
    return {
        ".".join(("ladder", *p.relative_to(PACKAGE).with_suffix("").parts)).removesuffix(".__init__"): p
        for p in PACKAGE.rglob("*.py")
    }


def imports(path: Path) -> set[str]:
    """ladder modules imported anywhere in the file (module level or inside functions)."""
    names = modules()
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            found |= {node.module} | {f"{node.module}.{a.name}" for a in node.names}
    return {n for n in found if n in names and (n.count(".") > 1 or n == "ladder.cli")}


def layer(module: str) -> tuple[str, int]:
    part = module.split(".")[1] if module.count(".") else ""
    part = "cli.py" if part == "cli" else part
    return part, LAYERS[part]


def test_imports_run_downward_only_and_no_stage_imports_another():
    for name, path in modules().items():
        if name.endswith("__init__") or path.name == "__init__.py":
            continue
        role, rank = layer(name)
        for dep in imports(path):
            dep_role, dep_rank = layer(dep)
            assert dep_rank < rank or (dep_role == role and role not in ("stages", "tools")), f"{name} imports {dep}"


def test_no_import_cycle():
    graph = {name: imports(path) for name, path in modules().items()}
    state: dict[str, int] = {}

    def visit(node, trail):
        if state.get(node) == 1:
            raise AssertionError("import cycle: " + " -> ".join(trail + [node]))
        if state.get(node) == 2:
            return
        state[node] = 1
        for dep in graph[node]:
            visit(dep, trail + [node])
        state[node] = 2

    for node in graph:
        visit(node, [])


def plain_dvc_outputs(dvc_yaml: str) -> list[str]:
    """Outputs (outs, metrics, plots) that dvc.yaml does not declare persistent: DVC deletes those before
    their stage's command runs, and a command that then fails leaves them lost."""
    plain = []
    for name, body in yaml.safe_load(dvc_yaml)["stages"].items():
        body = body.get("do", body)
        for entry in (e for kind in ("outs", "metrics", "plots") for e in body.get(kind, [])):
            path, spec = (entry, None) if isinstance(entry, str) else next(iter(entry.items()))
            if not (spec or {}).get("persist"):
                plain.append(f"{name}: {path}")
    return plain


def test_dvc_deletes_no_output_before_a_stage_runs():
    """Every stage replaces its outputs atomically (pipeline/files.py), so every DVC output is persistent
    (docs/architecture.md, "When a stage fails under Snakemake or DVC")."""
    text = (ROOT / "dvc.yaml").read_text()
    assert plain_dvc_outputs(text) == []
    broken = text.replace("      - data/raw/manifest.json: {persist: true}\n", "      - data/raw/manifest.json\n", 1)
    assert broken != text and plain_dvc_outputs(broken) == ["download: data/raw/manifest.json"]


def test_stage_modules_are_the_ones_the_workflow_calls():
    commands = {name: module for name, (module, _) in cli.COMMANDS.items() if module.startswith("stages.")}
    # a sweep cell and a scaling rung are the train stage's code run as `ladder train --cell/--rung`
    assert commands == {s.name: f"stages.{s.module}" for s in dag.STAGES.values() if s.command == s.name}
    assert {s.module for s in dag.STAGES.values() if s.command != s.name} == {"train"}
    on_disk = {p.stem for p in (PACKAGE / "stages").glob("*.py")} - {"__init__"}
    assert on_disk == {s.module for s in dag.STAGES.values()}  # a stage module nobody runs is dead code


@pytest.mark.parametrize("command", list(cli.COMMANDS))
def test_every_command_is_registered_one_way_and_has_help(command, capsys):
    module = importlib.import_module(f"ladder.{cli.COMMANDS[command][0]}")
    assert callable(module.main)
    with pytest.raises(SystemExit) as done:
        cli.parser(command).parse_args([command, "--help"])  # options are added for the named command
    assert done.value.code == 0 and cli.COMMANDS[command][1] in " ".join(capsys.readouterr().out.split())
    sub = cli.parser(command)._subparsers._group_actions[0].choices[command]
    undocumented = [a.dest for a in sub._actions if not a.help]
    assert not undocumented, f"ladder {command}: options without help: {undocumented}"


def test_help_names_what_shapes_a_run_and_params_go_anywhere(tmp_path):
    out = sh("ladder train --help", tmp_path).stdout
    assert "--size" in out and "lr" in out and "sizes.<size>" in out
    assert sh("ladder --version", tmp_path).stdout.startswith("ladder ")
    p = sh("ladder plan --params nowhere.yaml", tmp_path, check=False)  # after the subcommand, too
    assert p.returncode == 1 and "nowhere.yaml: not found" in p.stderr


def test_params_yaml_is_the_one_source_of_values():
    """No field of the typed config has a default of its own, so params.yaml and config.py cannot
    disagree: a key missing from params.yaml is an error naming it."""

    def walk(model, prefix):
        for name, field in model.model_fields.items():
            key = f"{prefix}{name}"
            if key != "sizes.*.train":  # a size's overrides: none is the natural default
                assert field.is_required(), f"{key} has a default in config.py; put it in params.yaml"
            annotation = field.annotation
            inner = getattr(annotation, "__args__", ())
            for sub in (annotation, *inner):
                if isinstance(sub, type) and issubclass(sub, config.Strict):
                    walk(sub, f"{key}.*." if annotation is not sub else f"{key}.")

    walk(config.Params, "")


def test_nothing_unpickles_from_disk():
    for path in (ROOT / "src").rglob("*.py"):
        for line in path.read_text().splitlines():
            if "torch.load(" in line:
                assert "weights_only=True" in line, f"{path}: {line.strip()}"
            assert "pickle.load" not in line, f"{path}: {line.strip()}"
