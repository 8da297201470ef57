"""predtuner_gpu: PredTuner's Python API over the predtuner-gpu C library (ctypes; docs/python.md).

    import predtuner_gpu as pt
    from predtuner_gpu.model_zoo import CIFAR, VGG16Cifar10

is all that changes in PredTuner's tutorial. Every measurement, model and search runs in C."""
from ._lib import PACKAGE_VERSION as __version__
from ._lib import PredTunerError
from ._logging import config_pylogger
from .app import TorchApp
from .knobs import ApproxKnob, KnobSet, get_knobs_from_file
from .qos import accuracy
from .tuner import Config, ConfigPlot, Tuner, ValConfig

ApproxModeledTuner = Tuner  # PredTuner's name for the tuner a TorchApp gives

__all__ = ["TorchApp", "get_knobs_from_file", "accuracy", "config_pylogger", "PredTunerError", "ApproxKnob",
           "KnobSet", "Tuner", "ApproxModeledTuner", "Config", "ValConfig", "ConfigPlot", "model_zoo", "__version__"]

from . import model_zoo  # noqa: E402
