"""Code generation for microcontrollers, checked on the host: plain-ABI kernels, the static executor,
the weights blob, and outputs equal to PyTorch's (the generated C compiled by gcc, run in-process)."""

import re
import subprocess

import numpy as np
import pytest

from edge_mnv2.compile.frontend import load_source
from edge_mnv2.export import read_metadata
from edge_mnv2.micro.codegen import generate_model_sources
from edge_mnv2.micro.host import HostModel

MODEL = "mobilenet_v2_0.35_96"


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    proto, _ = load_source(MODEL)
    directory = tmp_path_factory.mktemp("micro") / "model"
    sources = generate_model_sources(proto, MODEL, directory, read_metadata(proto).get("preprocessing"))
    return sources, HostModel(directory)


def test_kernels_have_a_plain_pointer_abi_and_no_runtime(generated):
    sources, _ = generated
    kernels = (sources.directory / "kernels.c").read_text()
    signatures = re.findall(r"^TVM_DLL void (k_\w+)\(([^)]*)\) \{", kernels, re.M)
    assert len(signatures) == sources.kernels >= 30
    for _, params in signatures:
        assert all(re.fullmatch(r"(float|int8_t|int32_t|int64_t)\* \w+", p.strip()) for p in params.split(","))
    for runtime in ("DLTensor", "TVMFFI", "TVMBackendAllocWorkspace", "tvm/"):
        assert runtime not in kernels
    # padding and epilogues are inlined: each kernel keeps at most a one-element accumulator
    assert sources.kernel_stack_bytes <= 16


def test_generated_c_compiles_cleanly_as_c99(generated, tmp_path):
    sources, _ = generated
    for name in ("kernels.c", "model.c"):
        proc = subprocess.run(
            [
                "gcc",
                "-std=c99",
                "-Wall",
                "-Werror",
                "-Wno-unused-variable",
                "-c",
                name,
                "-o",
                str(tmp_path / f"{name}.o"),
            ],
            cwd=sources.directory,
            capture_output=True,
            text=True,
        )
        assert proc.returncode == 0, proc.stderr


def test_executor_and_arena(generated):
    sources, _ = generated
    model_c = (sources.directory / "model.c").read_text()
    assert len(re.findall(r"/\* step \d+ \*/", model_c)) == sources.calls == 55
    assert "malloc" not in model_c
    # liveness reuse: far less than one buffer per tensor
    assert sources.arena_bytes < sources.unshared_arena_bytes / 3
    header = (sources.directory / "model.h").read_text()
    assert f"#define MODEL_ARENA_BYTES {sources.arena_bytes}" in header
    assert "#define MODEL_OUTPUT_ELEMS 1000" in header and "#define MODEL_INPUT_ELEMS (3 * 96 * 96)" in header


def test_weights_blob_holds_every_parameter_once(generated):
    import json

    import torch

    from edge_mnv2.models import get_spec
    from edge_mnv2.models.weights import build_model

    sources, _ = generated
    blob = (sources.directory / "weights.bin").read_bytes()
    assert len(blob) == sources.weight_bytes
    manifest = json.loads((sources.directory / "model.json").read_text())
    assert all(w["offset"] % 16 == 0 for w in manifest["weights"].values())
    params = sum(p.numel() for p in build_model(get_spec(MODEL)).parameters())
    bn = sum(
        m.weight.numel() * 2 for m in build_model(get_spec(MODEL)).modules() if isinstance(m, torch.nn.BatchNorm2d)
    )
    # BatchNorm is folded into the convolutions at export: what is left is conv weights + biases
    stored = sum(int(np.prod(w["shape"])) for w in manifest["weights"].values())
    assert params - bn <= stored <= params


def test_host_build_matches_pytorch(generated):
    import torch

    from edge_mnv2.models import get_spec
    from edge_mnv2.models.weights import build_model

    _, model = generated
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (3, 96, 96, 3), dtype=np.uint8)
    x = model.input_format.apply(images)
    np.testing.assert_array_equal(np.stack([model.preprocess(img)[0] for img in images]), x)
    got = np.concatenate([model.run(x[i : i + 1]) for i in range(3)])
    with torch.inference_mode():
        want = build_model(get_spec(MODEL))(torch.from_numpy(x)).numpy()
    assert np.abs(got - want).max() <= 1e-4
    assert (got.argmax(1) == want.argmax(1)).all()
    assert len(set(want.argmax(1))) > 1 or np.ptp(want) > 1  # a non-trivial model
