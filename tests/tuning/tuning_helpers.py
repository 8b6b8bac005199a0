"""Shared by the tuning tests: a tiny model, and tuning runs that check what a run records, spends and
applies, not how good its schedules are. A 64-schedule generation of the evolutionary search
(``--population 64``) costs a fraction of MetaSchedule's 512."""

from functools import partial

from edge_mnv2.tuning.run import tune_model

POPULATION = 64
quick_tune = partial(tune_model, population=POPULATION)
CLI_FLAGS = ["--population", str(POPULATION)]


def tiny_onnx(path):
    """A four-layer ONNX model: four small tasks, so a tuning run takes seconds per round."""
    import torch

    nn = torch.nn
    net = nn.Sequential(
        nn.Conv2d(8, 16, 1),
        nn.ReLU(),
        nn.Conv2d(16, 16, 3, padding=1, groups=16),
        nn.Conv2d(16, 24, 1),
        nn.Conv2d(24, 24, 3, stride=2, padding=1, groups=24),
    ).eval()
    torch.onnx.export(net, (torch.randn(1, 8, 16, 16),), str(path), dynamo=False, opset_version=17)
    return path
