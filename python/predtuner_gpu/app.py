"""TorchApp: PredTuner's app over a PyTorch module and two DataLoaders, run by the C library.

The module becomes a zoo network (matched by its state_dict, then checked to compute what the
package's own zoo module computes) with its weights written as safetensors, or an ONNX file
exported by torch; the loaders become PredTuner's binary data files (the files themselves, linked,
when the loader reads one of model_zoo's data sets). The library then measures everything."""
import copy
import ctypes
import json
import logging
import os
import shutil
import struct
import tempfile
import weakref

import numpy as np

from . import _lib
from ._lib import check, enc, lib
from .knobs import get_knobs_from_file, knobs_file_for
from ._data import check_sets, materialise
from .qos import accuracy

__all__ = ["TorchApp"]

log = logging.getLogger("predtuner_gpu")


def _zoo_tensors():
    """{zoo name: [(state_dict key, shape)]} from the C zoo."""
    _proto = _lib._proto
    _proto("pt_zoo_count", ctypes.c_int)
    _proto("pt_zoo_name", ctypes.c_char_p, ctypes.c_int)
    _proto("pt_zoo_build", ctypes.c_int, ctypes.c_char_p, ctypes.POINTER(ctypes.c_void_p))
    _proto("pt_graph_free", None, ctypes.c_void_p)
    _proto("pt_graph_num_tensors", ctypes.c_int, ctypes.c_void_p)
    _proto("pt_graph_tensor_name", ctypes.c_char_p, ctypes.c_void_p, ctypes.c_int)
    _proto("pt_graph_tensor_shape", ctypes.c_int, ctypes.c_void_p, ctypes.c_int, ctypes.POINTER(ctypes.c_int64))
    out = {}
    for i in range(lib.pt_zoo_count()):
        name = lib.pt_zoo_name(i)
        g = ctypes.c_void_p()
        check(lib.pt_zoo_build(name, ctypes.byref(g)))
        try:
            shape = (ctypes.c_int64 * 4)()
            tensors = []
            for t in range(lib.pt_graph_num_tensors(g)):
                nd = lib.pt_graph_tensor_shape(g, t, shape)
                tensors.append((lib.pt_graph_tensor_name(g, t).decode(), tuple(shape[:nd])))
        finally:
            lib.pt_graph_free(g)
        out[name.decode()] = sorted(tensors)
    return out


def _state_dict_arrays(module):
    """The module's float tensors as contiguous float32 numpy arrays (num_batches_tracked left out)."""
    out = {}
    for k, v in module.state_dict().items():
        if k.endswith("num_batches_tracked"):
            continue
        out[k] = v.detach().cpu().float().contiguous().numpy()
    return out


def _write_safetensors(arrays, path):
    header, offset = {}, 0
    for k, a in arrays.items():
        header[k] = {"dtype": "F32", "shape": list(a.shape), "data_offsets": [offset, offset + a.nbytes]}
        offset += a.nbytes
    blob = json.dumps(header).encode()
    blob += b" " * (-len(blob) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(blob)) + blob)
        for a in arrays.values():
            f.write(np.ascontiguousarray(a, dtype="<f4").tobytes())


def _computes_like(module, zoo_class, arrays, shape):
    """Whether module computes what the package's zoo module with the same weights computes (one
    random batch of two images): a module with the zoo's parameters but another forward is not it."""
    import torch  # noqa: PLC0415

    ref = zoo_class()
    ref.load_state_dict({k: torch.from_numpy(v) for k, v in arrays.items()}, strict=False)
    ref.eval()
    x = torch.rand(2, *shape, generator=torch.Generator().manual_seed(7)) * 2 - 1
    try:  # on a float32 CPU copy, so that a GPU's TF32 convolutions do not blur the comparison
        mine = copy.deepcopy(module).float().cpu().eval()
        with torch.no_grad():
            got, want = mine(x), ref(x)
    except Exception as e:  # noqa: BLE001 (any failure of the user's forward: not this network)
        log.info("module does not run like %s: %s", zoo_class.__name__, e)
        return False
    return isinstance(got, torch.Tensor) and got.shape == want.shape and torch.allclose(got, want, rtol=1e-4,
                                                                                          atol=1e-5)


def _match_zoo(module, arrays):
    """The zoo network the module is, or None."""
    from .model_zoo.networks import NETS  # noqa: PLC0415

    mine = sorted((k, tuple(a.shape)) for k, a in arrays.items())
    classes = {name: (cls, shape) for name, cls, shape in NETS}
    for name, tensors in _zoo_tensors().items():
        if tensors == mine and name in classes and _computes_like(module, classes[name][0], arrays, classes[name][1]):
            return name
    return None


def _export_onnx(module, sample, path):
    import torch  # noqa: PLC0415

    was_training = module.training
    module.eval()
    try:
        dev = next((p.device for p in module.parameters()), torch.device("cpu"))
        torch.onnx.export(module, sample.to(dev), path, input_names=["input"], output_names=["output"],
                          dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}}, opset_version=13)
    finally:
        module.train(was_training)


def _backend_for(torch_device, backend):
    if backend is not None:
        if backend not in ("cpu", "cuda", "auto"):
            raise ValueError(f"TorchApp: backend {backend!r} (expected 'cpu', 'cuda' or 'auto')")
        return backend
    if torch_device is None:
        return "auto"
    dev = str(torch_device)
    if dev in ("cuda", "cuda:0"):
        return "cuda"
    if dev.startswith("cuda:"):
        raise ValueError(f"TorchApp: torch_device {dev!r}: predtuner_gpu runs on the first visible GPU; choose it "
                         "with CUDA_VISIBLE_DEVICES and pass 'cuda'")
    if dev == "cpu":
        return "cpu"
    raise ValueError(f"TorchApp: torch_device {dev!r} (predtuner_gpu runs on 'cpu' or 'cuda')")


class TorchApp:
    """PredTuner's TorchApp. `module` is a torch.nn.Module (one of the zoo's networks, whatever its
    class, or anything torch.onnx can export with the ops of docs/onnx.md) or the path of an .onnx
    file; the loaders yield (images, labels) batches. QoS is computed in C as PredTuner computes
    it: accuracy in percent per batch (of the tune loader's batch size), averaged over batches; so
    tensor_to_qos must be `accuracy` and combine_qos np.mean (or None). torch_device picks the
    backend ("cpu" or "cuda"; default: the GPU when one can run). Extra keywords: backend
    ("cpu", "cuda", "auto"), threads (CPU threads, 0 = all), seed (PromiseSim noise), strict
    (non-finite weights are an error)."""

    def __init__(self, app_name, module, tune_dataloader, test_dataloader, knobs=None, tensor_to_qos=accuracy,
                 combine_qos=np.mean, target_device=None, torch_device=None, model_storage_folder=None, *,
                 backend=None, threads=0, seed=0, strict=False):
        if not isinstance(app_name, str) or not app_name or "\0" in app_name:
            raise TypeError("TorchApp: app_name must be a non-empty string (without NUL)")
        if tensor_to_qos is not None and tensor_to_qos is not accuracy:
            raise ValueError("TorchApp: tensor_to_qos must be predtuner_gpu.accuracy: QoS is computed in C "
                             f"(got {getattr(tensor_to_qos, '__name__', tensor_to_qos)!r})")
        if combine_qos is not None and combine_qos is not np.mean:
            raise ValueError("TorchApp: combine_qos must be numpy.mean (accuracy over the whole set)")
        if target_device not in (None, "cpu", "gpu", "any"):
            raise ValueError(f"TorchApp: target_device {target_device!r} (expected 'cpu', 'gpu' or 'any')")
        self.app_name, self.module = app_name, module
        self.tune_loader, self.test_loader = tune_dataloader, test_dataloader
        self.model_storage = None if model_storage_folder is None else os.fspath(model_storage_folder)
        self._app, self._tuners = ctypes.c_void_p(), []
        self._workdir = tempfile.mkdtemp(prefix="predtuner_gpu-")
        self._cleanup = weakref.finalize(self, TorchApp._release, self._app, self._tuners, self._workdir)
        try:
            self._create(module, tune_dataloader, test_dataloader, knobs, target_device, _backend_for(torch_device, backend),
                         threads, seed, strict)
        except BaseException:
            self._cleanup()
            raise
        n = lib.pt_app_num_ops(self._app)
        self.ops = [lib.pt_app_op_name(self._app, i).decode() for i in range(n)]
        # knob names per op, in the C app's positions (0: the baseline)
        self.op_knob_names = {op: [lib.pt_app_op_knob(self._app, i, j).decode()
                                   for j in range(lib.pt_app_op_num_knobs(self._app, i))]
                              for i, op in enumerate(self.ops)}
        by_name = {k.name: k for k in (get_knobs_from_file() if knobs is None else knobs)}
        self.op_knobs = {op: [by_name[n] for n in names] for op, names in self.op_knob_names.items()}
        self.baseline_knob = self.op_knobs[self.ops[0]][0] if self.ops else None
        log.info("%s", lib.pt_app_describe(self._app).decode())

    def _create(self, module, tune_loader, test_loader, knobs, target_device, backend, threads, seed, strict):
        opts = _lib.DnnAppOpts()
        opts.name, opts.backend = enc(self.app_name), enc(backend)
        opts.threads = _lib.int_in("threads", threads, 0, 1024)
        opts.seed = _lib.int_in("seed", seed, 0, 2**64 - 1)
        opts.strict = int(bool(strict))
        opts.target_device = enc("any" if target_device is None else target_device)  # PredTuner: no filter
        opts.knobs_file = enc(knobs_file_for(knobs, self._workdir))
        opts.data = enc(self._workdir)
        tune = materialise(tune_loader, self._workdir, "tune")
        test = materialise(test_loader, self._workdir, "test")
        opts.tune_offset, opts.tune_count, opts.test_offset, opts.test_count = tune.offset, tune.count, test.offset, \
            test.count
        shape = self._model(module, tune.shape, opts)
        opts.batch_size = check_sets(tune, test, shape, self.model_label)
        try:
            check(lib.pt_app_dnn_create(ctypes.byref(opts), ctypes.byref(self._app)), f"TorchApp {self.app_name!r}")
        except _lib.PredTunerError as e:  # the work folder's files by what the user gave
            msg = str(e)
            for which in ("tune", "test"):
                msg = msg.replace(os.path.join(self._workdir, f"{which}_input.bin"), f"{which}_dataloader's images")
                msg = msg.replace(os.path.join(self._workdir, f"{which}_labels.bin"), f"{which}_dataloader's labels")
            msg = msg.replace(os.path.join(self._workdir, "model.onnx"), "the module exported to ONNX")
            msg = msg.replace(os.path.join(self._workdir, "weights.safetensors"), "the module's state_dict")
            err = _lib.PredTunerError(e.status, msg)
            err.code = e.code
            raise err from None

    @staticmethod
    def _release(app, tuners, workdir):
        for t in tuners:
            if t.value:
                lib.pt_tuner_free(t)
                t.value = None
        if app.value:
            lib.pt_app_free(app)
            app.value = None
        shutil.rmtree(workdir, ignore_errors=True)

    def _model(self, module, shape, opts):
        """Sets opts' model (and weights); the per-image input shape it takes (None: the C library
        checks an ONNX file's own)."""
        if isinstance(module, (str, os.PathLike)):
            path = os.fspath(module)
            if not path.endswith(".onnx"):
                raise ValueError(f"TorchApp: module {path!r}: a path must name an .onnx file (or pass a torch module)")
            opts.model = enc(os.path.abspath(path))
            self.model_label = path
            return None
        if not hasattr(module, "state_dict") or not callable(module):
            raise TypeError(f"TorchApp: module must be a torch.nn.Module or an .onnx path, got {type(module).__name__}")
        import torch  # noqa: PLC0415

        arrays = _state_dict_arrays(module)
        zoo = _match_zoo(module, arrays)
        if zoo is not None:
            path = os.path.join(self._workdir, "weights.safetensors")
            _write_safetensors(arrays, path)
            opts.model, opts.weights = enc(zoo), enc(path)
            log.info("module is the zoo network %s", zoo)
            self.model_label = f"the zoo network {zoo}"
            from .model_zoo.networks import NETS  # noqa: PLC0415

            return next(s for name, _, s in NETS if name == zoo)
        path = os.path.join(self._workdir, "model.onnx")
        _export_onnx(module, torch.zeros(1, *shape), path)
        opts.model = enc(path)
        log.info("module is not a zoo network: exported to ONNX (%s)", type(module).__name__)
        self.model_label = f"the module ({type(module).__name__})"
        return shape

    # ---- PredTuner's app interface ----
    @property
    def name(self):
        return self.app_name

    @property
    def knobs(self):
        """Every knob (ApproxKnob) that applies to some op, by name."""
        return sorted({k for ks in self.op_knobs.values() for k in ks}, key=lambda k: k.name)

    def handle(self):
        """The C app (RuntimeError once closed)."""
        if not self._app.value:
            raise RuntimeError(f"TorchApp {self.app_name!r} is closed")
        return self._app

    def describe(self):
        return lib.pt_app_describe(self.handle()).decode()

    def config_positions(self, with_approxes):
        """A {op: knob name} dict as knob positions (ops not named: the baseline knob)."""
        self.handle()
        cfg = (ctypes.c_uint16 * max(1, len(self.ops)))()
        for op, knob in dict(with_approxes).items():
            if op not in self.op_knob_names:
                raise KeyError(f"config: no op named {op!r} in {self.app_name}")
            knob = getattr(knob, "name", knob)  # an ApproxKnob or its name
            if not isinstance(knob, str):
                raise TypeError(f"config: op {op!r}: a knob name (str) is needed, got {type(knob).__name__}")
            i = self.ops.index(op)
            j = lib.pt_app_op_find_knob(self._app, i, enc(knob))
            if j < 0:
                raise ValueError(f"config: knob {knob!r} does not apply to op {op!r} (its knobs: "
                                 f"{', '.join(self.op_knob_names[op])})")
            cfg[i] = j
        return cfg

    def measure_qos_cost(self, with_approxes, is_test, qos_model=None, cost_model=None):
        """Measured (QoS, seconds) of a config; {} is the exact network. Models are not applied here."""
        if qos_model is not None or cost_model is not None:
            raise ValueError("measure_qos_cost: predtuner_gpu measures; models are used by the tuner only")
        qos, cost = ctypes.c_double(), ctypes.c_double()
        cfg = self.config_positions(with_approxes) if with_approxes else None
        check(lib.pt_app_measure(self.handle(), 1, cfg, int(bool(is_test)), ctypes.byref(qos), ctypes.byref(cost)),
              f"measure {self.app_name}")
        return qos.value, cost.value

    def get_tuner(self):
        from .tuner import Tuner  # noqa: PLC0415

        self.handle()
        return Tuner(self)

    def close(self):
        """Frees the C app and the work folder now (also done when the app is collected)."""
        self._cleanup()
