"""Benchmarks run from the command line; medians over repeats, never asserted in tests.

``python -m sac_minimal bench ot`` times the batched transport solvers against POT on SAC-shaped problems
(``[B, 2, T]`` costs, eps 0.1, N = 50, float32); ``bench sac`` times SAC against its SSAD host; ``bench detection``
times post-processing and evaluation at THUMOS14's test-split size.
"""

from __future__ import annotations

import re
import statistics
import time

import torch

from sac_minimal.ot import entropic_ot_2xT, random_2xT_problems, sinkhorn_log


def median_seconds(function, repeats: int, budget_s: float = 5.0) -> float:
    """Median wall time of ``function()`` over ``repeats`` runs (fewer if they exceed ``budget_s``), after a warm-up."""
    function()
    times = []
    started = time.perf_counter()
    for _ in range(repeats):
        tick = time.perf_counter()
        function()
        times.append(time.perf_counter() - tick)
        if time.perf_counter() - started > budget_s:
            break
    return statistics.median(times)


MAX_OT_CELLS = 1 << 23
"""The largest B x T :func:`bench_ot` accepts (about 8.4 million columns of 2 x T problems)."""


def bench_ot(
    batches=(64, 256, 1024),
    lengths=(128, 512, 2048),
    eps: float = 0.1,
    n_iter: int = 50,
    repeats: int = 5,
    pot_loop_limit: int = 256,
) -> list[dict]:
    """Time ``sinkhorn_log``, ``entropic_ot_2xT``, POT looped per problem and ``ot.batch.solve_batch``.

    POT looped per problem is timed on at most ``pot_loop_limit`` problems and scaled linearly to the batch (each
    problem is independent), which keeps the benchmark short. Returns one dict per (B, T) with seconds per call.
    """
    try:
        import ot as pot
        from ot.batch import solve_batch
    except ImportError:
        pot = None
    largest = max(batches) * max(lengths)
    if largest > MAX_OT_CELLS:
        raise ValueError(f"a batch of {max(batches)} problems of length {max(lengths)} is {largest:,} transport "
                         f"columns, more than this benchmark handles ({MAX_OT_CELLS:,}: a few GB with the exact "
                         "solver's float64 copies); choose smaller --batches or --lengths")
    rows = []
    for batch in batches:
        for length in lengths:
            cost, supplier, receiver = random_2xT_problems(batch, length, dtype=torch.float32)
            row = {"B": batch, "T": length}
            row["sinkhorn_log"] = median_seconds(
                lambda: sinkhorn_log(cost, supplier, receiver, eps, n_iter=n_iter, check_inputs=False), repeats)
            row["entropic_ot_2xT"] = median_seconds(
                lambda: entropic_ot_2xT(cost, supplier, receiver, eps, check_inputs=False), repeats)
            exact = entropic_ot_2xT(cost.double(), supplier.double(), receiver.double(), eps).plan
            row["sinkhorn_error"] = (sinkhorn_log(cost, supplier, receiver, eps, n_iter=n_iter).plan.double()
                                     - exact).abs().max().item()
            row["entropic_error"] = (entropic_ot_2xT(cost, supplier, receiver, eps).plan.double()
                                     - exact).abs().max().item()
            if pot is not None:
                looped = min(batch, pot_loop_limit)
                cost_np, supplier_np, receiver_np = cost.numpy(), supplier.numpy(), receiver.numpy()

                def pot_loop():
                    for k in range(looped):
                        pot.sinkhorn(supplier_np[k], receiver_np[k], cost_np[k], eps, method="sinkhorn_log",
                                     numItermax=n_iter, stopThr=0.0, warn=False)

                row["pot_loop"] = median_seconds(pot_loop, max(1, repeats // 2)) * batch / looped
                row["pot_solve_batch"] = median_seconds(
                    lambda: solve_batch(cost, reg=eps, a=supplier, b=receiver, max_iter=n_iter, tol=0.0,
                                        method="log_sinkhorn", grad="detach"),
                    repeats,
                )
            rows.append(row)
    return rows


def format_ot_table(rows: list[dict]) -> str:
    """A plain-text table: milliseconds per call and the speed-up ratios the book quotes."""
    has_pot = "pot_loop" in rows[0]
    header = f"{'B':>5} {'T':>5} | {'sinkhorn_log':>12} {'entropic_2xT':>12}"
    if has_pot:
        header += f" {'POT loop':>10} {'solve_batch':>11} | {'loop/sink':>9} {'batch/sink':>10}"
    header += f" {'sink/entr':>9} | {'err sink':>8} {'err entr':>8}"
    lines = ["milliseconds per call (median), eps 0.1, N 50, float32; errors = max |plan - exact| (masses ~1)",
             header, "-" * len(header)]
    for row in rows:
        line = f"{row['B']:>5} {row['T']:>5} | {1e3 * row['sinkhorn_log']:>12.2f} {1e3 * row['entropic_ot_2xT']:>12.2f}"
        if has_pot:
            line += (f" {1e3 * row['pot_loop']:>10.1f} {1e3 * row['pot_solve_batch']:>11.2f} |"
                     f" {row['pot_loop'] / row['sinkhorn_log']:>9.0f}x"
                     f" {row['pot_solve_batch'] / row['sinkhorn_log']:>9.1f}x")
        line += (f" {row['sinkhorn_log'] / row['entropic_ot_2xT']:>8.1f}x |"
                 f" {row['sinkhorn_error']:>8.1e} {row['entropic_error']:>8.1e}")
        lines.append(line)
    if not has_pot:
        lines.append("(POT is not installed: its columns are left out; pip install pot)")
    return "\n".join(lines)


def bench_sac(batches=(4, 16, 64), length: int = 128, repeats: int = 3) -> list[dict]:
    """Forward + backward seconds of SAC, of its OT loss alone, and of the SSAD host, official widths.

    Both solvers: ``sinkhorn`` (Algorithm 1, eps 0.1, N 50) and ``entropic`` (exact root-find).
    """
    from sac_minimal.sac import SAC, SACConfig, ot_loss, transport_masses
    from sac_minimal.ssad import SSAD

    rows = []
    for batch in batches:
        appearance, motion = torch.randn(batch, 1024, length), torch.randn(batch, 1024, length)
        host = SSAD(in_channels=2048)

        def host_step():
            host(torch.randn(batch, 2048, length)).square().mean().backward()

        row = {"B": batch, "host": median_seconds(host_step, repeats)}
        for solver in ("sinkhorn", "entropic"):
            sac = SAC(SACConfig.official(solver=solver)).train()

            def sac_step():
                output = sac(appearance, motion)
                (output.features.square().mean() + output.losses["total"]).backward()

            structure = torch.sigmoid(torch.randn(batch, 2, length)).requires_grad_(True)
            modality = torch.softmax(torch.randn(batch, 2), -1).requires_grad_(True)
            frame = torch.sigmoid(torch.randn(batch, length)).requires_grad_(True)

            def ot_step():
                ot_loss(structure, *transport_masses(modality, frame, False), sac.config).backward()

            row[f"sac_{solver}"] = median_seconds(sac_step, repeats)
            row[f"ot_{solver}"] = median_seconds(ot_step, repeats)
        rows.append(row)
    return rows


def format_sac_table(rows: list[dict]) -> str:
    header = (f"{'B':>4} | {'host':>8} | {'SAC (sink)':>10} {'OT (sink)':>9} {'OT/step':>7} |"
              f" {'SAC (exact)':>11} {'OT (exact)':>10} {'OT/step':>7}")
    title = ("milliseconds per forward+backward (median), T 128, 2 x 1024 channels, official preset; "
             "OT/step = OT loss / (host + SAC)")
    lines = [title, header, "-" * len(header)]
    for row in rows:
        line = f"{row['B']:>4} | {1e3 * row['host']:>8.1f} |"
        for solver, width in (("sinkhorn", 10), ("entropic", 11)):
            share = row[f"ot_{solver}"] / (row["host"] + row[f"sac_{solver}"])
            line += (f" {1e3 * row[f'sac_{solver}']:>{width}.1f} {1e3 * row[f'ot_{solver}']:>{width - 1}.2f}"
                     f" {share:>7.1%} |")
        lines.append(line.rstrip(" |"))
    return "\n".join(lines)


def thumos_sized_ground_truth(videos: int = 212, instances: int = 16, seed: int = 0) -> list:
    """Test-split-sized ground truth: ``videos`` videos of THUMOS14-like durations with ``instances`` each."""
    import numpy as np

    from sac_minimal.data.thumos14 import VideoRecord

    rng = np.random.default_rng(seed)
    records = []
    for index in range(videos):
        duration = float(np.clip(160 * np.exp(0.8 * rng.standard_normal()), 30, 1600))
        starts = np.sort(rng.uniform(0, duration - 10, instances))
        segments = np.stack([starts, starts + rng.uniform(0.5, 10, instances)], axis=1)
        records.append(VideoRecord(video=f"video_{index:04d}", split="test", fps=30.0, duration=duration,
                                   num_frames=round(duration * 30), segments=segments,
                                   labels=np.full(instances, rng.integers(0, 20))))
    return records


def bench_detection(repeats: int = 3, detections_per_video: int = 200, seed: int = 0) -> dict:
    """Seconds to evaluate ``detections_per_video`` detections per video at 7 thresholds, and to post-process the
    raw outputs of every test window of those videos (random outputs: nothing passes the background filter's
    test, the worst case for NMS)."""
    import numpy as np

    from sac_minimal.anchors import default_anchors
    from sac_minimal.data.windows import window_starts
    from sac_minimal.detection import Detections, postprocess
    from sac_minimal.evaluation import evaluate_detections

    rng = np.random.default_rng(seed)
    ground_truth = thumos_sized_ground_truth(seed=seed)
    count = len(ground_truth) * detections_per_video
    video_index = np.repeat(np.arange(len(ground_truth)), detections_per_video)
    gt_index = rng.integers(0, 16, count)
    truth = np.stack([ground_truth[video].segments[index] for video, index in zip(video_index, gt_index)])
    segments = truth + rng.normal(0, 1.0, truth.shape)
    segments[:, 1] = np.maximum(segments[:, 1], segments[:, 0] + 0.1)
    labels = np.array([ground_truth[video].labels[0] for video in video_index])
    detections = Detections(videos=tuple(video.video for video in ground_truth), video_index=video_index,
                            labels=labels, segments=segments, scores=rng.random(count))
    evaluation = median_seconds(lambda: evaluate_detections(detections, ground_truth), repeats)

    starts = [window_starts(video.num_frames, 256, 512) for video in ground_truth]
    window_video = np.concatenate([np.full(len(begin), index) for index, begin in enumerate(starts)])
    raw = torch.randn(len(window_video), 140, 24, generator=torch.Generator().manual_seed(seed))
    anchors = default_anchors()
    post = median_seconds(lambda: postprocess(raw, anchors, window_video=window_video,
                                              begin_frame=np.concatenate(starts),
                                              videos=[video.video for video in ground_truth],
                                              fps=[video.fps for video in ground_truth]), repeats)
    return {"videos": len(ground_truth), "detections": count, "evaluation_s": evaluation,
            "windows": len(window_video), "anchors": len(window_video) * 140, "postprocess_s": post}


def format_detection_table(result: dict) -> str:
    return (f"evaluation: {result['videos']} videos, {result['detections']} detections, 7 tIoU thresholds: "
            f"{result['evaluation_s']:.3f} s\n"
            f"post-processing: {result['windows']} windows, {result['anchors']} anchors (random outputs): "
            f"{result['postprocess_s']:.3f} s")


TRAIN_BENCH_MODELS = (("ssad", "ssad", "official"), ("ssad_input_gradient", "ssad", "official"),
                      ("ssad_theta", "ssad_theta", "official"), ("ssad_sac", "ssad_sac", "official"),
                      ("ssad_sac_light", "ssad_sac", "light"))
"""The models :func:`bench_train` times: (result key, model, SAC preset). ``ssad_input_gradient`` is SSAD that
also computes the gradient with respect to its input features: the least any module in front of SSAD adds, since
its attention can only learn through that gradient."""


def bench_train(batch: int = 4, channels: int = 1024, repeats: int = 10, device: str = "auto", runs: int = 1) -> dict:
    """Training steps per second (forward, SSAD loss, backward, Adam) of SSAD, SSAD+Θ, SSAD+SAC and SSAD+SAC with the
    light Θ (:meth:`~sac_minimal.sac.SACConfig.light`) at the official widths on random windows, and each one's
    cost ratio over a SSAD step. With ``runs`` > 1, that many runs train at once (:mod:`sac_minimal.lab.group`) and the
    rates are run-steps per second (``runs`` / seconds per grouped step), comparable with ``runs`` = 1."""
    from sac_minimal.anchors import default_anchors
    from sac_minimal.lab.config import profile
    from sac_minimal.lab.group import ModelGroup
    from sac_minimal.lab.train import Detector, choose_device, training_losses

    target = choose_device(device)
    generator = torch.Generator().manual_seed(0)
    appearance = torch.randn(runs, batch, channels, 128, generator=generator).to(target)
    motion = torch.randn(runs, batch, channels, 128, generator=generator).to(target)
    segments = torch.tensor([[0.1, 0.3], [0.5, 0.8]]).expand(runs, batch, 2, 2).to(target)
    labels = torch.tensor([3, 7]).expand(runs, batch, 2).to(target)
    priority = torch.rand(runs, batch, 140, generator=generator).to(target)
    anchors = default_anchors().to(target)
    result = {"device": str(target), "batch": batch, "channels": channels, "repeats": repeats, "runs": runs}

    def make_step(key: str, model_name: str, preset: str):
        torch.manual_seed(0)
        inputs = ((appearance.clone().requires_grad_(), motion.clone().requires_grad_())
                  if key == "ssad_input_gradient" else (appearance, motion))
        group = ModelGroup([Detector(profile("full", model=model_name, sac_preset=preset), channels, channels)
                            .to(target) for _ in range(runs)]).train()
        optimizer = torch.optim.Adam(group.parameters(), lr=1e-4)

        def step():
            total, _ = training_losses(group, *inputs, segments, labels, priority, anchors)
            optimizer.zero_grad(set_to_none=True)
            total.sum().backward()
            optimizer.step()
            if target.type == "cuda":
                torch.cuda.synchronize()

        return step

    steps = {key: make_step(key, model_name, preset) for key, model_name, preset in TRAIN_BENCH_MODELS}
    times = {key: [] for key in steps}
    for step in steps.values():  # warm-up
        step()
    for _ in range(repeats):  # round robin, so that a slow phase of the machine hits every model alike
        for key, step in steps.items():
            tick = time.perf_counter()
            step()
            times[key].append(time.perf_counter() - tick)
    for key in steps:
        result[key] = runs / statistics.median(times[key])
    for key, _, _ in TRAIN_BENCH_MODELS[1:]:
        result[f"{key}_overhead"] = result["ssad"] / result[key]
    return result


class PhaseClock:
    """Wall time between successive marks, by phase name, with the device synchronised at every mark."""

    def __init__(self, device: torch.device):
        self.device, self.times, self.recording, self.last = device, {}, True, 0.0

    def _now(self) -> float:
        if self.device.type == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter()

    def start(self) -> None:
        self.last = self._now()

    def mark(self, phase: str) -> None:
        now = self._now()
        if self.recording:
            self.times.setdefault(phase, []).append(now - self.last)
        self.last = now


def random_resident_windows(windows: int, channels: int, device: torch.device, generator: torch.Generator):
    """``windows`` random windows of 128 steps over a random feature bank of ``2 x channels`` columns, resident on
    ``device``, each with two ground-truth segments (for timing training steps)."""
    from sac_minimal.data.thumos14 import FeatureFormat
    from sac_minimal.data.windows import ResidentWindows

    length = 128
    bank = torch.randn(windows * length // 2 + length, 2 * channels, generator=generator)
    starts = torch.randint(0, bank.shape[0] - length, (windows,), generator=generator)
    return ResidentWindows.from_tensors(
        bank, starts[:, None] + torch.arange(length), torch.tensor([[0.1, 0.3], [0.5, 0.8]]).expand(windows, 2, 2),
        torch.tensor([3, 7]).expand(windows, 2), FeatureFormat(width=2 * channels), device)


def bench_step_phases(batch: int = 4, channels: int = 1024, repeats: int = 10, device: str = "auto",
                      preset: str = "official", windows: int = 1024) -> dict:
    """Where one SSAD+SAC training step spends its time, phase by phase (milliseconds, medians), at the official
    widths: taking the batch from device-resident windows, SAC's forward (and within it the transport problem:
    50 Sinkhorn iterations in the official preset), SSAD's forward, SSAD's loss (matching, negatives), the backward
    pass, and Adam. On CUDA the device is synchronised between phases, so the phases add up to a slower step than
    an unsynchronised one."""
    from sac_minimal.anchors import default_anchors
    from sac_minimal.lab.config import profile
    from sac_minimal.detection import ssad_loss_runs
    from sac_minimal.sac import WithSAC, ot_loss, transport_masses
    from sac_minimal.lab.train import Detector, choose_device

    target = choose_device(device)
    generator = torch.Generator().manual_seed(0)
    resident = random_resident_windows(windows, channels, target, generator)
    anchors = default_anchors().to(target)
    torch.manual_seed(0)
    model = Detector(profile("full", model="ssad_sac", sac_preset=preset), channels, channels).to(target).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    config = model.sac.config

    clock = PhaseClock(target)
    for repeat in range(repeats + 1):  # the first round warms up
        clock.recording = repeat > 0
        clock.start()
        appearance, motion, segments, labels = resident.batch(torch.randint(0, windows, (batch,), generator=generator))
        clock.mark("data")
        sac_output = model.sac(appearance, motion)
        clock.mark("sac_forward")
        with torch.no_grad():  # the transport problem alone, on the same inputs (already inside sac_forward)
            masses = transport_masses(sac_output.modality_attention, sac_output.frame_attention,
                                      config.mass_normalisation)
            ot_loss(sac_output.structure, *masses, config)
        clock.mark("transport")  # not a phase of the step: counted inside sac_forward
        raw = model.ssad(sac_output.features)
        clock.mark("ssad_forward")
        priority = torch.rand(1, batch, len(anchors), generator=generator).to(target)
        ssad_loss = ssad_loss_runs(raw[None], segments[None], labels[None], anchors, priority)["total"][0]
        loss = WithSAC.total_loss(ssad_loss, sac_output.losses)
        clock.mark("ssad_loss")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        clock.mark("backward")
        optimizer.step()
        clock.mark("adam")
    times = clock.times
    result = {name: 1000 * statistics.median(values) for name, values in times.items()}
    result["step"] = sum(value for name, value in result.items() if name != "transport")
    return {"device": str(target), "batch": batch, "preset": preset, "milliseconds": result}


def format_step_phases(result: dict) -> str:
    milliseconds = result["milliseconds"]
    labels = {"data": "batch from resident windows", "sac_forward": "SAC forward",
              "transport": "  of which the transport problem", "ssad_forward": "SSAD forward",
              "ssad_loss": "SSAD loss", "backward": "backward (SAC + SSAD)", "adam": "Adam"}
    title = (f"one SSAD+SAC training step on {result['device']}, batch {result['batch']}, {result['preset']} "
             "preset (milliseconds, median)")
    lines = [title]
    for name, label in labels.items():
        share = 100 * milliseconds[name] / milliseconds["step"]
        lines.append(f"  {label:<34} {milliseconds[name]:8.2f}  {share:5.1f} %")
    lines.append(f"  {'step':<34} {milliseconds['step']:8.2f}")
    return "\n".join(lines)


TRAIN_TABLE_LINE = re.compile(
    r"training steps/s on (?P<device>\S+), batch (?P<batch>\d+), 2 x (?P<channels>\d+) channels"
    r"(?:, (?P<runs>\d+) runs at once \(run-steps/s\))?: SSAD (?P<ssad>[\d.]+), SSAD\+Θ (?P<ssad_theta>[\d.]+), "
    r"SSAD\+SAC (?P<ssad_sac>[\d.]+), SSAD\+SAC light Θ (?P<ssad_sac_light>[\d.]+)")


def parse_train_tables(text: str) -> list[dict]:
    """The rates of every ``bench train`` table printed in ``text`` (:func:`format_train_table`'s first line), as
    dicts with the keys of :func:`bench_train`: how a measurement made on a machine that was lent and wiped (whose
    printed output is all that came back) is read again. A text with no such line raises a ``ValueError``."""
    tables = []
    for match in TRAIN_TABLE_LINE.finditer(text):
        fields = match.groupdict()
        tables.append({"device": fields["device"], "batch": int(fields["batch"]),
                       "channels": int(fields["channels"]), "runs": int(fields["runs"] or 1),
                       **{key: float(fields[key]) for key in ("ssad", "ssad_theta", "ssad_sac", "ssad_sac_light")}})
    if not tables:
        raise ValueError("no `bench train` table in this text: expected a line that starts "
                         "'training steps/s on <device>, batch <b>, 2 x <c> channels'")
    return tables


def format_train_table(result: dict) -> str:
    from sac_minimal.lab.ablations import PAPER_COST

    together = f", {result['runs']} runs at once (run-steps/s)" if result["runs"] > 1 else ""
    return (f"training steps/s on {result['device']}, batch {result['batch']}, 2 x {result['channels']} channels"
            f"{together}: "
            f"SSAD {result['ssad']:.1f}, SSAD+Θ {result['ssad_theta']:.1f}, SSAD+SAC {result['ssad_sac']:.1f}, "
            f"SSAD+SAC light Θ {result['ssad_sac_light']:.1f}\n"
            f"cost of a step over SSAD's: SSAD+SAC {result['ssad_sac_overhead']:.2f}x (Θ alone "
            f"{result['ssad_theta_overhead']:.2f}x), SSAD+SAC light Θ {result['ssad_sac_light_overhead']:.2f}x, "
            f"SSAD with the input gradient (the floor for any module in front) "
            f"{result['ssad_input_gradient_overhead']:.2f}x; the paper's FLOPs ratio is "
            f"{PAPER_COST['SSAD+SAC'][1]} / {PAPER_COST['SSAD'][1]} = "
            f"{PAPER_COST['SSAD+SAC'][1] / PAPER_COST['SSAD'][1]:.2f}")
