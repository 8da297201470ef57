"""PredTuner's data sets: raw little-endian files without a header, float32 images (N, C, H, W) and
int32 labels, as `<dir>/{tune,test}_{input,labels}.bin`. Memory-mapped with numpy; items come out
as torch tensors when torch is importable (so a torch DataLoader batches them), numpy otherwise.

A TorchApp given a DataLoader over one of these hands the C library the files themselves (with the
offset and count), without copying the images."""
import os

import numpy as np

__all__ = ["DNNDataset", "CIFAR", "MNIST", "ImageNet"]

try:
    import torch
except ImportError:  # the data sets work without torch (numpy items)
    torch = None


class DNNDataset:
    image_shape = None

    def __init__(self, inputs, labels, input_file=None, labels_file=None, offset=0):
        if len(inputs) != len(labels):
            raise ValueError(f"{type(self).__name__}: {len(inputs)} images but {len(labels)} labels")
        self.inputs, self.labels = inputs, labels
        self.input_file, self.labels_file, self.offset = input_file, labels_file, offset

    @classmethod
    def from_file(cls, input_file, labels_file, count=-1, offset=0):
        """The images [offset, offset + count) of the two files (count -1: to the end)."""
        per_image = int(np.prod(cls.image_shape))
        for path in (input_file, labels_file):
            if not os.path.isfile(path):
                raise FileNotFoundError(f"{cls.__name__}.from_file: {os.fspath(path)}: no such file")
        n_in = os.path.getsize(input_file) // 4
        if n_in % per_image:
            raise ValueError(f"{os.fspath(input_file)}: {n_in} floats is not a whole number of "
                             f"{'x'.join(map(str, cls.image_shape))} images")
        n_img, n_lab = n_in // per_image, os.path.getsize(labels_file) // 4
        if n_img != n_lab:
            raise ValueError(f"{os.fspath(input_file)}: {n_img} images but {os.fspath(labels_file)} has {n_lab} labels")
        if offset < 0 or offset > n_img:
            raise ValueError(f"{cls.__name__}.from_file: offset {offset} outside the {n_img} images")
        count = n_img - offset if count is None or count < 0 else min(count, n_img - offset)
        inputs = np.memmap(input_file, dtype="<f4", mode="r", offset=offset * per_image * 4,
                           shape=(count, *cls.image_shape)) if count else np.zeros((0, *cls.image_shape), "<f4")
        labels = np.memmap(labels_file, dtype="<i4", mode="r", offset=offset * 4, shape=(count,)) \
            if count else np.zeros((0,), "<i4")
        return cls(inputs, labels, os.path.abspath(input_file), os.path.abspath(labels_file), offset)

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, idx):
        x, y = np.array(self.inputs[idx], dtype=np.float32), np.int64(self.labels[idx])
        if torch is not None:
            return torch.from_numpy(x), torch.tensor(y)
        return x, y

    def __iter__(self):
        return (self[i] for i in range(len(self)))


class MNIST(DNNDataset):
    image_shape = (1, 28, 28)


class CIFAR(DNNDataset):
    image_shape = (3, 32, 32)


class ImageNet(DNNDataset):
    image_shape = (3, 224, 224)
