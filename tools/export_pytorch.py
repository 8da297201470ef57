#!/usr/bin/python3
"""Converts a PyTorch state_dict file (.pth, .pth.tar: what PredTuner's model_params/ holds) into
safetensors with the same keys, for `predtuner-gpu measure --weights`.

    /usr/bin/python3 tools/export_pytorch.py model_params/vgg16_cifar10/vgg16_cifar10.pth.tar vgg16.safetensors

Accepts a bare state_dict, or a checkpoint dict holding one under "state_dict" or "model" (as
training scripts often save), and strips a "module." prefix left by DataParallel. Floating tensors
are written as F32 (or F16 with --f16); integer tensors (num_batches_tracked) are kept as they are,
and predtuner-gpu ignores them. Needs Debian's python3-torch; no other package.
"""
import argparse
import json
import os
import struct
import sys

import torch

DTYPES = {torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16", torch.float64: "F64",
          torch.int64: "I64", torch.int32: "I32", torch.int16: "I16", torch.int8: "I8", torch.uint8: "U8",
          torch.bool: "BOOL"}


def find_state_dict(obj, path):
    if isinstance(obj, torch.nn.Module):
        return obj.state_dict()
    if isinstance(obj, dict):
        for key in ("state_dict", "model", "model_state_dict", "net"):
            inner = obj.get(key)
            if isinstance(inner, dict) and inner and all(torch.is_tensor(v) for v in inner.values()):
                return inner
            if isinstance(inner, torch.nn.Module):
                return inner.state_dict()
        if obj and all(torch.is_tensor(v) for v in obj.values()):
            return obj
    raise SystemExit(f"{path}: no state_dict found (expected a dict of tensors, or one under 'state_dict'/'model')")


def tensor_bytes(t, f16):
    t = t.detach().cpu().contiguous()
    if t.is_floating_point():
        t = t.to(torch.float16 if f16 else torch.float32)
    if t.dtype == torch.bfloat16:
        return "BF16", t.view(torch.int16).numpy().tobytes()
    if t.dtype not in DTYPES:
        raise SystemExit(f"unsupported dtype {t.dtype}")
    return DTYPES[t.dtype], t.numpy().tobytes()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("input", help=".pth or .pth.tar file saved with torch.save")
    ap.add_argument("output", help="safetensors file to write")
    ap.add_argument("--f16", action="store_true", help="store floating tensors as F16 (half the size)")
    a = ap.parse_args()
    try:
        obj = torch.load(a.input, map_location="cpu")
    except Exception as e:  # torch raises many types for a bad file
        raise SystemExit(f"{a.input}: cannot read: {e}")
    sd = find_state_dict(obj, a.input)
    header, blobs, off = {"__metadata__": {"source": os.path.basename(a.input)}}, [], 0
    for k, v in sd.items():
        name = k[len("module."):] if k.startswith("module.") else k
        dt, b = tensor_bytes(v, a.f16)
        header[name] = {"dtype": dt, "shape": list(v.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    tmp = a.output + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)
    os.replace(tmp, a.output)
    print(f"{a.output}: {len(sd)} tensors, {off} bytes of data", file=sys.stderr)


if __name__ == "__main__":
    main()
