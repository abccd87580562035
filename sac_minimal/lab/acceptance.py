"""The testbed's acceptance test as a guard: an attention model trains on a surrogate regime only after that
regime's acceptance record has passed.

A regime (generator version) with an acceptance test is one whose experiment ``acceptance_v<version>`` exists
(:data:`ACCEPTANCE_VERSIONS`); its record (``results/acceptance_v<version>_<size>[_<loss>_loss]``) holds SSAD and the
controls on development worlds, the reliability probes, and the verdict of
:func:`sac_minimal.lab.hypotheses.acceptance`. :func:`check_accepted_config` is called before every training run
(``train``, every grid, ``verify``): it re-derives the verdict from the record's run files and refuses
(:class:`NotAccepted`) when the record is missing, edited or did not pass.
"""

from __future__ import annotations

import functools
import json
import re
from pathlib import Path

from sac_minimal.files import read_json, write_json_atomic
from sac_minimal.lab.config import LOSS_BEFORE_RECORDED, TrainConfig, resolve_data_root
from sac_minimal.lab.tables import build_table, read_grid
from sac_minimal.lab.variants import EXPERIMENTS, Experiment

ACCEPTANCE_VERSIONS = tuple(sorted(int(name.removeprefix("acceptance_v")) for name in EXPERIMENTS
                                   if re.fullmatch(r"acceptance_v\d+", name)))
"""Surrogate regimes (generator versions) with an acceptance test, read from the experiments that define one
(``acceptance_v<version>`` in :data:`~sac_minimal.lab.variants.EXPERIMENTS`), never a hand-kept list: an attention
model trains on one only after the test's record for that regime, size and loss has passed
(:func:`check_accepted_config`). Tiny surrogates, which exist for dry runs of scripts and are never recorded as
evidence, are exempt."""


EXEMPT_VERSIONS = {3: "its records (Table I, the paper's ablations) were made before the acceptance test existed; "
                      "chapter 10 reads them as what a table looks like where no control wins"}
"""Generator versions whose attention models train without an acceptance record, each with its reason; every other
version of :data:`~sac_minimal.data.synthetic.GENERATOR_VERSIONS` is guarded, one without an acceptance test
included (a new generator is refused until its test is defined and has passed)."""


class NotAccepted(ValueError):
    """An attention model was asked to train on a regime whose acceptance test is missing, invalid or not passed
    (:func:`validated_acceptance`): a refusal by design, told apart from every other error."""


def acceptance_name(version: int, size: str, loss: str) -> str:
    """The record of generator ``version``'s acceptance test at ``size`` with SSAD's ``loss``:
    ``acceptance_v<version>_<size>`` for the book's first loss (the records made before runs named their loss),
    ``acceptance_v<version>_<size>_<loss>_loss`` for another. A testbed is accepted for one loss at a time: the
    controls that decide it are trained with that loss."""
    suffix = "" if loss == LOSS_BEFORE_RECORDED else f"_{loss}_loss"
    return f"acceptance_v{version}_{size}{suffix}"


def acceptance_record(config: TrainConfig) -> str | None:
    """The record (``results/<name>``) whose acceptance test must have passed before ``config`` may train: for an
    attention model (``ssad_sac``) on a surrogate of any regime but :data:`EXEMPT_VERSIONS` at the quick or full
    size, :func:`acceptance_name` of its version, size and loss; else None (SSAD and the controls need none: they
    decide the test). A guarded regime without an acceptance test is refused (:class:`NotAccepted`)."""
    if config.model != "ssad_sac" or config.data_version in EXEMPT_VERSIONS or config.data_size == "tiny":
        return None
    if resolve_data_root(config, create=False)[1] != "synthetic":
        return None
    if config.data_version not in ACCEPTANCE_VERSIONS:
        raise NotAccepted(f"generator v{config.data_version} has no acceptance test (no experiment "
                          f"acceptance_v{config.data_version} in sac_minimal.lab.variants.EXPERIMENTS): attention "
                          "models train on a regime only after a test that a control wins there has passed")
    return acceptance_name(config.data_version, config.data_size, config.loss)


def check_accepted_config(config: TrainConfig) -> None:
    """Refuse to train ``config`` unless :func:`acceptance_record` is None or names a valid acceptance record that
    passed (:func:`validated_acceptance`). Called before every training run (``train``, every grid, ``verify``)."""
    name = acceptance_record(config)
    if name is not None:
        from sac_minimal.data.locate import REPOSITORY

        folder = REPOSITORY / "results" / name
        stamp = tuple((str(path), path.stat().st_mtime_ns, path.stat().st_size)
                      for path in sorted(folder.rglob("*")) if path.is_file()) if folder.is_dir() else ()
        _validated_once(name, config.data_version, config.data_size, stamp, config.loss)


@functools.lru_cache(maxsize=8)
def _validated_once(name: str, version: int, size: str, stamp: tuple, loss: str) -> None:
    """:func:`validated_acceptance`, once per state of the record's files (``stamp``): a chapter that re-runs many
    attention runs checks the record once, and any edit of it is checked again."""
    validated_acceptance(name, version, size, loss)


def validated_acceptance(name: str, version: int, size: str, loss: str = LOSS_BEFORE_RECORDED) -> dict:
    """The acceptance test of ``results/<name>`` after checking it: ``acceptance.json`` must be an acceptance record
    (criteria, probes, a boolean verdict), made on generator ``version`` at ``size``, and its criteria and verdict
    must be what its run files give (recomputed here from the record's table and its stored probes); then it must
    have passed. Every failure is a ``ValueError`` that says why and the command that records the test."""
    from sac_minimal.data.locate import REPOSITORY
    from sac_minimal.lab.hypotheses import ACCEPTANCE_CONTROLS, acceptance

    results_dir = REPOSITORY / "results" / name
    path = results_dir / ACCEPTANCE_FILE
    command = (f"cd {REPOSITORY} && python -m sac_minimal ablate acceptance_v{version} --profile {size} "
               f"--name {name}" + ("" if loss == TrainConfig().loss else f" --loss {loss}"))
    purpose = (f"attention models train on generator v{version} ({size}) only once its acceptance test has passed: "
               "on a testbed where no control wins, a grid of attention models could not tell 'the attention does "
               "not help' from 'nothing here rewards attention'")
    if not path.is_file():
        raise NotAccepted(f"{purpose}; {path} is not recorded: run {command}")
    stored = read_json(path, "acceptance file")
    if (not isinstance(stored, dict) or not isinstance(stored.get("passed"), bool)
            or not isinstance(stored.get("criteria"), list) or not isinstance(stored.get("probes"), dict)):
        raise NotAccepted(f"{path} is not an acceptance record (it needs criteria, probes and a true/false verdict); "
                         f"record the test again: {command}")
    grid = read_grid(results_dir)
    base = TrainConfig.from_dict(grid["base"])
    if (base.data_version, base.data_size, base.loss) != (version, size, loss):
        raise NotAccepted(f"{path} tested generator v{base.data_version} ({base.data_size}) with the {base.loss} "
                         f"loss, not v{version} ({size}) with the {loss} loss; record the right test: {command}")
    again = acceptance(build_table(results_dir), stored["probes"], ACCEPTANCE_CONTROLS[version])
    if json.dumps(again, sort_keys=True) != json.dumps({key: stored[key] for key in again}, sort_keys=True):
        raise NotAccepted(f"{path} is not what the record's runs give (its criteria or verdict were edited); record "
                         f"the test again: {command}")
    if not stored["passed"]:
        raise NotAccepted(f"{purpose}, and the acceptance test in {path} did not pass")
    return stored


def check_accepted(experiment: Experiment, base: TrainConfig | None = None) -> None:
    """An experiment that ``requires`` an accepted testbed runs only when the acceptance record of its generator,
    size and SSAD loss (:func:`acceptance_name`, for the profile ``base``) is valid and passed
    (:func:`validated_acceptance`); otherwise a ``ValueError`` says why and what to run."""
    if experiment.requires is None:
        return
    base = experiment.base_config(base if base is not None else TrainConfig())
    size = experiment.requires.rsplit("_", 1)[1]
    validated_acceptance(acceptance_name(base.data_version, size, base.loss), base.data_version, size, base.loss)


ACCEPTANCE_FILE = "acceptance.json"
"""Beside the table of an acceptance grid (``acceptance_v4``): the acceptance test's criteria, numbers and verdict."""


def acceptance_of(results_dir: str | Path) -> dict:
    """The acceptance test (:func:`~sac_minimal.lab.hypotheses.acceptance`) of a control grid: its table, and the
    reliability probe (:func:`~sac_minimal.data.probe.reliability_probe`) of each of its worlds at h = 1."""
    from sac_minimal.data.probe import reliability_probe
    from sac_minimal.lab.hypotheses import ACCEPTANCE_CONTROLS, ACCEPTANCE_PROBES, acceptance

    results_dir = Path(results_dir)
    grid, table = read_grid(results_dir), build_table(results_dir)
    base = TrainConfig.from_dict(grid["base"])
    if base.data_version not in ACCEPTANCE_CONTROLS:
        raise ValueError(f"generator v{base.data_version} has no acceptance test (regimes with one: "
                         f"{', '.join(f'v{version}' for version in ACCEPTANCE_CONTROLS)})")
    per_window = ACCEPTANCE_PROBES[base.data_version] == "per window"
    probes = {str(world): reliability_probe(resolve_data_root(base.replace(model="ssad", world=world,
                                                                             heterogeneity=1.0))[0], per_window)
              for world in grid["worlds"]}
    return {"probes": probes, **acceptance(table, probes, ACCEPTANCE_CONTROLS[base.data_version])}


def record_acceptance(results_dir: str | Path) -> dict:
    """Compute the acceptance test of a merged control grid and write it to ``acceptance.json`` with provenance."""
    from sac_minimal.lab.provenance import provenance

    result = acceptance_of(results_dir)
    write_json_atomic(Path(results_dir) / ACCEPTANCE_FILE, {**result, "provenance": provenance()})
    return result


def format_acceptance(result: dict) -> str:
    lines = [f"acceptance test: {'PASSED' if result['passed'] else 'NOT PASSED'}"]
    lines += [f"  [{'x' if criterion['passed'] else ' '}] {criterion['name']}: {criterion['detail']}"
              for criterion in result["criteria"]]
    return "\n".join(lines)
