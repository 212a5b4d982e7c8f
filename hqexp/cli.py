"""``hqexp`` — subcommand dispatch only.

``hqexp SUB [hydra args]`` checks the override syntax and group choices (so a typo
is one clear line, not a stack trace), rewrites ``sys.argv`` and calls the
subcommand's ``@hydra.main`` function, so every Hydra feature (``-m``,
``--cfg job``, ``--help``, ``experiment=…``) and Lightning's DDP re-launch work.
Heavy packages (torch, lightning, mlflow, pennylane) are imported only by the
subcommand that runs.
"""

from __future__ import annotations

import os
import sys

from hqexp.config import config_dir

SUBCOMMANDS = {
    "train": ("train", "train a model; one MLflow run (add -m for a multirun)"),
    "eval": ("eval", "evaluate a checkpoint on the test split: hqexp eval ckpt_path=PATH"),
    "sweep": ("train", "a multirun of train: one MLflow parent run, one child per job"),
    "bench": ("bench", "benchmarks: hqexp bench backends [grid=...]"),
    "diagnose": (
        "diagnose",
        "barren plateaus, expressibility, entanglement of an ansatz over qubits x depths; "
        "`hqexp diagnose shots ckpt_path=PATH`: a model's test metric and gradient noise against shots; "
        "`hqexp diagnose noise_bp`: gradients against depth under noise",
    ),
    "runs": (
        "runs",
        "runs left RUNNING by a process that is gone: hqexp runs stale | close-stale; "
        "a record kept while the server was gone: hqexp runs sync DIR",
    ),
}

#: ``hqexp diagnose <mode>``: analyses of a trained model, each with its own config
DIAGNOSE_MODES = {"shots": "shots", "noise_bp": "noise_bp"}

USAGE = """usage: hqexp <command> [hydra overrides...]

hqexp — an experiment bench for hybrid quantum-classical neural networks.

commands:
{commands}

examples:
  hqexp train                                    # hybrid classifier on breast_cancer
  hqexp train model=mlp_classifier dataset=wine  # the classical twin on wine
  hqexp sweep model=vqc_classifier,mlp_classifier seed=1,2,3
  hqexp sweep sweep=hybrid_vs_classical hydra/launcher=joblib
  hqexp diagnose 'qubits=[2,4,6,8]' 'depths=[2,5n]'    # trainability scan
  hqexp diagnose shots ckpt_path=PATH            # test metric and gradient noise against shots
  hqexp diagnose noise_bp 'noise_levels=[0.001,0.01]'  # noise-induced barren plateaus against depth
  hqexp train --cfg job                          # print the composed config
  hqexp train --help                             # config groups and their choices

Runs land in MLflow (default sqlite:///<project>/outputs/mlflow.db); `make ui` opens it.
"""


def _fail(msg: str, code: int = 2) -> None:
    print(f"hqexp: error: {msg}", file=sys.stderr)
    raise SystemExit(code)


def check_overrides(args: list[str], fail=None) -> None:
    """One-line errors for malformed overrides and unknown config-group choices.

    ``fail(message)`` reports them (default: print and exit 2, as the CLI does).
    """
    _fail = fail or globals()["_fail"]
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import OverrideParseException

    overrides = [a for a in args if not a.startswith("-") and ("=" in a or a.startswith("~"))]
    parser = OverridesParser.create()
    conf = config_dir()
    for text in overrides:
        try:
            (ov,) = parser.parse_overrides([text])
        except OverrideParseException as exc:
            first = str(exc).strip().splitlines()[0]
            hint = " (quote values with '=', spaces or brackets: key='a=b')" if text.count("=") > 1 else ""
            _fail(f"malformed override {text!r}: {first}{hint}")
        if ov.is_delete() or ov.package is not None:
            continue
        group = ov.key_or_group
        gdir = conf / group
        if not gdir.is_dir() or group.startswith("hydra"):
            continue
        choices = sorted(p.relative_to(gdir).with_suffix("").as_posix() for p in gdir.rglob("*.yaml"))
        values = list(ov.sweep_string_iterator()) if ov.is_sweep_override() else [ov.value()]
        for v in values:
            if v is None or str(v) == "null":
                continue
            if str(v) not in choices:
                _fail(f"unknown {group} {str(v)!r}; choose one of: {', '.join(choices)}")


def _first_values(args: list[str]) -> list[str]:
    """The overrides with each sweep replaced by its first value (what one job composes)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    out = []
    parser = OverridesParser.create()
    for text in args:
        if (
            text.startswith("-")
            or ("=" not in text and not text.startswith("~"))
            or text.lstrip("+~").startswith("hydra")
        ):
            continue
        (ov,) = parser.parse_overrides([text])
        if not ov.is_sweep_override():
            out.append(text)
            continue
        prefix = text[: len(text) - len(text.lstrip("+~"))]
        key = ov.key_or_group + (f"@{ov.package}" if ov.package else "")
        out.append(f"{prefix}{key}={next(iter(ov.sweep_string_iterator()))}")
    return out


def check_keys(config_name: str, args: list[str], fail=None) -> None:
    """One line, with the nearest valid key, for an override of a key the config does not have
    (Hydra's own message spans six lines)."""
    _fail = fail or globals()["_fail"]
    import difflib
    import re

    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from omegaconf import OmegaConf

    from hqexp.config import register_resolvers

    overrides = _first_values(args)
    if not overrides:
        return
    register_resolvers()
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(str(config_dir()), version_base="1.3"):
            try:
                cfg = compose(config_name, overrides=overrides)
            except Exception as exc:  # noqa: BLE001 - every composition error becomes one line
                msg = str(exc)
                m = re.search(r"Could not override '([^']+)'", msg)
                if m is None:
                    _fail(msg.strip().splitlines()[0] if msg.strip() else type(exc).__name__)
                key = m.group(1)
                base = compose(
                    config_name, overrides=[o for o in overrides if not o.lstrip("+~").startswith(key + "=")]
                )
                keys = _flat_keys(OmegaConf.to_container(base, resolve=False))
                near = difflib.get_close_matches(key, keys, n=1, cutoff=0.6)
                hint = f"; did you mean {near[0]!r}?" if near else ""
                _fail(f"unknown config key {key!r}{hint} (to add a new key: +{key}=…)")
            else:
                multirun = any(a in ("-m", "--multirun") for a in args)
                _check_compare(cfg, _fail)
                if multirun and cfg.get("compare") is not None:
                    _check_compare_seeds(config_name, overrides, args, _fail)
    finally:
        GlobalHydra.instance().clear()


def _check_compare(cfg, fail) -> None:
    """A sweep's ``compare`` (its baseline must exist) checked before any job runs."""
    spec = cfg.get("compare") if hasattr(cfg, "get") else None
    if spec is None:
        return
    from omegaconf import OmegaConf

    from hqexp.config import group_choices
    from hqexp.errors import ConfigError
    from hqexp.tracking.compare import check_spec

    raw = OmegaConf.to_container(spec, resolve=True) if OmegaConf.is_config(spec) else spec
    by = raw.get("by") if isinstance(raw, dict) else None
    try:
        check_spec(raw, {by: group_choices(by)} if by and (config_dir() / str(by)).is_dir() else {})
    except ConfigError as exc:
        fail(str(exc))


def _check_compare_seeds(config_name: str, first: list[str], args: list[str], fail) -> None:
    """A paired comparison needs at least two seeds per side: one line before any job runs."""
    from hydra import compose
    from omegaconf import OmegaConf

    from hqexp.tracking.sweep import seed_count

    hcfg = compose(config_name, overrides=first, return_hydra_config=True)
    raw = OmegaConf.select(hcfg, "hydra.sweeper.params", default=None)
    params = OmegaConf.to_container(raw, resolve=True) if raw is not None else {}
    n = seed_count([a for a in args if not a.startswith("-")], params or {})
    if n < 2:
        spec = OmegaConf.to_container(hcfg.compare, resolve=True)
        fail(
            f"compare={{by: {spec.get('by')}, baseline: {spec.get('baseline')}}} pairs runs by seed and needs at "
            f"least 2 seeds per side; this sweep runs {n} (sweep them, e.g. seed=1,2,3,4,5,6)"
        )


def _flat_keys(d, prefix: str = "") -> list[str]:
    out = []
    for k, v in d.items() if isinstance(d, dict) else ():
        out.append(f"{prefix}{k}")
        out += _flat_keys(v, f"{prefix}{k}.")
    return out


def _fast_exit() -> None:
    """Leave at once after a finished command: every run is closed and every file written, and
    tearing down torch, Lightning and MLflow module by module costs about two seconds.
    Not after a joblib sweep or a local Ray, whose worker processes the normal exit shuts down."""
    import logging
    import os

    loky = sys.modules.get("joblib.externals.loky.reusable_executor")
    if loky is not None and getattr(loky, "_executor", None) is not None:
        return  # a joblib sweep started worker processes
    ray = sys.modules.get("ray")
    if ray is not None and ray.is_initialized():
        return  # a Ray launcher or Flower simulation started a local Ray: the normal exit stops it
    from hqexp.tracking.store import open_runs

    if open_runs():  # something is still recording: let the normal exit path handle it
        return
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


SUB_ENV = "HQEXP_SUBCOMMAND"


def _relaunched(argv: list[str]) -> list[str]:
    """``argv`` with the subcommand put back when this process is a rank Lightning started
    for a data-parallel job (it passes the overrides only)."""
    sub = os.environ.get(SUB_ENV)
    if sub in SUBCOMMANDS and os.environ.get("LOCAL_RANK", "0") != "0" and (not argv or argv[0] not in SUBCOMMANDS):
        return ["train" if sub == "sweep" else sub, *argv]
    return argv


def _help() -> str:
    width = max(len(k) for k in SUBCOMMANDS)
    lines = [f"  {k.ljust(width)}  {v[1]}" for k, v in SUBCOMMANDS.items()]
    return USAGE.format(commands="\n".join(lines))


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``hqexp`` console script (``argv`` None: the process's own arguments).

    Called with ``argv`` (from Python, e.g. a test), it returns after the command instead of
    leaving the process at once, and ``sys.argv`` is restored."""
    console = argv is None
    saved_argv = list(sys.argv)
    argv = list(sys.argv[1:] if argv is None else argv)
    argv = _relaunched(argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(_help())
        return
    if argv[0] in ("-V", "--version"):
        from hqexp import __version__

        print(f"hqexp {__version__}")
        return
    sub, rest = argv[0], argv[1:]
    if sub not in SUBCOMMANDS:
        _fail(f"unknown command {sub!r}; choose one of: {', '.join(SUBCOMMANDS)}")
    if sub == "bench" and rest and "=" not in rest[0] and not rest[0].startswith("-"):
        rest = [f"suite={rest[0]}", *rest[1:]]  # `hqexp bench backends` reads naturally
    if (
        sub == "runs"
        and rest
        and "=" not in rest[0]
        and (not rest[0].startswith("-") or rest[0] in ("--stale", "--close-stale"))
    ):
        rest = [f"action={rest[0].lstrip('-')}", *rest[1:]]  # `hqexp runs stale`, `hqexp runs --stale`
        if rest[0] == "action=sync" and len(rest) > 1 and "=" not in rest[1]:
            rest = [rest[0], f"path={rest[1]}", *rest[2:]]  # `hqexp runs sync DIR`
    config = SUBCOMMANDS[sub][0]
    if sub == "diagnose" and rest and rest[0] in DIAGNOSE_MODES:
        config, rest = DIAGNOSE_MODES[rest[0]], rest[1:]  # `hqexp diagnose shots ckpt_path=…`
    if sub == "sweep" and not any(a in ("-m", "--multirun") for a in rest):
        rest = ["--multirun", *rest]
    if not any(a in ("--help", "-h", "--hydra-help") for a in rest):
        check_overrides(rest)
        check_keys(config, rest)

    from hqexp import entrypoints, interrupts

    handlers = interrupts.install()
    # Hydra reads its overrides from sys.argv[1:]; sys.argv[0] stays the real script, because
    # Lightning re-launches DDP ranks as `python sys.argv[0] sys.argv[1:]` (they find the
    # subcommand in HQEXP_SUBCOMMAND, see _relaunched).
    os.environ[SUB_ENV] = sub
    sys.argv = [sys.argv[0], *rest]
    try:
        entrypoints.dispatch(config)
        if console:
            _fast_exit()
    except (KeyboardInterrupt, SystemExit) as exc:
        if interrupts.received() is None and not isinstance(exc, KeyboardInterrupt):
            raise  # an ordinary exit (an error, or a sweep with failed jobs)
        name, code = interrupts.describe(exc)
        with interrupts.shielded():
            closed = entrypoints.close_open_runs(f"interrupted by {name}")
        if closed:
            print(f"hqexp: interrupted by {name}; {closed} open MLflow run(s) marked KILLED", file=sys.stderr)
        raise SystemExit(code) from None
    finally:
        if not console:
            sys.argv = saved_argv
            interrupts.restore(handlers)


if __name__ == "__main__":  # pragma: no cover
    main()
