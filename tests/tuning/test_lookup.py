"""Tuning records found by what they compute: a user's own export of MobileNetV2 1.0 (other model code,
other layer names, other weights) gets the committed log's schedules for its convolutions (slow)."""

import numpy as np
import pytest
import torch
from torch import nn

from edge_mnv2.compile import compile_model

pytestmark = pytest.mark.slow

# the paper's Table 2: expansion t, output channels c, repeats n, first stride s
SETTINGS = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1))


class InvertedResidual(nn.Module):
    """Written here, not imported: another library's layout of the same block."""

    def __init__(self, cin: int, cout: int, stride: int, expand: int):
        super().__init__()
        hidden = cin * expand
        layers: list[nn.Module] = []
        if expand != 1:
            layers += [nn.Conv2d(cin, hidden, 1, bias=False), nn.BatchNorm2d(hidden), nn.ReLU6(inplace=True)]
        layers += [
            nn.Conv2d(hidden, hidden, 3, stride, 1, groups=hidden, bias=False),
            nn.BatchNorm2d(hidden),
            nn.ReLU6(inplace=True),
            nn.Conv2d(hidden, cout, 1, bias=False),
            nn.BatchNorm2d(cout),
        ]
        self.conv = nn.Sequential(*layers)
        self.use_res_connect = stride == 1 and cin == cout

    def forward(self, x):
        return x + self.conv(x) if self.use_res_connect else self.conv(x)


class OtherMobileNetV2(nn.Module):
    def __init__(self):
        super().__init__()
        layers: list[nn.Module] = [
            nn.Sequential(nn.Conv2d(3, 32, 3, 2, 1, bias=False), nn.BatchNorm2d(32), nn.ReLU6(inplace=True))
        ]
        cin = 32
        for t, c, n, s in SETTINGS:
            for i in range(n):
                layers.append(InvertedResidual(cin, c, s if i == 0 else 1, t))
                cin = c
        layers.append(nn.Sequential(nn.Conv2d(cin, 1280, 1, bias=False), nn.BatchNorm2d(1280), nn.ReLU6(inplace=True)))
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(1280, 1000))

    def forward(self, x):
        return self.classifier(nn.functional.adaptive_avg_pool2d(self.features(x), 1).flatten(1))


def _randomised(model: nn.Module) -> nn.Module:
    torch.manual_seed(3)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):  # statistics other than the identity, so outputs are not trivial
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 1.5)
            m.weight.data.uniform_(0.5, 1.5)
    return model.eval()


def test_a_users_export_of_the_architecture_gets_the_committed_logs_records(tmp_path):
    model = _randomised(OtherMobileNetV2())
    path = tmp_path / "my_mobilenet.onnx"
    torch.onnx.export(
        model,
        (torch.randn(1, 3, 224, 224),),
        str(path),
        dynamo=False,
        opset_version=17,
        input_names=["image"],
        output_names=["scores"],
    )
    artifact = compile_model(path, "host", tmp_path / "build")
    tuning = artifact.metadata["tuning"]
    assert tuning["found_by"] == "workload" and tuning["log"].endswith("mobilenet_v2_1.0_224")
    kernels = artifact.metadata["schedules"]["kernels"]
    convolutions = {name: k for name, k in kernels.items() if "conv2d" in name}
    assert len(convolutions) >= 30 and all(k["source"] == "log" for k in convolutions.values())

    import tvm
    from tvm import relax

    x = np.random.default_rng(4).standard_normal((1, 3, 224, 224)).astype("float32")
    vm = relax.VirtualMachine(tvm.runtime.load_module(str(artifact.library_path)), tvm.cpu())
    with torch.inference_mode():
        expected = model(torch.from_numpy(x)).numpy()
    assert np.abs(vm["main"](tvm.runtime.tensor(x)).numpy() - expected).max() <= 1e-4 * np.abs(expected).max()
