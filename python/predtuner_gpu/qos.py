"""QoS functions by PredTuner's names. The C library computes them; these Python versions give the
same numbers for use outside a tuning run, and TorchApp recognises them by identity."""
import numpy as np

__all__ = ["accuracy"]


def accuracy(output, target):
    """Classification accuracy in percent (0-100): the argmax of each row of output against target."""
    out = output.detach().cpu().numpy() if hasattr(output, "detach") else np.asarray(output)
    tgt = target.detach().cpu().numpy() if hasattr(target, "detach") else np.asarray(target)
    if out.ndim != 2 or tgt.shape != (out.shape[0],):
        raise ValueError(f"accuracy: output {out.shape} and target {tgt.shape} (expected (N, classes) and (N,))")
    if out.shape[0] == 0:
        raise ValueError("accuracy: no rows")
    return float((out.argmax(axis=1) == tgt).sum() / out.shape[0] * 100)
