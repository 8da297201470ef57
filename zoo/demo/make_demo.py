#!/usr/bin/python3
"""Makes the bundled demo: a synthetic digits data set and a LeNet (the zoo's lenet_mnist) trained on it.

Images are 1x28x28 renderings of the digits 0-9 in the DejaVu fonts (Debian's fonts-dejavu-core),
with a random font, size, stroke width, affine distortion (rotation, scale, shear, shift) and
Gaussian noise; pixel values are floats in [0, 1] (background 0). Everything is seeded, so a rerun
on the same software gives the same files.

Writes, next to this script:
  lenet_mnist.safetensors      trained weights (F16), PyTorch state_dict keys
  tune_input.bin, tune_labels.bin, test_input.bin, test_labels.bin
                               PredTuner's format: raw float32 (N,1,28,28) and int32 (N)
  expected_tune_predictions.bin, expected_test_predictions.bin
                               int32 argmax of the trained model (weights as stored) per image
  demo.json                    sizes, seed, training log and the accuracies reached

Needs Debian's python3-torch, python3-numpy, python3-pil and fonts-dejavu-core:
  /usr/bin/python3 zoo/demo/make_demo.py
"""
import json
import os
import struct
import time

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont
from torch import nn

HERE = os.path.dirname(os.path.abspath(__file__))
SEED = 20261123
N_TRAIN, N_TUNE, N_TEST = 12000, 1000, 1000
FONT_DIR = "/usr/share/fonts/truetype/dejavu"
FONTS = ["DejaVuSans.ttf", "DejaVuSans-Bold.ttf", "DejaVuSansMono.ttf", "DejaVuSansMono-Bold.ttf",
         "DejaVuSerif.ttf", "DejaVuSerif-Bold.ttf"]


def render(digit, rng, fonts):
    """One 28x28 float image of `digit`."""
    size = int(rng.integers(17, 25))
    font = ImageFont.truetype(fonts[int(rng.integers(len(fonts)))], size)
    canvas = Image.new("L", (56, 56), 0)
    draw = ImageDraw.Draw(canvas)
    stroke = int(rng.integers(0, 3))
    x0, y0, x1, y1 = draw.textbbox((0, 0), str(digit), font=font, stroke_width=stroke)
    draw.text((28 - (x0 + x1) / 2, 28 - (y0 + y1) / 2), str(digit), fill=255, font=font, stroke_width=stroke)
    # random affine about the centre: rotation, anisotropic scale, shear, shift
    a = np.deg2rad(rng.uniform(-18, 18))
    sx, sy = rng.uniform(0.8, 1.15, size=2)
    sh = rng.uniform(-0.3, 0.3)
    m = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]]) @ np.array([[sx, sh], [0, sy]])
    inv = np.linalg.inv(m)
    tx, ty = rng.uniform(-2.5, 2.5, size=2)
    c = np.array([28.0, 28.0])
    off = c - inv @ (c + np.array([tx, ty]))
    img = canvas.transform((56, 56), Image.AFFINE, (inv[0, 0], inv[0, 1], off[0], inv[1, 0], inv[1, 1], off[1]),
                           resample=Image.BILINEAR)
    img = img.crop((14, 14, 42, 42))
    x = np.asarray(img, dtype=np.float32) / 255.0
    x = x + rng.normal(0, rng.uniform(0.05, 0.2), size=x.shape).astype(np.float32)
    return np.clip(x, 0.0, 1.0)


def make_set(n, rng, fonts):
    labels = rng.integers(0, 10, size=n).astype(np.int32)
    images = np.stack([render(int(d), rng, fonts) for d in labels])[:, None, :, :]
    return images.astype(np.float32), labels


class LeNet(nn.Module):
    """The zoo's lenet_mnist (PredTuner's LeNet): same modules, names and order."""

    def __init__(self):
        super().__init__()
        self.convs = nn.Sequential(nn.Conv2d(1, 32, 5, padding=2), nn.MaxPool2d(2), nn.Tanh(),
                                   nn.Conv2d(32, 64, 5, padding=2), nn.MaxPool2d(2), nn.Tanh())
        self.linears = nn.Sequential(nn.Linear(7 * 7 * 64, 1024), nn.Tanh(), nn.Linear(1024, 10), nn.Tanh())
        self.softmax = nn.Sequential()

    def forward(self, x):
        x = self.convs(x)
        return self.softmax(self.linears(x.view(x.shape[0], -1)))


def save_safetensors(path, tensors, metadata):
    """Minimal safetensors writer (F16), so no extra Python package is needed."""
    header, blobs, off = {"__metadata__": metadata}, [], 0
    for name, t in tensors.items():
        b = t.detach().cpu().to(torch.float16).contiguous().numpy().astype("<f2").tobytes()
        header[name] = {"dtype": "F16", "shape": list(t.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)
    os.replace(tmp, path)


def write_bin(name, array):
    tmp = os.path.join(HERE, name + ".tmp")
    array.tofile(tmp)
    os.replace(tmp, os.path.join(HERE, name))


def batch_accuracy(pred, labels, batch=500):
    """PredTuner's QoS: accuracy per batch, averaged over batches."""
    accs = [100.0 * np.mean(pred[i:i + batch] == labels[i:i + batch]) for i in range(0, len(labels), batch)]
    return float(np.mean(accs))


def main():
    torch.manual_seed(SEED)
    torch.set_num_threads(2)
    rng = np.random.default_rng(SEED)
    fonts = [os.path.join(FONT_DIR, f) for f in FONTS if os.path.exists(os.path.join(FONT_DIR, f))]
    if not fonts:
        raise SystemExit(f"no DejaVu fonts in {FONT_DIR}: apt-get install fonts-dejavu-core")
    t0 = time.time()
    xtr, ytr = make_set(N_TRAIN, rng, fonts)
    xtu, ytu = make_set(N_TUNE, rng, fonts)
    xte, yte = make_set(N_TEST, rng, fonts)
    print(f"rendered {N_TRAIN + N_TUNE + N_TEST} images in {time.time() - t0:.1f}s")

    model = LeNet()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = nn.CrossEntropyLoss()
    xt, yt = torch.from_numpy(xtr), torch.from_numpy(ytr).long()
    log = []
    for epoch in range(5):
        model.train()
        perm = torch.randperm(N_TRAIN)
        total = 0.0
        for i in range(0, N_TRAIN, 64):
            idx = perm[i:i + 64]
            opt.zero_grad()
            # the network ends in Tanh (as PredTuner's LeNet does): scale before the softmax loss
            loss = loss_fn(4.0 * model(xt[idx]), yt[idx])
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
        model.eval()
        with torch.no_grad():
            acc = (model(torch.from_numpy(xtu)).argmax(1).numpy() == ytu).mean() * 100
        log.append({"epoch": epoch + 1, "loss": round(total / N_TRAIN, 4), "tune_accuracy": round(float(acc), 2)})
        print(log[-1], flush=True)

    # The stored weights are F16: evaluate exactly what is stored.
    sd = {k: v for k, v in model.state_dict().items()}
    model.load_state_dict({k: v.half().float() for k, v in sd.items()})
    model.eval()
    out = {}
    with torch.no_grad():
        for split, x, y in (("tune", xtu, ytu), ("test", xte, yte)):
            logits = model(torch.from_numpy(x))
            pred = logits.argmax(1).numpy().astype(np.int32)
            top2 = logits.topk(2, dim=1).values
            out[split] = {"accuracy": batch_accuracy(pred, y), "min_top2_margin": float((top2[:, 0] - top2[:, 1]).min())}
            write_bin(f"{split}_input.bin", x.astype("<f4"))
            write_bin(f"{split}_labels.bin", y.astype("<i4"))
            write_bin(f"expected_{split}_predictions.bin", pred.astype("<i4"))
    save_safetensors(os.path.join(HERE, "lenet_mnist.safetensors"), sd,
                     {"model": "lenet_mnist", "made_by": "zoo/demo/make_demo.py"})
    info = {"model": "lenet_mnist", "seed": SEED, "train_images": N_TRAIN, "tune_images": N_TUNE,
            "test_images": N_TEST, "image_shape": [1, 28, 28], "classes": 10, "batch_size": 500,
            "tune_accuracy": out["tune"]["accuracy"], "test_accuracy": out["test"]["accuracy"],
            "min_top2_margin": min(out["tune"]["min_top2_margin"], out["test"]["min_top2_margin"]),
            "torch": torch.__version__, "training": log}
    with open(os.path.join(HERE, "demo.json.tmp"), "w") as f:
        json.dump(info, f, indent=1)
    os.replace(os.path.join(HERE, "demo.json.tmp"), os.path.join(HERE, "demo.json"))
    print(json.dumps({k: info[k] for k in ("tune_accuracy", "test_accuracy", "min_top2_margin")}))


if __name__ == "__main__":
    main()
