"""MetaSchedule tuning: logs that survive a kill, are found by target and model, and apply (slow)."""

import dataclasses
import json
import re
import shutil

import numpy as np
import pytest

from edge_mnv2.compile import compile_model
from edge_mnv2.remote import runtime_threads
from edge_mnv2.targets import load_target
from edge_mnv2.tuning.database import best_ms, extract_tasks, open_database, top_records
from edge_mnv2.tuning.logs import (
    DB_FILES,
    FOCUS_KEY,
    LOGS_ENV,
    META_FILE,
    detected_cpu,
    find_log,
    repair,
    tuning_log_path,
    write_meta,
)
from edge_mnv2.tuning.settings import (
    COLD_REPEATS,
    cache_flush_for,
    evaluator_config,
    layout_for,
    log_cache_flush,
    log_layout,
    log_weight_prepack,
    measuring_threads,
    weight_prepack_for,
)

from tuning_helpers import CLI_FLAGS, POPULATION, quick_tune, tiny_onnx

MODEL = "mobilenet_v2_0.35_96"


@pytest.fixture(scope="module")
def tuned_root(tmp_path_factory):
    """A log root holding a short host tuning run of mobilenet_v2_0.35_96: the search alone, so that most
    tasks have no record yet (with the library, every task starts with its default rule's record; that
    run is tests/tuning/test_library.py's). Two rounds, so that two tasks have records: a log seeded
    from it and cut back to one task's records has a task left to seed."""
    root = tmp_path_factory.mktemp("tuning_logs")
    result = quick_tune(MODEL, load_target("host"), trials=32, log_root=root, schedule_library=False)
    return root, result


def valid_records(path):
    lines = (path / "database_tuning_record.json").read_text().splitlines()
    return [line for line in lines if json.loads(line)[1][1][0] < 1e9]  # run_secs of failed builds are 1e10


@pytest.mark.slow
def test_tuning_writes_a_log_and_a_rerun_adds_nothing(tuned_root):
    root, result = tuned_root
    assert result.log == root / "host" / MODEL
    assert result.trials_after >= 1 and result.covered >= 1 and result.tasks > 20
    assert valid_records(result.log)
    meta = json.loads((result.log / "tuning.json").read_text())
    assert meta["model"] == MODEL and meta["tvm_target"]["mcpu"] == load_target("host").resolved_tvm()["mcpu"]
    assert meta["runtime_threads"] == meta["tvm_target"]["num-cores"] == runtime_threads.physical_cores()
    again = quick_tune(MODEL, load_target("host"), trials=result.trials_after, log_root=root)
    assert again.trials_before == again.trials_after == result.trials_after  # nothing left to spend
    assert len(json.loads((result.log / "tuning.json").read_text())["runs"]) == 2


@pytest.mark.slow
def test_a_rerun_spends_its_trials_on_tasks_the_log_lacks(tuned_root, tmp_path):
    root, result = tuned_root
    copy = tmp_path / "logs"
    shutil.copytree(root, copy)
    again = quick_tune(
        MODEL, load_target("host"), trials=result.trials_after + 8, log_root=copy, schedule_library=False
    )
    # a scheduler that forgot the log would tune the largest task again and cover nothing new
    assert again.covered == result.covered + 1


@pytest.mark.slow
def test_a_pruned_log_keeps_each_tasks_best_and_counts_its_trials(tuned_root, tmp_path):
    from edge_mnv2.compile.frontend import load_source, relax_module
    from edge_mnv2.tuning.prune import prune_log

    root, result = tuned_root
    copy = tmp_path / "logs"
    shutil.copytree(root, copy)
    log = copy / "host" / MODEL
    tasks = extract_tasks(
        relax_module(load_source(MODEL)[0]), load_target("host").tvm_target(), log_weight_prepack(log)
    )

    def best(path):
        database = open_database(path)
        return [[str(r.trace) for r in top_records(database, t.dispatched[0])] for t in tasks]

    before = best(log)
    assert prune_log(log, keep=1)[1] == result.covered < result.trials_after
    assert best(log) == before  # compile applies the same schedules
    again = quick_tune(MODEL, load_target("host"), trials=result.trials_after, log_root=copy)
    assert again.trials_before == again.trials_after == result.trials_after  # dropped records still count


@pytest.mark.slow
def test_compile_applies_the_log_and_stays_correct(tuned_root, tmp_path):
    import torch
    import tvm
    from tvm import relax

    from edge_mnv2.data.evalset import evaluation_inputs
    from edge_mnv2.models import get_spec
    from edge_mnv2.models.weights import build_model

    root, result = tuned_root
    tuned = compile_model(MODEL, "host", tmp_path / "tuned", log_root=root)
    info = tuned.metadata["tuning"]
    assert info["log"] == str(result.log) and info["covered_tasks"] == result.covered
    assert info["tasks"] == result.tasks
    # the host target starts logs with prepacked weights: the tuned kernel's weights were repacked
    assert info["weight_prepack"] is True and info["prepacked_weights"] >= 1
    plain = compile_model(MODEL, "host", tmp_path / "plain", log_root=root, use_tuning=False)
    assert plain.metadata["tuning"] is None

    spec = get_spec(MODEL)
    x = evaluation_inputs(2, 96, spec.preprocessing)
    vm = relax.VirtualMachine(tvm.runtime.load_module(str(tuned.library_path)), tvm.cpu())
    got = np.concatenate([vm["main"](tvm.runtime.tensor(x[i : i + 1])).numpy() for i in range(2)])
    with torch.inference_mode():
        assert np.abs(got - build_model(spec)(torch.from_numpy(x)).numpy()).max() <= 1e-4


def test_logs_are_found_by_target_and_architecture(tmp_path):
    for target, model in (("host", "mobilenet_v2_0.35_96"), ("rpi4b", "mobilenet_v2_1.0_224")):
        path = tmp_path / target / model
        path.mkdir(parents=True)
        for name in DB_FILES:
            (path / name).write_text("")
    assert find_log("host", "mobilenet_v2_0.35_96", tmp_path) == tmp_path / "host" / "mobilenet_v2_0.35_96"
    # a tagged model (other weights, same workloads) uses its architecture's log
    assert find_log("host", "mobilenet_v2_0.35_96.shapes", tmp_path) == tmp_path / "host" / "mobilenet_v2_0.35_96"
    assert find_log("host", "mobilenet_v2_1.0_224", tmp_path) is None  # another model's target only
    assert find_log("rpi5", "mobilenet_v2_1.0_224", tmp_path) is None  # another target
    assert find_log("host", None, tmp_path) is None
    # a CPU's own log comes before the target's, for that CPU only
    own = tmp_path / "host@znver5" / "mobilenet_v2_0.35_96"
    shutil.copytree(tmp_path / "host" / "mobilenet_v2_0.35_96", own)
    assert find_log("host", "mobilenet_v2_0.35_96.shapes", tmp_path, cpu="znver5") == own
    found = find_log("host", "mobilenet_v2_0.35_96", tmp_path, cpu="znver4")
    assert found == tmp_path / "host" / "mobilenet_v2_0.35_96"
    assert find_log("host", "mobilenet_v2_0.35_96", tmp_path) == tmp_path / "host" / "mobilenet_v2_0.35_96"


def test_a_cpu_other_than_the_logs_gets_a_log_of_its_own(tmp_path):
    host, rpi = load_target("host"), load_target("rpi4b")
    here = detected_cpu(host)
    assert here == host.resolved_tvm()["mcpu"] and detected_cpu(rpi) is None  # rpi4b names its CPU
    shared = tmp_path / "host" / MODEL
    assert tuning_log_path(host, MODEL, tmp_path) == (shared, None)  # the first log is the target's
    shared.mkdir(parents=True)
    for name in DB_FILES:
        (shared / name).write_text("")
    write_meta(shared, tvm_target={**host.resolved_tvm(), "mcpu": here})
    assert tuning_log_path(host, MODEL, tmp_path) == (shared, None)  # tuned here: continued
    write_meta(shared, tvm_target={**host.resolved_tvm(), "mcpu": "cortex-a72-pretend"})
    own = tmp_path / f"host@{here}" / MODEL
    assert tuning_log_path(host, MODEL, tmp_path) == (own, shared)  # started from the other CPU's
    own.mkdir(parents=True)
    # and continued from then on, still seeded from it: a first run killed while seeding goes on seeding
    assert tuning_log_path(host, MODEL, tmp_path) == (own, shared)
    shutil.rmtree(shared)
    assert tuning_log_path(host, MODEL, tmp_path) == (own, None)
    assert tuning_log_path(rpi, MODEL, tmp_path) == (tmp_path / "rpi4b" / MODEL, None)


def test_weight_prepack_comes_from_the_log_then_the_flag_then_the_target(tmp_path):
    from dataclasses import replace

    from edge_mnv2.errors import EdgeMnv2Error

    host = load_target("host")
    packing, plain = replace(host, tuning={"weight_prepack": True}), replace(host, tuning={})
    new_log = tmp_path / "new"
    assert log_weight_prepack(new_log) is None
    assert weight_prepack_for(new_log, packing, None, None) is True
    assert weight_prepack_for(new_log, plain, None, None) is False
    assert weight_prepack_for(new_log, plain, None, True) is True
    assert weight_prepack_for(new_log, packing, "int8", None) is False  # int8 packs its own weights
    assert weight_prepack_for(new_log, replace(packing, device="cuda"), None, None) is False
    with pytest.raises(EdgeMnv2Error, match="int8"):
        weight_prepack_for(new_log, packing, "int8", True)
    with pytest.raises(EdgeMnv2Error, match="for CPU targets; 'cuda' runs on cuda"):
        weight_prepack_for(new_log, load_target("cuda"), None, True)

    legacy = tmp_path / "legacy"  # records from before the setting existed: plain kernels
    legacy.mkdir()
    (legacy / "database_tuning_record.json").write_text("[0, [[], [1e-05], {}, []]]\n")
    assert weight_prepack_for(legacy, packing, None, None) is False
    packed = tmp_path / "packed"
    packed.mkdir()
    (packed / META_FILE).write_text(json.dumps({"runs": [], "weight_prepack": True}))
    assert weight_prepack_for(packed, plain, None, None) is True
    with pytest.raises(EdgeMnv2Error, match="--no-weight-prepack cannot continue it"):
        weight_prepack_for(packed, plain, None, False)


def test_cache_flush_comes_from_the_log_then_the_flag_then_the_target(tmp_path):
    from dataclasses import replace

    from edge_mnv2.errors import EdgeMnv2Error

    host = load_target("host")
    flushing, warm = replace(host, tuning={"cache_flush": True}), replace(host, tuning={})
    new_log = tmp_path / "new"
    assert log_cache_flush(new_log) is None
    assert cache_flush_for(new_log, flushing, None) is True
    assert cache_flush_for(new_log, warm, None) is False
    assert cache_flush_for(new_log, warm, True) is True
    assert cache_flush_for(new_log, flushing, False) is False
    assert cache_flush_for(new_log, replace(flushing, device="cuda"), None) is False
    with pytest.raises(EdgeMnv2Error, match="--cache-flush is for CPU targets; 'cuda' runs on cuda"):
        cache_flush_for(new_log, load_target("cuda"), True)

    legacy = tmp_path / "legacy"  # records from before the setting existed were measured warm
    legacy.mkdir()
    (legacy / "database_tuning_record.json").write_text("[0, [[], [1e-05], {}, []]]\n")
    assert cache_flush_for(legacy, flushing, None) is False
    with pytest.raises(EdgeMnv2Error, match="without flushed caches, so --cache-flush cannot continue it"):
        cache_flush_for(legacy, warm, True)
    cold = tmp_path / "cold"
    cold.mkdir()
    (cold / META_FILE).write_text(json.dumps({"runs": [], "cache_flush": True}))
    assert cache_flush_for(cold, warm, None) is True
    with pytest.raises(EdgeMnv2Error, match="--no-cache-flush cannot continue it"):
        cache_flush_for(cold, warm, False)


def test_layout_comes_from_the_flag_then_the_log_then_the_target(tmp_path):
    from dataclasses import replace

    from edge_mnv2.errors import EdgeMnv2Error

    host = load_target("host")
    nhwc_target, plain = replace(host, tuning={"layout": "NHWC"}), replace(host, tuning={})
    new_log = tmp_path / "new"
    assert log_layout(new_log) is None
    assert layout_for(new_log, plain, None, None) == "NCHW"
    assert layout_for(new_log, nhwc_target, None, None) == "NHWC"
    assert layout_for(new_log, nhwc_target, None, "NCHW") == "NCHW"
    assert layout_for(new_log, nhwc_target, "int8", None) == "NCHW"  # int8 picks its own layout
    with pytest.raises(EdgeMnv2Error, match="--layout NHWC is for fp32 builds"):
        layout_for(new_log, plain, "int8", "NHWC")
    with pytest.raises(EdgeMnv2Error, match="unknown layout 'NWHC'"):
        layout_for(new_log, replace(host, tuning={"layout": "NWHC"}), None, None)

    legacy = tmp_path / "legacy"  # records from before the setting existed: the imported NCHW
    legacy.mkdir()
    (legacy / "database_tuning_record.json").write_text("[0, [[], [1e-05], {}, []]]\n")
    assert layout_for(legacy, nhwc_target, None, None) == "NCHW"
    with pytest.raises(EdgeMnv2Error, match="tuned in NCHW, so --layout NHWC cannot continue it"):
        layout_for(legacy, plain, None, "NHWC")


def test_cold_measurement_flushes_before_every_timed_run():
    cold, warm = evaluator_config(True, remote=False), evaluator_config(False, remote=False)
    # TVM flushes once per repeat: one run per repeat and no minimum time, or later runs would be warm
    assert cold.enable_cpu_cache_flush and cold.number == 1 and cold.min_repeat_ms == 0
    assert cold.repeat == COLD_REPEATS > 1
    assert not warm.enable_cpu_cache_flush and warm.min_repeat_ms > 0
    assert evaluator_config(True, remote=True).enable_cpu_cache_flush


def test_a_log_measured_on_another_thread_count_is_not_continued(tmp_path, monkeypatch):
    from edge_mnv2.errors import EdgeMnv2Error

    monkeypatch.delenv("TVM_NUM_THREADS", raising=False)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    here = runtime_threads.physical_cores()
    (tmp_path / META_FILE).write_text(json.dumps({"runs": [], "runtime_threads": here + 1}))
    with pytest.raises(
        EdgeMnv2Error, match=f"measured with {here + 1} runtime threads.*TVM_NUM_THREADS={here + 1} to continue it"
    ):
        measuring_threads(tmp_path)
    monkeypatch.setenv("TVM_NUM_THREADS", str(here + 1))
    assert measuring_threads(tmp_path) == here + 1
    assert measuring_threads(tmp_path / "new") == here + 1


def test_a_torn_last_line_is_repaired(tmp_path):
    good = json.dumps([0, [[["a"], []], [1e-5], {}, []]])
    (tmp_path / "database_tuning_record.json").write_text(f"{good}\n{good[:17]}")
    (tmp_path / "database_workload.json").write_text("")
    assert repair(tmp_path) == 1
    assert (tmp_path / "database_tuning_record.json").read_text() == f"{good}\n"


def another_cpus_log(log, root):
    """A copy of ``log`` in ``root`` that says it was tuned on another CPU."""
    other = root / "host" / MODEL
    shutil.copytree(log, other)
    meta = json.loads((other / "tuning.json").read_text())
    meta["tvm_target"]["mcpu"] = "cortex-a72-pretend"
    (other / "tuning.json").write_text(json.dumps(meta))
    return other


@pytest.mark.slow
def test_cpu_mismatch_warns(tuned_root, tmp_path, capsys):
    root, result = tuned_root
    another_cpus_log(result.log, tmp_path)
    artifact = compile_model(MODEL, "host", tmp_path / "out", log_root=tmp_path)
    assert artifact.metadata["tuning"]["cpu_mismatch"] is True
    assert "was tuned on cortex-a72-pretend" in capsys.readouterr().err


@pytest.mark.slow
def test_tuning_on_another_cpu_starts_its_own_log_from_the_targets(tuned_root, tmp_path, capsys, monkeypatch):
    from edge_mnv2 import progress

    monkeypatch.setattr(progress, "_quiet", False)  # an earlier in-process `main(["-q", ...])` leaves it on
    root, result = tuned_root
    shared = another_cpus_log(result.log, tmp_path)
    records = (shared / "database_tuning_record.json").read_text()

    own = quick_tune(MODEL, load_target("host"), trials=1, log_root=tmp_path, schedule_library=False)
    here = detected_cpu(load_target("host"))
    assert own.log == tmp_path / f"host@{here}" / MODEL and own.seeded_from == shared
    # every task the other CPU's log covers was measured here from its best schedules, and nothing else
    assert own.seeded == own.trials_after >= result.covered and own.covered == result.covered
    assert (shared / "database_tuning_record.json").read_text() == records  # the other log is untouched
    assert json.loads((own.log / "tuning.json").read_text())["tvm_target"]["mcpu"] == here
    assert "gets a log of its own" in capsys.readouterr().err

    # as if that run had been killed while seeding: only the first task's records reached the log
    lines = (own.log / "database_tuning_record.json").read_text().splitlines()
    kept = [line for line in lines if json.loads(line)[0] == json.loads(lines[0])[0]]
    (own.log / "database_tuning_record.json").write_text("".join(f"{line}\n" for line in kept))
    monkeypatch.setenv(LOGS_ENV, str(tmp_path))
    from edge_mnv2.cli import main

    assert (
        main(["tune", MODEL, "--target", "host", "--trials", str(len(kept) + 1), "--no-schedule-library", *CLI_FLAGS])
        == 0
    )
    out = capsys.readouterr()
    total, new, seeded, covered = map(
        int,
        re.search(
            rf"(\d+) trials \((\d+) new, (\d+) of them from {re.escape(str(shared))}\), (\d+) of", out.out
        ).groups(),
    )
    # the rerun seeded the tasks the kill left without records, and only those
    assert seeded == new == total - len(kept) > 0 and covered == result.covered
    assert "gets a log of its own" not in out.err

    # compile takes this CPU's log, and has nothing to warn about
    artifact = compile_model(MODEL, "host", tmp_path / "out", log_root=tmp_path)
    assert artifact.metadata["tuning"]["log"] == str(own.log) and "cpu_mismatch" not in artifact.metadata["tuning"]
    assert "was tuned on" not in capsys.readouterr().err


@pytest.mark.slow
def test_rpc_runner_on_the_emulated_rpi4b(tmp_path, rpi4b_image):
    from edge_mnv2.remote.address import DeviceAddress
    from edge_mnv2.remote.emulator import EmulatedRPCServer
    from edge_mnv2.remote.tracker import LocalTracker

    with LocalTracker() as tracker, EmulatedRPCServer(rpi4b_image, tracker=tracker.address, key="rpi4b"):
        tracker.wait_for_key("rpi4b", timeout=180)
        result = quick_tune(
            "mobilenet_v2_0.35_96.shapes",
            load_target("rpi4b"),
            trials=4,
            tracker=DeviceAddress("tracker", *tracker.address, "rpi4b"),
            log_root=tmp_path,
        )
    assert result.log == tmp_path / "rpi4b" / "mobilenet_v2_0.35_96.shapes"
    assert valid_records(result.log), "no candidate ran on the emulated device"


def _records(log):
    file = log / "database_tuning_record.json"
    return file.read_text().splitlines() if file.is_file() else []


@pytest.mark.slow
@pytest.mark.parametrize("how", ["kill", "ctrl-c"])
def test_killing_a_run_keeps_every_record_and_a_rerun_continues(tmp_path, how):
    import os
    import signal
    import subprocess
    import sys
    import time

    model = tiny_onnx(tmp_path / "tiny.onnx")
    env = {**os.environ, LOGS_ENV: str(tmp_path / "logs")}
    log = tmp_path / "logs" / "host" / "tiny"
    tune = [sys.executable, "-m", "edge_mnv2", "-q", "tune", str(model), "--target", "host", *CLI_FLAGS, "--trials"]
    cmd = [*tune, "400"]
    # its own group, as a terminal's Ctrl-C reaches all of it; Ctrl-C's default action even when the suite
    # runs in a background job, where the shell ignores SIGINT and children would inherit that
    proc = subprocess.Popen(
        cmd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    deadline = time.monotonic() + 400
    while len(_records(log)) < 16 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.5)
    assert proc.poll() is None, proc.stdout.read()
    if how == "kill":
        os.killpg(proc.pid, signal.SIGKILL)  # the run and its builder/runner workers, mid-round
    else:
        os.killpg(proc.pid, signal.SIGINT)
    out = proc.communicate(timeout=120)[0]
    if how == "ctrl-c":
        assert proc.returncode == 130 and "rerun the same command" in out, out
    kept = _records(log)
    # every round reaches the log before the next starts: MetaSchedule's gradient scheduler would hold
    # the first round over all four tasks (64 trials) in memory, and a kill there would keep nothing
    assert 16 <= len(kept) < 64

    meta = json.loads((log / META_FILE).read_text())  # the CPU it was tuned on survives the kill
    assert meta["tvm_target"]["mcpu"] == load_target("host").resolved_tvm()["mcpu"] and meta["runs"] == []

    wanted = len(kept) + 16
    rerun = subprocess.run([*tune, str(wanted)], env=env, capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    after = _records(log)
    assert set(kept) <= set(after)  # nothing measured before the kill was lost

    # ", N hand-written" follows "new" when the kill came while the default schedules were being measured
    total, new = map(int, re.search(r"(\d+) trials \((\d+) new[,)]", rerun.stdout).groups())
    assert total - new >= 16 and new <= 32  # it continued from the log instead of starting again


@pytest.mark.slow
def test_a_cold_nhwc_log_records_every_flushed_run_and_compile_follows_its_layout(tmp_path):
    import onnxruntime as ort
    import tvm
    from tvm import relax

    model = tiny_onnx(tmp_path / "tiny.onnx")
    logs = tmp_path / "logs"
    result = quick_tune(str(model), load_target("host"), trials=8, log_root=logs, cache_flush=True, layout="NHWC")
    runs = [json.loads(line)[1][1] for line in _records(result.log)]
    assert runs and all(len(secs) == COLD_REPEATS for secs in runs)  # one timed run per flush
    meta = json.loads((result.log / META_FILE).read_text())
    assert meta["cache_flush"] is True and meta["layout"] == "NHWC"

    artifact = compile_model(str(model), "host", tmp_path / "build", log_root=logs)
    tuning = json.loads((tmp_path / "build" / "artifact.json").read_text())["tuning"]
    assert tuning["layout"] == "NHWC" and tuning["covered_tasks"] == result.covered >= 1
    x = np.random.default_rng(0).standard_normal((1, 8, 16, 16)).astype("float32")
    vm = relax.VirtualMachine(tvm.runtime.load_module(str(artifact.library_path)), tvm.cpu())
    session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    ref = session.run(None, {session.get_inputs()[0].name: x})[0]
    np.testing.assert_allclose(vm["main"](tvm.runtime.tensor(x)).numpy(), ref, rtol=1e-4, atol=1e-5)


@pytest.mark.slow
def test_tasks_spends_the_trials_on_the_largest_shares_each_searched_on_its_own(tmp_path):
    from edge_mnv2.compile import relax_layout
    from edge_mnv2.compile.frontend import load_source, relax_module

    model = tiny_onnx(tmp_path / "tiny.onnx")
    logs = tmp_path / "logs"
    # without the hand-written depthwise schedules, which would cover two tasks before any search
    first = quick_tune(str(model), load_target("host"), trials=16, log_root=logs, schedule_library=False)
    untuned = first.tasks - first.covered  # four layers, and the host's NHWC layout adds transposes
    assert first.covered == 1 and untuned >= 3

    # untuned tasks have the largest share there is: a top-up covers them before anything else
    cover = quick_tune(
        str(model),
        load_target("host"),
        trials=first.trials_after + 3 * untuned,
        log_root=logs,
        focus=untuned,
        schedule_library=False,
    )
    chosen, passed_on = cover.focused[:untuned], cover.focused[untuned:]
    assert [f.before_ms for f in chosen] == [None] * untuned and cover.covered == cover.tasks
    # a transpose has a schedule or two: what its search could not spend went to the tasks after it, and
    # past the chosen to the tuned tasks with the largest shares, so every trial asked for was spent
    assert all(f.trials >= 1 for f in cover.focused) and all(f.before_ms is not None for f in passed_on)
    assert sum(f.trials for f in cover.focused) == cover.trials_after - first.trials_after == 3 * untuned

    proto, _ = load_source(str(model))
    mod = relax_layout.convert(relax_module(proto), log_layout(cover.log))
    tasks = extract_tasks(mod, load_target("host").tvm_target(), log_weight_prepack(cover.log))
    database = open_database(cover.log)
    shares = {t.task_name: best_ms(database, t) * t.weight for t in tasks}
    top = quick_tune(
        str(model), load_target("host"), trials=cover.trials_after + 8, log_root=logs, focus=1, schedule_library=False
    )
    largest, *passed_on = top.focused
    assert largest.task == max(shares, key=shares.get) and largest.trials >= 1
    assert largest.before_ms * largest.weight == pytest.approx(shares[largest.task])
    # which task is largest depends on the machine's timings: when it is a transpose with a schedule or
    # two, what it could not spend goes to the next-largest tasks, so the 8 trials are spent all the same
    assert (largest.trials == 8) == (passed_on == [])
    ranking = sorted(shares, key=shares.get, reverse=True)
    places = [ranking.index(f.task) for f in top.focused]
    assert places[0] == 0 and places == sorted(set(places))
    assert all(f.trials >= 1 for f in passed_on)
    assert sum(f.trials for f in top.focused) == 8 == top.trials_after - cover.trials_after
    assert all(f.after_ms <= f.before_ms for f in top.focused)
    run = json.loads((top.log / META_FILE).read_text())["runs"][-1]
    assert run[FOCUS_KEY] == [dataclasses.asdict(f) for f in top.focused]
    assert run["population"] == POPULATION
