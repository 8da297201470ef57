"""PredTuner's model zoo: the data sets (numpy only) and, when torch is importable, the 10 networks
as torch.nn modules with PredTuner's state_dict keys."""
from .datasets import CIFAR, MNIST, DNNDataset, ImageNet

__all__ = ["CIFAR", "MNIST", "ImageNet", "DNNDataset"]

try:
    import torch  # noqa: F401
except ImportError:
    pass
else:
    from .networks import (AlexNet, AlexNet2, AlexNetImageNet, LeNet, MobileNet, ResNet18, ResNet50,  # noqa: F401
                           VGG16Cifar10, VGG16Cifar100, VGG16ImageNet)
    __all__ += ["LeNet", "AlexNet", "AlexNet2", "AlexNetImageNet", "VGG16Cifar10", "VGG16Cifar100", "VGG16ImageNet",
                "ResNet18", "ResNet50", "MobileNet"]
