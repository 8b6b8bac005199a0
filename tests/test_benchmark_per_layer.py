"""benchmarks/per_layer.py: layers classified from the ONNX graph, paired with TVM's kernels by shape."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))
import per_layer  # noqa: E402


@pytest.fixture(scope="module")
def onnx_path(tmp_path_factory):
    from edge_mnv2.compile.frontend import load_source

    proto, _ = load_source("mobilenet_v2_0.35_96")
    path = tmp_path_factory.mktemp("per_layer") / "model.onnx"
    path.write_bytes(proto.SerializeToString())
    return path


def test_layers_are_classified_as_in_the_paper(onnx_path):
    kinds = per_layer.onnx_layers(onnx_path)
    # MobileNetV2: a 3x3 stem, 17 inverted residuals (the first without expansion: 16 expand 1x1s, 17
    # depthwise, 4 of them stride 2, 17 project 1x1s), the last 1x1 to 1280, the classifier
    counts = {kind: kinds.count(kind) for kind in per_layer.KINDS}
    assert counts == {"stem": 1, "depthwise": 13, "depthwise s2": 4, "pointwise": 34, "classifier": 1}
    assert kinds[0] == "stem" and kinds[-1] == "classifier"


def test_layers_pair_by_spatial_size_whatever_the_layout_and_channel_padding():
    event = {"args": {"output_type_shape": [{"float": [1, 32, 56, 56]}]}}  # ORT pads 24 channels to 32
    ort = per_layer.output_shape(event)
    assert ort == (1, 32, 56, 56)
    assert per_layer.spatial((1, 56, 56, 24), "NHWC") == per_layer.spatial(ort, "NCHW") == (56, 56)
    assert per_layer.spatial((1, 24, 28, 28), "NCHW") != per_layer.spatial(ort, "NCHW")
    assert per_layer.spatial((1, 1000), "NHWC") == (1, 1000)


def run_script(*args, env=None):
    return subprocess.run(
        [sys.executable, str(BENCHMARKS / "per_layer.py"), *map(str, args)],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
    )


def test_bad_arguments_get_one_line(tmp_path):
    result = run_script(tmp_path / "nowhere")
    assert result.returncode == 2 and "no compiled artifact" in result.stderr and "Traceback" not in result.stderr
    result = run_script(tmp_path, "--turns", "0")
    assert result.returncode == 2 and "--turns and --per-turn must be at least 1" in result.stderr


def test_a_build_for_another_device_is_refused(tmp_path):
    from edge_mnv2.artifact import SCHEMA_VERSION, write_metadata

    write_metadata(tmp_path, {"schema": SCHEMA_VERSION, "files": {}, "target": {"name": "rpi4b"}})
    result = run_script(tmp_path)
    assert result.returncode == 2 and "built for 'rpi4b'" in result.stderr and "--target host" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_compiled_vm_build_is_refused(tmp_path):
    from edge_mnv2.artifact import SCHEMA_VERSION, write_metadata

    write_metadata(
        tmp_path, {"schema": SCHEMA_VERSION, "files": {}, "target": {"name": "host", "exec_mode": "compiled"}}
    )
    result = run_script(tmp_path)
    assert result.returncode == 2 and "--exec-mode bytecode" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.slow
def test_a_build_is_timed_layer_by_layer_against_onnx_runtime(tmp_path):
    from edge_mnv2.compile import compile_model

    # no tuning log on purpose: the default rules' layout (NHWC) comes from artifact.json's schedules
    # table; bytecode, as the host's compiled VM calls no instrument hook
    artifact = compile_model("mobilenet_v2_0.35_96", "host", tmp_path / "build", use_tuning=False, exec_mode="bytecode")
    assert artifact.metadata["target"]["exec_mode"] == "bytecode"
    assert b"__vmtir__main" not in artifact.library_path.read_bytes()
    # one thread: ONNX Runtime must follow TVM's count, which on a 2-core machine is also its default
    env = {**os.environ, "TVM_NUM_THREADS": "1"}
    result = run_script(tmp_path / "build", "--turns", "1", "--per-turn", "2", "-o", tmp_path / "table.md", env=env)
    assert result.returncode == 0, result.stderr
    table = (tmp_path / "table.md").read_text()
    assert "TVM (NHWC) and ONNX Runtime on 1 threads" in table.splitlines()[0]
    rows = [line for line in table.splitlines() if line.startswith("| ") and line[2].isdigit()]
    assert len(rows) == 53 and "| 0 | stem |" in rows[0] and "| classifier |" in rows[-1]
    assert "| all | 53 |" in table
