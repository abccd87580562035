"""Tests of every SAC component against hand-computed cases, and of the module's switches."""

import dataclasses
import math

import pytest
import torch

from sac_minimal.ot import entropic_ot_2xT, transport_cost
from sac_minimal.sac import (
    SAC,
    SACConfig,
    WithSAC,
    action_aware_pool,
    compose_attention,
    fnorm_loss,
    ot_loss,
    parameter_counts,
    smoothness_loss,
    transport_masses,
)

SMALL = {"appearance_channels": 6, "motion_channels": 4}


def window(batch=3, length=32, seed=0, small=SMALL):
    generator = torch.Generator().manual_seed(seed)
    return (torch.randn(batch, small["appearance_channels"], length, generator=generator),
            torch.randn(batch, small["motion_channels"], length, generator=generator))


def test_presets_and_json_round_trip():
    """The paper and official presets hold their documented values and survive a JSON round trip."""
    paper, official = SACConfig.paper(), SACConfig.official()
    assert (paper.eps, paper.lambda_smooth, paper.lambda_fnorm, paper.mass_normalisation) == (1e-3, 0.1, 0.01, True)
    assert (official.eps, official.n_iter, official.lambda_smooth, official.lambda_fnorm) == (0.1, 50, 1.0, 0.0)
    assert official.structure_activation == "sigmoid" and official.modulate == "projected"
    assert paper.structure_activation == "none" and paper.modulate == "raw"
    for config in (paper, official, SACConfig.paper(attention="sequential", solver="entropic")):
        assert SACConfig.from_json(config.to_json()) == config
    with pytest.raises(ValueError, match="unknown SACConfig fields"):
        SACConfig.from_json('{"epsilon": 0.1}')


def test_config_rejects_bad_values():
    with pytest.raises(ValueError, match="attention must be one of"):
        SACConfig(attention="spatial")
    with pytest.raises(ValueError, match="use_ot needs modality and frame attention"):
        SACConfig(attention="frame")
    SACConfig(attention="frame", use_ot=False)


def test_action_aware_pool_hand_case():
    features = torch.zeros(1, 2, 8)
    features[0, :, 2] = torch.tensor([3.0, 4.0])  # norm 5
    features[0, :, 5] = torch.tensor([0.0, 2.0])  # norm 2
    features[0, :, 7] = torch.tensor([1.0, 0.0])  # norm 1
    pooled = action_aware_pool(features, ratio=2 / 8)  # floor(8 * 1/4) = 2 steps: t = 2 and t = 5
    assert torch.allclose(pooled, torch.tensor([[1.5, 3.0]]))
    with pytest.raises(ValueError, match="keeps floor"):
        action_aware_pool(features, ratio=1 / 16)


def test_compose_attention_shape_and_columns():
    modality = torch.tensor([[0.25, 0.75]])
    frame = torch.tensor([[0.2, 1.0, 0.6]])
    composed = compose_attention(modality, frame)
    assert composed.shape == (1, 2, 3)
    assert torch.allclose(composed, torch.tensor([[[0.05, 0.25, 0.15], [0.15, 0.75, 0.45]]]))
    assert torch.allclose(composed.sum(1), frame)


def test_transport_masses_paper_sum_to_T_and_official_are_raw():
    modality = torch.softmax(torch.randn(4, 2), -1)
    frame = torch.sigmoid(torch.randn(4, 16))
    supplier, receiver = transport_masses(modality, frame, mass_normalisation=True)
    assert torch.allclose(supplier.sum(-1), torch.full((4,), 16.0))
    assert torch.allclose(receiver.sum(-1), torch.full((4,), 16.0))
    raw_supplier, raw_receiver = transport_masses(modality, frame, mass_normalisation=False)
    assert raw_supplier is modality and raw_receiver is frame


def test_ot_loss_official_scale_is_paper_over_T():
    generator = torch.Generator().manual_seed(1)
    structure = torch.sigmoid(torch.randn(3, 2, 20, generator=generator, dtype=torch.float64))
    modality = torch.softmax(torch.randn(3, 2, generator=generator, dtype=torch.float64), -1)
    frame = torch.sigmoid(torch.randn(3, 20, generator=generator, dtype=torch.float64))
    paper = SACConfig.paper(eps=0.1)
    official = SACConfig.official()
    paper_loss = ot_loss(structure, *transport_masses(modality, frame, True), paper)
    official_loss = ot_loss(structure, *transport_masses(modality, frame, False), official)
    assert official_loss.item() == pytest.approx(paper_loss.item() / 20, rel=1e-6)
    # hand check of the paper loss against the exact entropic plan
    supplier, receiver = transport_masses(modality, frame, True)
    exact = transport_cost(structure, entropic_ot_2xT(structure, supplier, receiver, 0.1).plan).mean()
    assert paper_loss.item() == pytest.approx(exact.item(), rel=1e-6)


def test_both_solvers_give_the_same_loss_at_eps_0_1():
    generator = torch.Generator().manual_seed(2)
    structure = torch.sigmoid(torch.randn(8, 2, 128, generator=generator))
    supplier, receiver = transport_masses(torch.softmax(torch.randn(8, 2, generator=generator), -1),
                                          torch.sigmoid(torch.randn(8, 128, generator=generator)), True)
    sinkhorn = ot_loss(structure, supplier, receiver, SACConfig.paper(eps=0.1, solver="sinkhorn"))
    entropic = ot_loss(structure, supplier, receiver, SACConfig.paper(eps=0.1, solver="entropic"))
    assert abs(sinkhorn.item() - entropic.item()) / abs(entropic.item()) < 1e-5


def test_smoothness_hand_cases():
    """Eqs. (3)-(4) on hand-computed cases, in the paper's and the official variant."""
    # S rises by 0.1 per step in modality 0 and stays flat in modality 1; T = 5, eta = 0.8 keeps 4 of 4 diffs
    structure = torch.stack([torch.arange(5) * 0.1, torch.zeros(5)]).unsqueeze(0)
    paper = smoothness_loss(structure, eta=0.8, reduce="max", difference="signed")
    assert paper.item() == pytest.approx(-math.log(1 - 0.1))
    official = smoothness_loss(structure, eta=0.8, reduce="sum", difference="absolute")
    assert official.item() == pytest.approx(-math.log(1 - 0.1))
    # a single jump (an action boundary) is ignored when eta leaves it out: 3 of 4 differences kept
    jump = torch.tensor([[[0.0, 0.0, 0.9, 0.9, 0.9], [0.0, 0.0, 0.0, 0.0, 0.0]]])
    assert smoothness_loss(jump, eta=0.6, reduce="max", difference="signed").item() == pytest.approx(0.0)
    assert smoothness_loss(jump, eta=1.0, reduce="max", difference="signed").item() > 0.2
    # signed vs absolute differ on an S that falls in both modalities (by 0.1 and 0.2 per step): the max-pooled
    # profile s^f is the row falling by 0.1 (Eq. 3 pools before it differences)
    falling = -torch.stack([torch.arange(5) * 0.1, torch.arange(5) * 0.2]).unsqueeze(0)
    assert smoothness_loss(falling, 0.8, "max", "signed").item() == pytest.approx(-math.log(1.1))
    assert smoothness_loss(falling, 0.8, "max", "absolute").item() == pytest.approx(-math.log(0.9))


def test_fnorm_hand_case_and_trivial_solution():
    """Eq. (5) on a hand case; it rewards a larger S, the opposite of L_OT's trivial S -> 0."""
    structure = torch.tensor([[[3.0, 0.0], [0.0, 4.0]]])  # ||S||_F = 5, T = 2
    assert fnorm_loss(structure).item() == pytest.approx(-5 / 4)
    assert fnorm_loss(torch.zeros(1, 2, 2)).item() == 0.0  # S -> 0 is what L_F makes costly


@pytest.mark.parametrize("config", [SACConfig.paper(**SMALL), SACConfig.official(**SMALL),
                                    SACConfig.paper(attention="sequential", solver="entropic", **SMALL)])
def test_gradients_reach_every_parameter_in_training(config):
    sac = SAC(config).train()
    appearance, motion = window()
    output = sac(appearance, motion)
    (output.features.square().mean() + output.losses["total"]).backward()
    for name, parameter in sac.named_parameters():
        assert parameter.grad is not None and torch.isfinite(parameter.grad).all(), name
    assert output.features.shape == (3, 10, 32) and output.attention.shape == (3, 2, 32)
    assert set(output.losses) == {"ot", "smooth", "fnorm", "total"}


def test_eval_mode_solves_no_transport(monkeypatch):
    import sac_minimal.sac as sac_module

    def forbidden(*args, **kwargs):
        raise AssertionError("no OT in eval mode")

    monkeypatch.setattr(sac_module, "ot_loss", forbidden)
    sac = SAC(SACConfig.paper(**SMALL)).eval()
    output = sac(*window())
    assert output.losses == {} and output.structure is None


def test_attention_modes_change_what_they_should():
    appearance, motion = window()
    for mode in ("none", "joint", "modality", "frame", "composed", "sequential", "nonlocal"):
        config = SACConfig.paper(attention=mode, use_ot=mode in ("composed", "sequential"), **SMALL)
        output = SAC(config).train()(appearance, motion)
        assert output.features.shape == (3, 10, 32), mode
        if mode == "frame":
            assert torch.allclose(output.modality_attention, torch.full((3, 2), 0.5))
            assert torch.allclose(output.attention[:, 0], output.attention[:, 1])
        if mode == "modality":
            assert torch.allclose(output.frame_attention, torch.ones(3, 32))
            assert torch.allclose(output.attention, output.modality_attention.unsqueeze(-1).expand(-1, -1, 32))
        if mode == "none":
            assert torch.equal(output.attention, torch.ones(3, 2, 32))
        if mode in ("composed", "sequential"):
            assert torch.allclose(output.attention.sum(1), output.frame_attention, atol=1e-6)
            assert torch.allclose(output.modality_attention.sum(-1), torch.ones(3))


def test_modulate_switch_uses_raw_or_projected_features():
    appearance, motion = window()
    raw = SAC(SACConfig.paper(attention="none", use_ot=False, **SMALL)).eval()
    assert torch.allclose(raw(appearance, motion).features, torch.cat([appearance, motion], 1))
    projected = SAC(SACConfig.paper(attention="none", use_ot=False, modulate="projected", **SMALL)).eval()
    expected = torch.cat([projected.theta_appearance(appearance), projected.theta_motion(motion)], 1)
    assert torch.allclose(projected(appearance, motion).features, expected)


def test_pooling_switch():
    """The pooling switch changes the modality attention: average pooling differs from action-aware pooling (Eq. 1)."""
    appearance, motion = window()
    base = SACConfig.paper(attention="modality", use_ot=False, projection=False, **SMALL)
    torch.manual_seed(0)
    action_aware = SAC(base).eval()
    torch.manual_seed(0)
    average = SAC(dataclasses.replace(base, pooling="average")).eval()
    assert not torch.allclose(action_aware(appearance, motion).modality_attention,
                              average(appearance, motion).modality_attention)


def test_with_sac_adds_the_losses():
    host = torch.nn.Conv1d(10, 3, kernel_size=1)
    model = WithSAC(SAC(SACConfig.official(**SMALL)), host).train()
    prediction, sac_terms = model(*window())
    host_loss = prediction.square().mean()
    total = WithSAC.total_loss(host_loss, sac_terms)
    expected = host_loss + sac_terms["ot"] + sac_terms["smooth"]  # Eq. (6) with the official weights 1, 1, 0
    assert total.item() == pytest.approx(expected.item())
    model.eval()
    prediction, sac_terms = model(*window())
    host_loss = prediction.sum()
    assert sac_terms == {} and WithSAC.total_loss(host_loss, sac_terms) is host_loss
    baseline = WithSAC(None, torch.nn.Conv1d(10, 3, kernel_size=1))  # no SAC: the host on the concatenation
    appearance, motion = window()
    expected = baseline.host(torch.cat([appearance, motion], dim=1))
    assert torch.equal(baseline(appearance, motion)[0], expected)


def test_parameter_counts_official_theta():
    counts = parameter_counts(SACConfig.official())
    assert counts["theta"] == 4 * (1024 * 1024 * 3 + 1024)  # about 12.6 M
    assert counts["structure"] == 2048 * 2 + 2
    assert counts["attention"] == (2048 + 1) + (2048 * 2 + 2)


def test_light_theta_widths_and_counts():
    light = SACConfig.light()
    assert (light.theta_layers, light.theta_reduction, light.modulate) == (1, 8, "raw")
    assert light.eps == SACConfig.official().eps and light.structure_activation == "sigmoid"
    counts = parameter_counts(light)
    assert counts["theta"] == 2 * (1024 * 128 * 3 + 128)  # one Conv1d(1024, 128, k3) per modality
    assert counts["attention"] == (256 + 1) + (256 * 2 + 2) and counts["structure"] == 256 * 2 + 2
    # Reduced Theta and projected modulation: the host gets the reduced width, heads read it too.
    config = SACConfig.official(theta_reduction=2, theta_layers=3, **SMALL)
    assert (config.projected_channels, config.output_channels) == (5, 5)
    output = SAC(config).train()(*window())
    assert output.features.shape == (3, 5, 32) and output.structure.shape == (3, 2, 32)
    assert len(SAC(config).theta_appearance.layers) == 6
    raw_output = SAC(SACConfig.light(**SMALL, theta_reduction=2))(*window())
    assert raw_output.features.shape == (3, 10, 32)
    nonlocal_config = SACConfig.official(attention="nonlocal", use_ot=False, theta_reduction=2, **SMALL)
    assert SAC(nonlocal_config)(*window()).features.shape == (3, 5, 32)
    with pytest.raises(ValueError, match="theta_layers >= 1"):
        SACConfig(theta_layers=0)
    with pytest.raises(ValueError, match="leaves no channels"):
        SACConfig(theta_reduction=8, **SMALL)


@pytest.mark.parametrize(
    "appearance_shape, motion_shape, message",
    [
        ((2, 5, 32), (2, 4, 32), r"appearance features must be \[B, 6, T\]"),
        ((2, 6, 32), (2, 4, 30), "must share batch size and length T"),
        ((2, 6, 4), (2, 4, 4), "too short for action-aware pooling"),
    ],
)
def test_bad_inputs(appearance_shape, motion_shape, message):
    """Wrong widths, mismatched shapes and windows too short to pool raise clear errors."""
    sac = SAC(SACConfig.paper(**SMALL))
    with pytest.raises(ValueError, match=message):
        sac(torch.randn(appearance_shape), torch.randn(motion_shape))


def test_nan_features_rejected():
    appearance, motion = window()
    appearance[0, 0, 3] = float("nan")
    with pytest.raises(ValueError, match="NaN or Inf"):
        SAC(SACConfig.paper(**SMALL))(appearance, motion)


@pytest.mark.parametrize("preset", ["official", "light", "paper", "stabilised", "ssad_theta"])
def test_every_convolution_starts_with_the_official_init(preset):
    """The official code's model.apply(weight_init): Kaiming-uniform weights (bound sqrt(6 / fan_in), so a standard
    deviation of sqrt(2 / fan_in)) and zero biases on every Conv1d, SAC's Θ and heads included; PyTorch's default
    (bound 1 / sqrt(fan_in), non-zero bias) would fail both checks."""
    from sac_minimal.lab.config import profile
    from sac_minimal.initialisation import official_bound
    from sac_minimal.lab.train import Detector

    torch.manual_seed(0)
    model = "ssad_theta" if preset == "ssad_theta" else "ssad_sac"
    config = profile("quick", model=model, sac_preset="official" if preset == "ssad_theta" else preset)
    detector = Detector(config, 64, 64)
    convolutions = [module for module in detector.sac.modules() if isinstance(module, torch.nn.Conv1d)]
    assert len(convolutions) >= 2
    for conv in convolutions:
        bound = official_bound(conv)
        assert conv.bias.abs().max() == 0
        assert conv.weight.abs().max() <= bound
        if conv.weight.numel() >= 1000:  # enough draws for the spread to be close to the uniform's
            assert conv.weight.std().item() == pytest.approx(bound / math.sqrt(3), rel=0.1)
            assert conv.weight.abs().max() > 0.9 * bound


def test_training_reports_the_collapse_monitors_and_evaluation_does_not():
    sac = SAC(SACConfig.official(**SMALL)).train()
    output = sac(*window())
    assert set(output.monitors) == {"appearance_share", "modality_max", "structure_mean"}
    assert output.monitors["appearance_share"].item() == pytest.approx(output.modality_attention[:, 0].mean().item())
    assert not output.monitors["structure_mean"].requires_grad
    assert SAC(SACConfig.official(**SMALL)).eval()(*window()).monitors == {}
    frame_only = SAC(SACConfig.official(attention="frame", use_ot=False, **SMALL)).train()(*window())
    assert "structure_mean" not in frame_only.monitors and frame_only.monitors["appearance_share"] == 0.5


def _attended(name, **changes):
    from sac_minimal.sac import SAC, SACConfig

    torch.manual_seed(0)
    config = SACConfig.official(appearance_channels=8, motion_channels=8, attention=name,
                                use_ot=name in ("composed", "sequential"), **changes)
    sac = SAC(config).train()
    appearance, motion = torch.randn(3, 8, 16), torch.randn(3, 8, 16)
    return sac, appearance, motion, sac(appearance, motion)


def test_the_composed_attention_is_the_outer_product_of_its_two_attentions():
    sac, appearance, motion, out = _attended("composed")
    projected = torch.cat([sac.theta_appearance(appearance), sac.theta_motion(motion)], dim=1)
    assert torch.allclose(out.modality_attention, sac.modality_attention(sac.pool(projected)))
    assert torch.allclose(out.frame_attention, sac.frame_attention(projected))
    assert torch.allclose(out.attention, out.modality_attention[:, :, None] * out.frame_attention[:, None, :])
    assert set(out.losses) == {"ot", "smooth", "fnorm", "total"}


def test_modality_only_and_frame_only_attention_fix_the_other_factor():
    _, _, _, modality = _attended("modality")
    assert torch.equal(modality.frame_attention, torch.ones(3, 16))
    assert torch.allclose(modality.attention, modality.modality_attention[:, :, None].expand(-1, -1, 16))
    _, _, _, frame = _attended("frame")
    assert torch.equal(frame.modality_attention, torch.full((3, 2), 0.5))
    assert torch.allclose(frame.attention[:, 0], frame.attention[:, 1])
    assert torch.allclose(frame.attention[:, 0], 0.5 * frame.frame_attention)


def test_sequential_attention_reads_the_frames_after_the_modality_weights():
    sac, appearance, motion, out = _attended("sequential")
    first, second = sac.theta_appearance(appearance), sac.theta_motion(motion)
    weights = out.modality_attention
    expected = sac.frame_attention(torch.cat([first * weights[:, :1, None], second * weights[:, 1:, None]], dim=1))
    assert torch.allclose(out.frame_attention, expected)
    assert not torch.allclose(out.frame_attention, sac.frame_attention(torch.cat([first, second], dim=1)))


def test_joint_none_and_nonlocal_attention_have_no_factors():
    sac, appearance, motion, joint = _attended("joint")
    assert joint.modality_attention is None and joint.frame_attention is None
    assert ((joint.attention > 0) & (joint.attention < 1)).all()
    for name in ("none", "nonlocal"):
        sac, appearance, motion, out = _attended(name)
        assert torch.equal(out.attention, torch.ones(3, 2, 16)) and out.modality_attention is None
        projected = torch.cat([sac.theta_appearance(appearance), sac.theta_motion(motion)], dim=1)
        assert torch.allclose(out.features, projected, atol=1e-6)  # the non-local block starts as the identity


def test_sac_forward_has_no_branch_on_the_attention_mode():
    import ast
    import inspect
    import textwrap

    from sac_minimal.sac import ATTENTIONS, ATTENTION_MODES, SAC

    assert set(ATTENTIONS) == set(ATTENTION_MODES)
    source = textwrap.dedent(inspect.getsource(SAC.forward))
    assert "attention ==" not in source and "mode" not in source and len(source.splitlines()) <= 30
    assert ast.parse(source)


def test_the_per_frame_split_sums_to_one_at_every_frame_and_can_change_between_frames():
    import torch

    from sac_minimal.sac import SAC, SACConfig

    config = SACConfig.official(appearance_channels=4, motion_channels=4, attention="per_frame", use_ot=False)
    sac = SAC(config)
    out = sac(torch.randn(2, 4, 16), torch.randn(2, 4, 16))
    assert out.attention.shape == (2, 2, 16) and out.modality_attention is None
    torch.testing.assert_close(out.attention.sum(1), torch.ones(2, 16))
    with torch.no_grad():  # score_a - score_m follows the first projected channel's sign
        sac.per_frame_attention.weight.zero_()
        sac.per_frame_attention.bias.zero_()
        sac.per_frame_attention.weight[0, 0, 0] = 5.0
    projected = torch.zeros(1, 8, 6)
    projected[0, 0] = torch.tensor([1.0, -1.0, 1.0, -1.0, 1.0, -1.0])
    from sac_minimal.sac import per_frame_attention

    split = per_frame_attention(sac, None, None, projected).attention[0, 0]
    assert (split[0::2] > 0.99).all() and (split[1::2] < 0.01).all()  # appearance at one frame, motion at the next
