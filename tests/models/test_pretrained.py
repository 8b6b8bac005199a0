"""Shipped weights: cards register <model>.<tag> variants whose files are checked before use."""

import shutil

import pytest
import torch

from edge_mnv2.errors import CheckpointError
from edge_mnv2.models import get_spec
from edge_mnv2.models.pretrained import PRETRAINED_DIR, load_card
from edge_mnv2.models.registry import _REGISTRY
from edge_mnv2.models.weights import build_model, describe


@pytest.fixture
def card_copy(tmp_path):
    """The shipped card and weights copied under another tag, registered for the test only."""
    card = (PRETRAINED_DIR / "mobilenet_v2_0.35_96.shapes.toml").read_text()
    (tmp_path / "copy.toml").write_text(card.replace('tag = "shapes"', 'tag = "testcopy"'))
    shutil.copyfile(PRETRAINED_DIR / "mobilenet_v2_0.35_96.shapes.pt", tmp_path / "mobilenet_v2_0.35_96.shapes.pt")
    spec = load_card(tmp_path / "copy.toml")
    yield spec, tmp_path / "mobilenet_v2_0.35_96.shapes.pt"
    _REGISTRY.pop(spec.name, None)


def test_tagged_model_builds_with_its_weights(card_copy):
    spec, path = card_copy
    assert spec.name == "mobilenet_v2_0.35_96.testcopy" and get_spec(spec.name) is spec
    model = build_model(spec)
    shipped = torch.load(path, weights_only=True)["state_dict"]
    assert torch.equal(model.state_dict()["classifier.1.weight"], shipped["classifier.1.weight"])
    assert describe(None, spec=spec)["kind"] == "pretrained"


def test_altered_weights_are_refused(card_copy):
    spec, path = card_copy
    with open(path, "ab") as f:
        f.write(b"\0")
    with pytest.raises(CheckpointError, match="sha256"):
        build_model(spec)


def test_missing_weights_say_how_to_get_them(card_copy):
    spec, path = card_copy
    path.unlink()
    with pytest.raises(CheckpointError, match="edge-mnv2 train"):
        build_model(spec)


def test_the_shipped_model_is_accurate():
    """The shipped weights classify the shapes validation split as their card says (desktop)."""
    from edge_mnv2.data.labelled import open_split
    from edge_mnv2.training.tasks import evaluate

    spec = get_spec("mobilenet_v2_0.35_96.shapes")
    result = evaluate(build_model(spec), open_split("shapes", "val", 96, 500), spec.preprocessing)
    assert result["top1"] >= 95.0
