"""A TorchApp's data: each loader becomes PredTuner's binary files in the app's work folder, linked
when the loader reads a model_zoo data set in order with nothing applied, written batch by batch
otherwise (so a sampler, drop_last or a collate_fn is honoured). The C library memory-maps them."""
import os

import numpy as np

from .model_zoo.datasets import CIFAR, MNIST, ImageNet

__all__ = ["materialise"]

_PLAIN_DATASETS = (MNIST, CIFAR, ImageNet)  # exactly these classes: a subclass may change __getitem__


class Data:
    """What the C app needs of one set: the image shape, the offset and count in the files, and
    the loader's batch size (None: not a fixed one)."""

    def __init__(self, shape, offset, count, batch_size):
        self.shape, self.offset, self.count, self.batch_size = shape, offset, count, batch_size


def _plain_loader(loader):
    """The dataset when loader yields a model_zoo data set's images in file order, in batches of
    loader.batch_size, untransformed; else None."""
    try:
        from torch.utils.data import BatchSampler, DataLoader, SequentialSampler  # noqa: PLC0415
        from torch.utils.data._utils.collate import default_collate  # noqa: PLC0415
    except ImportError:
        return None
    if type(loader) is not DataLoader or type(loader.dataset) not in _PLAIN_DATASETS:
        return None
    ds = loader.dataset
    bs = loader.batch_sampler
    if ds.input_file is None or loader.drop_last or loader.collate_fn is not default_collate:
        return None
    if type(bs) is not BatchSampler or type(bs.sampler) is not SequentialSampler:
        return None
    return ds


def _batches(loader, which):
    if loader is None:
        raise TypeError(f"{which}_dataloader: None (a DataLoader or a model_zoo data set is needed)")
    if type(loader) in _PLAIN_DATASETS:  # a data set itself: the whole of it as one batch
        return [(np.asarray(loader.inputs), np.asarray(loader.labels))], None
    if not hasattr(loader, "__iter__"):
        raise TypeError(f"{which}_dataloader: {type(loader).__name__} is not iterable (a DataLoader is needed)")
    return loader, getattr(loader, "batch_size", None)


def _array(b, what):
    if hasattr(b, "detach"):  # a torch tensor: to the CPU, bfloat16 and half as float32
        b = b.detach().cpu()
        if b.is_floating_point():
            b = b.float()
        b = b.numpy()
    a = np.asarray(b)
    if a.dtype == object:
        raise TypeError(f"{what}: not an array ({type(b).__name__})")
    return a


def _write(loader, workdir, which):
    batches, batch_size = _batches(loader, which)
    n, shape, sizes = 0, None, []
    with open(os.path.join(workdir, f"{which}_input.bin"), "wb") as fi, \
            open(os.path.join(workdir, f"{which}_labels.bin"), "wb") as fl:
        for batch in batches:
            if not isinstance(batch, (tuple, list)) or len(batch) != 2:
                raise TypeError(f"{which}_dataloader: each batch must be (inputs, targets), got {type(batch).__name__}")
            x, y = _array(batch[0], f"{which}_dataloader's inputs"), _array(batch[1], f"{which}_dataloader's targets")
            if x.ndim < 2 or y.ndim != 1 or len(x) != len(y):
                raise ValueError(f"{which}_dataloader: a batch of inputs {tuple(x.shape)} with targets {tuple(y.shape)} "
                                 "(expected (N, C, H, W) images and N class labels)")
            if not np.issubdtype(x.dtype, np.floating):
                raise ValueError(f"{which}_dataloader: images of type {x.dtype}; the network takes floating-point "
                                 "images (convert and normalise them as for PyTorch)")
            if not np.issubdtype(y.dtype, np.integer):
                raise ValueError(f"{which}_dataloader: targets must be integer class labels, got {y.dtype}")
            if shape is not None and tuple(x.shape[1:]) != shape:
                raise ValueError(f"{which}_dataloader: images of shape {tuple(x.shape[1:])} after {shape}")
            shape = tuple(x.shape[1:])
            fi.write(np.ascontiguousarray(x, dtype="<f4").tobytes())
            fl.write(np.ascontiguousarray(y, dtype="<i4").tobytes())
            n += len(x)
            sizes.append(len(x))
    if n == 0:
        raise ValueError(f"{which}_dataloader: no images")
    if batch_size is None:  # no fixed batch size given: the batches' own, if they have one
        if len(set(sizes[:-1])) > 1 or (len(sizes) > 1 and sizes[-1] > sizes[0]):
            raise ValueError(f"{which}_dataloader: batches of {sorted(set(sizes))} images; QoS is accuracy per batch "
                             "averaged over batches, measured in batches of one size: use a loader with a batch_size")
        batch_size = sizes[0]
    return Data(shape, 0, n, batch_size)


def materialise(loader, workdir, which):
    """One set ("tune" or "test") into workdir/<which>_{input,labels}.bin; its Data."""
    ds = _plain_loader(loader)
    if ds is None:
        return _write(loader, workdir, which)
    if len(ds) == 0:
        raise ValueError(f"{which}_dataloader: no images")
    os.symlink(ds.input_file, os.path.join(workdir, f"{which}_input.bin"))
    os.symlink(ds.labels_file, os.path.join(workdir, f"{which}_labels.bin"))
    return Data(tuple(ds.image_shape), ds.offset, len(ds), loader.batch_size)


def check_sets(tune, test, want_shape, what):
    """Both sets' images have the network's shape (want_shape, or the tune set's when None), and
    one batch size between them; the batch size."""
    want = tuple(want_shape) if want_shape is not None else tune.shape
    for which, d in (("tune", tune), ("test", test)):
        if d.shape != want:
            raise ValueError(f"{which}_dataloader: images of shape {'x'.join(map(str, d.shape))}, but {what} takes "
                             f"{'x'.join(map(str, want))}")
    sizes = {d.batch_size for d in (tune, test) if d.batch_size is not None}
    if len(sizes) > 1:
        raise ValueError(f"tune_dataloader and test_dataloader: batch sizes {tune.batch_size} and {test.batch_size}; "
                         "the C library measures both sets in batches of one size (QoS is per-batch accuracy "
                         "averaged over batches, as PredTuner's), so give both loaders the same batch_size")
    return sizes.pop() if sizes else 0
