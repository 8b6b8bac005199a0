"""Training: the recipe runs, learns, writes its files, and resumes exactly after an interruption."""

import json
import os
import signal

import pytest
import torch

from edge_mnv2 import signals
from edge_mnv2.errors import CheckpointError, EdgeMnv2Error
from edge_mnv2.models import get_spec
from edge_mnv2.models.weights import build_model, read_checkpoint
from edge_mnv2.training.optim import RMSpropTF
from edge_mnv2.training.train import TrainConfig, metrics_path, state_path, train

TINY = TrainConfig(model="mobilenet_v2_0.35_96", epochs=2, batch_size=32, train_size=160, val_size=40)


def test_writes_weights_state_and_log(tmp_path):
    out = tmp_path / "m.pt"
    last = train(TINY, out)
    assert last["epoch"] == 2 and 0 <= last["val_top1"] <= 100
    log = [json.loads(line) for line in metrics_path(out).read_text().splitlines()]
    assert [r["epoch"] for r in log] == [1, 2]
    assert log[1]["lr"] == pytest.approx(0.045 * 0.98)  # the paper's per-epoch decay
    state, meta = read_checkpoint(out)
    assert meta["dataset"] == "shapes" and meta["num_classes"] == 10 and len(meta["classes"]) == 10
    assert state["classifier.1.weight"].shape == (10, 1280)
    model = build_model(get_spec("mobilenet_v2_0.35_96"), checkpoint=out)  # loads like any checkpoint
    assert model.classifier[1].out_features == 10
    assert state_path(out).is_file()


def _ctrl_c_during_step(monkeypatch, calls: int, sig: int = signal.SIGINT):
    """Press Ctrl-C (a real SIGINT to this process; or send ``sig``) while optimizer step ``calls`` runs."""
    original = RMSpropTF.step
    count = {"n": 0}

    def step(self, closure=None):
        count["n"] += 1
        if count["n"] == calls:
            os.kill(os.getpid(), sig)
        return original(self, closure)

    monkeypatch.setattr(RMSpropTF, "step", step)


@pytest.fixture
def ctrl_c_raises():
    """Python's own Ctrl-C handling, even when the suite runs in a background job (whose SIGINT is ignored)."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_resume_after_ctrl_c_gives_the_same_weights(tmp_path, monkeypatch, ctrl_c_raises, sig):
    straight = tmp_path / "straight.pt"
    train(TINY, straight)

    resumed = tmp_path / "resumed.pt"
    with monkeypatch.context() as m:
        _ctrl_c_during_step(m, 7, sig)  # during the second step of the second epoch (5 steps per epoch)
        with pytest.raises(KeyboardInterrupt), signals.terminating_interrupts():  # as the CLI runs it
            train(TINY, resumed)
    saved = torch.load(state_path(resumed), weights_only=True)
    assert (saved["epoch"], saved["step"]) == (1, 2)  # that step finished, then training stopped
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # handler restored
    train(TINY, resumed, resume=True)

    a, _ = read_checkpoint(straight)
    b, _ = read_checkpoint(resumed)
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


def test_resume_needs_a_state(tmp_path):
    with pytest.raises(CheckpointError, match="nothing to resume"):
        train(TINY, tmp_path / "none.pt", resume=True)


def test_resume_refuses_another_model(tmp_path):
    out = tmp_path / "m.pt"
    train(TrainConfig(**{**TINY.__dict__, "epochs": 1}), out)
    with pytest.raises(CheckpointError, match="mobilenet_v2_0.5_96"):
        train(TrainConfig(**{**TINY.__dict__, "model": "mobilenet_v2_0.5_96"}), out, resume=True)


def test_divergence_is_reported(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.nn.CrossEntropyLoss, "forward", lambda self, x, y: (x * float("nan")).sum())
    with pytest.raises(EdgeMnv2Error, match="diverged"):
        train(TrainConfig(**{**TINY.__dict__, "epochs": 1}), tmp_path / "m.pt")


@pytest.mark.parametrize("field, value", [("epochs", 0), ("batch_size", 0), ("lr", -1.0), ("label_smoothing", 1.0)])
def test_bad_settings(tmp_path, field, value):
    with pytest.raises(EdgeMnv2Error):
        train(TrainConfig(**{**TINY.__dict__, field: value}), tmp_path / "m.pt")


def test_rmsprop_tf_matches_tensorflow_update():
    """One step by hand: ms = 0.9*1 + 0.1*g^2; mom = lr * g / sqrt(ms + eps); p -= mom."""
    p = torch.nn.Parameter(torch.tensor([[1.0, -2.0]]))
    opt = RMSpropTF([p], lr=0.1, decay=0.9, momentum=0.9, eps=1.0, weight_decay=0.0)
    p.grad = torch.tensor([[0.5, 2.0]])
    opt.step()
    g = torch.tensor([[0.5, 2.0]])
    ms = 0.9 + 0.1 * g * g
    first = 0.1 * g / torch.sqrt(ms + 1.0)
    assert torch.allclose(p.detach(), torch.tensor([[1.0, -2.0]]) - first)
    p.grad = g.clone()
    opt.step()
    ms2 = 0.9 * ms + 0.1 * g * g
    second = 0.9 * first + 0.1 * g / torch.sqrt(ms2 + 1.0)
    assert torch.allclose(p.detach(), torch.tensor([[1.0, -2.0]]) - first - second)


def test_weight_decay_spares_batchnorm_and_biases():
    w = torch.nn.Parameter(torch.ones(2, 2))
    b = torch.nn.Parameter(torch.ones(2))
    opt = RMSpropTF([w, b], lr=0.1, weight_decay=0.5)
    w.grad, b.grad = torch.zeros(2, 2), torch.zeros(2)
    opt.step()
    assert torch.all(w < 1) and torch.equal(b.detach(), torch.ones(2))
