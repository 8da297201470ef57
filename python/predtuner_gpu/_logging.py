"""config_pylogger, as PredTuner's: Python logging to the console and to a file, which the C
library's log (pt_log_open) appends to as well."""
import logging
import os
import time

from ._lib import check, enc, lib

__all__ = ["config_pylogger"]

_state = {"verbose": False}


def verbose():
    """Whether the last config_pylogger asked for verbose output (the tuner's progress lines)."""
    return _state["verbose"]


def config_pylogger(filename=None, output_dir=None, verbose=False):
    """Logs INFO and above to stderr and everything (DEBUG with verbose) to output_dir/filename
    (default: ./<date-time>), with the library's own lines in the same file. Returns the root logger."""
    output_dir = os.fspath(output_dir) if output_dir is not None else "."
    os.makedirs(output_dir, exist_ok=True)
    path = os.path.join(output_dir, filename or time.strftime("%Y.%m.%d-%H%M%S"))
    root = logging.getLogger()
    for h in list(root.handlers):
        if getattr(h, "_predtuner_gpu", False):
            root.removeHandler(h)
            h.close()
    console = logging.StreamHandler()
    console.setLevel(logging.INFO)
    console.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    fileh = logging.FileHandler(path, mode="a")
    fileh.setFormatter(logging.Formatter("[%(asctime)-15s] %(levelname)7s %(name)s: %(message)s "
                                         "@%(filename)s:%(lineno)d"))
    for h in (console, fileh):
        h._predtuner_gpu = True
        root.addHandler(h)
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    lib.pt_log_close()
    check(lib.pt_log_open(enc(path)), "config_pylogger")
    _state["verbose"] = bool(verbose)
    root.info("Log file for this run: %s", path)
    return root
