"""The paired verdict of a sweep: Holm and Wilcoxon as scipy computes them, pairs by seed, verdicts
that say when the seeds could not have shown a difference, and the table on a real sweep's parent."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest
from helpers import TINY, artifacts, client, error_line, hqexp_here, runs
from scipy import stats

from hqexp.tracking.compare import holm, markdown, paired_stats, verdict_rows


def test_holm_is_the_step_down_correction():
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert holm([0.5, math.nan, 0.01]) == pytest.approx([0.5, math.nan, 0.02], nan_ok=True)


def test_paired_statistics_are_scipys():
    d = [0.05, 0.03, 0.07, 0.02, 0.06, 0.04, 0.08, 0.01]
    got = paired_stats(d)
    assert got["p_wilcoxon"] == pytest.approx(stats.wilcoxon(d).pvalue)
    assert got["p_floor"] == pytest.approx(2 / 2**8)
    assert got["diff_ci_low"] < np.mean(d) < got["diff_ci_high"]
    sd = np.std(d, ddof=1)
    assert got["mde"] == pytest.approx((stats.t.ppf(0.975, 7) + stats.t.ppf(0.8, 7)) * sd / math.sqrt(8))
    assert math.isnan(paired_stats([0.1])["p_wilcoxon"])


def _run(model: str, seed: int, value: float, metric: str = "test/acc", extra: str = "dataset=iris"):
    return SimpleNamespace(
        info=SimpleNamespace(status="FINISHED"),
        data=SimpleNamespace(
            tags={"model": model, "hqexp.overrides": f"{extra} model={model} seed={seed}"},
            params={"seed": str(seed)},
            metrics={metric: value},
        ),
    )


def test_verdicts_pair_by_seed_and_say_when_seeds_cannot_decide():
    rng = np.random.default_rng(0)
    base = {s: 0.80 + 0.02 * rng.standard_normal() for s in range(8)}
    children = [_run("mlp_classifier", s, v) for s, v in base.items()]
    children += [_run("vqc_classifier", s, v + 0.05 + 0.005 * rng.standard_normal()) for s, v in base.items()]
    children += [_run("vqc_classifier", 99, 0.1)]  # no baseline for seed 99: not paired
    (row,) = verdict_rows(children, "test/acc", "model", "mlp_classifier")
    assert row["n_pairs"] == 8 and row["verdict"] == "better" and row["diff_mean"] == pytest.approx(0.05, abs=0.01)
    few = [c for c in children if int(c.data.params["seed"]) < 3]
    (row,) = verdict_rows(few, "test/acc", "model", "mlp_classifier")
    assert row["verdict"].startswith("no difference shown (3 seeds cannot: Wilcoxon p ≥ 0.25")
    lower = [
        _run(c.data.tags["model"], int(c.data.params["seed"]), c.data.metrics["test/acc"], "test/loss")
        for c in children
    ]
    (row,) = verdict_rows(lower, "test/loss", "model", "mlp_classifier")
    assert row["verdict"] == "worse"  # higher loss is worse
    two_cells = children + [
        _run(c.data.tags["model"], int(c.data.params["seed"]), 0.5, extra="dataset=wine") for c in children
    ]
    rows = verdict_rows(two_cells, "test/acc", "model", "mlp_classifier")
    assert [r["cell"] for r in rows] == ["dataset=iris", "dataset=wine"]
    assert rows[1]["verdict"].startswith("no difference shown") and rows[0]["p_holm"] == pytest.approx(
        min(1, 2 * rows[0]["p_wilcoxon"])
    )
    (one,) = verdict_rows(children[:1] + children[8:9], "test/acc", "model", "mlp_classifier")
    assert one["verdict"] == "not tested: 1 paired seed(s), 2 needed"


def test_a_sweep_gets_its_paired_verdict(tmp_path):
    args = ["sweep", "sweep=hybrid_vs_classical", "dataset=iris", "seed=1,2", *TINY]
    hqexp_here(args, tmp_path)
    (parent,) = runs(tmp_path, "tags.`hqexp.command` = 'sweep'")
    assert {"study/verdict.md", "study/verdict.csv", "study/verdict.png"} <= artifacts(tmp_path, parent.info.run_id)
    import pandas as pd

    (row,) = pd.read_csv(
        client(tmp_path).download_artifacts(parent.info.run_id, "study/verdict.csv", str(tmp_path))
    ).to_dict("records")
    kids = {
        (r.data.tags["model"], r.data.params["seed"]): r.data.metrics["test/auroc"]
        for r in runs(tmp_path, "tags.`hqexp.command` = 'train'")
    }
    diff = np.mean([kids[("vqc_classifier", s)] - kids[("mlp_classifier", s)] for s in ("1", "2")])
    assert row["side"] == "vqc_classifier" and row["n_pairs"] == 2 and row["diff_mean"] == pytest.approx(diff)
    assert row["verdict"].startswith("no difference shown (2 seeds cannot")


def test_a_baseline_that_does_not_exist_is_one_line(tmp_path):
    out = hqexp_here(
        ["sweep", "dataset=iris", "model=vqc_classifier", "seed=1", *TINY, "compare={by: model, baseline: nope}"],
        tmp_path,
        check=False,
    )
    assert out.returncode == 2 and "compare.baseline=nope is not a model" in error_line(out)


def test_baseline_twin_pairs_each_model_with_the_twin_it_declares():
    def declared(run, twin):
        run.data.params["model.compare_to"] = twin
        return run

    rng = np.random.default_rng(1)
    children = [_run("separable_kernel", s, 0.9 + 0.01 * rng.standard_normal()) for s in range(6)]
    children += [
        declared(_run("iqp_kernel", s, 0.8 + 0.01 * rng.standard_normal()), "separable_kernel") for s in range(6)
    ]
    children += [_run("svc", s, 0.99) for s in range(6)]  # declares no twin: compared with nothing
    children += [declared(_run("vqc_classifier", s, 0.7), "mlp_classifier") for s in range(6)]  # twin not swept
    (row,) = verdict_rows(children, "test/acc", "model", "twin")
    assert (row["side"], row["baseline"], row["n_pairs"]) == ("iqp_kernel", "separable_kernel", 6)
    assert row["diff_mean"] < 0
    assert "| separable_kernel |" in markdown([row])


def test_twin_needs_by_model_and_a_model_config_declares_it(tmp_path):
    from hqexp.errors import ConfigError
    from hqexp.tracking.compare import check_spec

    with pytest.raises(ConfigError, match="set compare.by=model"):
        check_spec({"by": "dataset", "baseline": "twin"}, {})
    assert check_spec({"by": "model", "baseline": "twin"}, {"model": ["vqc_classifier"]}) == ("model", "twin")
    hqexp_here(["train", "dataset=iris", *TINY], tmp_path)  # compare_to is config, not a class argument
    (run,) = runs(tmp_path)
    assert run.data.params["model.compare_to"] == "mlp_classifier"


@pytest.mark.parametrize(
    "args",
    [
        ["sweep=hybrid_vs_classical", "seed=1"],  # the preset's seeds replaced by one
        ["model=vqc_classifier,mlp_classifier", "compare={by: model, baseline: mlp_classifier}"],  # none swept
    ],
)
def test_a_comparison_with_fewer_than_two_seeds_is_one_line(tmp_path, args):
    out = hqexp_here(["sweep", "dataset=iris", *TINY, *args], tmp_path, check=False)
    assert out.returncode == 2 and "needs at least 2 seeds per side; this sweep runs 1" in error_line(out)
    assert not runs(tmp_path)  # before any job


def test_a_dotted_key_names_the_sides_as_the_study_presets_do():
    """sweep=sfl_study / privacy_study compare by model.server_head (a key, not a group)."""

    def head(run, value, fed):
        run.data.params["model.server_head"] = value
        run.data.tags["hqexp.overrides"] = f"federation={fed} model.server_head={value} seed={run.data.params['seed']}"
        return run

    children = []
    for fed, gain in (("fl", 0.02), ("sl", -0.01)):
        children += [head(_run("split_conv1d", s, 0.6 + 0.01 * s), "classical", fed) for s in range(4)]
        children += [head(_run("split_conv1d", s, 0.6 + gain + 0.01 * s), "quantum", fed) for s in range(4)]
    rows = verdict_rows(children, "test/acc", "model.server_head", "classical")
    assert [(r["cell"], r["side"], r["n_pairs"]) for r in rows] == [
        ("federation=fl", "quantum", 4),
        ("federation=sl", "quantum", 4),
    ]
    assert [r["diff_mean"] for r in rows] == [pytest.approx(0.02), pytest.approx(-0.01)]
