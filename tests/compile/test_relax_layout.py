"""Building in NHWC: ReLU6 follows the layout, transposes only at the edges, the same results."""

import re

import numpy as np
import onnx
import pytest

from edge_mnv2.compile import relax_layout
from edge_mnv2.compile.frontend import relax_module
from edge_mnv2.compile.relax_build import build
from edge_mnv2.errors import EdgeMnv2Error
from edge_mnv2.targets import load_target


def block_onnx(path):
    """A stem and an inverted-residual block as PyTorch exports them: 3x3, ReLU6; 1x1, ReLU6, depthwise,
    ReLU6, 1x1, skip; pool."""
    import torch

    nn = torch.nn

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU6())
            self.expand = nn.Sequential(nn.Conv2d(8, 32, 1), nn.ReLU6())
            self.depthwise = nn.Sequential(nn.Conv2d(32, 32, 3, padding=1, groups=32), nn.ReLU6())
            self.project = nn.Conv2d(32, 8, 1)

        def forward(self, x):
            x = self.stem(x)
            return (x + self.project(self.depthwise(self.expand(x)))).mean((2, 3))

    torch.onnx.export(Block().eval(), (torch.randn(1, 3, 12, 12),), str(path), dynamo=False, opset_version=17)
    return onnx.load(str(path))


@pytest.fixture(scope="module")
def block(tmp_path_factory):
    return block_onnx(tmp_path_factory.mktemp("layout") / "block.onnx")


def run(proto, layout):
    import tvm
    from tvm import relax

    mod = relax_layout.convert(relax_module(proto), layout)
    vm = relax.VirtualMachine(build(mod, load_target("host")), tvm.cpu())
    x = np.random.default_rng(0).standard_normal((1, 3, 12, 12)).astype("float32")
    return vm["main"](tvm.runtime.tensor(x)).numpy(), x


def run_time_transposes(mod):
    """Kernels of the fused module that transpose (the weights' transposes fold into constants)."""
    from edge_mnv2.tuning.database import extract_tasks

    tasks = extract_tasks(mod, load_target("host").tvm_target())
    return [t.task_name for t in tasks if "transpose" in t.task_name]


def test_relu6_follows_the_layout_and_only_the_edges_transpose(block):
    imported = relax_module(block)
    assert "call_tir(maximum" in imported["main"].script().replace("R.call_tir(cls.", "call_tir(")
    nhwc = relax_layout.convert(imported, "NHWC")
    text = nhwc["main"].script()
    assert "call_tir" not in text and re.search(r"R\.maximum\(", text) and re.search(r"R\.minimum\(", text)
    assert text.count('data_layout="NHWC"') == 4
    # the input into NHWC and nothing else: ConvertLayout alone transposes around each of the 3 ReLU6
    assert len(run_time_transposes(nhwc)) == 1
    from tvm import relax

    alone = relax.transform.ConvertLayout(relax_layout.LAYOUTS["NHWC"])(imported)
    assert len(run_time_transposes(alone)) >= 4


def test_an_nhwc_build_computes_what_onnx_runtime_does(block):
    import onnxruntime as ort

    out, x = run(block, "NHWC")
    ref = ort.InferenceSession(block.SerializeToString(), providers=["CPUExecutionProvider"]).run(
        None, {block.graph.input[0].name: x}
    )[0]
    assert out.shape == ref.shape == (1, 8)
    np.testing.assert_allclose(out, ref, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(run(block, "NCHW")[0], ref, rtol=1e-4, atol=1e-5)


def test_nchw_leaves_the_module_as_imported(block):
    imported = relax_module(block)
    assert relax_layout.convert(imported, "NCHW") is imported
    with pytest.raises(EdgeMnv2Error, match="unknown layout 'NCWH': choose one of NCHW, NHWC"):
        relax_layout.convert(imported, "NCWH")


def test_nhwc_weights_keep_output_channels_contiguous(block):
    """HWIO: a kernel vectorised across output channels reads its weights as vectors (OHWI would put
    each lane's weight C_in elements from the next)."""
    nhwc = relax_layout.convert(relax_module(block), "NHWC")
    assert nhwc["main"].script().count('kernel_layout="HWIO"') == 4
    from tvm.s_tir.meta_schedule.arg_info import ArgInfo

    from edge_mnv2.tuning.database import extract_tasks

    weights = set()
    for task in extract_tasks(nhwc, load_target("host").tvm_target()):
        if "conv2d" in task.task_name:  # arguments: data, weights, ...
            weights.add(tuple(int(d) for d in ArgInfo.from_prim_func(task.dispatched[0]["main"])[1].shape))
    # stem 3->8, expand 8->32, depthwise 32 (one input channel per group), project 32->8: [KH, KW, I, O]
    assert weights == {(3, 3, 3, 8), (1, 1, 8, 32), (3, 3, 1, 32), (1, 1, 32, 8)}
