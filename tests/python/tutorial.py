"""PredTuner's Getting Started tutorial (its doc/getting_started.rst, code blocks in order), run
against predtuner_gpu. Changed, and only these: the import line (`import predtuner_gpu as pt`,
`from predtuner_gpu.model_zoo import ...`); the network and data set are the demo's LeNet on MNIST
(the tutorial's VGG16Cifar10 / CIFAR and its model_params/ files are not in this repository), read
from the folder given as argv[1] (demo data) with the checkpoint argv[2]; the output folder is
argv[3]; max_iter is argv[4] (the tutorial's 1000 takes minutes on CI's 2 cores). The imports of
torch and DataLoader, which the tutorial leaves out, are added. Run by test_python.py."""
import sys
from pathlib import Path

import torch
from torch.utils.data import DataLoader

import predtuner_gpu as pt
from predtuner_gpu.model_zoo import MNIST, LeNet

demo, checkpoint, out, max_iter = Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3]), int(sys.argv[4])

prefix = demo
tune_set = MNIST.from_file(prefix / "tune_input.bin", prefix / "tune_labels.bin")
tune_loader = DataLoader(tune_set, batch_size=500)
test_set = MNIST.from_file(prefix / "test_input.bin", prefix / "test_labels.bin")
test_loader = DataLoader(test_set, batch_size=500)

module = LeNet()
module.load_state_dict(torch.load(checkpoint))

msg_logger = pt.config_pylogger(output_dir=out / "lenet_mnist/", verbose=True)

app = pt.TorchApp(
  "TestTorchApp",  # Application name -- can be anything
  module,
  tune_loader,
  test_loader,
  knobs=pt.get_knobs_from_file(),
  tensor_to_qos=pt.accuracy,
  model_storage_folder=out / "lenet_mnist/",
)

tuner = app.get_tuner()
tuner.tune(
  max_iter=max_iter,
  qos_tuner_threshold=2.0,  # QoS threshold to guide tuner into
  qos_keep_threshold=3.0,  # QoS threshold for which we actually keep the configurations
  is_threshold_relative=True,  # Thresholds are relative to baseline -- baseline_acc - 2.0
  take_best_n=20,
  cost_model="cost_linear",  # Use linear cost predictor
)

tuner.dump_configs(out / "lenet_mnist/configs.json", best_only=False)
fig = tuner.plot_configs(show_qos_loss=True)
fig.savefig(out / "lenet_mnist/configs.png")

tuner = app.get_tuner()
tuner.tune(
  max_iter=max_iter,
  qos_tuner_threshold=2.0,  # QoS threshold to guide tuner into
  qos_keep_threshold=3.0,  # QoS threshold for which we actually keep the configurations
  is_threshold_relative=True,  # Thresholds are relative to baseline -- baseline_acc - 2.0
  take_best_n=20,
  cost_model="cost_linear",  # Use linear cost predictor
  qos_model="qos_p1"
)
tuner.dump_configs(out / "lenet_mnist/configs_p1.json", best_only=False)
tuner.plot_configs(show_qos_loss=True).savefig(out / "lenet_mnist/configs_p1.svg")
