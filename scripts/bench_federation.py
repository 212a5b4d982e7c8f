"""Wall time of split-federated training against centralised training of the same network.

    .venv/bin/python scripts/bench_federation.py [--dataset synthetic_ecg] [--epochs 10] [--repeats 3]

Trains ``model=split_conv1d`` centrally (``federation=none``, the Lightning path) and with each
protocol given by ``--modes`` (default ``sflv1``, 4 clients) for the same number of epochs
(rounds × 1 local epoch) over the same data, and prints the median ``time/fit_s`` (fit + test)
of each and its ratio to centralised training. A benchmark, not a test: run it on a quiet machine.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", default="synthetic_ecg")
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--modes", default="sflv1")
    ap.add_argument("overrides", nargs="*", help="extra Hydra overrides")
    args = ap.parse_args()

    import torch

    from hqexp import api

    torch.set_num_threads(2)
    base = [
        f"trainer.max_epochs={args.epochs}",
        "trainer.enable_progress_bar=false",
        "callbacks.early_stopping.enabled=false",
        f"federation.n_clients={args.clients}",
        *args.overrides,
    ]
    times: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        store = [f"mlflow.tracking_uri=sqlite:///{tmp}/mlflow.db"]
        for rep in range(args.repeats):
            for mode in ["none", *args.modes.split(",")]:
                m = api.run(
                    "split_conv1d",
                    args.dataset,
                    [*base, *store, f"federation={mode}", f"seed={rep}"],
                    output_dir=f"{tmp}/{mode}_{rep}",
                )
                times.setdefault(mode, []).append(m["time/fit_s"])
    ref = statistics.median(times["none"])
    print(
        f"\n{args.dataset}, {args.epochs} epochs, {args.clients} clients, {torch.get_num_threads()} threads "
        f"(median of {args.repeats}; time/fit_s = fit + test):"
    )
    for mode, ts in times.items():
        med = statistics.median(ts)
        print(f"  {mode:<10} {med:7.2f} s  (range {min(ts):.2f}-{max(ts):.2f})  ratio to none {med / ref:.2f}")


if __name__ == "__main__":
    main()
