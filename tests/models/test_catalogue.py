"""The checked-in parameter and multiply-add counts (edge_mnv2/models/counts.json) are what the models
measure: one model of each family and a trained one here, every registered model in the slow test."""

import pytest

from edge_mnv2.models import list_models
from edge_mnv2.models.catalogue import catalogue, measured, recorded

STALE = "edge_mnv2/models/counts.json is stale: rewrite it with `python -m edge_mnv2.models.catalogue`"


def test_the_file_lists_every_registered_model_and_nothing_else():
    assert set(recorded()) == set(list_models()), STALE


@pytest.mark.parametrize(
    "name",
    [
        "mobilenet_v2_1.0_224",
        "mobilenet_v2_0.35_96.shapes",
        "ssdlite_mobilenet_v2_0.35_128.shapes",
        "deeplabv3_mobilenet_v2_0.5_160",
    ],
)
def test_recorded_counts_are_the_measured_ones(name):
    assert recorded()[name] == measured(name), STALE


def test_the_paper_s_figures():
    c = recorded()["mobilenet_v2_1.0_224"]
    assert c.params == 3_504_872 and c.madds == pytest.approx(300e6, rel=0.01)  # Table/Figure 5: 3.4 M, 300 M


@pytest.mark.slow
def test_every_registered_model_s_recorded_counts_are_the_measured_ones():
    stale = [name for name in list_models() if recorded()[name] != measured(name)]
    assert not stale, f"{STALE} ({', '.join(stale)})"


def test_a_model_the_file_does_not_list_is_measured(monkeypatch):
    from edge_mnv2.models import catalogue as module

    monkeypatch.setattr(module, "recorded", lambda: {})
    assert module.counts("mobilenet_v2_0.35_96") == measured("mobilenet_v2_0.35_96")


def test_the_catalogue_rows_carry_the_recorded_counts():
    row = next(r for r in catalogue() if r["name"] == "mobilenet_v2_0.35_96.shapes")
    c = recorded()["mobilenet_v2_0.35_96.shapes"]
    assert (row["params"], row["madds"], row["classes"]) == (c.params, c.madds, 10)
