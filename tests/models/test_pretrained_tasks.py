"""The shipped segmenter (and detector, when its card is there) is accurate on its generated val split."""

import pytest

from edge_mnv2.models import get_spec, list_models
from edge_mnv2.models.weights import build_model

SHIPPED = [n for n in list_models() if get_spec(n).pretrained is not None and get_spec(n).task != "classification"]


def test_a_segmenter_is_shipped():
    assert "deeplabv3_mobilenet_v2_0.35_128.shapes" in SHIPPED


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_model_is_as_accurate_as_its_card_says(name):
    from edge_mnv2.data.scene_sets import validation_set
    from edge_mnv2.training.tasks import to_input

    spec = get_spec(name)
    spec.pretrained.check()
    base = get_spec(name.rsplit(".", 1)[0])
    assert (spec.family, spec.width, spec.resolution, spec.task) == (
        base.family,
        base.width,
        base.resolution,
        base.task,
    )
    assert spec.metadata()["postprocessing"] == base.metadata()["postprocessing"]
    model = build_model(spec)
    images, targets = validation_set(spec.pretrained.dataset, 200, spec.resolution, spec.num_classes)
    import torch

    with torch.inference_mode():
        out = torch.cat([model(to_input(images[i : i + 100], spec.preprocessing)) for i in (0, 100)]).numpy()
    card = spec.pretrained.metrics
    if spec.task == "detection":
        from edge_mnv2.bench.detection_metrics import evaluate_raw

        result = evaluate_raw(out, targets, spec)
        assert result["map50"] >= card["val_map50"] - 5 and result["map50_95"] >= card["val_map50_95"] - 5
    else:
        from edge_mnv2.bench.segmentation_metrics import evaluate_logits

        assert evaluate_logits(out, targets, spec.num_classes)["miou"] >= card["val_miou"] - 5
