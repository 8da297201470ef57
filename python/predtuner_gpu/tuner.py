"""The tuner, as PredTuner's ApproxModeledTuner: tune() with PredTuner's keywords and defaults, the
config lists, dump_configs and plot_configs. Each call is one call into the C tuner."""
import ctypes
import logging
import math
import os

from . import _lib
from ._lib import check, enc, lib

__all__ = ["Tuner", "Config", "ValConfig", "ConfigPlot"]

log = logging.getLogger("predtuner_gpu")

_KINDS = {"kept": 0, "best_prefilter": 1, "best": 2}


def _opt(x):
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else x


class Config:
    """One config: `qos` (tune set; predicted when a QoS model was used), `cost` (relative to the
    baseline config), `speedup` (1 / cost), `knobs` ({op: knob name}), `test_qos`, and the
    measured `measured_speedup` / `measured_seconds` of the best configs (None when not timed)."""

    def __init__(self, qos, cost, knobs, test_qos=None, predicted=False, measured_speedup=None,
                 measured_seconds=None):
        self.qos, self.cost, self.knobs, self.test_qos = qos, cost, dict(sorted(knobs.items())), test_qos
        self.predicted, self.measured_speedup, self.measured_seconds = predicted, measured_speedup, measured_seconds

    @property
    def speedup(self):
        return 1 / self.cost

    def __repr__(self):
        return f"<{type(self).__name__} qos={self.qos:.3f} speedup={self.speedup:.3f}>"


class ValConfig(Config):
    """A Config with `validated_qos`: its QoS measured on the tune set when a model predicted it."""

    def __init__(self, qos, cost, knobs, test_qos=None, validated_qos=None, **kw):
        super().__init__(qos, cost, knobs, test_qos, **kw)
        self.validated_qos = validated_qos


class ConfigPlot:
    """What plot_configs returns: savefig(path) draws PredTuner's plot (PLplot) to a .png or .svg."""

    def __init__(self, tuner, show_qos_loss):
        self._tuner, self.show_qos_loss = tuner, show_qos_loss

    def savefig(self, fname, **_matplotlib_kwargs):
        path = os.fspath(fname)
        if not path.endswith((".png", ".svg")):
            raise ValueError(f"savefig: {path}: the plot is written as .png or .svg")
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        self._tuner._need_tuned("savefig")
        check(lib.pt_tuner_plot(self._tuner._t, enc(path), int(bool(self.show_qos_loss))), "plot_configs")


class Tuner:
    def __init__(self, app):
        self.app = app
        self._t = ctypes.c_void_p()
        check(lib.pt_tuner_create(app.handle(), ctypes.byref(self._t)))
        app._tuners.append(self._t)  # the app frees its tuners before itself, whichever goes first
        self.kept_configs, self.best_configs_prefilter, self.best_configs = [], [], []
        self.summary = None

    def __del__(self):
        t = getattr(self, "_t", None)
        if t is not None and t.value:
            lib.pt_tuner_free(t)
            t.value = None

    @property
    def tuned(self):
        return self.summary is not None

    def tune(self, max_iter, qos_tuner_threshold, qos_keep_threshold=None, is_threshold_relative=False,
             take_best_n=None, test_configs=True, validate_configs=None, cost_model=None, qos_model=None, *,
             seed=0, output_dir=None, resume=False, overwrite=False, force_reinit=False, time_budget=0.0,
             time_passes=None, search_batch=None, early_stop=None, max_failures=None, progress=None):
        """PredTuner's tune (same keywords and defaults; cost_model / qos_model None: measured), plus:
        seed, output_dir (as the CLI's output folder: the journal tuning.sqlite, configs.json, the
        plots, report.html and the sensitivity report; resume / overwrite as the CLI's), force_reinit (rebuild stored models), time_budget (seconds), time_passes (timed passes per best config),
        search_batch, early_stop ("off", "exact", "confident"), max_failures, progress (progress
        lines on stderr; default: when config_pylogger was verbose). Returns best_configs."""
        o = _lib.TuneOpts()
        lib.pt_tune_opts_init(ctypes.byref(o))
        o.max_iter = _lib.int_in("tune: max_iter", max_iter, 1, 2**30)
        o.qos_tuner_threshold = float(qos_tuner_threshold)
        o.qos_keep_threshold = math.nan if qos_keep_threshold is None else float(qos_keep_threshold)
        o.absolute = 0 if is_threshold_relative else 1
        o.take_best_n = 0 if take_best_n is None else _lib.int_in("tune: take_best_n", take_best_n, 0, 2**30)
        o.test_configs = int(bool(test_configs))
        o.validate = -1 if validate_configs is None else int(bool(validate_configs))
        o.qos_model = self._model("qos_model", qos_model, lib.pt_qos_model_parse)
        o.cost_model = self._model("cost_model", cost_model, lib.pt_cost_model_parse)
        o.seed = _lib.int_in("tune: seed", seed, 0, 2**31 - 1)
        o.output_dir = enc(output_dir)
        o.model_storage = enc(self.app.model_storage)
        o.resume, o.overwrite, o.force_reinit = int(bool(resume)), int(bool(overwrite)), int(bool(force_reinit))
        o.time_budget = float(time_budget)
        if time_passes is not None:
            o.time_passes = _lib.int_in("tune: time_passes", time_passes, 0, 1000)
        if search_batch is not None:
            o.search_batch = _lib.int_in("tune: search_batch", search_batch, 1, 1 << 16)
        if max_failures is not None:
            o.max_failures = _lib.int_in("tune: max_failures", max_failures, -1, 2**30)
        if early_stop is not None:
            mode = lib.pt_early_stop_parse(enc(early_stop))
            if mode < 0:
                raise ValueError(f"tune: early_stop {early_stop!r} (expected 'off', 'exact' or 'confident')")
            o.early_stop = mode
        from ._logging import verbose  # noqa: PLC0415

        if progress if progress is not None else verbose():
            o.progress = _lib.c_stderr()
        self.app.handle()
        self.kept_configs, self.best_configs_prefilter, self.best_configs = [], [], []
        self.summary = None  # the C tuner drops its results when a run starts, whether or not it ends well
        check(lib.pt_tuner_tune(self._t, ctypes.byref(o)), f"tune {self.app.app_name}")
        self._collect()
        self.figure_error = None
        if output_dir is not None:  # the folder gets what the CLI's gets: configs.json, plots, report.html
            fs = ctypes.c_int()
            check(lib.pt_tuner_write_outputs(self._t, enc(output_dir), 0, 0, ctypes.byref(fs)), "tune outputs")
            if fs.value:
                self.figure_error = lib.pt_last_error().decode("utf-8", "replace")
                log.error("tune outputs: %s (configs.json is written)", self.figure_error)
        return self.best_configs

    @staticmethod
    def _model(what, name, parse):
        if name is None:
            return 0  # empirical
        v = parse(enc(name))
        if v < 0:
            raise ValueError(f"tune: unknown {what} {name!r}")
        return v

    def _collect(self):
        ops = self.app.ops
        for attr, kind in (("kept_configs", "kept"), ("best_configs_prefilter", "best_prefilter"),
                           ("best_configs", "best")):
            out, c = [], _lib.TunedConfig()
            for i in range(lib.pt_tuner_count(self._t, _KINDS[kind])):
                check(lib.pt_tuner_get(self._t, _KINDS[kind], i, ctypes.byref(c)))
                knobs = {op: self.app.op_knob_names[op][c.knobs[j]] for j, op in enumerate(ops)}
                out.append(ValConfig(c.qos, c.cost, knobs, _opt(c.test_qos), _opt(c.validated_qos),
                                     predicted=bool(c.predicted), measured_speedup=_opt(c.measured_speedup),
                                     measured_seconds=_opt(c.measured_seconds)))
            setattr(self, attr, out)
        s = _lib.TuneSummary.from_buffer_copy(lib.pt_tuner_summary(self._t).contents)
        self.summary = s
        self.baseline_tune_qos, self.baseline_test_qos = s.baseline_tune_qos, s.baseline_test_qos
        self.tune_keep_threshold, self.test_keep_threshold = s.thresholds.tune_keep, s.thresholds.test_keep
        log.info("baseline QoS %.3f (test %.3f); %d configs evaluated, %d kept, %d best", s.baseline_tune_qos,
                 s.baseline_test_qos, s.evaluated, len(self.kept_configs), len(self.best_configs))
        if s.failed:
            log.warning("%d configs failed", s.failed)
        if s.stopped:
            log.warning("search stopped early: %s", s.stopped.decode())

    def _need_tuned(self, what):
        self.app.handle()
        if not self.tuned:
            raise RuntimeError(f"{what}: call tune() first")

    def dump_configs(self, filepath, best_only=True):
        """configs.json (docs/design.md, "Files"): the best configs, or every kept one (marked "best"
        where it is one) with best_only=False. Creates the parent folders; written atomically."""
        self._need_tuned("dump_configs")
        path = os.fspath(filepath)
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        check(lib.pt_tuner_dump_configs(self._t, enc(path), int(not best_only)), "dump_configs")

    def plot_configs(self, show_qos_loss=False, connect_best_points=False):
        self._need_tuned("plot_configs")
        if connect_best_points:
            raise ValueError("plot_configs: connect_best_points is not drawn by predtuner_gpu's plot")
        return ConfigPlot(self, show_qos_loss)
