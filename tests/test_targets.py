"""Target files: the shipped host target, custom folders, and malformed files."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from edge_mnv2.errors import EdgeMnv2Error, UnknownTargetError
from edge_mnv2.targets import NATIVE_CPU_ENV, TARGETS_ENV, list_targets, load_target, native_cpu, targets_dir

REPO_TARGETS = Path(__file__).resolve().parent.parent / "targets"


@pytest.fixture(autouse=True)
def _default_targets(monkeypatch):
    monkeypatch.delenv(TARGETS_ENV, raising=False)


def test_host_target_resolves_native():

    host = load_target("host")
    assert host.name == "host"
    assert host.device == "cpu"
    assert host.rpc_key == "host"
    assert host.export_format == "so"
    assert host.cross_compiler is None
    assert host.tvm["mcpu"] == "native"  # the file's value is kept
    resolved = host.resolved_tvm()
    assert resolved["kind"] == "llvm"
    assert resolved["mcpu"] == native_cpu()  # this machine's, or the one EDGE_MNV2_NATIVE_CPU names
    assert resolved["mcpu"] != "native"
    assert isinstance(resolved["num-cores"], int) and resolved["num-cores"] >= 1
    assert resolved["num-cores"] == len(os.sched_getaffinity(0))
    assert host.tvm["mcpu"] == "native"  # resolving does not mutate the spec


def test_host_tvm_target():
    target = load_target("host").tvm_target()
    assert target.kind.name == "llvm"
    assert str(target.attrs["mcpu"]) == load_target("host").resolved_tvm()["mcpu"]


def test_list_targets_includes_host():
    assert targets_dir() == REPO_TARGETS
    assert "host" in list_targets()


def test_unknown_target_lists_valid():
    with pytest.raises(UnknownTargetError) as info:
        load_target("no-such-board")
    msg = str(info.value)
    assert "no-such-board" in msg
    assert "host" in msg.split("valid targets:", 1)[1]
    assert issubclass(UnknownTargetError, EdgeMnv2Error)


def test_load_by_toml_path(tmp_path):
    path = tmp_path / "myboard.toml"
    path.write_text(
        'name = "rpi4"\n[tvm]\nkind = "llvm"\nmtriple = "aarch64-linux-gnu"\nmcpu = "cortex-a72"\n'
        '[export]\ncross_compiler = "aarch64-linux-gnu-g++"\n'
    )
    t = load_target(str(path))
    assert t.name == "rpi4"
    assert t.path == path
    assert t.rpc_key == "rpi4"  # defaults to the name
    assert t.cross_compiler == "aarch64-linux-gnu-g++"
    assert t.export_format == "so"
    assert t.resolved_tvm()["mcpu"] == "cortex-a72"  # only "native" is replaced
    assert load_target(path).name == "rpi4"  # a Path works too


def test_repo_host_file_by_path():
    assert load_target(REPO_TARGETS / "host.toml").name == "host"


def test_custom_targets_folder(tmp_path, monkeypatch):
    (tmp_path / "board.toml").write_text('name = "board"\nrpc_key = "k1"\ndevice = "cpu"\n[tvm]\nkind = "llvm"\n')
    (tmp_path / "other.toml").write_text('name = "other"\n[tvm]\nkind = "c"\n')
    monkeypatch.setenv(TARGETS_ENV, str(tmp_path))
    assert targets_dir() == tmp_path
    assert list_targets() == ["board", "other"]
    t = load_target("board")
    assert t.rpc_key == "k1" and t.path == tmp_path / "board.toml"
    with pytest.raises(UnknownTargetError) as info:
        load_target("host")  # not in the custom folder
    assert "board, other" in str(info.value)


def test_empty_custom_folder(tmp_path, monkeypatch):
    monkeypatch.setenv(TARGETS_ENV, str(tmp_path / "missing"))
    assert list_targets() == []
    with pytest.raises(UnknownTargetError, match="none"):
        load_target("host")


@pytest.mark.parametrize(
    "text, words",
    [
        ('name = "x"\n[tvm\nkind = "llvm"\n', "not valid TOML"),
        ('name = "x"\ndescription = "no tvm table"\n', "'tvm'"),
        ('[tvm]\nkind = "llvm"\n', "'name'"),
        ('name = "x"\n[tvm]\nmcpu = "native"\n', "'kind'"),
        ('name = "x"\ntvm = "llvm"\n', "'kind'"),
        (
            'name = "x"\n[tvm]\nkind = "llvm"\n[export]\nexec_mode = "jit"\n',
            "[export] exec_mode = 'jit' is not an exec mode; use one of 'bytecode'",
        ),
    ],
)
def test_malformed_target_file(tmp_path, monkeypatch, text, words):
    (tmp_path / "bad.toml").write_text(text)
    monkeypatch.setenv(TARGETS_ENV, str(tmp_path))
    for ref in ("bad", str(tmp_path / "bad.toml")):
        with pytest.raises(UnknownTargetError) as info:
            load_target(ref)
        msg = str(info.value)
        assert str(tmp_path / "bad.toml") in msg
        assert words in msg


def test_native_can_stand_for_an_avx2_only_cpu(monkeypatch):
    """EDGE_MNV2_NATIVE_CPU: build here as on another x86 CPU, with what follows from its features."""
    from edge_mnv2.quantize import kernels_for
    from edge_mnv2.schedules.isa import vector_isa

    monkeypatch.setenv(NATIVE_CPU_ENV, "znver3")
    host = load_target("host")
    assert host.resolved_tvm()["mcpu"] == "znver3"
    isa = vector_isa(host.tvm_target())
    assert (isa.name, isa.lanes, isa.int8_dot) == ("avx2", 8, "")
    assert kernels_for(host.tvm_target()) == "generic"  # no VNNI: the plain int8 graph
    monkeypatch.setenv(NATIVE_CPU_ENV, "znver4")
    isa = vector_isa(load_target("host").tvm_target())
    assert (isa.name, isa.lanes, isa.int8_dot) == ("avx512", 16, "vnni")


def test_an_unknown_native_cpu_is_refused_by_name(monkeypatch):
    monkeypatch.setenv(NATIVE_CPU_ENV, "zen9")
    with pytest.raises(EdgeMnv2Error, match=f"{NATIVE_CPU_ENV}='zen9' is not a CPU LLVM knows"):
        load_target("host").resolved_tvm()
