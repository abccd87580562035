"""Tests of sac_minimal.ot against POT, known answers, the LP optimum and finite differences."""

import itertools

import numpy as np
import ot as pot
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from sac_minimal.ot import (
    entropic_ot_2xT,
    exact_ot_2xT,
    marginal_error,
    random_2xT_problems,
    sinkhorn_log,
    transport_cost,
)


def test_pot_known_answer():
    """POT's documented example: a = b = [.5, .5], M = [[0, 1], [1, 0]], reg = 1."""
    cost = torch.tensor([[0.0, 1.0], [1.0, 0.0]], dtype=torch.float64)
    half = torch.tensor([0.5, 0.5], dtype=torch.float64)
    plan = sinkhorn_log(cost, half, half, eps=1.0, n_iter=200, gamma=0.0).plan
    expected = torch.tensor([[0.3655, 0.1345], [0.1345, 0.3655]], dtype=torch.float64)
    assert torch.allclose(plan, expected, atol=1e-4)
    entropic = entropic_ot_2xT(cost, half, half, eps=1.0).plan
    assert torch.allclose(entropic, expected, atol=1e-4)


@pytest.mark.parametrize("eps", [1.0, 0.1, 1e-2, 1e-3])
@pytest.mark.parametrize("n_iter", [1, 10, 50])
def test_sinkhorn_log_matches_pot_iterate_for_iterate(eps, n_iter):
    cost, a, b = random_2xT_problems(4, 32, seed=3)
    ours = sinkhorn_log(cost, a, b, eps=eps, n_iter=n_iter).plan
    for k in range(4):
        reference = pot.sinkhorn(
            a[k].numpy(), b[k].numpy(), cost[k].numpy(), eps,
            method="sinkhorn_log", numItermax=n_iter, stopThr=0.0, warn=False,
        )
        # gamma = 1e-8 inside log(a + gamma) is the only difference; masses are O(1)-O(T).
        assert np.abs(ours[k].numpy() - reference).max() < 1e-6 * b[k].max().item()


def test_sinkhorn_log_general_shapes_match_pot():
    generator = torch.Generator().manual_seed(5)
    cost = torch.rand(3, 5, 7, generator=generator, dtype=torch.float64)
    a = torch.rand(3, 5, generator=generator, dtype=torch.float64)
    b = torch.rand(3, 7, generator=generator, dtype=torch.float64)
    a, b = a / a.sum(-1, keepdim=True), b / b.sum(-1, keepdim=True)
    ours = sinkhorn_log(cost, a, b, eps=0.05, n_iter=100, gamma=0.0).plan
    for k in range(3):
        reference = pot.sinkhorn(a[k].numpy(), b[k].numpy(), cost[k].numpy(), 0.05,
                                 method="sinkhorn_log", numItermax=100, stopThr=0.0, warn=False)
        np.testing.assert_allclose(ours[k].numpy(), reference, atol=1e-12)


def test_rows_exact_columns_approximate():
    cost, a, b = random_2xT_problems(8, 64)
    result = sinkhorn_log(cost, a, b, eps=1e-2, n_iter=20, gamma=0.0)
    assert torch.allclose(result.plan.sum(-1), a, atol=1e-10)
    column_error = (result.plan.sum(-2) - b).abs().sum(-1) / b.sum(-1)
    assert (column_error > 1e-3).any(), "20 iterations at eps 1e-2 should leave a visible column error"
    assert torch.allclose(result.marginal_error, marginal_error(result.plan, a, b))


def test_tolerance_mode_stops_early_and_meets_tolerance():
    cost, a, b = random_2xT_problems(8, 64)
    result = sinkhorn_log(cost, a, b, eps=0.1, n_iter=1000, tol=1e-7)
    assert result.n_iter < 1000
    column_error = (result.plan.sum(-2) - b).abs().sum(-1) / b.sum(-1)
    assert (column_error < 1e-7).all()
    assert result.n_iter > 1


def test_plan_equals_potentials_formula():
    cost, a, b = random_2xT_problems(2, 16)
    eps = 0.1
    for result in (sinkhorn_log(cost, a, b, eps), entropic_ot_2xT(cost, a, b, eps)):
        rebuilt = torch.exp((result.u.unsqueeze(-1) + result.v.unsqueeze(-2) - cost) / eps)
        assert torch.allclose(rebuilt, result.plan, rtol=1e-9, atol=1e-12)


def test_transport_cost():
    """transport_cost is <C, P> summed over the last two axes, batched."""
    cost = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    plan = torch.tensor([[0.5, 0.0], [0.25, 0.25]])
    assert transport_cost(cost, plan).item() == pytest.approx(0.5 + 0.75 + 1.0)


def test_exact_matches_emd():
    cost, a, b = random_2xT_problems(16, 50, seed=7)
    plan = exact_ot_2xT(cost, a, b)
    assert torch.allclose(plan.sum(-1), a, atol=1e-9)
    assert torch.allclose(plan.sum(-2), b, atol=1e-12)
    assert (plan >= 0).all()
    for k in range(16):
        reference = pot.emd(a[k].numpy(), b[k].numpy(), cost[k].numpy())
        assert transport_cost(cost[k], plan[k]).item() == pytest.approx((cost[k].numpy() * reference).sum(), abs=1e-9)
    # at most one frame is split between the two modalities
    split = ((plan[:, 0] > 1e-12) & (plan[:, 1] > 1e-12)).sum(-1)
    assert (split <= 1).all()


@pytest.mark.parametrize("eps", [1.0, 0.1, 1e-2, 1e-3])
def test_entropic_root_find_matches_converged_pot(eps):
    cost, a, b = random_2xT_problems(4, 40, seed=11)
    ours = entropic_ot_2xT(cost, a, b, eps=eps).plan
    for k in range(4):
        reference = pot.sinkhorn(a[k].numpy(), b[k].numpy(), cost[k].numpy(), eps, method="sinkhorn_log",
                                 numItermax=100_000, stopThr=1e-11, warn=False)
        assert np.abs(ours[k].numpy() - reference).max() < 1e-8
    assert torch.allclose(ours.sum(-2), b, atol=1e-12)  # columns exact by construction
    assert torch.allclose(ours.sum(-1), a, atol=1e-9)


def test_entropic_approaches_exact_as_eps_shrinks():
    cost, a, b = random_2xT_problems(4, 40, seed=2)
    exact = transport_cost(cost, exact_ot_2xT(cost, a, b))
    gaps = [(transport_cost(cost, entropic_ot_2xT(cost, a, b, eps).plan) - exact).abs().max().item()
            for eps in (0.1, 1e-2, 1e-3, 1e-4)]
    assert all(later < earlier for earlier, later in itertools.pairwise(gaps))
    assert gaps[-1] < 1e-2


@pytest.mark.parametrize("eps", [0.1, 1e-2])
def test_entropic_gradient_matches_finite_differences(eps):
    cost, a, b = random_2xT_problems(2, 12, seed=4)
    cost.requires_grad_(True)

    def loss(cost_):
        return transport_cost(cost_, entropic_ot_2xT(cost_, a, b, eps, check_inputs=False).plan).sum()

    assert torch.autograd.gradcheck(loss, (cost,), eps=1e-7, atol=1e-6)


def test_entropic_mass_gradients_match_finite_differences():
    cost, a, b = random_2xT_problems(2, 12, seed=9)
    a.requires_grad_(True)
    b.requires_grad_(True)
    eps = 0.05

    def loss(a_, b_):
        return transport_cost(cost, entropic_ot_2xT(cost, a_, b_, eps, check_inputs=False).plan).sum()

    grad_a, grad_b = torch.autograd.grad(loss(a, b), (a, b))
    generator = torch.Generator().manual_seed(0)
    direction_a = torch.randn(a.shape, generator=generator, dtype=a.dtype)
    direction_b = torch.randn(b.shape, generator=generator, dtype=b.dtype)
    # keep the masses equal along the direction
    direction_b += (direction_a.sum(-1, keepdim=True) - direction_b.sum(-1, keepdim=True)) / b.shape[-1]
    step = 1e-6
    with torch.no_grad():
        finite = (loss(a + step * direction_a, b + step * direction_b)
                  - loss(a - step * direction_a, b - step * direction_b)) / (2 * step)
    analytic = (grad_a * direction_a).sum() + (grad_b * direction_b).sum()
    assert analytic.item() == pytest.approx(finite.item(), rel=1e-5, abs=1e-8)


def test_unrolled_sinkhorn_gradient_matches_finite_differences():
    cost, a, b = random_2xT_problems(2, 8, seed=6)
    cost.requires_grad_(True)

    def loss(cost_):
        return transport_cost(cost_, sinkhorn_log(cost_, a, b, 0.1, n_iter=30, check_inputs=False).plan).sum()

    assert torch.autograd.gradcheck(loss, (cost,), eps=1e-7, atol=1e-6)


def test_converged_unrolled_gradient_equals_implicit_gradient():
    cost, a, b = random_2xT_problems(2, 16, seed=8)
    cost.requires_grad_(True)
    unrolled = torch.autograd.grad(transport_cost(cost, sinkhorn_log(cost, a, b, 0.1, n_iter=400).plan).sum(), cost)
    implicit = torch.autograd.grad(transport_cost(cost, entropic_ot_2xT(cost, a, b, 0.1).plan).sum(), cost)
    assert torch.allclose(unrolled[0], implicit[0], atol=1e-8)


@pytest.mark.parametrize("solver", ["sinkhorn", "entropic"])
def test_no_nan_in_float32_at_tiny_eps(solver):
    cost, a, b = random_2xT_problems(64, 128, dtype=torch.float32, seed=1)
    for tensor in (cost, a, b):
        tensor.requires_grad_(True)
    if solver == "sinkhorn":
        plan = sinkhorn_log(cost, a, b, eps=1e-4).plan
    else:
        plan = entropic_ot_2xT(cost, a, b, eps=1e-4).plan
    transport_cost(cost, plan).sum().backward()
    assert torch.isfinite(plan).all()
    for tensor in (cost, a, b):
        assert torch.isfinite(tensor.grad).all()


def test_float32_and_leading_dims():
    """Every solver accepts float32 and any number of leading batch dimensions."""
    cost, a, b = random_2xT_problems(6, 20, dtype=torch.float32)
    cost4, a4, b4 = cost.view(2, 3, 2, 20), a.view(2, 3, 2), b.view(2, 3, 20)
    for solve in (lambda c, x, y: sinkhorn_log(c, x, y, 0.1).plan,
                  lambda c, x, y: entropic_ot_2xT(c, x, y, 0.1).plan,
                  exact_ot_2xT):
        flat, nested = solve(cost, a, b), solve(cost4, a4, b4)
        assert nested.dtype == torch.float32 and nested.shape == (2, 3, 2, 20)
        assert torch.allclose(flat.view(2, 3, 2, 20), nested)


def test_unequal_masses_give_the_balanced_plan():
    """The official code's case: fixed-iteration Sinkhorn silently solves (a, b * sum(a) / sum(b))."""
    cost, a, b = random_2xT_problems(3, 24)
    unbalanced = b * 0.37
    balanced = unbalanced * a.sum(-1, keepdim=True) / unbalanced.sum(-1, keepdim=True)
    plan_unbalanced = sinkhorn_log(cost, a, unbalanced, 0.1, gamma=0.0).plan
    plan_balanced = sinkhorn_log(cost, a, balanced, 0.1, gamma=0.0).plan
    assert torch.allclose(plan_unbalanced, plan_balanced, atol=1e-10)


@settings(max_examples=40, deadline=None)
@given(
    length=st.integers(2, 40),
    batch=st.integers(1, 4),
    eps=st.sampled_from([1.0, 0.1, 1e-2]),
    seed=st.integers(0, 10_000),
)
def test_property_couplings(length, batch, eps, seed):
    """For random problems the exact and entropic plans are couplings, Sinkhorn's rows are exact and, converged, it
    agrees with the root-find; the exact plan is never beaten on the linear cost."""
    cost, a, b = random_2xT_problems(batch, length, seed=seed)
    b = b * torch.rand(b.shape, generator=torch.Generator().manual_seed(seed), dtype=b.dtype)  # frames may be ~empty
    b = b / b.sum(-1, keepdim=True) * a.sum(-1, keepdim=True)
    exact = exact_ot_2xT(cost, a, b)
    entropic = entropic_ot_2xT(cost, a, b, eps).plan
    sinkhorn = sinkhorn_log(cost, a, b, eps, n_iter=5000, tol=1e-10, gamma=0.0)
    for plan in (exact, entropic):
        assert (plan >= 0).all()
        assert torch.allclose(plan.sum(-2), b, rtol=1e-6, atol=1e-8)
        assert torch.allclose(plan.sum(-1), a, rtol=1e-6, atol=1e-8)
    assert torch.allclose(sinkhorn.plan.sum(-1), a, rtol=1e-9)  # Sinkhorn's rows are exact at every iteration
    if sinkhorn.n_iter < 5000:  # near-degenerate problems can need more; when it reports convergence it agrees
        assert torch.allclose(entropic, sinkhorn.plan, atol=1e-6 * length)
    # the exact plan is never beaten by a regularised one on the linear cost
    assert (transport_cost(cost, exact) <= transport_cost(cost, entropic) + 1e-9).all()


def _valid():
    return random_2xT_problems(2, 8)


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda c, a, b: (c, -a, b), "a has negative"),
        (lambda c, a, b: (c, a, b.index_fill(-1, torch.tensor([0]), float("nan"))), "b contains NaN"),
        (lambda c, a, b: (c, a * 0, b), "a has zero total mass"),
        (lambda c, a, b: (c.index_fill(-1, torch.tensor([1]), float("inf")), a, b), "cost contains NaN or Inf"),
        (lambda c, a, b: (c.index_fill(-1, torch.tensor([1]), float("nan")), a, b), "cost contains NaN or Inf"),
        (lambda c, a, b: (c, a, b[..., :5]), "shape mismatch"),
        (lambda c, a, b: (c, a[:1].expand(3, 2), b), "do not broadcast"),
    ],
)
def test_bad_inputs_raise_clear_errors(mutate, message):
    """Each malformed input raises an error that names the argument at fault."""
    cost, a, b = mutate(*_valid())
    for solve in (lambda: sinkhorn_log(cost, a, b, 0.1), lambda: entropic_ot_2xT(cost, a, b, 0.1),
                  lambda: exact_ot_2xT(cost, a, b)):
        with pytest.raises(ValueError, match=message):
            solve()


@pytest.mark.parametrize("eps", [0.0, -1.0, float("nan"), float("inf")])
def test_bad_eps(eps):
    """eps must be a positive finite number."""
    cost, a, b = _valid()
    with pytest.raises(ValueError, match="eps must be a positive"):
        sinkhorn_log(cost, a, b, eps)
    with pytest.raises(ValueError, match="eps must be a positive"):
        entropic_ot_2xT(cost, a, b, eps)


def test_unequal_masses_rejected_where_required():
    cost, a, b = _valid()
    for solve in (lambda: exact_ot_2xT(cost, a, 2 * b), lambda: entropic_ot_2xT(cost, a, 2 * b, 0.1),
                  lambda: sinkhorn_log(cost, a, 2 * b, 0.1, tol=1e-6)):
        with pytest.raises(ValueError, match="needs equal total masses.*Rescale"):
            solve()
    sinkhorn_log(cost, a, 2 * b, 0.1)  # fixed-iteration mode accepts it, like the official code


def test_two_row_solvers_reject_other_shapes():
    cost = torch.rand(3, 5, dtype=torch.float64)
    a = torch.full((3,), 5 / 3, dtype=torch.float64)
    b = torch.ones(5, dtype=torch.float64)
    with pytest.raises(ValueError, match=r"2 x T problems"):
        exact_ot_2xT(cost, a, b)
    with pytest.raises(ValueError, match=r"2 x T problems"):
        entropic_ot_2xT(cost, a, b, 0.1)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_entropic_stop_early_gives_the_full_run_answer(dtype):
    cost, a, b = random_2xT_problems(32, 128, dtype=dtype, seed=12)
    early = entropic_ot_2xT(cost, a, b, 0.1)
    full = entropic_ot_2xT(cost, a, b, 0.1, stop_early=False)
    assert early.n_iter < full.n_iter == 30
    tolerance = 1e-5 if dtype == torch.float32 else 1e-12
    assert torch.allclose(early.plan, full.plan, atol=tolerance * b.max().item())


def _saturated_sac_logits(seed: int, scale: float, dtype: torch.dtype):
    """Pre-activation logits of a batch of SAC's problems ``[8, 2, 128]``: structure, modality and frame attention;
    ``scale`` saturates them (at 8: S within 1e-3 of 0 or 1 for most entries, a_m down to 1e-5, a_f down to 1e-6)."""
    generator = torch.Generator().manual_seed(seed)
    structure = torch.randn(8, 2, 128, generator=generator, dtype=torch.float64) * scale
    modality = torch.randn(8, 2, generator=generator, dtype=torch.float64) * scale
    frame = torch.randn(8, 128, generator=generator, dtype=torch.float64) * scale - scale
    return [logits.to(dtype).requires_grad_() for logits in (structure, modality, frame)]


def _transport_gradients(solver: str, seed: int, scale: float, dtype: torch.dtype) -> list:
    """Gradients of L_OT (mean over the batch) with respect to the three logits, as SAC's presets compute it."""
    structure, modality, frame = _saturated_sac_logits(seed, scale, dtype)
    supplier, receiver = torch.softmax(modality, -1), torch.sigmoid(frame)
    if solver == "official":  # sigmoid S, raw masses, Algorithm 1 with eps 0.1, N 50
        cost = torch.sigmoid(structure)
        plan = sinkhorn_log(cost, supplier, receiver, 0.1, n_iter=50, check_inputs=False).plan
    elif solver == "stabilised":  # S a softmax over the two modalities
        cost = torch.softmax(structure, dim=1)
        plan = sinkhorn_log(cost, supplier, receiver, 0.1, n_iter=50, check_inputs=False).plan
    else:  # the exact entropic root-find, on the balanced masses
        cost = torch.sigmoid(structure)
        receiver = receiver * supplier.sum(-1, keepdim=True) / receiver.sum(-1, keepdim=True)
        plan = entropic_ot_2xT(cost, supplier, receiver, 0.1, check_inputs=False).plan
    transport_cost(cost, plan).mean().backward()
    return [logits.grad.double() for logits in (structure, modality, frame)]


@pytest.mark.parametrize("solver", ["official", "stabilised", "entropic"])
def test_float32_transport_gradients_within_1e4_of_float64_on_saturated_problems(solver):
    """Training in float32 (a GPU run) must get SAC's transport gradients to about four digits, also where the
    attentions saturate. Algorithm 1 in the residual form of the official code does (about 2e-5 here); potentials
    recomputed from scratch each iteration lose one to two digits (up to 4e-4 on the frame attention's logits)."""
    for scale in (2.0, 5.0, 8.0):
        for seed in range(3):
            exact = _transport_gradients(solver, seed, scale, torch.float64)
            single = _transport_gradients(solver, seed, scale, torch.float32)
            for name, want, got in zip(("structure", "modality", "frame"), exact, single):
                error = float((got - want).abs().max() / want.abs().max())
                assert error < 1e-4, (solver, scale, seed, name, error)


def test_the_direct_update_the_first_records_used_is_kept_for_them():
    """The records made before the official loss were trained with Algorithm 1 as written (potentials recomputed
    from scratch); ``residual=False`` is that loop, bit for bit (written out here), so they still verify. The two forms
    agree in float64; in float32 the direct one loses digits on a saturated problem, which is why it is not the
    default."""
    from sac_minimal.lab.config import TrainConfig, profile

    structure, modality, frame = _saturated_sac_logits(0, 8.0, torch.float32)
    cost, a, b = torch.sigmoid(structure), torch.softmax(modality, -1), torch.sigmoid(frame)
    log_a, log_b, neg_cost = torch.log(a + 1e-8).unsqueeze(-1), torch.log(b + 1e-8).unsqueeze(-2), -cost / 0.1
    log_u = torch.zeros_like(log_a)
    for _ in range(50):
        log_v = log_b - torch.logsumexp(neg_cost + log_u, dim=-2, keepdim=True)
        log_u = log_a - torch.logsumexp(neg_cost + log_v, dim=-1, keepdim=True)
    direct = sinkhorn_log(cost, a, b, 0.1, n_iter=50, check_inputs=False, residual=False).plan
    assert torch.equal(direct, torch.exp(neg_cost + log_u + log_v))
    double = [tensor.double() for tensor in (cost, a, b)]
    assert torch.allclose(sinkhorn_log(*double, 0.1, n_iter=50, residual=False).plan,
                          sinkhorn_log(*double, 0.1, n_iter=50).plan, rtol=0, atol=1e-12)
    recorded = {key: value for key, value in profile("quick", model="ssad_sac").to_dict().items()
                if key not in ("loss", "sinkhorn_update")}  # a config recorded before configs named their loss
    old = TrainConfig.from_dict(recorded)
    assert old.sinkhorn_update == "direct" and not old.sac_config(64, 64).sinkhorn_residual
    assert TrainConfig.from_dict({**recorded, "loss": "official"}).sac_config(64, 64).sinkhorn_residual
