"""Fuzzed params: random mutations of the shipped params.yaml, each accepted or refused in one line.

A mutation is one change at a path picked from the real document: a value replaced (a wrong type, a
number out of range or not finite, a value from elsewhere in the file, a shape that parses but means
nothing), a key removed, or an unknown key added. The property, for every mutation: either the
params load and what is worked out from them works (every job's params slice, inputs and derived
params, as the Snakefile works them out on each invocation, and `ladder plan`'s estimate of every
size), or the load is refused with one line (no traceback) that names the key changed. Most examples
check this in-process, through `config.load` as the CLI calls it (cli.check_params_first, before a
stage imports anything); a few run the real `ladder --params FILE download` on a copy of the suite's
project and check the exit code, the one stderr line and that no file was created or changed.

Examples: the `ci` profile (the default) runs a fixed, derandomized set (300 in-process, 10 through
the CLI); `make test-faults` sets LADDER_FUZZ=thorough: 1,500 and 40, seeded afresh each run (a
failure prints the seed and the blob that reproduce it). A failing example is named in its assertion
as the mutation, e.g. `replace sweep.shapes[0] = 'w0-d4'`, and the refusal it got.
"""

from __future__ import annotations

import copy
import json
import math
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import ENV, ROOT
from faultlib import copy as copy_project
from faultlib import last_line, snapshot, temps
from hypothesis import HealthCheck, Phase, assume, given, note, settings
from hypothesis import strategies as st

from ladder.pipeline import config, dag

COMMON = dict(
    deadline=None,
    database=None,  # nothing kept between runs: CI replays its fixed set, make test-faults a fresh one
    print_blob=True,
    phases=[Phase.generate, Phase.shrink],  # a failure shrunk to one mutation says enough; no explain phase
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("ci", max_examples=300, derandomize=True, **COMMON)
settings.register_profile("thorough", max_examples=1500, **COMMON)
PROFILE = os.environ.get("LADDER_FUZZ", "ci")
IN_PROCESS = settings.get_profile(PROFILE)
# each a `ladder` process start (about half a second): a few in CI, more under make test-faults
CLI = settings(IN_PROCESS, max_examples={"ci": 10, "thorough": 40}.get(PROFILE, 10))

SHIPPED = yaml.safe_load((ROOT / "params.yaml").read_text())
Where = tuple[Any, ...]  # keys and list indices from the root


def walk(node: Any, at: Where = ()) -> list[tuple[Where, Any]]:
    """Every (path, value) in the document, the root included."""
    out = [(at, node)]
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else []
    for key, child in items:
        out += walk(child, (*at, key))
    return out


NODES = walk(SHIPPED)
LEAVES = [(p, v) for p, v in NODES if p and not isinstance(v, dict | list)]
MAPPINGS = [p for p, v in NODES if isinstance(v, dict)]
KEYS = sorted({p[-1] for p, _ in NODES if p and isinstance(p[-1], str)})
SCALARS = sorted({repr(v): v for _, v in LEAVES}.values(), key=repr)  # values from elsewhere in the file


def _at(doc: Any, path: Where) -> Any:
    for key in path:
        doc = doc[key]
    return doc


def dotted(path: Where) -> str:
    return "".join(f"[{k}]" if isinstance(k, int) else f".{k}" for k in path).lstrip(".") or "<root>"


def named(path: Where) -> str:
    """The key a refusal must name: the last key on the path (a list item's list)."""
    keys = [k for k in path if isinstance(k, str)]
    return keys[-1] if keys else ""


@dataclass(frozen=True)
class Mutation:
    kind: str  # replace | delete | add
    path: Where  # the value replaced or removed; for add, the new key's path
    value: Any = None

    def __repr__(self) -> str:
        if self.kind == "delete":
            return f"delete {dotted(self.path)}"
        return f"{self.kind} {dotted(self.path)} = {self.value!r}"

    def apply(self, doc: dict) -> dict:
        doc = copy.deepcopy(doc)
        *parents, last = self.path
        node = doc
        for key in parents:
            node = node[key]
        if self.kind == "delete":
            del node[last]
        else:
            node[last] = self.value
        return doc


FINITE = st.floats(allow_nan=False, allow_infinity=False)
NON_FINITE = st.sampled_from([math.inf, -math.inf, math.nan])
WORDS = st.text(alphabet="abcdefghijklmnopqrstuvwxyz_-0123456789 .", max_size=12)


def out_of_range(v: Any) -> st.SearchStrategy:
    """Numbers at and past the edges any bound could sit at, and around the shipped value."""
    edges = [0, -1, 1, -0.0, 0.5, 1.0, 1.5, 2, 3, 2**31, 2**32, 2**63, 2**64, 10**30, 1e308, 5e-324, -1e-9]
    if isinstance(v, int | float) and not isinstance(v, bool):
        edges += [-v, v + 1, v - 1, v * 10**6, v + 0.5, v / 3]
    return st.sampled_from(edges) | st.integers(-(2**70), 2**70) | FINITE


def wrong_type(v: Any) -> st.SearchStrategy:
    return st.one_of(
        st.none(),
        st.booleans(),
        WORDS,
        st.lists(st.integers(-3, 3) | WORDS, max_size=3),
        st.dictionaries(WORDS, st.integers(-3, 3), max_size=2),
        st.sampled_from(SCALARS),
        st.sampled_from([str(v), [v], {"value": v}]),
    )


SHAPES = st.from_regex(r"w0*[0-9]{1,3}-d0*[0-9]{1,2}", fullmatch=True)


def value_for(v: Any) -> st.SearchStrategy:
    """Mostly values of the shipped one's kind that break it (a shape for a shape, numbers past the edges
    for a number, bad items for a list), then any wrong type."""
    if isinstance(v, str) and config.SHAPE.fullmatch(v):
        near = SHAPES
    elif isinstance(v, str):
        near = st.sampled_from(["", " ", v.upper(), v + "x", v[:-1]]) | WORDS
    elif isinstance(v, list):
        item = value_for(v[0]) if v else wrong_type(None)
        near = st.sampled_from([[], v + v[:1], v[::-1], v[1:]]) | st.lists(item, max_size=3).map(lambda x: v + x)
    elif isinstance(v, dict):
        near = st.sampled_from([{}, {None: 1}]) | st.dictionaries(WORDS, ANY_ITEM, max_size=2).map(lambda d: {**v, **d})
    elif isinstance(v, bool) or v is None:
        near = wrong_type(v) | out_of_range(0)
    else:
        near = out_of_range(v) | NON_FINITE
    return st.one_of(near, near, NON_FINITE, wrong_type(v))


ANY_ITEM = st.deferred(lambda: st.sampled_from(SCALARS) | NON_FINITE | wrong_type(None))


@st.composite
def mutations(draw) -> Mutation:
    kind = draw(st.sampled_from(["replace", "replace", "replace", "delete", "add"]))
    if kind == "add":
        where = draw(st.sampled_from(MAPPINGS))
        parent = _at(SHIPPED, where)
        key = draw(st.sampled_from(KEYS) | WORDS.filter(bool) | st.sampled_from([k + "s" for k in KEYS]))
        assume(key not in parent)
        return Mutation("add", (*where, key), draw(st.sampled_from(SCALARS) | wrong_type(None) | NON_FINITE))
    path, v = draw(st.sampled_from(NODES[1:] if kind == "delete" else [*LEAVES, *NODES[1:]]))
    if kind == "delete":
        return Mutation("delete", path)
    return Mutation("replace", path, draw(value_for(v)))


def derived_all(params: config.Params) -> None:
    """What the Snakefile works out from the params on every invocation (stamps.write_snapshots, the
    rules' inputs and wildcards): every job's params slice, inputs and derived train block; and what
    `ladder plan` estimates for every size, with the model built on the meta device as it builds it,
    at depth 1 (each layer costs about 9 ms there and is the same layer: depth adds time, not failures)."""
    for stage, run in dag.jobs(params):
        json.dumps(dag.params_of(params, stage, run), sort_keys=True, allow_nan=False)
        dag.inputs(params, stage, run)
        if dag.STAGES[stage].per == "variant":  # a comparison trains nothing itself: its variant's params
            params.variant(run)
        elif run is not None:  # a size's stages derive the size's; a cell, rung, replica or arm its own
            derived = params.derived(stage if dag.STAGES[stage].module == "train" else "train", run)
            derived.train_for(run)
            derived.plan_for(run)
    from ladder.nn import cost  # torch: imported when the first mutation is accepted, not at collection

    for name, size in params.sizes.items():  # `ladder plan`; the train stage's check and GPU profiles too
        shallow = params.model_copy(update={"sizes": {**params.sizes, name: size.model_copy(update={"n_layer": 1})}})
        cost.estimate(shallow, name, params.tokenizer.vocab_size)


def refusal(path: Path, mutation: Mutation) -> str | None:
    """Write the mutated params, load them as the CLI does: None if accepted (and usable), else the line."""
    path.write_text(yaml.safe_dump(mutation.apply(SHIPPED), sort_keys=False))
    try:
        params = config.load(path)
    except config.ConfigError as e:
        return str(e)
    derived_all(params)  # an exception here is a value accepted that then crashes
    return None


@pytest.fixture(scope="module")
def scratch(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("fuzz") / "fuzzed.yaml"


def test_shipped_params_pass_the_same_checks(scratch):
    assert refusal(scratch, Mutation("replace", ("seed",), SHIPPED["seed"])) is None


@IN_PROCESS
@given(mutation=mutations())
def test_a_mutation_is_accepted_or_refused_in_one_line_naming_the_key(scratch, mutation):
    line = refusal(scratch, mutation)
    if line is None:
        return
    note(f"refused: {line}")
    assert "\n" not in line, f"{mutation!r}: more than one line:\n{line}"
    assert line.startswith(f"{scratch}: "), f"{mutation!r}: does not name the file: {line}"
    assert named(mutation.path) in line.removeprefix(f"{scratch}: "), f"{mutation!r}: does not name the key: {line}"


@pytest.fixture(scope="module")
def fuzz_project(faults_base, tmp_path_factory) -> Path:
    return copy_project(faults_base, tmp_path_factory, "fuzz")


@CLI
@given(mutation=mutations())
def test_the_cli_refuses_in_one_line_and_writes_nothing(fuzz_project, scratch, mutation):
    assume(refusal(scratch, mutation) is not None)  # an accepted mutation would run the stage
    params = fuzz_project / ".faults" / "fuzzed.yaml"
    params.parent.mkdir(exist_ok=True)
    params.write_text(scratch.read_text())
    before = snapshot(fuzz_project)
    p = subprocess.run(
        ["ladder", "--params", str(params.relative_to(fuzz_project)), "download"],
        cwd=fuzz_project,
        env=ENV,
        capture_output=True,
        text=True,
    )
    after = snapshot(fuzz_project)
    note(f"stderr: {p.stderr}")
    lines = [line for line in p.stderr.splitlines() if line.strip()]
    assert p.returncode == 1, f"{mutation!r}: exit {p.returncode}\n{p.stderr[-3000:]}"
    assert len(lines) == 1, f"{mutation!r}: {len(lines)} lines on stderr:\n{p.stderr[-3000:]}"
    line = last_line(p.stderr)
    assert line.startswith("ladder download: error: .faults/fuzzed.yaml: "), line
    assert named(mutation.path) in line.split(".faults/fuzzed.yaml: ", 1)[1], f"{mutation!r}: {line}"
    assert after == before, f"{mutation!r}: wrote {sorted(set(after.items()) ^ set(before.items()))}"
    assert temps(fuzz_project) == []
