"""Knobs as PredTuner's Python API has them (`get_knobs_from_file()` returns a set of knobs), read by
the C library: its built-in 56 knobs or a knob file in PredTuner's JSON format."""
import ctypes
import json
import os

from ._lib import check, enc, lib

__all__ = ["ApproxKnob", "KnobSet", "get_knobs_from_file"]

_DEVICE_BITS = ((1, "cpu"), (2, "gpu"))


class ApproxKnob:
    """One knob: `name`, its PredTuner class name (`cls`: "FP32Baseline", "PerforateConv2dStride",
    ...), `devices` (None: every device), `baseline_priority` (None when not given), `exp_speedup`
    and the class's parameters (`params`, by the knob file's keys). Hashable by name, like
    PredTuner's."""

    def __init__(self, name, cls, devices=None, baseline_priority=None, exp_speedup=1.0, params=None, order=0):
        self.name, self.cls, self.order = name, cls, order  # order: its place in the file it came from
        self.devices = None if devices is None else list(devices)
        self.baseline_priority = baseline_priority
        self.exp_speedup = exp_speedup
        self.params = dict(params or {})

    def __hash__(self):
        return hash(self.name)

    def __eq__(self, other):
        return isinstance(other, ApproxKnob) and other.name == self.name

    def __repr__(self):
        return f"<ApproxKnob {self.name} {self.cls}>"

    def __str__(self):
        return self.name

    def exists_on_device(self, device):
        return self.devices is None or device in self.devices

    def to_json(self):
        """The knob file's entry (PredTuner's format)."""
        d = {"name": self.name, "class": self.cls}
        if self.devices is not None:
            d["devices"] = self.devices
        if self.baseline_priority is not None:
            d["baseline_priority"] = self.baseline_priority
        if self.cls != "FP32Baseline":
            d["exp_speedup"] = self.exp_speedup
        d.update(self.params)
        return d


def _from_c(k, order):
    cls = lib.pt_knob_class_name(k.cls).decode()
    params = {}
    if cls == "PerforateConv2dStride":
        params = {"direction_is_row": k.perf_dir == 1, "stride": k.stride, "offset": k.offset,
                  "use_fp16": bool(k.use_fp16)}
    elif cls == "Conv2dSampling":
        params = {"skip_every": k.skip_every, "skip_offset": k.skip_offset, "interp_rate": k.interp_rate,
                  "use_fp16": bool(k.use_fp16)}
    elif cls == "PromiseSim":
        params = {"noise_level": k.noise_level}
    devices = None if k.devices == 0 else [n for bit, n in _DEVICE_BITS if k.devices & bit]
    return ApproxKnob(k.name.decode(), cls, devices, k.baseline_priority if k.has_priority else None,
                      k.exp_speedup, params, order)


class KnobSet(frozenset):
    """What get_knobs_from_file returns: the knobs of one file (`source`: its path, None for the
    built-in default). A subset (a set comprehension, or a KnobSet made by hand) is written to a
    knob file of its own for the app."""

    source = None
    _whole = False  # set by get_knobs_from_file: these are all of source's knobs


def get_knobs_from_file(filepath=None, extra_name_to_class=None):
    """PredTuner's get_knobs_from_file: the built-in default knobs (PredTuner's 56) when filepath is
    None, else the knobs of a file in PredTuner's JSON format (checked by the C reader; a bad file
    raises PredTunerError naming it). Knob classes are C kernels, so extra_name_to_class is refused."""
    if extra_name_to_class:
        raise ValueError("get_knobs_from_file: extra_name_to_class is not supported: predtuner_gpu's knobs are "
                         "C kernels (FP32Baseline, FP16Approx, PerforateConv2dStride, Conv2dSampling, PromiseSim)")
    ks = ctypes.c_void_p()
    if filepath is None:
        check(lib.pt_knobs_default(ctypes.byref(ks)))
    else:
        if not os.path.exists(filepath):
            raise FileNotFoundError(f"get_knobs_from_file: {os.fspath(filepath)}: no such file")
        check(lib.pt_knobs_load(enc(filepath), ctypes.byref(ks)))
    try:
        knobs = [_from_c(lib.pt_knobs_at(ks, i).contents, i) for i in range(lib.pt_knobs_count(ks))]
    finally:
        lib.pt_knobs_free(ks)
    out = KnobSet(knobs)
    out.source = None if filepath is None else os.path.abspath(os.fspath(filepath))
    out._whole = True
    return out


def knobs_file_for(knobs, workdir):
    """The knobs_file argument for a set of knobs: None (the built-in default) or the file they came
    from when the set is a whole KnobSet, else a file in workdir holding just these knobs."""
    if knobs is None:
        return None
    if isinstance(knobs, KnobSet) and knobs._whole:
        return knobs.source
    if isinstance(knobs, (str, bytes, os.PathLike)):
        raise TypeError("knobs: a set of knobs is needed; for a file, pass get_knobs_from_file(path)")
    knobs = list(knobs)
    if not knobs or not all(isinstance(k, ApproxKnob) for k in knobs):
        raise TypeError("knobs: expected the set get_knobs_from_file() returns (or a non-empty subset of it)")
    path = os.path.join(workdir, "knobs.json")
    with open(path, "w") as f:  # in the order of the file they came from, as the CLI would list them
        json.dump([k.to_json() for k in sorted(knobs, key=lambda k: (k.order, k.name))], f, indent=1)
    return path
