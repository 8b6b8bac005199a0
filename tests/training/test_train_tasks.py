"""Training detection and segmentation models: the loss goes down, files and metadata are written."""

import json

import numpy as np
import pytest
import torch

from edge_mnv2.errors import CheckpointError, EdgeMnv2Error
from edge_mnv2.models import get_spec
from edge_mnv2.models.weights import build_model, read_checkpoint
from edge_mnv2.training.tasks import init_backbone, multibox_loss, task_for
from edge_mnv2.training.train import TrainConfig, metrics_path, train

DET = TrainConfig(
    model="ssdlite_mobilenet_v2_0.35_96",
    data="shapes-detection",
    epochs=3,
    batch_size=16,
    train_size=64,
    val_size=16,
    lr=0.01,
)
SEG = TrainConfig(
    model="deeplabv3_mobilenet_v2_0.35_96",
    data="shapes-segmentation",
    epochs=3,
    batch_size=16,
    train_size=64,
    val_size=16,
    lr=0.01,
)


def _losses(out):
    return [json.loads(line)["train_loss"] for line in metrics_path(out).read_text().splitlines()]


@pytest.mark.slow  # about 10-25 s
def test_detection_training_decreases_the_loss(tmp_path):
    out = tmp_path / "det.pt"
    last = train(DET, out)
    losses = _losses(out)
    assert losses[2] < losses[1] < losses[0] and losses[-1] < 0.9 * losses[0]
    assert 0 <= last["val_map50"] <= 100 and 0 <= last["val_map50_95"] <= last["val_map50"]
    state, meta = read_checkpoint(out)
    assert meta["task"] == "detection" and meta["num_classes"] == 10 and meta["dataset"] == "shapes-detection"
    assert meta["postprocessing"]["kind"] == "ssd"
    model = build_model(get_spec(DET.model), checkpoint=out)  # the class count comes from the file
    assert model.num_classes == 10


@pytest.mark.slow  # about 10-20 s
def test_segmentation_training_decreases_the_loss(tmp_path):
    out = tmp_path / "seg.pt"
    last = train(SEG, out)
    losses = _losses(out)
    assert losses[2] < losses[1] < losses[0] and losses[-1] < 0.9 * losses[0]
    assert 0 <= last["val_miou"] <= 100
    _, meta = read_checkpoint(out)
    assert meta["task"] == "segmentation" and meta["num_classes"] == 11 and meta["classes"][0] == "background"
    assert build_model(get_spec(SEG.model), checkpoint=out).num_classes == 11


def test_task_data_is_checked():
    with pytest.raises(EdgeMnv2Error, match="shapes-detection"):
        task_for(get_spec(DET.model), TrainConfig(model=DET.model, data="shapes-segmentation")).open_data()
    assert task_for(get_spec(DET.model), TrainConfig(model=DET.model, data="shapes")).data_name() == "shapes-detection"


def test_matching_gives_every_box_an_anchor():
    spec = get_spec("ssdlite_mobilenet_v2_0.35_128")
    task = task_for(spec, TrainConfig(model=spec.name, data="shapes-detection"))
    boxes = np.array([[0.1, 0.1, 0.3, 0.35], [0.6, 0.5, 0.95, 0.9], [0.45, 0.45, 0.47, 0.47]], np.float32)
    classes, targets = task.match([(boxes, np.array([2, 0, 5])), (np.zeros((0, 4), np.float32), np.zeros(0))])
    assert set(np.unique(classes[0])) == {0, 1, 3, 6}  # background and every box, even the tiny one
    assert (classes[1] == 0).all()
    from edge_mnv2.postprocess.detection import anchors_for, decode_boxes

    anchors = anchors_for(spec)
    for label, box in zip([3, 1, 6], boxes):  # the targets decode to the matched box
        matched = classes[0] == label
        np.testing.assert_allclose(
            decode_boxes(targets[0][matched], anchors[matched]),
            np.broadcast_to(box, (int(matched.sum()), 4)),
            atol=1e-5,
        )


def test_multibox_loss_mines_three_negatives_per_positive():
    out = torch.zeros(1, 10, 4 + 1 + 2, requires_grad=True)
    classes = torch.tensor([[1] + [0] * 9])
    boxes = torch.zeros(1, 10, 4)
    loss, parts = multibox_loss(out, classes, boxes)
    loss.backward()
    grad = out.grad[0, :, 4:].abs().sum(1)
    assert (grad > 0).sum().item() == 4  # the positive and 3 hardest negatives
    assert parts["box"] == 0.0
    assert loss.item() == pytest.approx(4 * np.log(3))


def test_init_backbone_copies_the_classifier_features():
    spec = get_spec("deeplabv3_mobilenet_v2_0.35_96")
    model = spec.build(num_classes=11)
    copied = init_backbone(model, "mobilenet_v2_0.35_96.shapes")
    shipped = read_checkpoint(get_spec("mobilenet_v2_0.35_96.shapes").pretrained.path)[0]
    assert copied > 100
    assert torch.equal(model.state_dict()["features.17.conv.2.weight"], shipped["features.17.conv.2.weight"])
    with pytest.raises(CheckpointError, match="same width"):
        init_backbone(get_spec("ssdlite_mobilenet_v2_1.0_96").build(), "mobilenet_v2_0.35_96.shapes")
