"""Privacy and robustness of split learning: leakage measures and attacks on what crosses the
cut (:mod:`.dcor`, :mod:`.inversion`, :mod:`.measures`), the client side's defences
(:mod:`.defences`) and adversarial test inputs (:mod:`.attacks`)."""

from __future__ import annotations

from collections.abc import Mapping

from hqexp.errors import ConfigError

SPLIT_MODES = ("sl", "sflv1", "sflv2", "sl_ushaped")


def check(privacy: Mapping, attack: Mapping, mode: str, task: str, n_classes: int, dataset: str = "?") -> None:
    """One line for a privacy or attack setting that cannot apply to this run."""
    if attack.get("name", "none") != "none":
        if task == "regression":
            raise ConfigError(
                f"attack={attack['name']} perturbs inputs against a classifier's loss; "
                f"dataset={dataset} is a regression task"
            )
        for key in ("eps", "steps"):
            v = attack.get(key, 0)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0:
                raise ConfigError(f"attack.{key} must be a number >= 0, got {v!r}")
    defended = [k for k in ("nopeek_weight", "noise_std") if float(privacy.get(k) or 0) > 0]
    if privacy.get("dp", {}).get("enabled"):
        defended.append("dp.enabled")
    if defended and mode not in SPLIT_MODES:
        what = "there is no cut" if mode == "none" else "no activations cross (clients send whole models)"
        raise ConfigError(
            f"privacy.{defended[0]} defends the client side of split learning, but in "
            f"federation={mode} {what}; use federation=sl|sflv1|sflv2|sl_ushaped"
        )
    if privacy.get("dp", {}).get("enabled"):
        import importlib.util

        if importlib.util.find_spec("opacus") is None:
            raise ConfigError("privacy.dp needs Opacus: pip install 'hqexp[privacy]'")
    leak = privacy.get("label_leak", "auto")
    if leak not in ("auto", True, False):
        raise ConfigError(f"privacy.label_leak must be auto, true or false, got {leak!r}")
    if leak is True:
        if n_classes != 2 or task != "classification":
            raise ConfigError(
                f"privacy.label_leak (the norm attack) needs a binary task; dataset={dataset} has "
                f"{n_classes} {'labels' if task == 'multilabel' else 'classes'}"
            )
        if mode != "sl_ushaped":
            raise ConfigError(
                f"privacy.label_leak measures label leakage where labels stay on the client "
                f"(federation=sl_ushaped); in federation={mode} they are sent to the server "
                "(tag labels_disclosed=true)"
            )


def wants_leak(privacy: Mapping, mode: str, task: str, n_classes: int) -> bool:
    """Whether the norm attack runs: asked for, or ``auto`` on a binary U-shaped run."""
    leak = privacy.get("label_leak", "auto")
    return mode == "sl_ushaped" and task == "classification" and n_classes == 2 and leak in ("auto", True)
