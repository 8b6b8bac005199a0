"""Compile: ONNX -> TVM -> shared library plus metadata (slow: real TVM builds)."""

import json

import pytest

from edge_mnv2.artifact import load_artifact
from edge_mnv2.compile import compile_model
from edge_mnv2.errors import ModelFileError, UnknownModelError, UnknownTargetError
from edge_mnv2.export import export_onnx
from edge_mnv2.models.weights import file_sha256

pytestmark = pytest.mark.slow

ELF_MACHINE_X86_64 = 0x3E


def elf_machine(path) -> int:
    header = path.read_bytes()[:20]
    assert header[:4] == b"\x7fELF", f"{path} is not an ELF file"
    return int.from_bytes(header[18:20], "little")


def test_artifact_files_and_metadata(small_artifact):
    meta = small_artifact.metadata
    assert sorted(p.name for p in small_artifact.directory.iterdir()) == ["artifact.json", "model.onnx", "model.so"]
    assert meta["model"]["model"] == "mobilenet_v2_0.35_96"
    assert meta["input"] == {"name": "input", "shape": [1, 3, 96, 96], "dtype": "float32"}
    assert meta["output"]["shape"] == [1, 1000]
    assert meta["preprocessing"]["mean"] == [0.485, 0.456, 0.406]
    assert meta["target"]["name"] == "host"
    import tvm

    from edge_mnv2.targets import native_cpu

    assert meta["target"]["tvm"]["mcpu"] == native_cpu()
    assert meta["versions"]["tvm"] == tvm.__version__
    for entry in meta["files"].values():
        assert file_sha256(small_artifact.directory / entry["path"]) == entry["sha256"]
    assert elf_machine(small_artifact.library_path) == ELF_MACHINE_X86_64
    # the host target compiles the Relax VM's steps to machine code (targets/host.toml: exec_mode)
    assert meta["target"]["exec_mode"] == "compiled"
    assert b"__vmtir__main" in small_artifact.library_path.read_bytes()
    small_artifact.verify()


def test_library_runs_in_process_like_pytorch(small_artifact):
    """The exported library loads and computes what PyTorch computes (no RPC involved)."""
    import numpy as np
    import torch
    import tvm
    from tvm import relax

    from edge_mnv2.data.evalset import evaluation_inputs
    from edge_mnv2.models import get_spec
    from edge_mnv2.models.weights import build_model

    spec = get_spec("mobilenet_v2_0.35_96")
    x = evaluation_inputs(2, 96, spec.preprocessing)
    vm = relax.VirtualMachine(tvm.runtime.load_module(str(small_artifact.library_path)), tvm.cpu())
    got = np.concatenate([vm["main"](tvm.runtime.tensor(x[i : i + 1])).numpy() for i in range(2)])
    with torch.inference_mode():
        want = build_model(spec)(torch.from_numpy(x)).numpy()
    assert np.abs(got - want).max() <= 1e-4


def test_compile_from_onnx_file(tmp_path):
    onnx_path = tmp_path / "m.onnx"
    export_onnx("mobilenet_v2_0.35_96", onnx_path, seed=3)
    artifact = compile_model(onnx_path, "host", tmp_path / "out")
    assert artifact.metadata["model"]["weights"] == {"kind": "random", "seed": 3}
    assert artifact.metadata["files"]["onnx"]["sha256"] == file_sha256(onnx_path)
    assert json.loads((tmp_path / "out" / "artifact.json").read_text())["schema"] == 1


@pytest.mark.parametrize("bad, error", [("mobilenet_v2_9.9_224", Exception), ("resnet50", UnknownModelError)])
def test_bad_model_name_writes_nothing(tmp_path, bad, error):
    with pytest.raises(error):
        compile_model(bad, "host", tmp_path / "out")
    assert list(tmp_path.iterdir()) == []


def test_bad_onnx_writes_nothing(tmp_path):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a protobuf at all")
    with pytest.raises(ModelFileError):
        compile_model(bad, "host", tmp_path / "out")
    assert not (tmp_path / "out").exists()
    assert not list(tmp_path.glob(".*partial"))


def test_unknown_target(tmp_path):
    with pytest.raises(UnknownTargetError, match="host"):
        compile_model("mobilenet_v2_0.35_96", "no-such-board", tmp_path / "out")


def test_interrupted_compile_leaves_nothing(tmp_path, monkeypatch):
    import edge_mnv2.compile.pipeline as compile_mod

    def interrupted(*_args, **_kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(compile_mod, "build", interrupted)
    with pytest.raises(KeyboardInterrupt):
        compile_model("mobilenet_v2_0.35_96", "host", tmp_path / "out")
    assert list(tmp_path.iterdir()) == []


def test_load_artifact_round_trip(small_artifact):
    again = load_artifact(small_artifact.directory / "artifact.json")
    assert again.metadata == small_artifact.metadata
