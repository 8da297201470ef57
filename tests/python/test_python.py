#!/usr/bin/python3
"""The Python package (python/predtuner_gpu) against the C library and the CLI: PredTuner's
tutorial with only the import changed, both tuning calls equal to the CLI's for the same options
and seed, the zoo match and the ONNX fallback, and bad arguments as exceptions naming the problem.

Run by CTest with Debian's python3 (python3-torch, python3-numpy):
  test_python.py SOURCE_DIR CLI   (PREDTUNER_GPU_LIBRARY names the library built)
Exits 77 (CTest: skipped, with the reason) when torch or numpy cannot be imported."""
import json
import os
import subprocess
import sys
import tempfile
import unittest

SRC, CLI = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
del sys.argv[1:3]
try:
    import numpy as np
    import torch
    from torch.utils.data import DataLoader, TensorDataset
except ImportError as e:
    print(f"[SKIP] test_python: {e} (Debian's python3-torch and python3-numpy are needed)")
    sys.exit(77)
sys.path.insert(0, os.path.join(SRC, "python"))
import predtuner_gpu as pt  # noqa: E402
from predtuner_gpu.model_zoo import MNIST, LeNet  # noqa: E402

DEMO = os.path.join(SRC, "zoo", "demo")
N_IMAGES = 100  # of each of the demo's sets: the tutorial's two runs take about 15 s
TMP = tempfile.mkdtemp(prefix="test_python-")


def load_safetensors(path):
    with open(path, "rb") as f:
        n = int.from_bytes(f.read(8), "little")
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for k, v in header.items():
        if k != "__metadata__":
            b, e = v["data_offsets"]
            dt = {"F32": "<f4", "F16": "<f2"}[v["dtype"]]
            out[k] = torch.from_numpy(np.frombuffer(data[b:e], dt).astype(np.float32).reshape(v["shape"]))
    return out


def small_demo():
    """The demo's first N_IMAGES tune and test images, and its LeNet as a torch checkpoint."""
    d = os.path.join(TMP, "demo")
    os.makedirs(d, exist_ok=True)
    for which in ("tune", "test"):
        np.fromfile(os.path.join(DEMO, f"{which}_input.bin"), "<f4")[:N_IMAGES * 784].tofile(
            os.path.join(d, f"{which}_input.bin"))
        np.fromfile(os.path.join(DEMO, f"{which}_labels.bin"), "<i4")[:N_IMAGES].tofile(
            os.path.join(d, f"{which}_labels.bin"))
    m = LeNet()
    m.load_state_dict(load_safetensors(os.path.join(DEMO, "lenet_mnist.safetensors")))
    torch.save(m.state_dict(), os.path.join(d, "lenet.pth.tar"))
    return d, m


DATA, LENET = small_demo()


def torch_accuracy(which):
    """PyTorch's accuracy of the demo LeNet on one of the small sets, in one batch."""
    x = torch.from_numpy(np.fromfile(os.path.join(DATA, f"{which}_input.bin"), "<f4").reshape(-1, 1, 28, 28))
    y = torch.from_numpy(np.fromfile(os.path.join(DATA, f"{which}_labels.bin"), "<i4").astype(np.int64))
    with torch.no_grad():
        return pt.accuracy(LENET.eval()(x), y)


WANT_TUNE_QOS = torch_accuracy("tune")


def loaders(batch=100):
    tune = MNIST.from_file(os.path.join(DATA, "tune_input.bin"), os.path.join(DATA, "tune_labels.bin"))
    test = MNIST.from_file(os.path.join(DATA, "test_input.bin"), os.path.join(DATA, "test_labels.bin"))
    return DataLoader(tune, batch_size=batch), DataLoader(test, batch_size=batch)


def cli_configs(out, *args):
    subprocess.run([CLI, "tune", "--model", "lenet_mnist", "--weights", os.path.join(DATA, "lenet.pth.tar"),
                    "--data", DATA, "--batch-size", "100", "--target-device", "any", "--output", out, "--quiet",
                    "--dump-all", *args],
                   check=True, stdout=subprocess.DEVNULL)
    with open(os.path.join(out, "configs.json")) as f:
        return json.load(f)


def comparable(configs_json):
    """What must agree between two runs: every config's knobs and QoS values (timings aside)."""
    keys = ("qos", "cost", "speedup", "test_qos", "validated_qos", "predicted", "best", "final")
    return [{k: c.get(k) for k in keys + ("knobs",)} for c in configs_json["configs"]]


class Tutorial(unittest.TestCase):
    def test_tutorial_runs_with_only_the_import_changed(self):
        out = os.path.join(TMP, "tutorial")
        env = dict(os.environ, PYTHONPATH=os.path.join(SRC, "python"))
        r = subprocess.run([sys.executable, os.path.join(SRC, "tests", "python", "tutorial.py"), DATA,
                            os.path.join(DATA, "lenet.pth.tar"), out, "40"], env=env, capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, r.stderr[-3000:])
        d = os.path.join(out, "lenet_mnist")
        for name in ("configs.json", "configs.png", "configs_p1.json", "configs_p1.svg", "p1.safetensors"):
            self.assertGreater(os.path.getsize(os.path.join(d, name)), 100, name)
        with open(os.path.join(d, "configs.json")) as f:
            emp = json.load(f)
        with open(os.path.join(d, "configs_p1.json")) as f:
            p1 = json.load(f)
        self.assertEqual(emp["qos_model"], "empirical")
        self.assertEqual(p1["qos_model"], "qos_p1")
        self.assertEqual(emp["cost_model"], "cost_linear")
        self.assertAlmostEqual(emp["baseline"]["tune_qos"], WANT_TUNE_QOS, places=6)  # PyTorch's, on one batch
        self.assertAlmostEqual(emp["baseline"]["test_qos"], torch_accuracy("test"), places=6)
        self.assertTrue(emp["configs"] and p1["configs"])
        logs = [f for f in os.listdir(d) if f.startswith("20")]
        self.assertEqual(len(logs), 1)
        with open(os.path.join(d, logs[0])) as f:
            text = f.read()
        self.assertIn("Log file for this run", text)
        self.assertIn("predtuner_gpu: module is the zoo network lenet_mnist", text)


class SameAsCli(unittest.TestCase):
    def run_both(self, qos_model, extra_cli):
        tune_l, test_l = loaders()
        app = pt.TorchApp("lenet_mnist", LENET, tune_l, test_l, pt.get_knobs_from_file(), pt.accuracy,
                          model_storage_folder=os.path.join(TMP, f"py-{qos_model}", "models"))
        tuner = app.get_tuner()
        best = tuner.tune(max_iter=60, qos_tuner_threshold=2.0, qos_keep_threshold=3.0, is_threshold_relative=True,
                          take_best_n=10, cost_model="cost_linear", qos_model=qos_model, seed=5, time_passes=0)
        self.assertIs(best, tuner.best_configs)
        self.assertTrue(best)
        path = os.path.join(TMP, f"py-{qos_model}", "configs.json")
        tuner.dump_configs(path, best_only=False)
        with open(path) as f:
            ours = json.load(f)
        cli = cli_configs(os.path.join(TMP, f"cli-{qos_model}"), "--max-iter", "60", "--qos-keep-threshold", "3",
                          "--take-best-n", "10", "--cost-model", "cost_linear", "--seed", "5", "--time-passes", "0",
                          *extra_cli)
        self.assertEqual(comparable(ours), comparable(cli))
        self.assertEqual(ours["baseline"], cli["baseline"])
        # the objects agree with the file
        marked = [c for c in ours["configs"] if c.get("best")]
        self.assertEqual(len(marked), len(best))
        key = lambda k: sorted(k.items())  # noqa: E731
        self.assertEqual(sorted(key(c["knobs"]) for c in marked), sorted(key(c.knobs) for c in best))
        self.assertEqual(len(tuner.kept_configs), len(ours["configs"]))
        for c in tuner.kept_configs:
            self.assertGreater(c.qos, tuner.tune_keep_threshold)
            self.assertAlmostEqual(c.speedup, 1 / c.cost)
        return tuner

    def test_empirical_tuning_equals_the_cli(self):
        t = self.run_both(None, [])
        self.assertTrue(all(c.validated_qos is None and not c.predicted for c in t.best_configs))

    def test_qos_p1_tuning_equals_the_cli(self):
        t = self.run_both("qos_p1", ["--qos-model", "qos_p1"])
        self.assertTrue(all(c.predicted and c.validated_qos is not None for c in t.best_configs))


class Models(unittest.TestCase):
    def test_a_loader_over_tensors_measures_what_the_files_do(self):
        tune_l, test_l = loaders()
        ref = pt.TorchApp("files", LENET, tune_l, test_l)
        xs = [torch.cat([b[0] for b in ld]) for ld in (tune_l, test_l)]
        ys = [torch.cat([b[1] for b in ld]) for ld in (tune_l, test_l)]
        app = pt.TorchApp("tensors", LENET, DataLoader(TensorDataset(xs[0], ys[0]), batch_size=100, shuffle=True),
                          DataLoader(TensorDataset(xs[1], ys[1]), batch_size=100))
        cfg = {"convs.0": "231", "convs.3": "121"}
        for test in (False, True):
            self.assertEqual(app.measure_qos_cost({}, test)[0], ref.measure_qos_cost({}, test)[0])
            self.assertEqual(app.measure_qos_cost(cfg, test)[0], ref.measure_qos_cost(cfg, test)[0])
        with torch.no_grad():
            want = pt.accuracy(LENET.eval()(xs[0]), ys[0])
        self.assertEqual(ref.measure_qos_cost({}, False)[0], want)
        # PredTuner's QoS: accuracy per batch (the tune loader's batch size), averaged over batches
        odd = pt.TorchApp("odd", LENET, DataLoader(TensorDataset(xs[0], ys[0]), batch_size=64),
                          DataLoader(TensorDataset(xs[1], ys[1]), batch_size=64))
        with torch.no_grad():
            per_batch = [pt.accuracy(LENET(xs[0][i:i + 64]), ys[0][i:i + 64]) for i in range(0, N_IMAGES, 64)]
        self.assertAlmostEqual(odd.measure_qos_cost({}, False)[0], float(np.mean(per_batch)), places=9)
        self.assertNotAlmostEqual(float(np.mean(per_batch)), want, places=6)

    def test_a_module_that_is_no_zoo_network_runs_through_onnx(self):
        class Tiny(torch.nn.Module):  # LeNet's parameters, another forward (ReLU, no padding on the 2nd conv)
            def __init__(self):
                super().__init__()
                self.c1, self.c2 = torch.nn.Conv2d(1, 8, 3, padding=1), torch.nn.Conv2d(8, 8, 3)
                self.fc = torch.nn.Linear(8 * 12 * 12, 10)

            def forward(self, x):
                x = torch.relu(torch.max_pool2d(torch.relu(self.c1(x)), 2))
                return self.fc(torch.relu(self.c2(x)).flatten(1))

        torch.manual_seed(3)
        m = Tiny()
        tune_l, test_l = loaders()
        app = pt.TorchApp("tiny", m, tune_l, test_l)
        self.assertIn("onnx", app.describe().lower())
        x = torch.cat([b[0] for b in tune_l])
        y = torch.cat([b[1] for b in tune_l])
        with torch.no_grad():
            want = pt.accuracy(m(x), y)
        self.assertAlmostEqual(app.measure_qos_cost({}, False)[0], want, delta=100 / N_IMAGES + 1e-9)
        convs = [op for op in app.ops if len(app.op_knobs[op]) > 10]
        self.assertEqual(len(convs), 2)
        best = app.get_tuner().tune(max_iter=20, qos_tuner_threshold=0.0, time_passes=0)  # absolute: any QoS
        self.assertTrue(best)

    def test_zoo_parameters_with_another_forward_are_not_taken_for_the_zoo_network(self):
        class NotLeNet(LeNet):
            def forward(self, x):  # the zoo's parameters, ReLU instead of tanh
                x = torch.relu(self.convs[0](x))
                x = torch.max_pool2d(x, 2)
                x = torch.relu(self.convs[3](x))
                x = torch.max_pool2d(x, 2).flatten(1)
                return self.linears[2](torch.relu(self.linears[0](x)))

        m = NotLeNet()
        m.load_state_dict(LENET.state_dict())
        tune_l, test_l = loaders()
        app = pt.TorchApp("notlenet", m, tune_l, test_l)
        x, y = torch.cat([b[0] for b in tune_l]), torch.cat([b[1] for b in tune_l])
        with torch.no_grad():
            want = pt.accuracy(m(x), y)
        self.assertIn("onnx", app.describe().lower())
        self.assertAlmostEqual(app.measure_qos_cost({}, False)[0], want, delta=100 / N_IMAGES + 1e-9)

    def test_knob_subsets_and_files(self):
        knobs = pt.get_knobs_from_file()
        self.assertEqual(len(knobs), 56)
        by = {k.name: k for k in knobs}
        self.assertEqual(by["11"].cls, "FP32Baseline")
        self.assertEqual(by["12"].cls, "FP16Approx")
        self.assertEqual((by["151"].cls, by["151"].params["stride"], by["151"].params["use_fp16"]),
                         ("PerforateConv2dStride", 2, True))
        self.assertEqual((by["231"].cls, by["231"].params["skip_every"], by["231"].params["use_fp16"]),
                         ("Conv2dSampling", 2, False))
        self.assertEqual(sum(k.cls == "PerforateConv2dStride" for k in knobs), 36)
        self.assertEqual(sum(k.cls == "Conv2dSampling" for k in knobs), 18)
        sub = {k for k in knobs if k.name in ("11", "12", "231", "121")}
        tune_l, test_l = loaders()
        app = pt.TorchApp("subset", LENET, tune_l, test_l, sub, target_device="any")
        self.assertEqual(app.op_knob_names["convs.0"], ["11", "12", "121", "231"])
        self.assertEqual([k.name for k in app.op_knobs["convs.0"]], ["11", "12", "121", "231"])
        self.assertIsInstance(app.op_knobs["convs.0"][2], pt.ApproxKnob)
        handmade = pt.KnobSet(k for k in knobs if k.name in ("11", "231"))  # not the whole set: written out
        app2 = pt.TorchApp("handmade", LENET, tune_l, test_l, handmade)
        self.assertEqual(app2.op_knob_names["convs.0"], ["11", "231"])
        whole = pt.TorchApp("whole", LENET, tune_l, test_l, knobs)  # PredTuner: no target device, no filter
        self.assertEqual(len(whole.op_knobs["convs.0"]), 56)
        path = os.path.join(TMP, "knobs.json")
        with open(path, "w") as f:
            json.dump([k.to_json() for k in sub], f)
        again = pt.get_knobs_from_file(path)
        self.assertEqual({k.name: k.to_json() for k in again}, {k.name: k.to_json() for k in sub})


class LoadersAsGiven(unittest.TestCase):
    """A loader over a model_zoo data set is linked only when it yields the files as they are."""

    def setUp(self):
        self.tune_l, self.test_l = loaders()
        self.ds = self.tune_l.dataset

    def qos(self, loader, test=None):
        app = pt.TorchApp("l", LENET, loader, test or DataLoader(self.test_l.dataset, batch_size=loader.batch_size or 50))
        return app.measure_qos_cost({}, False)[0]

    def torch_qos(self, loader):
        with torch.no_grad():
            return float(np.mean([pt.accuracy(LENET(x), y) for x, y in loader]))

    def test_a_sampler_drop_last_or_collate_fn_is_honoured(self):
        from torch.utils.data import SubsetRandomSampler
        from torch.utils.data._utils.collate import default_collate

        def negate(batch):
            x, y = default_collate(batch)
            return -x, y

        for loader in (DataLoader(self.ds, batch_size=25, sampler=list(range(50))),
                       DataLoader(self.ds, batch_size=64, drop_last=True),
                       DataLoader(self.ds, batch_size=50, collate_fn=negate),
                       DataLoader(self.ds, batch_size=50, sampler=SubsetRandomSampler(range(0, N_IMAGES, 2)))):
            with self.subTest(loader):
                self.assertAlmostEqual(self.qos(loader), self.torch_qos(loader), places=9)

    def test_a_data_set_passed_directly(self):
        app = pt.TorchApp("direct", LENET, self.ds, self.test_l.dataset)
        self.assertAlmostEqual(app.measure_qos_cost({}, False)[0], WANT_TUNE_QOS, places=9)

    def test_images_the_network_does_not_take(self):
        x = torch.cat([b[0] for b in self.tune_l])
        y = torch.cat([b[1] for b in self.tune_l])
        for what, imgs in (("shape 28x28x1", x.permute(0, 2, 3, 1).contiguous()),
                           ("uint8", (x * 255).to(torch.uint8))):
            loader = DataLoader(TensorDataset(imgs, y), batch_size=100)
            with self.subTest(what), self.assertRaises(ValueError) as e:
                pt.TorchApp("bad", LENET, loader, loader)
            self.assertIn(what, str(e.exception))
        with self.assertRaises(ValueError) as e:  # one batch size for both sets
            pt.TorchApp("bad", LENET, DataLoader(self.ds, batch_size=100), DataLoader(self.ds, batch_size=64))
        self.assertIn("batch sizes 100 and 64", str(e.exception))


class BadArguments(unittest.TestCase):
    def setUp(self):
        self.tune_l, self.test_l = loaders()

    def test_library_errors_are_exceptions_with_the_c_message(self):
        bad = os.path.join(TMP, "bad_knobs.json")
        with open(bad, "w") as f:
            f.write('[{"name": "x", "class": "NoSuchKnob"}]')
        with self.assertRaises(pt.PredTunerError) as e:
            pt.get_knobs_from_file(bad)
        self.assertIn("bad_knobs.json", str(e.exception))
        self.assertIn("NoSuchKnob", str(e.exception))
        self.assertEqual(e.exception.status, "PT_EFORMAT")
        app = pt.TorchApp("x", LENET, self.tune_l, self.test_l)
        with self.assertRaises(pt.PredTunerError) as e:  # a threshold above the baseline QoS
            app.get_tuner().tune(max_iter=5, qos_tuner_threshold=200.0, is_threshold_relative=False)
        self.assertEqual(e.exception.status, "PT_ERANGE")

    def test_data_that_does_not_fit_the_network(self):
        x = torch.zeros(10, 3, 32, 32)
        y = torch.zeros(10, dtype=torch.int64)
        loader = DataLoader(TensorDataset(x, y), batch_size=5)
        with self.assertRaises(ValueError) as e:
            pt.TorchApp("x", LENET, loader, loader)
        self.assertIn("3x32x32", str(e.exception))
        self.assertIn("lenet_mnist takes 1x28x28", str(e.exception))
        # what only the C library checks comes back naming the loader, not the work folder's file
        x = torch.zeros(10, 1, 28, 28)
        loader = DataLoader(TensorDataset(x, torch.full((10,), 12, dtype=torch.int64)), batch_size=5)
        with self.assertRaises(pt.PredTunerError) as e:
            pt.TorchApp("x", LENET, loader, loader)
        msg = str(e.exception)
        self.assertIn("tune_dataloader's labels", msg)
        self.assertIn("12", msg)
        self.assertNotIn("predtuner_gpu-", msg)

    def test_python_side_checks(self):
        cases = [
            (ValueError, "tensor_to_qos", lambda: pt.TorchApp("x", LENET, self.tune_l, self.test_l,
                                                              tensor_to_qos=lambda o, t: 1.0)),
            (ValueError, "target_device", lambda: pt.TorchApp("x", LENET, self.tune_l, self.test_l,
                                                              target_device="tpu")),
            (TypeError, "module", lambda: pt.TorchApp("x", 42, self.tune_l, self.test_l)),
            (FileNotFoundError, "nope.bin", lambda: MNIST.from_file("nope.bin", "nope_labels.bin")),
            (ValueError, "extra_name_to_class", lambda: pt.get_knobs_from_file(None, {"A": object})),
        ]
        for exc, words, fn in cases:
            with self.subTest(words), self.assertRaises(exc) as e:
                fn()
            self.assertIn(words, str(e.exception))
        app = pt.TorchApp("x", LENET, self.tune_l, self.test_l)
        t = app.get_tuner()
        with self.assertRaises(RuntimeError):
            t.dump_configs(os.path.join(TMP, "never.json"))
        for kw, words in (({"max_iter": 0}, "max_iter"), ({"qos_model": "qos_p9"}, "qos_p9"),
                          ({"cost_model": "fast"}, "fast"), ({"early_stop": "maybe"}, "maybe"),
                          ({"take_best_n": -1}, "take_best_n")):
            args = dict(max_iter=5, qos_tuner_threshold=2.0, is_threshold_relative=True)
            args.update(kw)
            with self.subTest(kw), self.assertRaises(ValueError) as e:
                t.tune(**args)
            self.assertIn(words, str(e.exception))
        with self.assertRaises(ValueError) as e:
            app.measure_qos_cost({"convs.1": "151"}, False)  # a perforation knob on the pooling op
        self.assertIn("convs.1", str(e.exception))
        with self.assertRaises(KeyError):
            app.measure_qos_cost({"no_such_op": "11"}, False)
        t.tune(max_iter=5, qos_tuner_threshold=2.0, is_threshold_relative=True, time_passes=0, test_configs=False)
        with self.assertRaises(ValueError):
            t.plot_configs().savefig(os.path.join(TMP, "plot.pdf"))

    def test_closed_apps_and_odd_values_raise_instead_of_crashing(self):
        app = pt.TorchApp("x", LENET, self.tune_l, self.test_l)
        t = app.get_tuner()
        with self.assertRaises(TypeError):
            app.measure_qos_cost({"convs.0": None}, False)
        self.assertEqual(app.measure_qos_cost({"convs.0": app.op_knobs["convs.0"][1]}, False)[0],
                         app.measure_qos_cost({"convs.0": app.op_knobs["convs.0"][1].name}, False)[0])
        for kw, exc, words in (({"max_iter": 2**32 + 3}, ValueError, "max_iter"), ({"seed": -1}, ValueError, "seed"),
                               ({"take_best_n": 2**32}, ValueError, "take_best_n"),
                               ({"max_iter": 2.5}, TypeError, "max_iter")):
            args = dict(max_iter=5, qos_tuner_threshold=2.0, is_threshold_relative=True)
            args.update(kw)
            with self.subTest(kw), self.assertRaises(exc) as e:
                t.tune(**args)
            self.assertIn(words, str(e.exception))
        t.tune(max_iter=np.int64(5), qos_tuner_threshold=2.0, is_threshold_relative=True, time_passes=0,
               output_dir=os.fsencode(os.path.join(TMP, "bytes_out")))
        for name in ("tuning.sqlite", "configs.json", "configs.svg", "report.html"):  # what the CLI's folder gets
            self.assertTrue(os.path.exists(os.path.join(TMP, "bytes_out", name)), name)
        self.assertIsNone(t.figure_error)
        with self.assertRaises(pt.PredTunerError):  # a failed run leaves no earlier results behind
            t.tune(max_iter=5, qos_tuner_threshold=200.0)
        self.assertFalse(t.tuned)
        self.assertEqual(t.best_configs, [])
        for what, fn in (("TorchApp", lambda: pt.TorchApp("x", LENET, None, self.test_l)),
                         ("cuda:1", lambda: pt.TorchApp("x", LENET, self.tune_l, self.test_l, torch_device="cuda:1"))):
            with self.subTest(what), self.assertRaises((TypeError, ValueError)):
                fn()
        app.close()
        for fn in (lambda: app.measure_qos_cost({}, False), app.describe, app.get_tuner,
                   lambda: t.tune(max_iter=5, qos_tuner_threshold=2.0, is_threshold_relative=True),
                   lambda: t.dump_configs(os.path.join(TMP, "closed.json"))):
            with self.assertRaises(RuntimeError) as e:
                fn()
            self.assertIn("closed", str(e.exception))

    def test_a_missing_library_is_an_import_error_naming_it(self):
        r = subprocess.run([sys.executable, "-c", "import predtuner_gpu"], capture_output=True, text=True,
                           env=dict(os.environ, PYTHONPATH=os.path.join(SRC, "python"),
                                    PREDTUNER_GPU_LIBRARY=os.path.join(TMP, "missing.so")))
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("PREDTUNER_GPU_LIBRARY", r.stderr)
        self.assertIn("missing.so", r.stderr)


if __name__ == "__main__":
    try:
        unittest.main(verbosity=2)
    finally:
        import shutil
        shutil.rmtree(TMP, ignore_errors=True)
