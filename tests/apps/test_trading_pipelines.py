"""Each trading job is written twice -- YAML and the Python API -- and both are one spec."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from surestream.examples.trading.pipelines import PIPELINES
from surestream.model.loader import build_spec, load_spec_dict
from surestream.semantics.user_functions import resolve_object

YAML = Path(__file__).resolve().parents[2] / "src" / "surestream" / "examples" / "trading"


def normalized(spec: Any) -> dict[str, Any]:
    """The spec as plain values; user functions named in YAML resolved to the objects."""
    streams = {}
    for name, stream in spec.all_streams.items():
        steps = []
        for step in stream.steps:
            d = step.model_dump()
            if "function" in d:
                d["function"] = resolve_object(d["function"])
            steps.append(d)
        streams[name] = {"from": stream.from_, "steps": steps}
    return {"pipeline": spec.pipeline, "streams": streams,
            "sources": {k: v.model_dump() for k, v in spec.all_sources.items()},
            "outputs": {k: v.model_dump() for k, v in spec.outputs.items()},
            "checkpoint": spec.checkpoint.model_dump(), "runtime": spec.runtime.model_dump()}


@pytest.mark.parametrize("job", sorted(PIPELINES))
def test_python_and_yaml_build_the_same_pipeline(job):
    from_yaml = build_spec(load_spec_dict(YAML / f"{job}.yaml"))
    from_python = PIPELINES[job]().spec()
    assert normalized(from_python) == normalized(from_yaml)
