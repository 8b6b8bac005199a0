"""Seeded random weights, checkpoints, and the weights record kept in metadata."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from edge_mnv2.data.evalset import evaluation_inputs
from edge_mnv2.errors import CheckpointError, EdgeMnv2Error
from edge_mnv2.models import get_spec
from edge_mnv2.models.weights import build_from_record, build_model, describe, file_sha256, randomize, read_state_dict

SMALL = "mobilenet_v2_0.35_96"


@pytest.fixture(scope="module")
def spec():
    return get_spec(SMALL)


@pytest.fixture(scope="module")
def seeded(spec):
    return build_model(spec, seed=0)


@pytest.fixture(scope="module")
def inputs(spec):
    return torch.from_numpy(evaluation_inputs(32, spec.resolution, spec.preprocessing))


def _outputs(model, x):
    with torch.inference_mode():
        return model(x).numpy()


def _same_state(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    return all(torch.equal(sa[k], sb[k]) for k in sa)


def test_same_seed_same_weights(spec, seeded):
    assert _same_state(seeded, build_model(spec, seed=0))
    assert _same_state(randomize(spec.build(), 3), randomize(spec.build(), 3))


def test_different_seed_different_weights(spec, seeded):
    other = build_model(spec, seed=1)
    sa, sb = seeded.state_dict(), other.state_dict()
    assert not torch.equal(sa["features.0.0.weight"], sb["features.0.0.weight"])
    assert not torch.equal(sa["classifier.1.weight"], sb["classifier.1.weight"])
    assert not torch.equal(sa["features.5.conv.1.1.running_mean"], sb["features.5.conv.1.1.running_mean"])


def test_build_model_is_in_eval_mode(seeded):
    assert not seeded.training


def test_random_weights_differ_from_default_init(spec, seeded):
    assert not _same_state(seeded, spec.build())


def test_outputs_vary_with_the_input(seeded, inputs):
    logits = _outputs(seeded, inputs)
    assert logits.shape == (32, 1000)
    assert np.isfinite(logits).all()
    assert len(set(logits.argmax(1).tolist())) >= 16
    assert logits.std(axis=1).min() > 0.05
    # Different images give clearly different logits, not a shared constant vector.
    assert logits.std(axis=0).mean() > 0.05


def test_outputs_deterministic(spec, seeded, inputs):
    np.testing.assert_array_equal(_outputs(seeded, inputs), _outputs(build_model(spec, seed=0), inputs))


def test_batchnorm_running_stats_not_defaults(seeded):
    bns = [m for m in seeded.modules() if isinstance(m, nn.BatchNorm2d)]
    assert len(bns) == 52
    for bn in bns:
        assert not torch.all(bn.running_mean == 0)
        assert not torch.all(bn.running_var == 1)
        assert torch.all(bn.running_var > 0)
        lo, hi = bn.weight.min().item(), bn.weight.max().item()
        assert 0.25 <= lo and hi <= 0.75  # BN gains drawn from BN_GAMMA_RANGE


def test_randomize_preserves_training_mode(spec):
    model = spec.build().train()
    randomize(model, 0)
    assert model.training


# --- checkpoints ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory, seeded):
    path = tmp_path_factory.mktemp("ckpt") / "model.pt"
    torch.save(seeded.state_dict(), path)
    return path


def test_checkpoint_round_trip(spec, seeded, checkpoint, inputs):
    loaded = build_model(spec, checkpoint=checkpoint)
    assert not loaded.training
    assert _same_state(loaded, seeded)
    np.testing.assert_array_equal(_outputs(loaded, inputs[:4]), _outputs(seeded, inputs[:4]))


def test_checkpoint_ignores_seed(spec, seeded, checkpoint):
    assert _same_state(build_model(spec, checkpoint=checkpoint, seed=5), seeded)


@pytest.mark.parametrize("wrapper", ["state_dict", "model", "model_state_dict"])
def test_wrapped_checkpoint_loads(spec, seeded, tmp_path, wrapper):
    path = tmp_path / "wrapped.pth"
    torch.save({wrapper: seeded.state_dict(), "epoch": 3}, path)
    assert _same_state(build_model(spec, checkpoint=path), seeded)


def test_missing_and_unexpected_keys_named(spec, seeded, tmp_path):
    sd = dict(seeded.state_dict())
    del sd["features.3.conv.1.0.weight"]
    sd["head.extra.weight"] = torch.zeros(3)
    path = tmp_path / "bad.pt"
    torch.save(sd, path)
    with pytest.raises(CheckpointError) as info:
        build_model(spec, checkpoint=path)
    msg = str(info.value)
    assert "features.3.conv.1.0.weight" in msg
    assert "head.extra.weight" in msg
    assert "1 missing" in msg and "1 unexpected" in msg


def test_wrong_width_checkpoint(tmp_path):
    half = get_spec("mobilenet_v2_0.5_96").build()
    path = tmp_path / "half.pt"
    torch.save(half.state_dict(), path)
    with pytest.raises(CheckpointError) as info:
        build_model(get_spec("mobilenet_v2_1.0_96"), checkpoint=path)
    msg = str(info.value)
    assert "wrong shape" in msg
    assert "features.0.0.weight (16, 3, 3, 3) vs (32, 3, 3, 3)" in msg


def test_missing_checkpoint_file(spec, tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        build_model(spec, checkpoint=tmp_path / "nope.pt")


def test_garbage_checkpoint_file(spec, tmp_path):
    path = tmp_path / "garbage.pt"
    path.write_bytes(b"this is not a pickle or a zip file\x00\x01\x02" * 10)
    with pytest.raises(CheckpointError, match="cannot be read"):
        build_model(spec, checkpoint=path)


def test_checkpoint_of_non_tensors(spec, tmp_path):
    path = tmp_path / "list.pt"
    torch.save([1, 2, 3], path)
    with pytest.raises(CheckpointError, match="no state dict"):
        read_state_dict(path)


def test_checkpoint_error_is_project_error():
    assert issubclass(CheckpointError, EdgeMnv2Error)


# --- describe / build_from_record ----------------------------------------------------------------


def test_describe_random():
    assert describe(None) == {"kind": "random", "seed": 0}
    assert describe(None, seed=4) == {"kind": "random", "seed": 4}


def test_random_record_rebuilds_same_weights(spec):
    record = describe(None, seed=2)
    assert _same_state(build_from_record(spec, record), build_model(spec, seed=2))


def test_checkpoint_record(spec, seeded, tmp_path):
    path = tmp_path / "rec.pt"
    torch.save(seeded.state_dict(), path)
    record = describe(path)
    assert record["kind"] == "checkpoint"
    assert record["path"] == str(path.resolve())
    assert record["sha256"] == file_sha256(path)
    assert _same_state(build_from_record(spec, record), seeded)


def test_changed_checkpoint_record_rejected(spec, seeded, tmp_path):
    path = tmp_path / "rec.pt"
    torch.save(seeded.state_dict(), path)
    record = describe(path)
    sd = seeded.state_dict()
    sd["classifier.1.bias"] = sd["classifier.1.bias"] + 1
    torch.save(sd, path)
    with pytest.raises(CheckpointError, match="changed"):
        build_from_record(spec, record)


def test_deleted_checkpoint_record_rejected(spec, seeded, tmp_path):
    path = tmp_path / "rec.pt"
    torch.save(seeded.state_dict(), path)
    record = describe(path)
    path.unlink()
    with pytest.raises(CheckpointError, match="gone"):
        build_from_record(spec, record)


def test_unknown_record_kind(spec):
    with pytest.raises(CheckpointError, match="unknown weights record"):
        build_from_record(spec, {"kind": "hub"})


def test_file_sha256_known_value(tmp_path):
    path = tmp_path / "abc"
    path.write_bytes(b"abc")
    assert file_sha256(path) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
