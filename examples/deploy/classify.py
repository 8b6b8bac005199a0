"""Classify one image with an edge-mnv2 CPU artifact, using TVM's runtime only.

Runs where the artifact was built for (a Raspberry Pi for ``--target rpi4b``, this machine for
``--target host``) with nothing but numpy and TVM's runtime installed:

    pip install apache-tvm==0.27.0.post1 apache-tvm-ffi==0.1.14.post1 numpy
    TVM_USE_RUNTIME_LIB=1 python3 classify.py ARTIFACT_DIR IMAGE

ARTIFACT_DIR is the folder `edge-mnv2 compile ... -o ARTIFACT_DIR` wrote (``artifact.json`` and the
library it names). IMAGE is a binary PPM (P6), a ``.npy`` array (uint8 H x W x 3 RGB, or float32
already in the model's input shape and normalisation), or any format Pillow reads if Pillow is
installed. An image of another size is resized and centre-cropped as ``artifact.json``'s
``preprocessing`` says (Pillow bilinear if present, else nearest neighbour). Prints the top-5 classes.
"""

import argparse
import hashlib
import json
import os
import sys

import numpy as np


def read_ppm(path):
    """A binary PPM (P6, maxval 255) -> H x W x 3 uint8."""
    with open(path, "rb") as f:
        data = f.read()
    fields, pos = [], 0
    while len(fields) < 4:  # magic, width, height, maxval; '#' comments allowed
        while data[pos : pos + 1].isspace():
            pos += 1
        if data[pos : pos + 1] == b"#":
            pos = data.index(b"\n", pos) + 1
            continue
        end = pos
        while not data[end : end + 1].isspace():
            end += 1
        fields.append(data[pos:end])
        pos = end
    if fields[0] != b"P6" or int(fields[3]) != 255:
        raise SystemExit(f"{path}: not a binary 8-bit PPM (P6, maxval 255)")
    width, height = int(fields[1]), int(fields[2])
    pixels = np.frombuffer(data, np.uint8, width * height * 3, pos + 1)
    return pixels.reshape(height, width, 3)


def read_image(path):
    """H x W x 3 uint8 RGB, or a float32 array already in the model's input form."""
    if path.endswith(".npy"):
        return np.load(path)
    if path.endswith((".ppm", ".pnm")):
        return read_ppm(path)
    try:
        from PIL import Image
    except ImportError:
        raise SystemExit(f"{path}: without Pillow only .ppm (P6) and .npy images are read") from None
    return np.asarray(Image.open(path).convert("RGB"), dtype=np.uint8)


def resize_and_crop(image, size, crop_fraction):
    """The evaluation resize of edge-mnv2 (short side to size / crop_fraction, centre crop size x size)."""
    h, w = image.shape[:2]
    if (h, w) == (size, size):
        return image
    short = max(size, int(round(size / crop_fraction)))
    scale = short / min(h, w)
    new_w, new_h = max(size, round(w * scale)), max(size, round(h * scale))
    try:
        from PIL import Image

        image = np.asarray(Image.fromarray(image).resize((new_w, new_h), Image.BILINEAR))
    except ImportError:  # nearest neighbour: numpy only
        rows = (np.arange(new_h) * h // new_h).clip(0, h - 1)
        cols = (np.arange(new_w) * w // new_w).clip(0, w - 1)
        image = image[rows][:, cols]
    top, left = (new_h - size) // 2, (new_w - size) // 2
    return image[top : top + size, left : left + size]


def model_input(image, meta):
    """uint8 H x W x 3 -> the float32 N x C x H x W input ``artifact.json`` describes."""
    shape = tuple(meta["input"]["shape"])
    if image.dtype != np.uint8:  # already preprocessed
        return np.ascontiguousarray(image, dtype=np.float32).reshape(shape)
    pre = meta["preprocessing"] or {"mean": [0.0] * 3, "std": [1.0] * 3}  # foreign ONNX: pixels in [0, 1]
    image = resize_and_crop(image, shape[2], pre.get("crop_fraction", 0.875))
    x = image.astype(np.float32) * np.float32(pre.get("scale", 1.0 / 255.0))
    x = (x - np.asarray(pre["mean"], np.float32)) / np.asarray(pre["std"], np.float32)
    return np.ascontiguousarray(x.transpose(2, 0, 1)[None], dtype=np.float32)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("artifact", help="folder written by `edge-mnv2 compile` (holds artifact.json)")
    parser.add_argument("image", help=".ppm (P6), .npy, or any format Pillow reads")
    parser.add_argument("--top", type=int, default=5)
    args = parser.parse_args()

    with open(os.path.join(args.artifact, "artifact.json")) as f:
        meta = json.load(f)
    if meta.get("kind") == "micro":
        raise SystemExit("a microcontroller artifact holds C and firmware, not a library: see docs/deploy.md")
    library = meta["files"]["library"]
    path = os.path.join(args.artifact, library["path"])
    with open(path, "rb") as f:  # the library is native code: load only the one compile wrote
        if hashlib.sha256(f.read()).hexdigest() != library["sha256"]:
            raise SystemExit(f"{path} does not match the sha256 in artifact.json")

    import tvm  # runtime only with TVM_USE_RUNTIME_LIB=1
    from tvm.runtime.vm import VirtualMachine

    dev = tvm.cpu()
    vm = VirtualMachine(tvm.runtime.load_module(path), dev)
    x = model_input(read_image(args.image), meta)
    out = vm["main"](tvm.runtime.tensor(x, dev))
    logits = (out if hasattr(out, "numpy") else out[0]).numpy().reshape(-1)

    probs = np.exp(logits - logits.max())
    probs /= probs.sum()
    classes = meta.get("model", {}).get("classes") or []
    for rank, i in enumerate(np.argsort(-logits, kind="stable")[: args.top], 1):
        label = classes[i] if i < len(classes) else f"class {i}"
        print(f"{rank}  {i:4d}  {probs[i]:.4f}  {label}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
