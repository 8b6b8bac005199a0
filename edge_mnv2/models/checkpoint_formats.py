"""State-dict layouts of other libraries, mapped onto ours (which is torchvision's).

- torchvision ``mobilenet_v2``: ``features.N...``, ``classifier.1``; loads as is.
- timm ``mobilenetv2_*`` (EfficientNet builder): ``conv_stem``, ``bn1``, ``blocks.S.B.{conv_pw, bn1,
  conv_dw, bn2, conv_pwl, bn3}`` (the first, expansion-1 block: ``conv_dw, bn1, conv_pw, bn2``),
  ``conv_head``, ``bn2``, ``classifier``.
"""

from __future__ import annotations

import re

import torch

from edge_mnv2.models.mobilenet_v2 import INVERTED_RESIDUAL_SETTING

_BN_SUFFIXES = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")


def detect_format(state: dict[str, torch.Tensor]) -> str:
    """``torchvision`` (ours), ``timm``, or ``unknown``."""
    keys = set(state)
    if any(k.startswith("features.") for k in keys):
        return "torchvision"
    if "conv_stem.weight" in keys and any(k.startswith("blocks.") for k in keys):
        return "timm"
    return "unknown"


def _timm_block_map() -> dict[tuple[int, int], int]:
    """(stage, block) in timm -> index in ``features``."""
    mapping, index = {}, 1
    for stage, (_t, _c, n, _s) in enumerate(INVERTED_RESIDUAL_SETTING):
        for block in range(n):
            mapping[(stage, block)] = index
            index += 1
    return mapping


# Layer names inside a timm block -> ours, for the expansion-1 first block and the others.
_FIRST_BLOCK = {"conv_dw": "conv.0.0", "bn1": "conv.0.1", "conv_pw": "conv.1", "bn2": "conv.2"}
_BLOCK = {
    "conv_pw": "conv.0.0",
    "bn1": "conv.0.1",
    "conv_dw": "conv.1.0",
    "bn2": "conv.1.1",
    "conv_pwl": "conv.2",
    "bn3": "conv.3",
}
_BLOCK_KEY = re.compile(r"^blocks\.(\d+)\.(\d+)\.([a-z_]+[0-9]?)\.(.+)$")


def timm_to_torchvision(state: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], list[str]]:
    """Rename a timm MobileNetV2 state dict to our keys; returns it and the keys that had no mapping."""
    blocks = _timm_block_map()
    last = len(blocks) + 1
    out, unmapped = {}, []
    top = {
        "conv_stem.weight": "features.0.0.weight",
        "conv_head.weight": f"features.{last}.0.weight",
        "classifier.weight": "classifier.1.weight",
        "classifier.bias": "classifier.1.bias",
    }
    top.update({f"bn1.{s}": f"features.0.1.{s}" for s in _BN_SUFFIXES})
    top.update({f"bn2.{s}": f"features.{last}.1.{s}" for s in _BN_SUFFIXES})
    for key, value in state.items():
        if key in top:
            out[top[key]] = value
            continue
        m = _BLOCK_KEY.match(key)
        if m:
            stage, block, layer, rest = int(m[1]), int(m[2]), m[3], m[4]
            table = _FIRST_BLOCK if (stage, block) == (0, 0) else _BLOCK
            if (stage, block) in blocks and layer in table:
                out[f"features.{blocks[(stage, block)]}.{table[layer]}.{rest}"] = value
                continue
        unmapped.append(key)
        out[key] = value  # kept, so the strict load reports it as unexpected
    return out, unmapped


def to_torchvision_layout(state: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], str]:
    """The state dict in our layout, and the layout it came in."""
    fmt = detect_format(state)
    if fmt == "timm":
        return timm_to_torchvision(state)[0], fmt
    return state, fmt
