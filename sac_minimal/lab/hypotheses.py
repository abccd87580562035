"""What the book claims, declared before the grids run: worlds, hypotheses, and how a claim is judged.

A claim about a model must hold on data nobody looked at while the data's generator was being designed. The
surrogate's seed is a *world* (:mod:`sac_minimal.data.synthetic`): an independent draw of class prototypes, videos
and noise. Two sets of worlds are fixed here, in code, before any confirmatory grid runs:

* :data:`DEVELOPMENT_WORLDS` were looked at while the generator's parameters were chosen (world 0 for the noise,
  corruption and distractor settings; worlds 1 and 2 in an outside check of the earlier generator) and while the
  learning-rate arm's epochs were measured. They never count as evidence.
* :data:`CONFIRMATORY_WORLDS` are where the hypotheses are tested. The world is the unit of replication: the seeds
  of a model in one world are averaged, and the per-world differences are tested across worlds
  (:mod:`sac_minimal.lab.significance`).

Each experiment (:mod:`sac_minimal.lab.variants`) declares its hypotheses: a :class:`Hypothesis` names a comparison
(candidate minus baseline on :data:`METRIC`), the heterogeneity h it is tested at (or the trend over h), and the
direction expected. The grid writes them to its ``grid.json`` before its first run, and a record without them
refuses to summarise (:func:`sac_minimal.lab.tables.merge_grid`). :func:`judge` turns a test into a verdict with
the Holm-adjusted p-value of the table, so the words the book prints come from the numbers.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np

DEVELOPMENT_WORLDS = (0, 1, 2)
"""Worlds looked at while the generator and the learning-rate arm were set up: never evidence."""
CONFIRMATORY_WORLDS = (3, 4, 5, 6, 7, 8)
"""Worlds on which the hypotheses are tested, fixed before the confirmatory grids ran."""
DEVELOPMENT_WORLDS_V4 = (100, 101, 102, 103, 104)
"""Worlds of generator v4 on which its design was chosen and its acceptance test run, with SSAD and the controls
only (never an attention model): never evidence."""
CONFIRMATORY_WORLDS_V4 = (110, 111, 112, 113, 114, 115, 116, 117)
"""Worlds of generator v4 on which its Table I is tested, fixed before v4's acceptance test ran."""
DEVELOPMENT_WORLDS_V5 = (200, 201, 202, 203, 204)
"""Worlds of generator v5 on which its design was chosen and its acceptance test run, with SSAD and the controls
only (never an attention model): never evidence."""
CONFIRMATORY_WORLDS_V5 = (210, 211, 212, 213, 214, 215, 216, 217)
"""Worlds of generator v5 on which its Table I is tested, fixed before v5's acceptance test ran."""
ACCEPTANCE_WORLDS_V6 = tuple(range(320, 332))
"""The worlds of v6's acceptance test: twelve fresh worlds, after its design had been chosen on worlds 300-304 and
had failed there with the control per window at +3.3 points, Holm p 0.107 (``development.json``). Twelve, so that a
gain of 3 points with the spread over worlds seen there (sd 2.7 points) is detected with power about 0.8 at Holm's
strictest level (alpha / 4, two-sided)."""
DEVELOPMENT_WORLDS_V6 = (300, 301, 302, 303, 304, *ACCEPTANCE_WORLDS_V6)
"""Worlds of generator v6 on which its design was chosen and its acceptance test run, with SSAD and the controls
only (never an attention model): never evidence."""
CONFIRMATORY_WORLDS_V6 = (310, 311, 312, 313, 314, 315, 316, 317)
"""Worlds of generator v6 on which its Table I is tested, fixed before v6's acceptance test ran."""
HETEROGENEITIES = (0.0, 0.5, 1.0)
"""The dose-response levels of h: no reliability differences, half the spread, the full spread."""
METRIC = "Avg 0.1:0.7"
"""The metric every hypothesis is tested on: mAP averaged over tIoU 0.1..0.7 (the paper's Avg.)."""
DIRECTIONS = ("greater", "less", "zero", "two-sided")


@dataclass(frozen=True)
class Hypothesis:
    """A claim about candidate - baseline (on :data:`METRIC`, per world, then across worlds).

    Attributes:
        name: a short label (``H1``).
        statement: the claim in words.
        baseline, candidate: variant names.
        direction: ``greater`` (candidate better), ``less`` (candidate worse), ``zero`` (no difference: it is
            contradicted only by a difference significant after Holm's adjustment; a consistent verdict cannot prove a
            null, and the 95 % interval shows how large an effect is excluded), or ``two-sided`` (a difference either
            way).
        heterogeneity: the h the comparison is tested at; ``None`` tests the trend: the per-world least-squares
            slope of candidate - baseline over the experiment's h values.
    """

    name: str
    statement: str
    baseline: str
    candidate: str
    direction: str
    heterogeneity: float | None = 1.0

    def __post_init__(self):
        if self.direction not in DIRECTIONS:
            raise ValueError(f"direction must be one of {DIRECTIONS}, got {self.direction!r}")

    @property
    def test(self) -> str:
        """The key of the table's test this hypothesis reads (:func:`comparison_key`)."""
        return comparison_key(self.baseline, self.candidate, self.heterogeneity)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def comparison_key(baseline: str, candidate: str, heterogeneity: float | None) -> str:
    """``"composed vs ssad, h=1"`` or ``"composed vs ssad, trend over h"``."""
    where = "trend over h" if heterogeneity is None else f"h={heterogeneity:g}"
    return f"{candidate} vs {baseline}, {where}"


def comparison_in_words(test: dict, labels: dict, statement: str | None = None) -> str:
    """A test, or the claim that names it, as a reader sees it: each model under its display name.

    ``test``: a record's test (``candidate``, ``baseline``, ``heterogeneity``); ``labels``: the record's display
    names. Without ``statement``, the comparison: ``"composed (no OT) vs SSAD+Θ, h = 1"``. With the statement of a
    generated two-sided claim (``"<candidate> differs from <baseline>"``, written with code names when the grid was
    declared), the same claim in display names; any other statement is already in words and is returned unchanged.

    >>> test = {"candidate": "composed", "baseline": "ssad_theta", "heterogeneity": 1.0}
    >>> labels = {"composed": "composed (no OT)", "ssad_theta": "SSAD+Θ"}
    >>> comparison_in_words(test, labels)
    'composed (no OT) vs SSAD+Θ, h = 1'
    >>> comparison_in_words({**test, "heterogeneity": None}, labels)
    'composed (no OT) vs SSAD+Θ, trend over h'
    >>> comparison_in_words(test, labels, "composed differs from ssad_theta")
    'composed (no OT) differs from SSAD+Θ'
    """
    candidate, baseline = (labels.get(test[side], test[side]) for side in ("candidate", "baseline"))
    if statement is not None:
        generated = f"{test['candidate']} differs from {test['baseline']}"
        return f"{candidate} differs from {baseline}" if statement == generated else statement
    where = "trend over h" if test["heterogeneity"] is None else f"h = {test['heterogeneity']:g}"
    return f"{candidate} vs {baseline}, {where}"


def judge(hypothesis: Hypothesis | dict, test: dict, significance: float = 0.05) -> str:
    """The verdict on a hypothesis from its test (``mean``, ``p_holm``), always at the Holm-adjusted level, so that a
    verdict never disagrees with the word ``significant`` printed beside the same test:

    * ``greater`` / ``less`` / ``two-sided``: ``supported`` when the Holm-adjusted p is below ``significance`` and
      the effect has the expected sign, ``contradicted`` when it is below with the other sign, else ``not shown``;
    * ``zero``: ``contradicted`` when the Holm-adjusted p is below ``significance``, else ``consistent``;
    * ``not testable`` when the differences have no spread (the same data counted several times, or identical
      models: :func:`~sac_minimal.lab.significance.mean_with_interval`).
    """
    direction = hypothesis["direction"] if isinstance(hypothesis, dict) else hypothesis.direction
    if math.isnan(test["p_holm"]):
        return "not testable"
    if direction == "zero":
        return "contradicted" if test["p_holm"] < significance else "consistent"
    if test["p_holm"] >= significance:
        return "not shown"
    expected = {"greater": test["mean"] > 0, "less": test["mean"] < 0, "two-sided": test["mean"] != 0}[direction]
    return "supported" if expected else "contradicted"


ACCEPTANCE_PROBE_MARGIN = 0.15
"""How far above the majority class the reliability probe must be, on average over the development worlds (and
above it in every one), for reliability to count as learnable from the features."""
ACCEPTANCE_NULL_POINTS = 0.5
"""The privileged control's gain at h = 0 must be within this many mAP points of zero (it is SSAD there)."""


ACCEPTANCE_HETEROGENEITIES = (0.0, 0.5, 1.0)
"""The h at which the acceptance test reads the control's gain (a dose response with its null)."""
ACCEPTANCE_CONTROLS = {4: "privileged", 5: "privileged_window", 6: "privileged_window"}
"""The positive control each regime's acceptance test reads: v4 was accepted on the control per step; v5 must be won
by the control per window, the granularity of SAC's modality attention (one share per modality per window), and so
must v6."""
ACCEPTANCE_PROBES = {4: "per video", 5: "per window", 6: "per window"}
"""What each regime's reliability probe predicts (:func:`~sac_minimal.data.probe.reliability_probe`): v4 a window's
video condition; v5 and v6 the window's own state, what a per-window modality attention would need to know."""


def acceptance(table: dict, probes: dict, control: str = "privileged", baseline: str = "ssad") -> dict:
    """Does a testbed reward what SAC claims to do? Decided on development worlds with SSAD and the controls only,
    before any attention model runs, from the control grid's ``table`` and the reliability probe of each world
    (``probes``: ``{world: {"accuracy", "chance"}}``, :func:`~sac_minimal.data.probe.reliability_probe` at h = 1):

    1. the control (:data:`ACCEPTANCE_CONTROLS`) beats SSAD at h = 1 (its Holm-adjusted test, ``judge`` gives
       ``supported``);
    2. its gain at h = 0.5 lies between 0 and its gain at h = 1 (a dose response);
    3. its gain at h = 0 is within :data:`ACCEPTANCE_NULL_POINTS` of zero (nothing to find there);
    4. reliability is learnable: the probe beats the majority class in every world, by
       :data:`ACCEPTANCE_PROBE_MARGIN` on average.

    Returns ``{"criteria": [{"name", "passed", "detail"}], "passed"}``."""
    tests = table["tests"]
    missing = [f"{h:g}" for h in ACCEPTANCE_HETEROGENEITIES if comparison_key(baseline, control, h) not in tests]
    if missing:
        raise ValueError(f"the acceptance test reads the {control} control at h = 0, 0.5 and 1; this record has no "
                         f"test at h = {', '.join(missing)}: run the acceptance grid at its design")
    gains = {h: tests[comparison_key(baseline, control, h)]["mean"] for h in ACCEPTANCE_HETEROGENEITIES}
    verdict = judge({"direction": "greater"}, tests[comparison_key(baseline, control, 1.0)])
    margins = [probe["accuracy"] - probe["chance"] for probe in probes.values()]
    criteria = [
        {"name": "the control beats SSAD at h = 1 (Holm)", "passed": verdict == "supported",
         "detail": f"{100 * gains[1.0]:+.2f} points, Holm p "
                   f"{tests[comparison_key(baseline, control, 1.0)]['p_holm']:.4f}: {verdict}"},
        {"name": "its gain at h = 0.5 lies between 0 and its gain at h = 1",
         "passed": 0 <= gains[0.5] <= gains[1.0],
         "detail": f"{100 * gains[0.5]:+.2f} points at h = 0.5, {100 * gains[1.0]:+.2f} at h = 1"},
        {"name": "its gain at h = 0 is about 0", "passed": abs(100 * gains[0.0]) <= ACCEPTANCE_NULL_POINTS,
         "detail": f"{100 * gains[0.0]:+.2f} points"},
        {"name": "reliability is learnable from the features (probe above chance)",
         "passed": bool(min(margins) > 0 and float(np.mean(margins)) >= ACCEPTANCE_PROBE_MARGIN),
         "detail": ", ".join(f"world {world}: {probe['accuracy']:.2f} vs chance {probe['chance']:.2f}"
                             for world, probe in probes.items())},
    ]
    return {"criteria": criteria, "passed": all(criterion["passed"] for criterion in criteria)}
