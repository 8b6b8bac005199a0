"""The Pareto front on hand-made tables, and the sweep's front over its variants."""

import pytest

from edge_mnv2.sweep.grid import OK, SweepResult, VariantResult
from edge_mnv2.sweep.pareto import pareto_front


def test_the_front_keeps_what_nothing_beats_on_both_figures():
    # cost (ms), value (top-1 %): C is beaten by B (slower and worse), E by D (same cost, worse)
    costs = [1.0, 2.0, 3.0, 4.0, 4.0, 0.5]
    values = [50, 60, 55, 70, 65, 40]
    assert pareto_front(costs, values) == [5, 0, 1, 3]


def test_twins_and_edge_cases():
    assert pareto_front([], []) == []
    assert pareto_front([1.0], [5.0]) == [0]
    assert pareto_front([1.0, 1.0], [5.0, 5.0]) == [0, 1]  # neither beats the other
    assert pareto_front([1.0, 2.0, 3.0], [9.0, 8.0, 7.0]) == [0]  # the cheapest is also the best
    with pytest.raises(ValueError):
        pareto_front([1.0], [])


def _variant(name, cost, top1, status=OK):
    return VariantResult(
        variant=name,
        width=1.0,
        resolution=224,
        quantize=None,
        madds=1,
        params=1,
        status=status,
        latency_ms=cost,
        published_top1=top1,
    )


def test_the_sweep_front_skips_unmeasured_variants_and_those_without_a_published_figure():
    result = SweepResult(
        target="host",
        device="d",
        metric="latency_ms",
        variants=[
            _variant("a", 1.0, 50.0),
            _variant("b", 2.0, 48.0),
            _variant("c", 3.0, 60.0),
            _variant("d", None, 80.0, status="does not fit"),
            _variant("e", 0.5, None),
        ],
    )
    assert [v.variant for v in result.pareto()] == ["a", "c"]
    assert result.to_dict()["pareto"] == ["a", "c"]


def test_variant_names_come_from_the_registry():
    from edge_mnv2.errors import EdgeMnv2Error
    from edge_mnv2.sweep.grid import variant_name

    assert variant_name(1.0, 96) == "mobilenet_v2_1.0_96"
    assert variant_name(0.35, 96) == "mobilenet_v2_0.35_96"  # not the trained .shapes variant
    with pytest.raises(EdgeMnv2Error, match="widths are 0.35"):
        variant_name(0.6, 96)


@pytest.mark.parametrize(
    "args, message",
    [
        (["--widths", "0.35,wide"], "--widths: 'wide' is not a number"),
        (["--resolutions", "96,1.5"], "--resolutions: '1.5' is not a whole number"),
        (["--widths", "0.6"], "no MobileNetV2 of width 0.6"),
    ],
)
def test_a_bad_grid_is_one_line_naming_the_value_before_any_work(tmp_path, capsys, args, message):
    from edge_mnv2.cli import main

    assert main(["sweep", "--target", "host", "-o", str(tmp_path / "s"), *args]) != 0
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not (tmp_path / "s").exists()
