"""Package trained runs as minivae's pretrained models (minivae/pretrained/NAME/).

    python examples/vae.py --out runs/vae                 # the main example, its defaults
    python examples/pixelvae.py --out runs/pixelvae       # the default PixelVAE
    python tools/make_pretrained.py vae=runs/vae pixelvae=runs/pixelvae

Each becomes checkpoint.npz without the optimiser (checkpoint.save_model: the parameters and the
run's settings and history) and metrics.json: the run's metrics and `check`, the model's test
−ELBO recomputed in float64 (runs.test_loss), which tests/test_pretrained.py recomputes to 1e-4.
"""
import dataclasses
import json
import os
import sys

from minivae import checkpoint, runs
from minivae.files import write_json


def main():
    for spec in sys.argv[1:]:
        name, run_dir = spec.split("=", 1)
        out = runs.pretrained_dir(name)
        os.makedirs(out, exist_ok=True)
        model = runs.load_run(run_dir)
        state = checkpoint.read_state(runs.checkpoint_path(run_dir))
        settings = {**state["settings"], "config": dataclasses.asdict(model.config)}
        settings.setdefault("dataset", "mnist-5k")  # runs before it was recorded used the default
        checkpoint.save_model(os.path.join(out, "checkpoint.npz"), model,
                              {"settings": settings, "history": state["history"]})
        metrics = runs.read_metrics(run_dir)
        metrics["check"] = {"test_loss_float64": runs.test_loss(out), "seed": 0,
                            "how": "runs.test_loss(folder): float64, z ~ q(z|x) from "
                                   "default_rng(0), one per test image"}
        write_json(os.path.join(out, "metrics.json"), metrics)
        print(f"{name}: {json.dumps(metrics['check'])}; "
              f"{os.path.getsize(os.path.join(out, 'checkpoint.npz')) / 1e6:.2f} MB")


if __name__ == "__main__":
    main()
