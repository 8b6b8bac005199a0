"""Typed views of artifact.json's sections: what compile writes reads back with types, unknown keys
(a newer edge-mnv2's) are ignored, and CPU artifacts have no micro section."""

import json

from edge_mnv2.artifact import METADATA_FILE, SCHEMA_VERSION, load_artifact
from edge_mnv2.artifact_sections import MicroInfo, TargetInfo


def _write(tmp_path, **sections):
    meta = {
        "schema": SCHEMA_VERSION,
        "files": {},
        "input": {"shape": [1, 3, 96, 96], "dtype": "float32"},
        "output": {"shape": [1, 10], "dtype": "float32"},
        "target": {
            "name": "rpi4b",
            "tvm": "llvm -mtriple=aarch64-linux-gnu",
            "device": "cpu",
            "rpc_key": "rpi4b",
            "emulate": {"cpu": "cortex-a72"},
            "added_later": 1,
        },
        **sections,
    }
    (tmp_path / METADATA_FILE).write_text(json.dumps(meta))
    return load_artifact(tmp_path)


def test_sections_read_back_typed_and_ignore_keys_they_do_not_know(tmp_path):
    artifact = _write(tmp_path, model={"model": "mobilenet_v2_0.35_96", "task": "classification"})
    assert artifact.input.shape == (1, 3, 96, 96) and artifact.output.per_item == (10,)
    assert artifact.target == TargetInfo(
        name="rpi4b",
        tvm="llvm -mtriple=aarch64-linux-gnu",
        device="cpu",
        rpc_key="rpi4b",
        emulate={"cpu": "cortex-a72"},
    )
    assert artifact.micro is None and artifact.quantization is None
    assert artifact.task == "classification" and artifact.model_name == "mobilenet_v2_0.35_96"


def test_a_micro_build_says_what_computes_its_layers(tmp_path):
    micro = {
        "model_id": 7,
        "kernels": 6,
        "calls": 48,
        "weight_bytes": 1,
        "arena_bytes": 2,
        "unshared_arena_bytes": 3,
        "memory": {"ram_total": 4},
        "runtime": "mnv2_nn",
        "implementation": "dsp",
        "macs": 5,
        "image_bytes": 9,
    }
    artifact = _write(
        tmp_path,
        kind="micro",
        micro=micro,
        quantization={"scheme": "int8", "calibration": {"data": "shapes", "images": 256}, "kernels": "micro-dsp"},
    )
    assert artifact.micro.code == "int8 kernels (dsp)" and artifact.micro.macs == 5
    assert artifact.quantization.kernels == "micro-dsp" and artifact.task == "classification"
    assert MicroInfo.from_dict({**micro, "runtime": "tvm"}).code == "6 C kernels"
