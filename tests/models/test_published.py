"""The published accuracies kept with the registry belong to the variants they are filed under: their
published multiply-adds and parameters agree with the models' own counts."""

import pytest

from edge_mnv2.models import get_spec, list_models
from edge_mnv2.models.catalogue import counts
from edge_mnv2.models.published import _table, published_accuracy


@pytest.mark.parametrize("name", sorted(_table()))
def test_published_figures_match_the_variant_they_are_filed_under(name):
    spec, published = get_spec(name), published_accuracy(name)
    c = counts(name)
    assert spec.num_classes == 1000 and spec.family == "mobilenet_v2"
    assert abs(c.madds / 1e6 / published.macs_m - 1) < 0.1  # the table rounds down: 11.9 M is "11"
    assert abs(c.params / 1e6 / published.params_m - 1) < 0.02
    assert 40 < published.top1 < published.top5 < 100 and "tensorflow/models" in published.source


def test_every_width_and_resolution_of_the_grid_but_1_3_has_a_published_figure():
    have = {n for n in list_models("mobilenet_v2") if get_spec(n).published is not None}
    assert have == set(_table())
    assert len(have) == 22 and all("1.3" not in n or n.endswith("_224") for n in have)
    assert get_spec("mobilenet_v2_0.35_96.shapes").published is None  # trained here: no published figure
