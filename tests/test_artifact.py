"""Artifact folders: staged writes, loading artifact.json, and sha256 verification."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from edge_mnv2.artifact import METADATA_FILE, SCHEMA_VERSION, load_artifact, staged_output, write_metadata
from edge_mnv2.errors import ArtifactError
from edge_mnv2.models.weights import file_sha256


def _leftovers(parent):
    return [p.name for p in parent.iterdir() if p.name.endswith(".partial")]


# --- staged_output -------------------------------------------------------------------------------


def test_staged_success(tmp_path):
    out = tmp_path / "art"
    with staged_output(out) as staging:
        assert staging.is_dir() and staging != out
        assert list(staging.iterdir()) == []
        assert not out.exists()  # nothing appears before the block finishes
        (staging / "a.txt").write_text("A")
        (staging / "sub").mkdir()
        (staging / "sub" / "b.txt").write_text("B")
    assert (out / "a.txt").read_text() == "A"
    assert (out / "sub" / "b.txt").read_text() == "B"
    assert not staging.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["art"]


def test_staged_creates_parents(tmp_path):
    out = tmp_path / "x" / "y" / "art"
    with staged_output(out) as staging:
        (staging / "f").write_text("1")
    assert (out / "f").read_text() == "1"


def test_staged_replaces_existing_files(tmp_path):
    out = tmp_path / "art"
    out.mkdir()
    (out / "f").write_text("old")
    (out / "d").mkdir()
    (out / "d" / "stale").write_text("s")
    (out / "keep").write_text("k")
    with staged_output(out) as staging:
        (staging / "f").write_text("new")
        (staging / "d").mkdir()
        (staging / "d" / "fresh").write_text("n")
    assert (out / "f").read_text() == "new"
    assert sorted(p.name for p in (out / "d").iterdir()) == ["fresh"]
    assert (out / "keep").read_text() == "k"


def test_staged_failure_removes_created_output(tmp_path):
    out = tmp_path / "art"
    with pytest.raises(RuntimeError, match="boom"):
        with staged_output(out) as staging:
            (staging / "a.txt").write_text("A")
            raise RuntimeError("boom")
    assert not out.exists()
    assert _leftovers(tmp_path) == []
    assert list(tmp_path.iterdir()) == []


def test_staged_interrupt_cleans_up(tmp_path):
    out = tmp_path / "art"
    with pytest.raises(KeyboardInterrupt):
        with staged_output(out) as staging:
            (staging / "a.txt").write_text("A")
            raise KeyboardInterrupt
    assert list(tmp_path.iterdir()) == []


def test_staged_failure_keeps_existing_output(tmp_path):
    out = tmp_path / "art"
    out.mkdir()
    (out / "mine.txt").write_text("precious")
    with pytest.raises(ValueError):
        with staged_output(out) as staging:
            (staging / "mine.txt").write_text("overwritten?")
            (staging / "new.txt").write_text("N")
            raise ValueError
    assert out.is_dir()
    assert sorted(p.name for p in out.iterdir()) == ["mine.txt"]
    assert (out / "mine.txt").read_text() == "precious"
    assert _leftovers(tmp_path) == []


def test_staged_failure_while_moving_removes_created_output(tmp_path, monkeypatch):
    out = tmp_path / "art"
    real_replace = Path.replace
    calls = []

    def flaky_replace(self, target):
        calls.append(self.name)
        if len(calls) == 2:
            raise OSError("disk full")
        return real_replace(self, target)

    monkeypatch.setattr(Path, "replace", flaky_replace)
    with pytest.raises(OSError, match="disk full"):
        with staged_output(out) as staging:
            (staging / "a").write_text("A")
            (staging / "b").write_text("B")
    assert len(calls) == 2
    assert not out.exists()  # a half-moved artifact is not left behind
    assert list(tmp_path.iterdir()) == []


def test_staged_output_is_a_file(tmp_path):
    out = tmp_path / "file"
    out.write_text("x")
    with pytest.raises(ArtifactError, match="not a folder"):
        with staged_output(out):
            pytest.fail("the block must not run")
    assert out.read_text() == "x"
    assert _leftovers(tmp_path) == []


# --- load_artifact / verify ----------------------------------------------------------------------


def _fake_artifact(directory):
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "model.so").write_bytes(b"\x7fELF fake library bytes")
    (directory / "model.onnx").write_bytes(b"fake onnx bytes")
    metadata = {
        "schema": SCHEMA_VERSION,
        "files": {
            "library": {"path": "model.so", "sha256": file_sha256(directory / "model.so")},
            "onnx": {"path": "model.onnx", "sha256": file_sha256(directory / "model.onnx")},
        },
        "model": {"model": "mobilenet_v2_0.35_96"},
        "input": {"name": "input", "shape": [1, 3, 96, 96], "dtype": "float32"},
        "target": {"name": "host", "device": "cpu"},
    }
    write_metadata(directory, metadata)
    return metadata


def test_load_and_verify(tmp_path):
    meta = _fake_artifact(tmp_path / "art")
    art = load_artifact(tmp_path / "art")
    assert art.metadata == meta
    assert art.directory == tmp_path / "art"
    assert art.library_path == tmp_path / "art" / "model.so"
    assert art.onnx_path == tmp_path / "art" / "model.onnx"
    assert art.model_name == "mobilenet_v2_0.35_96"
    assert art.input_shape == (1, 3, 96, 96)
    assert art.input_dtype == "float32"
    assert art.target_name == "host"
    art.verify()


def test_load_via_json_path(tmp_path):
    _fake_artifact(tmp_path / "art")
    art = load_artifact(tmp_path / "art" / METADATA_FILE)
    assert art.directory == tmp_path / "art"
    art.verify()


def test_verify_detects_changed_byte(tmp_path):
    _fake_artifact(tmp_path / "art")
    art = load_artifact(tmp_path / "art")
    lib = tmp_path / "art" / "model.so"
    data = bytearray(lib.read_bytes())
    data[5] ^= 0x01
    lib.write_bytes(bytes(data))
    with pytest.raises(ArtifactError) as info:
        art.verify()
    assert "sha256" in str(info.value)
    assert "library" in str(info.value)


def test_verify_detects_missing_file(tmp_path):
    _fake_artifact(tmp_path / "art")
    (tmp_path / "art" / "model.onnx").unlink()
    with pytest.raises(ArtifactError, match="model.onnx"):
        load_artifact(tmp_path / "art").verify()


def test_load_missing_folder(tmp_path):
    with pytest.raises(ArtifactError, match="no such file or folder"):
        load_artifact(tmp_path / "nothing")


def test_load_folder_without_metadata(tmp_path):
    with pytest.raises(ArtifactError, match="no compiled artifact"):
        load_artifact(tmp_path)


def test_load_invalid_json(tmp_path):
    (tmp_path / METADATA_FILE).write_text("{not json")
    with pytest.raises(ArtifactError, match="not valid JSON"):
        load_artifact(tmp_path)


@pytest.mark.parametrize("metadata", [{"schema": 2, "files": {}}, {"files": {}}, {"schema": SCHEMA_VERSION}])
def test_load_wrong_schema(tmp_path, metadata):
    (tmp_path / METADATA_FILE).write_text(json.dumps(metadata))
    with pytest.raises(ArtifactError, match="schema"):
        load_artifact(tmp_path)


@pytest.mark.parametrize("text", ["[1, 2]", '"artifact"', "null"])
def test_load_json_that_is_not_an_object(tmp_path, text):
    (tmp_path / METADATA_FILE).write_text(text)
    with pytest.raises(ArtifactError):
        load_artifact(tmp_path)
