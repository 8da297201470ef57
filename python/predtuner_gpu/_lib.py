"""The C library through ctypes: finding it, the structs it shares with us (checked field by field
against the library's own layout table, include/predtuner/abi.h), and errors as exceptions.

Nothing here tunes: every call goes straight to libpredtuner."""
import ctypes
import ctypes.util
import os

__all__ = ["PredTunerError", "lib", "check", "DnnAppOpts", "TuneOpts", "TunedConfig", "TuneSummary", "Knob"]

PACKAGE_VERSION = "0.1.0"

# pt_status values (include/predtuner/status.h); the names come from the library itself.
PT_OK = 0


class PredTunerError(RuntimeError):
    """A failure reported by libpredtuner: `status` is its name ("PT_EINVAL", ...), the message
    the library's one-line detail (naming the file and the problem)."""

    def __init__(self, status, message):
        super().__init__(message)
        self.status = status
        self.code = None


def _candidates():
    env = os.environ.get("PREDTUNER_GPU_LIBRARY")
    if env:
        return [env]  # an explicit choice is the only one tried
    out = []
    try:  # written by `cmake --install` next to this file: the library installed with the package
        from . import _paths  # noqa: PLC0415
        out.append(_paths.LIBRARY)
    except ImportError:
        pass
    here = os.path.dirname(os.path.abspath(__file__))
    out.append(os.path.join(here, "..", "..", "build", "libpredtuner.so.0"))  # a source checkout's build
    found = ctypes.util.find_library("predtuner")
    if found:
        out.append(found)
    return out


def _load():
    tried = []
    for path in _candidates():
        if os.sep in path and not os.path.exists(path):
            tried.append(f"{path} (missing)")
            continue
        try:
            return ctypes.CDLL(path)
        except OSError as e:
            tried.append(f"{path} ({e})")
    raise ImportError("predtuner_gpu: libpredtuner not found; set PREDTUNER_GPU_LIBRARY to libpredtuner.so.0 "
                      "(tried: " + "; ".join(tried or ["nothing"]) + ")")


lib = _load()

c_char_p, c_int, c_double, c_int64, c_uint64 = (ctypes.c_char_p, ctypes.c_int, ctypes.c_double, ctypes.c_int64,
                                                 ctypes.c_uint64)
c_void_p = ctypes.c_void_p


class DnnAppOpts(ctypes.Structure):
    _fields_ = [("model", c_char_p), ("weights", c_char_p), ("data", c_char_p), ("backend", c_char_p),
                ("threads", c_int), ("batch_size", c_int), ("tune_offset", c_int64), ("tune_count", c_int64),
                ("test_offset", c_int64), ("test_count", c_int64), ("knobs_file", c_char_p),
                ("target_device", c_char_p), ("promise_ranges", c_char_p), ("seed", c_uint64), ("name", c_char_p),
                ("strict", c_int), ("prefix_cache_mib", c_int)]


class TuneOpts(ctypes.Structure):
    _fields_ = [("max_iter", c_int), ("qos_tuner_threshold", c_double), ("qos_keep_threshold", c_double),
                ("absolute", c_int), ("take_best_n", c_int), ("test_configs", c_int), ("validate", c_int),
                ("qos_model", c_int), ("cost_model", c_int), ("seed", c_uint64), ("search_batch", c_int),
                ("output_dir", c_char_p), ("model_storage", c_char_p), ("resume", c_int), ("overwrite", c_int),
                ("force_reinit", c_int), ("max_failures", c_int), ("early_stop", c_int), ("time_passes", c_int),
                ("time_budget", c_double), ("progress", c_void_p), ("measurer", c_void_p)]


class TunedConfig(ctypes.Structure):
    _fields_ = [("qos", c_double), ("cost", c_double), ("speedup", c_double), ("validated_qos", c_double),
                ("test_qos", c_double), ("predicted", c_int), ("measured_seconds", c_double),
                ("measured_speedup", c_double), ("knobs", ctypes.POINTER(ctypes.c_uint16))]


class Thresholds(ctypes.Structure):
    _fields_ = [("tuner", c_double), ("tune_keep", c_double), ("test_keep", c_double)]


def _status_count():
    n = 0
    while lib.pt_status_name(-n) != b"PT_UNKNOWN":
        n += 1
    return n


lib.pt_status_name.restype = c_char_p
lib.pt_status_name.argtypes = [c_int]


class TuneSummary(ctypes.Structure):
    _fields_ = [("baseline_tune_qos", c_double), ("baseline_test_qos", c_double),
                ("baseline_config_tune_qos", c_double), ("baseline_cost", c_double), ("exact_speedup", c_double),
                ("thresholds", Thresholds), ("evaluated", c_int64), ("resumed", c_int64), ("space_size", c_double),
                ("search_seconds", c_double), ("configs_per_s", c_double), ("total_seconds", c_double),
                ("validated", c_int), ("tested", c_int), ("mean_abs_validation_error", c_double),
                ("failed", c_int64), ("failed_by", c_int64 * _status_count()), ("dropped", c_int),
                ("early_stopped", c_int64), ("stopped", ctypes.c_char * 320), ("stopped_on_time", c_int),
                ("timed_passes", c_int), ("timed_images", c_int64), ("exact_seconds", c_double),
                ("mean_speedup_error", c_double)]


class Knob(ctypes.Structure):
    _fields_ = [("name", ctypes.c_char * 64), ("cls", c_int), ("exp_speedup", c_double), ("devices", ctypes.c_uint),
                ("has_priority", c_int), ("baseline_priority", c_int), ("perf_dir", c_int), ("stride", c_int),
                ("offset", c_int), ("skip_every", c_int), ("skip_offset", c_int), ("interp_rate", c_double),
                ("use_fp16", c_int), ("noise_level", c_int)]


def _proto(name, restype, *argtypes):
    f = getattr(lib, name)
    f.restype = restype
    f.argtypes = list(argtypes)


P = ctypes.POINTER
_proto("pt_abi_layout", c_int64, c_char_p, c_char_p)
_proto("pt_version", c_char_p)
_proto("pt_last_error", c_char_p)
_proto("pt_clear_error", None)
_proto("pt_status_str", c_char_p, c_int)
_proto("pt_app_dnn_create", c_int, P(DnnAppOpts), P(c_void_p))
_proto("pt_app_free", None, c_void_p)
_proto("pt_app_name", c_char_p, c_void_p)
_proto("pt_app_describe", c_char_p, c_void_p)
_proto("pt_app_num_ops", c_int, c_void_p)
_proto("pt_app_op_name", c_char_p, c_void_p, c_int)
_proto("pt_app_op_cost", c_double, c_void_p, c_int)
_proto("pt_app_op_num_knobs", c_int, c_void_p, c_int)
_proto("pt_app_op_knob", c_char_p, c_void_p, c_int, c_int)
_proto("pt_app_op_find_knob", c_int, c_void_p, c_int, c_char_p)
_proto("pt_app_space_size", c_double, c_void_p)
_proto("pt_app_measure", c_int, c_void_p, c_int, P(ctypes.c_uint16), c_int, P(c_double), P(c_double))
_proto("pt_tune_opts_init", None, P(TuneOpts))
_proto("pt_qos_model_parse", c_int, c_char_p)
_proto("pt_cost_model_parse", c_int, c_char_p)
_proto("pt_early_stop_parse", c_int, c_char_p)
_proto("pt_tuner_create", c_int, c_void_p, P(c_void_p))
_proto("pt_tuner_free", None, c_void_p)
_proto("pt_tuner_tune", c_int, c_void_p, P(TuneOpts))
_proto("pt_tuner_count", c_int, c_void_p, c_int)
_proto("pt_tuner_get", c_int, c_void_p, c_int, c_int, P(TunedConfig))
_proto("pt_tuner_summary", P(TuneSummary), c_void_p)
_proto("pt_tuner_dump_configs", c_int, c_void_p, c_char_p, c_int)
_proto("pt_tuner_plot", c_int, c_void_p, c_char_p, c_int)
_proto("pt_tuner_write_outputs", c_int, c_void_p, c_char_p, c_int, c_int, P(c_int))
_proto("pt_report_write", c_int, c_char_p)
_proto("pt_knobs_default", c_int, P(c_void_p))
_proto("pt_knobs_load", c_int, c_char_p, P(c_void_p))
_proto("pt_knobs_free", None, c_void_p)
_proto("pt_knobs_count", c_int, c_void_p)
_proto("pt_knobs_at", P(Knob), c_void_p, c_int)
_proto("pt_knob_class_name", c_char_p, c_int)
_proto("pt_log_open", c_int, c_char_p)
_proto("pt_log_close", None)
_proto("pt_log_echo", None, c_void_p, c_int)


def _check_layout():
    """Every struct mirrored above against the library's table: size and every field's offset."""
    for cls, cname in ((DnnAppOpts, "pt_dnn_app_opts"), (TuneOpts, "pt_tune_opts"), (TunedConfig, "pt_tuned_config"),
                       (Thresholds, "pt_thresholds"), (TuneSummary, "pt_tune_summary"), (Knob, "pt_knob")):
        size = lib.pt_abi_layout(cname.encode(), None)
        if size != ctypes.sizeof(cls):
            raise ImportError(f"predtuner_gpu: {cname} is {size} bytes in the library, {ctypes.sizeof(cls)} here: "
                              "the package and the library are from different versions")
        for name, _ in cls._fields_:
            off = lib.pt_abi_layout(cname.encode(), name.encode())
            if off != getattr(cls, name).offset:
                raise ImportError(f"predtuner_gpu: {cname}.{name} is at byte {off} in the library, "
                                  f"{getattr(cls, name).offset} here: the package and the library differ")


_check_layout()
if lib.pt_version().decode() != PACKAGE_VERSION:
    raise ImportError(f"predtuner_gpu {PACKAGE_VERSION}: the library loaded is version {lib.pt_version().decode()}")


def check(status, context=None):
    """Raises PredTunerError for a non-zero pt_status, with the library's detail message."""
    if status == PT_OK:
        return
    name = lib.pt_status_name(status).decode()
    msg = lib.pt_last_error().decode("utf-8", "replace") or lib.pt_status_str(status).decode()
    lib.pt_clear_error()
    err = PredTunerError(name, f"{context}: {msg}" if context else msg)
    err.code = status
    raise err


def enc(s):
    """A path or string for a const char * argument (None stays NULL; bytes as they are)."""
    if s is None or isinstance(s, bytes):
        return s
    b = os.fsencode(s if isinstance(s, (str, os.PathLike)) else str(s))
    if b"\0" in b:
        raise ValueError(f"{s!r}: a string with a NUL character")
    return b


def int_in(what, v, lo, hi):
    """v as an int within [lo, hi] (ctypes would wrap it silently), else ValueError naming what."""
    import operator  # noqa: PLC0415

    try:
        i = operator.index(v)
    except TypeError:
        raise TypeError(f"{what} must be an integer, got {type(v).__name__}") from None
    if not lo <= i <= hi:
        raise ValueError(f"{what} must be in [{lo}, {hi}], got {i}")
    return i


def c_stderr():
    """The C library's stderr FILE *, for progress output."""
    return c_void_p.in_dll(ctypes.CDLL(None), "stderr").value
