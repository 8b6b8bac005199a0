"""Where a model's weights come from: a checkpoint file, or seeded random weights.

A freshly initialised MobileNetV2 (unit BatchNorm, zero biases, tiny classifier) maps nearly every input
to the same class, which makes "device matches reference" trivially true. Untrained models are therefore
given seeded *random* weights: kaiming convolutions, random BatchNorm affine parameters and running
statistics, and a random classifier, so different inputs give clearly different outputs.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import torch
from torch import nn

from edge_mnv2.errors import CheckpointError

DEFAULT_SEED = 0


CALIBRATION_SEED = 7  # images for BatchNorm calibration; distinct from the evaluation set's seed
CALIBRATION_IMAGES = 32
VARIANCE_FLOOR = 0.05
# Moderate BatchNorm gains keep the random residual stack from amplifying float32 rounding (with
# (0.5, 1.5) rounding grew 100x through the blocks, to 4e-5 on the logits; with this range, 1e-5).
BN_GAMMA_RANGE = (0.25, 0.75)


def randomize(model: nn.Module, seed: int = DEFAULT_SEED) -> nn.Module:
    """Give ``model`` seeded random weights whose outputs depend strongly on the input.

    Kaiming-normal convolutions and random BatchNorm affine parameters; BatchNorm running statistics
    measured on seeded synthetic images and then randomly perturbed (so they are neither identity
    nor exactly the batch statistics); a random classifier centred on the mean pooled feature, so
    the arg-max class changes from image to image. Deterministic for a seed.
    """
    from edge_mnv2.data.preprocessing import IMAGENET_PREPROCESSING
    from edge_mnv2.data.synthetic import synthetic_images

    gen = torch.Generator().manual_seed(seed)
    resolution = int(getattr(model, "resolution", 96))
    calib = torch.from_numpy(
        IMAGENET_PREPROCESSING.normalize(synthetic_images(CALIBRATION_IMAGES, resolution, CALIBRATION_SEED + seed))
    )
    bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.Conv2d):
                fan_in = m.weight[0].numel()
                m.weight.copy_(torch.randn(m.weight.shape, generator=gen) * (2.0 / fan_in) ** 0.5)
                if m.bias is not None:
                    m.bias.zero_()
            elif isinstance(m, nn.BatchNorm2d):
                lo, hi = getattr(model, "random_bn_gamma_range", BN_GAMMA_RANGE)  # a deeper net may want less
                m.weight.copy_(lo + (hi - lo) * torch.rand(m.num_features, generator=gen))
                m.bias.copy_(0.2 * torch.randn(m.num_features, generator=gen))
        # Measure each BatchNorm's true input statistics (cumulative average over the batch) ...
        momenta = [bn.momentum for bn in bns]
        for bn in bns:
            bn.reset_running_stats()
            bn.momentum = None
        was_training = model.training
        model.train()
        pooled: list[torch.Tensor] = []
        hook = linears[-1].register_forward_pre_hook(lambda _m, args: pooled.append(args[0])) if linears else None
        model(calib)
        if hook is not None:
            hook.remove()
        model.train(was_training)
        # ... then perturb them, so the reference is not a plain re-normalisation.
        for bn, momentum in zip(bns, momenta):
            bn.momentum = momentum
            # Channels that barely vary on the calibration images (dead or saturated ReLU6) would be
            # scaled by up to 1/sqrt(eps), amplifying float32 rounding; real trained nets avoid this.
            bn.running_var.clamp_(min=VARIANCE_FLOOR)
            std = bn.running_var.sqrt()
            bn.running_mean.add_(0.1 * std * torch.randn(bn.num_features, generator=gen))
            bn.running_var.mul_(torch.exp(0.2 * torch.randn(bn.num_features, generator=gen)))
        for m in linears:
            bound = (6.0 / m.in_features) ** 0.5
            m.weight.copy_((torch.rand(m.weight.shape, generator=gen) * 2 - 1) * bound)
            m.bias.copy_(0.1 * torch.randn(m.bias.shape, generator=gen))
        if linears and pooled:
            # Centre the last classifier on the mean feature (eval-mode features of the same images).
            model.eval()
            pooled.clear()
            hook = linears[-1].register_forward_pre_hook(lambda _m, args: pooled.append(args[0]))
            model(calib)
            hook.remove()
            model.train(was_training)
            head = linears[-1]
            # No rescaling after centring: that would amplify float32 rounding noise along with the
            # signal and make a 1e-4 agreement bar meaningless.
            head.bias.sub_(head.weight @ pooled[0].mean(0))
    return model


def file_sha256(path: str | Path) -> str:
    """Hex sha256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def read_checkpoint(path: str | Path) -> tuple[dict[str, torch.Tensor], dict]:
    """The state dict in a checkpoint file (in our layout) and the file's metadata, if any.

    Accepts a bare state dict or one under ``state_dict``/``model``/``model_state_dict`` (with an
    optional ``meta`` dict beside it), in our/torchvision's layout or timm's. Loads with
    ``weights_only=True``: a checkpoint cannot run code.
    """
    from edge_mnv2.models.checkpoint_formats import to_torchvision_layout

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {str(path)!r} does not exist; give the path of a .pt/.pth file")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for a bad file
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"checkpoint {str(path)!r} cannot be read as a PyTorch state dict ({first})") from exc
    meta = obj.get("meta", {}) if isinstance(obj, dict) and isinstance(obj.get("meta"), dict) else {}
    for key in ("state_dict", "model", "model_state_dict"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
            break
    if not isinstance(obj, dict) or not obj or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise CheckpointError(f"checkpoint {str(path)!r} holds no state dict of tensors")
    state, fmt = to_torchvision_layout(obj)
    return state, dict(meta, format=fmt)


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """The state dict of a checkpoint file, in our layout (see :func:`read_checkpoint`)."""
    return read_checkpoint(path)[0]


def fit_state_dict(model: nn.Module, state: dict[str, torch.Tensor], source: str) -> nn.Module:
    """Load ``state`` into ``model`` strictly, with an error listing missing and unexpected keys."""
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    mismatched = [
        f"{k} {tuple(state[k].shape)} vs {tuple(v.shape)}"
        for k, v in own.items()
        if k in state and state[k].shape != v.shape
    ]
    if missing or unexpected or mismatched:
        parts = []
        for label, keys in (("missing", missing), ("unexpected", unexpected), ("wrong shape", mismatched)):
            if keys:
                shown = ", ".join(keys[:5]) + (f" and {len(keys) - 5} more" if len(keys) > 5 else "")
                parts.append(f"{len(keys)} {label} ({shown})")
        raise CheckpointError(
            f"checkpoint {source} does not fit this model: {'; '.join(parts)}; "
            "check that the model name matches the checkpoint's width"
        )
    model.load_state_dict(state)
    return model


def load_checkpoint(model: nn.Module, path: str | Path) -> nn.Module:
    """Load a checkpoint file into ``model`` (see :func:`read_checkpoint` for the formats)."""
    return fit_state_dict(model, read_state_dict(path), repr(str(path)))


def checkpoint_classes(state: dict[str, torch.Tensor], meta: dict | None = None) -> int | None:
    """The class count a checkpoint's classifier (or detection/segmentation head) was trained for.

    Counted as the model's ``num_classes``: classifier outputs; SSD object classes (background
    excluded); segmentation classes (background included).
    """
    weight = state.get("classifier.1.weight")
    if weight is not None and weight.ndim == 2:
        return int(weight.shape[0])
    if meta and isinstance(meta.get("num_classes"), int):
        return int(meta["num_classes"])
    weight = state.get("head.classifier.weight")  # DeepLab's logits conv
    if weight is not None and weight.ndim == 4:
        return int(weight.shape[0])
    box, cls = state.get("box_head.0.1.weight"), state.get("cls_head.0.1.weight")  # SSD's first heads
    if box is not None and cls is not None and box.shape[0] % 4 == 0:
        per_anchor, rem = divmod(int(cls.shape[0]), int(box.shape[0]) // 4)
        return per_anchor - 1 if rem == 0 and per_anchor > 1 else None
    return None


def describe(checkpoint: str | Path | None, seed: int = DEFAULT_SEED, spec=None) -> dict:
    """A JSON-ready record of where the weights came from, enough to rebuild the same model."""
    if checkpoint is None and spec is not None and spec.pretrained is not None:
        p = spec.pretrained
        return {"kind": "pretrained", "tag": p.tag, "path": str(p.path), "sha256": p.sha256}
    if checkpoint is None:
        return {"kind": "random", "seed": seed}
    path = Path(checkpoint).resolve()
    return {"kind": "checkpoint", "path": str(path), "sha256": file_sha256(path)}


def build_model(spec, checkpoint: str | Path | None = None, seed: int = DEFAULT_SEED) -> nn.Module:
    """The model of ``spec`` in eval mode: from a checkpoint, the spec's shipped weights, or seeded random.

    The class count follows the checkpoint's classifier, so a 10-class checkpoint of a 1000-class
    architecture loads without ceremony.
    """
    if checkpoint is None and spec.pretrained is not None:
        spec.pretrained.check()
        checkpoint = spec.pretrained.path
    if checkpoint is None:
        return randomize(spec.build(), seed).eval()
    state, meta = read_checkpoint(checkpoint)
    model = spec.build(num_classes=checkpoint_classes(state, meta) or spec.num_classes)
    return fit_state_dict(model, state, repr(str(checkpoint))).eval()


def checkpoint_metadata(spec, checkpoint: str | Path | None) -> dict:
    """What a checkpoint (or the spec's shipped weights) says about classes and data set."""
    if checkpoint is None and spec.pretrained is not None:
        checkpoint = spec.pretrained.path
    if checkpoint is None:
        return {}
    state, meta = read_checkpoint(checkpoint)
    out = {"num_classes": checkpoint_classes(state, meta) or spec.num_classes}
    for key in ("classes", "dataset"):
        if key in meta:
            out[key] = meta[key]
    return out


def build_from_record(spec, record: dict) -> nn.Module:
    """Rebuild the model a :func:`describe` record names, checking a weights file is unchanged."""
    if record.get("kind") == "random":
        return build_model(spec, None, int(record.get("seed", DEFAULT_SEED)))
    if record.get("kind") in ("checkpoint", "pretrained"):
        path = Path(record["path"])
        if not path.is_file():
            raise CheckpointError(f"the reference weights {str(path)!r} are gone; restore them or recompile")
        if file_sha256(path) != record.get("sha256"):
            raise CheckpointError(
                f"weights {str(path)!r} changed since the model was exported; export and compile again"
            )
        return build_model(spec, path)
    raise CheckpointError(f"unknown weights record {record!r}; recompile the artifact")
