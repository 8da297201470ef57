#!/usr/bin/python3
"""PyTorch's side of bench_infer: the same networks, batch and thread count, timed the same way
(one warm-up run, then the median of --reps runs), so bench/RESULTS.md can give a ratio measured
on one machine in one sitting.  Needs Debian's python3-torch:  /usr/bin/python3 bench/pytorch_infer.py

--tune-forward N: instead, bench_init's side: one forward pass of N random 32x32 images in batches of
--batch through resnet18, alexnet2 and vgg16 (CIFAR-10 shapes), the unit of PredTuner's P1
initialisation cost (one such pass per (op, knob) entry).
"""
import argparse
import json
import os
import struct
import sys
import time

import numpy as np
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "python"))
from predtuner_gpu.model_zoo.networks import NETS, AlexNet2, LeNet, ResNet18, VGG16Cifar10  # noqa: E402

DEFAULT_NETS = ("lenet_mnist,alexnet_cifar10,alexnet2_cifar10,vgg16_cifar10,vgg16_cifar100,resnet18_cifar10,"
                "mobilenet_cifar10,resnet50_imagenet")


def load_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    dtypes = {"F32": np.float32, "F16": np.float16}
    out = {}
    for k, v in header.items():
        if k == "__metadata__":
            continue
        b, e = v["data_offsets"]
        arr = np.frombuffer(data[b:e], dtype=dtypes[v["dtype"]]).reshape(v["shape"])
        out[k] = torch.from_numpy(arr.astype(np.float32))
    return out


def bench(name, model, x, reps, threads):
    model.eval()
    with torch.no_grad():
        model(x)
        times = []
        for _ in range(reps):
            t0 = time.perf_counter()
            model(x)
            times.append(time.perf_counter() - t0)
    times.sort()
    med = times[len(times) // 2]
    print(f"pytorch       {name:16s} batch={x.shape[0]} threads={threads} reps={reps} median_s={med:.4f} "
          f"min_s={times[0]:.4f} images_per_s={x.shape[0] / med:.1f}", flush=True)


def tune_forward(images, batch, reps, threads):
    """The median over reps of one pass over `images` images, batch by batch."""
    x = torch.rand(images, 3, 32, 32) * 2 - 1
    for name, model in (("resnet18_cifar10", ResNet18()), ("alexnet2_cifar10", AlexNet2()),
                        ("vgg16_cifar10", VGG16Cifar10())):
        model.eval()
        with torch.no_grad():
            model(x[:batch])
            times = []
            for _ in range(reps):
                t0 = time.perf_counter()
                for i in range(0, images, batch):
                    model(x[i:i + batch])
                times.append(time.perf_counter() - t0)
        times.sort()
        print(f"pytorch       {name:16s} images={images} batch={batch} threads={threads} reps={reps} "
              f"forward_s={times[len(times) // 2]:.3f} min_s={times[0]:.3f}", flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--batch", type=int, default=500)
    ap.add_argument("--tune-forward", type=int, default=0, metavar="N")
    ap.add_argument("--nets", default=DEFAULT_NETS)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(1)
    print(f"  torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"mkldnn {torch.backends.mkldnn.is_available()}", flush=True)
    if a.tune_forward:
        tune_forward(a.tune_forward, a.batch, a.reps, a.threads)
        return
    make = {name: (f, shape) for name, f, shape in NETS}
    for name in a.nets.split(","):
        batch = min(a.batch, 50) if "imagenet" in name else a.batch
        if name == "lenet_mnist":  # the demo's trained weights and images, as bench_infer
            demo = os.path.join(ROOT, "zoo", "demo")
            net = LeNet()
            net.load_state_dict(load_safetensors(os.path.join(demo, "lenet_mnist.safetensors")))
            x = np.fromfile(os.path.join(demo, "tune_input.bin"), dtype="<f4")[: batch * 784].reshape(-1, 1, 28, 28)
            bench(name, net, torch.from_numpy(x.copy()), a.reps, a.threads)
            continue
        f, shape = make[name]
        bench(name, f(), torch.rand(batch, *shape) * 2 - 1, a.reps, a.threads)


if __name__ == "__main__":
    main()
