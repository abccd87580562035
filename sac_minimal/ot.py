"""Optimal-transport solvers used by SAC: pure functions on tensors.

Everything here is batched over any leading dimensions and works in float32 and float64:
``cost`` is ``[..., M, N]``, the supplier masses ``a`` are ``[..., M]`` and the receiver masses ``b`` are
``[..., N]``. A *plan* (coupling) ``P`` is ``[..., M, N]`` with row sums ``a`` and column sums ``b``.

In SAC (Eq. 2 of the paper) ``M = 2`` (the two modalities supply attention), ``N = T`` (the frames receive it)
and the cost is the learned structure matrix ``S``. The book derives every solver:

* :func:`sinkhorn_log` -- Algorithm 1 of the paper, log-domain Sinkhorn (notebooks 02 and 03);
* :func:`exact_ot_2xT` -- the unregularised 2 x T problem, solved exactly by sorting (notebook 03);
* :func:`entropic_ot_2xT` -- the entropic 2 x T problem, solved exactly by a 1-D root-find (notebook 03).

References: Cuturi (2013), "Sinkhorn distances"; Peyre & Cuturi (2019), "Computational Optimal Transport",
Sections 4.2-4.4 (Sinkhorn, log-domain stabilisation); Yang et al. (2022), SAC, Algorithm 1.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

import torch

__all__ = [
    "TransportResult",
    "entropic_ot_2xT",
    "exact_ot_2xT",
    "marginal_error",
    "random_2xT_problems",
    "sinkhorn_log",
    "transport_cost",
]


@dataclass(frozen=True)
class TransportResult:
    """What a regularised solver returns.

    Attributes:
        plan: the transport plan ``[..., M, N]``.
        u: row (supplier) dual potential ``[..., M]``, in the units of the cost.
        v: column (receiver) dual potential ``[..., N]``, in the units of the cost.
            The plan is ``exp((u_i + v_j - C_ij) / eps)``.
        n_iter: the number of iterations (Sinkhorn) or root-finding steps actually run.
        marginal_error: ``[...]``, ``(|P 1 - a|_1 + |P^T 1 - b|_1) / sum(b)`` for each problem: how far the
            plan is from being a coupling of ``a`` and ``b``, relative to the total mass.
    """

    plan: torch.Tensor
    u: torch.Tensor
    v: torch.Tensor
    n_iter: int
    marginal_error: torch.Tensor


def as_eps(eps) -> float:
    """``eps`` as a Python float: any real number (``0.1``, ``np.float32(0.1)``) or a one-element tensor, positive and
    finite; anything else is a ``ValueError``."""
    if isinstance(eps, torch.Tensor) and eps.numel() == 1:
        eps = eps.item()
    if isinstance(eps, bool) or not isinstance(eps, numbers.Real) or not (math.isfinite(eps) and eps > 0):
        raise ValueError(f"eps must be a positive finite number, got {eps!r}.")
    return float(eps)


def _check_problem(cost, a, b, eps=None, *, need_equal_mass=False, solver="this solver"):
    """Validate a batch of transport problems; raise ``TypeError`` or ``ValueError`` naming the bad argument."""
    for name, tensor in (("cost", cost), ("a", a), ("b", b)):
        if not isinstance(tensor, torch.Tensor):
            raise TypeError(f"{name} must be a torch.Tensor, got {type(tensor).__name__}.")
        if not tensor.is_floating_point():
            raise ValueError(f"{name} must be a floating-point tensor (float32 or float64), got {tensor.dtype}.")
    if cost.dim() < 2:
        raise ValueError(f"cost must have shape [..., M, N], got {tuple(cost.shape)}.")
    if cost.numel() == 0 or a.numel() == 0 or b.numel() == 0:
        raise ValueError(f"empty problem: cost {tuple(cost.shape)}, a {tuple(a.shape)}, b {tuple(b.shape)}; every "
                         "dimension must be at least 1.")
    if a.dim() < 1 or b.dim() < 1:
        raise ValueError(f"a must be [..., M] and b [..., N]; got a {tuple(a.shape)} and b {tuple(b.shape)}.")
    rows, cols = cost.shape[-2:]
    if a.shape[-1] != rows or b.shape[-1] != cols:
        raise ValueError(
            f"shape mismatch: cost is [..., {rows}, {cols}] so a must be [..., {rows}] and b [..., {cols}]; "
            f"got a {tuple(a.shape)} and b {tuple(b.shape)}."
        )
    try:
        torch.broadcast_shapes(cost.shape[:-2], a.shape[:-1], b.shape[:-1])
    except RuntimeError as error:
        raise ValueError(
            f"shape mismatch: the batch dimensions of cost {tuple(cost.shape[:-2])}, a {tuple(a.shape[:-1])} "
            f"and b {tuple(b.shape[:-1])} do not broadcast."
        ) from error
    if eps is not None:
        eps = as_eps(eps)
        if eps < torch.finfo(cost.dtype).tiny:
            raise ValueError(f"eps = {eps!r} is below the smallest positive {cost.dtype} ({torch.finfo(cost.dtype).tiny:.3g})"
                             "; raise eps or use float64.")
    with torch.no_grad():
        checks = (
            (~torch.isfinite(cost).all(), "cost contains NaN or Inf; check the network that produced it."),
            (torch.isnan(a).any(), "a contains NaN."),
            (torch.isnan(b).any(), "b contains NaN."),
            ((a < 0).any(), "a has negative entries; masses must be >= 0."),
            ((b < 0).any(), "b has negative entries; masses must be >= 0."),
            (~torch.isfinite(a).all(), "a contains Inf."),
            (~torch.isfinite(b).all(), "b contains Inf."),
            ((a.sum(-1) <= 0).any(), "a has zero total mass in some problem; every problem needs positive mass."),
            ((b.sum(-1) <= 0).any(), "b has zero total mass in some problem; every problem needs positive mass."),
        )
        failed = torch.stack([condition for condition, _ in checks]).tolist()  # one host synchronisation
    for failure, (_, message) in zip(failed, checks):
        if failure:
            raise ValueError(message)
    if need_equal_mass:
        with torch.no_grad():
            mass_a, mass_b = a.sum(-1), b.sum(-1)
            relative_gap = ((mass_a - mass_b).abs() / torch.maximum(mass_a, mass_b)).max().item()
        tolerance = 1e-4 if torch.finfo(cost.dtype).bits <= 32 else 1e-6
        if relative_gap > tolerance:
            raise ValueError(
                f"{solver} needs equal total masses, but sum(a) and sum(b) differ by a relative "
                f"{relative_gap:.3g}. Rescale one side, e.g. b * a.sum(-1, keepdim=True) / b.sum(-1, keepdim=True) "
                "(the balanced problem that fixed-iteration log-domain Sinkhorn silently solves)."
            )


def marginal_error(plan: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``(|P 1 - a|_1 + |P^T 1 - b|_1) / sum(b)`` per problem: ``[..., M, N] -> [...]``."""
    row_gap = (plan.sum(-1) - a).abs().sum(-1)
    col_gap = (plan.sum(-2) - b).abs().sum(-1)
    return (row_gap + col_gap) / b.sum(-1)


def transport_cost(cost: torch.Tensor, plan: torch.Tensor) -> torch.Tensor:
    """The linear transport cost ``<C, P> = sum_ij C_ij P_ij`` per problem (the paper's L_OT, Eq. 2).

    Args:
        cost: ``[..., M, N]``.
        plan: ``[..., M, N]``.

    Returns:
        ``[...]``, one value per problem (no entropy term, like POT's ``sinkhorn2``).
    """
    if cost.shape[-2:] != plan.shape[-2:]:
        raise ValueError(f"cost {tuple(cost.shape)} and plan {tuple(plan.shape)} must share their last two sizes.")
    return (cost * plan).sum(dim=(-2, -1))


# Longer than 60 lines for its docstring: Algorithm 1, its convergence, the masses and a worked example (the
# code is about 40 lines).
def sinkhorn_log(
    cost: torch.Tensor,
    a: torch.Tensor,
    b: torch.Tensor,
    eps: float,
    n_iter: int = 50,
    tol: float | None = None,
    gamma: float = 1e-8,
    check_inputs: bool = True,
    residual: bool = True,
) -> TransportResult:
    """Log-domain Sinkhorn, exactly the paper's Algorithm 1 (v update, then u update).

    Solves ``min_P <C, P> + eps * sum_ij P_ij (log P_ij - 1)`` subject to ``P 1 = a``, ``P^T 1 = b`` with
    the dual potentials ``u`` ``[..., M]`` and ``v`` ``[..., N]`` (cost units, starting at zero)::

        v_j <- eps * log(b_j + gamma) - eps * logsumexp_i((u_i - C_ij) / eps)
        u_i <- eps * log(a_i + gamma) - eps * logsumexp_j((v_j - C_ij) / eps)
        P_ij = exp((u_i + v_j - C_ij) / eps)

    ``gamma`` keeps ``log`` finite for zero masses (the paper's choice). Because ``u`` is updated last, the row
    marginal ``P 1 = a`` is exact after every iteration and the column marginal is only approximate.

    With ``tol=None`` exactly ``n_iter`` iterations run (the paper's fixed N). With a ``tol`` the loop stops, after
    at most ``n_iter`` iterations, once every problem's column-marginal L1 error relative to its total mass is below
    ``tol`` (``gamma`` perturbs the masses, so a ``tol`` below about ``gamma`` is never reached: use
    ``gamma=0`` for tighter ones). Gradients flow by unrolled autograd through all iterations.

    Unequal masses are accepted in fixed-iteration mode (the official SAC code relies on it): scaling ``b`` only
    shifts ``v`` by a constant that the next u update removes, so the plan is the balanced plan for
    ``(a, b * sum(a) / sum(b))``. With a ``tol`` equal masses are required, since unequal ones never converge.

    Args:
        cost: ``[..., M, N]`` cost matrix C (SAC: the structure matrix S, ``[B, 2, T]``).
        a: ``[..., M]`` supplier masses (SAC: modality attention).
        b: ``[..., N]`` receiver masses (SAC: frame attention).
        eps: entropic regularisation, absolute on the cost scale (paper 1e-3, official code 0.1).
        n_iter: the number of iterations (fixed mode) or the cap (tolerance mode).
        tol: optional stopping threshold on the relative column-marginal error.
        gamma: added to the masses inside ``log``.
        check_inputs: validate the inputs, and the result: a plan that is not finite or whose row sums (exact in
            exact arithmetic) miss ``a`` by more than 1 % raises a ``ValueError`` (costs too large for eps in this
            dtype). Costs host synchronisations; training turns it off, where the loop's NaN guard stops a
            non-finite loss instead.
        residual: compute each update as the official code does, the potential plus its correction (default), or
            directly as written above (the form the book's records made before the official loss used). The two
            are equal in exact arithmetic; in float32 the residual form's unrolled gradient keeps one to two more
            digits.

    Returns:
        :class:`TransportResult`.

    Example (POT's documented answer for two points and eps = 1):

    >>> cost = torch.tensor([[0.0, 1.0], [1.0, 0.0]], dtype=torch.float64)
    >>> half = torch.tensor([0.5, 0.5], dtype=torch.float64)
    >>> sinkhorn_log(cost, half, half, eps=1.0, n_iter=100, gamma=0.0).plan.numpy().round(4)
    array([[0.3655, 0.1345],
           [0.1345, 0.3655]])
    """
    if check_inputs:
        _check_problem(cost, a, b, eps, need_equal_mass=tol is not None, solver="sinkhorn_log with a tol")
        eps = as_eps(eps)
    if n_iter < 1:
        raise ValueError(f"n_iter must be >= 1, got {n_iter}.")
    if not (math.isfinite(gamma) and gamma >= 0):
        raise ValueError(f"gamma must be a finite number >= 0 (it is added to the masses inside log), got {gamma}.")
    if tol is not None and not (math.isfinite(tol) and tol > 0):
        raise ValueError(f"tol must be a positive finite number (or None for a fixed n_iter), got {tol}.")
    neg_cost = -cost / eps  # [..., M, N]
    log_a = torch.log(a + gamma).unsqueeze(-1)  # [..., M, 1]
    log_b = torch.log(b + gamma).unsqueeze(-2)  # [..., 1, N]
    batch_shape = torch.broadcast_shapes(cost.shape[:-2], a.shape[:-1], b.shape[:-1])
    log_u = cost.new_zeros(*batch_shape, cost.shape[-2], 1)  # u / eps
    log_v = cost.new_zeros(*batch_shape, 1, cost.shape[-1])  # v / eps
    iterations = 0
    for iterations in range(1, n_iter + 1):
        # The residual form of the official code: each potential changes by its correction. In exact arithmetic
        # it is the update of the docstring; in float32 its unrolled gradient keeps one to two more digits.
        if residual:
            log_v = log_v + (log_b - torch.logsumexp(neg_cost + log_u + log_v, dim=-2, keepdim=True))
            log_u = log_u + (log_a - torch.logsumexp(neg_cost + log_u + log_v, dim=-1, keepdim=True))
        else:
            log_v = log_b - torch.logsumexp(neg_cost + log_u, dim=-2, keepdim=True)
            log_u = log_a - torch.logsumexp(neg_cost + log_v, dim=-1, keepdim=True)
        if tol is not None:
            with torch.no_grad():
                column_sums = torch.exp(neg_cost + log_u + log_v).sum(-2)
                relative = (column_sums - b).abs().sum(-1) / b.sum(-1)
                if bool((relative < tol).all()):
                    break
    plan = torch.exp(neg_cost + log_u + log_v)
    with torch.no_grad():
        error = marginal_error(plan, a, b)
    if check_inputs:
        _check_result(plan, a, cost, eps)
    return TransportResult(
        plan=plan,
        u=eps * log_u.squeeze(-1),
        v=eps * log_v.squeeze(-2),
        n_iter=iterations,
        marginal_error=error,
    )


ROW_MARGINAL_TOLERANCE = 1e-2
"""The rows of a log-domain Sinkhorn plan sum to ``a`` after every iteration; an error above this fraction of the
mass means the arithmetic broke down (costs far larger than eps for the dtype), not slow convergence."""


def _check_result(plan: torch.Tensor, a: torch.Tensor, cost: torch.Tensor, eps: float, remedy: str = "") -> None:
    """Raise a ``ValueError`` when a plan is not finite or misses its exact (row) marginals."""
    with torch.no_grad():
        finite = bool(torch.isfinite(plan).all())
        row_error = ((plan.sum(-1) - a).abs().sum(-1) / a.sum(-1)).max().item() if finite else math.inf
    if row_error > ROW_MARGINAL_TOLERANCE:
        scale = cost.abs().max().item() / eps
        what = "is not finite" if not finite else f"misses its row masses by {row_error:.3g} of the total"
        remedy = remedy or (f"That is more than {cost.dtype} can resolve: rescale the cost (e.g. to [0, 1]), raise "
                            "eps, or use float64.")
        raise ValueError(f"the transport plan {what}; the costs reach {scale:.3g} x eps. {remedy}")


def _check_two_rows(cost):
    if cost.shape[-2] != 2:
        raise ValueError(
            f"this solver is for 2 x T problems (two modalities): cost must be [..., 2, T], got {tuple(cost.shape)}."
        )


def exact_ot_2xT(cost: torch.Tensor, a: torch.Tensor, b: torch.Tensor, check_inputs: bool = True) -> torch.Tensor:
    """Exact unregularised OT for 2 x T problems, by sorting frames on ``d_t = C_1t - C_2t``.

    With column sums fixed, ``<C, P> = sum_t b_t C_2t + sum_t P_1t d_t``: the first row should take the frames
    with the smallest ``d_t`` until its mass ``a_1`` is spent. So sort ``d`` ascending, fill greedily, and at most
    one frame (the split frame) is shared between the rows. Same optimum as ``ot.emd``; O(T log T) per problem.

    Args:
        cost: ``[..., 2, T]``.
        a: ``[..., 2]``; ``b``: ``[..., T]``, with ``sum(a) == sum(b)``.

    Returns:
        the plan ``[..., 2, T]``. It is piecewise constant in ``cost`` (its gradient w.r.t. the cost is zero);
        ``transport_cost(cost, plan)`` has the correct gradient ``plan`` w.r.t. the cost.

    Example: appearance is cheaper on frames 0 and 1, motion on frame 2; appearance has mass 2, so it serves the
    two frames where it is cheapest and motion the third:

    >>> cost = torch.tensor([[0.1, 0.2, 0.9], [0.8, 0.7, 0.3]])
    >>> exact_ot_2xT(cost, torch.tensor([2.0, 1.0]), torch.ones(3))
    tensor([[1., 1., 0.],
            [0., 0., 1.]])
    """
    if check_inputs:
        _check_problem(cost, a, b, need_equal_mass=True, solver="exact_ot_2xT")
    _check_two_rows(cost)
    batch_shape = torch.broadcast_shapes(cost.shape[:-2], a.shape[:-1], b.shape[:-1])
    cost = cost.expand(*batch_shape, *cost.shape[-2:])
    b = b.expand(*batch_shape, b.shape[-1])
    first_mass = a[..., :1].expand(*batch_shape, 1)
    order = torch.argsort(cost[..., 0, :] - cost[..., 1, :], dim=-1)  # [..., T]
    b_sorted = torch.gather(b, -1, order)
    mass_before = torch.cumsum(b_sorted, dim=-1) - b_sorted
    first_row_sorted = torch.minimum(b_sorted, (first_mass - mass_before).clamp_min(0))
    first_row = torch.empty_like(first_row_sorted).scatter(-1, order, first_row_sorted)
    return torch.stack([first_row, b - first_row], dim=-2)


def _pair_weights(delta, d, b, eps):
    """``b_t * sigmoid((delta - d_t) / eps)`` and its derivative in delta times eps; shapes ``[..., T]``."""
    share = torch.sigmoid((delta - d) / eps)
    mass = b * share
    return mass, mass * (1 - share)


# Longer than 60 lines for its docstring (the derivation, the gradients and a worked example) and the commented
# safeguarded Newton loop, which reads best in one piece.
def entropic_ot_2xT(
    cost: torch.Tensor,
    a: torch.Tensor,
    b: torch.Tensor,
    eps: float,
    n_steps: int = 30,
    check_inputs: bool = True,
    stop_early: bool = True,
) -> TransportResult:
    """The exact entropic 2 x T transport plan by a 1-D monotone root-find (safeguarded Newton).

    Fixing the column potentials at their optimum for given row potentials gives
    ``P_1t = b_t * sigmoid((delta - d_t) / eps)`` and ``P_2t = b_t - P_1t`` with ``d_t = C_1t - C_2t`` and
    ``delta = (u_1 - u_2)``: the columns are exact by construction. The row constraint
    ``F(delta) = sum_t b_t sigmoid((delta - d_t) / eps) - a_1 = 0`` is one increasing scalar equation per problem.
    Its root lies in the bracket ``[min d + eps * logit(p), max d + eps * logit(p)]`` with ``p = a_1 / sum(b)``.
    Each step takes a Newton step on the log-odds ``logit(A(delta) / sum(b)) - logit(p)`` (``A`` the first row's
    mass; linear in ``delta`` for a single frame, so Newton converges fast and does not cycle) and falls back to
    bisection when the step leaves the bracket. With ``stop_early`` the loop checks every 4 steps whether every row
    constraint holds to ``16 * machine eps`` of the total mass (the precision of the sums themselves) and ends
    there; without it exactly ``n_steps`` run with no host synchronisation (for CUDA graphs, torch.compile).

    Gradients use implicit differentiation: ``d delta / d theta = -(dF/d theta) / F'(delta)`` at the root, applied
    to ``cost``, ``a`` and ``b`` through a straight-through Newton correction (the forward value is unchanged).
    This is the gradient of the converged solution, which unrolled Sinkhorn only approaches.

    Args:
        cost: ``[..., 2, T]``; ``a``: ``[..., 2]``; ``b``: ``[..., T]`` with ``sum(a) == sum(b)``.
        eps: entropic regularisation (> 0), absolute on the cost scale.
        n_steps: root-finding steps (30 reach machine precision for eps >= 1e-4 and costs in [0, 1]).
        stop_early: stop once every root is found to machine precision (one host synchronisation per 4 steps).

    Returns:
        :class:`TransportResult` with ``u = (delta, 0)`` and the matching column potentials ``v``.

    Example: the same problem as POT's documented one (two points, eps = 1), with no iteration count to choose:

    >>> cost = torch.tensor([[0.0, 1.0], [1.0, 0.0]], dtype=torch.float64)
    >>> half = torch.tensor([0.5, 0.5], dtype=torch.float64)
    >>> entropic_ot_2xT(cost, half, half, eps=1.0).plan.numpy().round(4)
    array([[0.3655, 0.1345],
           [0.1345, 0.3655]])
    """
    if check_inputs:
        _check_problem(cost, a, b, eps, need_equal_mass=True, solver="entropic_ot_2xT")
        eps = as_eps(eps)
    _check_two_rows(cost)
    if n_steps < 1:
        raise ValueError(f"n_steps must be >= 1, got {n_steps}.")
    d = cost[..., 0, :] - cost[..., 1, :]  # [..., T]
    total = b.sum(-1, keepdim=True)  # [..., 1]
    first_mass = a[..., :1]  # [..., 1]
    with torch.no_grad():
        tiny = torch.finfo(cost.dtype).eps
        share = (first_mass / total).clamp(tiny, 1 - tiny)
        offset = eps * torch.log(share / (1 - share))
        low = d.amin(-1, keepdim=True) + offset
        high = d.amax(-1, keepdim=True) + offset
        delta = 0.5 * (low + high)
        steps = 0
        for steps in range(1, n_steps + 1):
            mass, slope = _pair_weights(delta, d, b, eps)
            first_row_mass = mass.sum(-1, keepdim=True)
            residual = first_row_mass - first_mass
            low = torch.where(residual < 0, delta, low)
            high = torch.where(residual >= 0, delta, high)
            # Newton on the log-odds G = logit(A / B) - logit(p), A = first-row mass: for one frame G is linear in
            # delta, and for many it is far closer to linear than F, so Newton does not cycle the way it can on F.
            second_row_mass = (total - first_row_mass).clamp_min(tiny * total)
            first_row_mass = first_row_mass.clamp_min(tiny * total)
            log_odds_gap = torch.log(first_row_mass / second_row_mass) - torch.log(first_mass / (total - first_mass))
            log_odds_slope = slope.sum(-1, keepdim=True) * total / (first_row_mass * second_row_mass)
            newton = delta - eps * log_odds_gap / log_odds_slope.clamp_min(torch.finfo(cost.dtype).tiny)
            inside = (newton >= low) & (newton <= high)
            delta = torch.where(inside, newton, 0.5 * (low + high))
            if stop_early and steps % 4 == 0 and bool((residual.abs() <= 16 * tiny * total).all()):
                break
    # The correction is applied whenever autograd records (not only when an input reports requires_grad: under
    # torch.func.vmap the batched inputs do not report it, and skipping it there silently changes the gradient).
    if torch.is_grad_enabled():
        mass, slope = _pair_weights(delta, d, b, eps)
        residual = mass.sum(-1, keepdim=True) - first_mass
        # Floor the slope at a tiny fraction of the mass: in the fully saturated (eps -> 0) limit the root is not
        # differentiable and the floor keeps gradients finite instead of Inf.
        slope_floor = (total * torch.finfo(cost.dtype).eps).detach()
        derivative = (slope.sum(-1, keepdim=True).detach() / eps).clamp_min(slope_floor)
        delta = delta - (residual - residual.detach()) / derivative
    first_row = b * torch.sigmoid((delta - d) / eps)
    plan = torch.stack([first_row, b - first_row], dim=-2)
    u = torch.cat([delta, torch.zeros_like(delta)], dim=-1)
    log_b = torch.log(b.clamp_min(torch.finfo(b.dtype).tiny))
    v = eps * log_b - eps * torch.logsumexp((u.unsqueeze(-1) - cost) / eps, dim=-2)
    with torch.no_grad():
        error = marginal_error(plan, a, b)
    if check_inputs:  # n_steps halvings of the bracket cannot place the root of a problem whose eps is far smaller
        _check_result(plan, a, cost, eps, f"{n_steps} root-finding steps cannot resolve eps = {eps:.3g} on costs "
                                          "this spread: raise eps or n_steps, or use exact_ot_2xT (eps -> 0).")
    return TransportResult(plan=plan, u=u, v=v, n_iter=steps, marginal_error=error)


def random_2xT_problems(batch: int, length: int, *, generator: torch.Generator | None = None, seed: int = 0,
                        dtype: torch.dtype = torch.float64) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Random 2 x T problems shaped like SAC's, for the notebooks, the tests and the benchmarks.

    The cost is ``sigmoid(2 z)`` ``[B, 2, T]`` (a structure matrix in (0, 1)), the row masses ``T softmax(z)``
    ``[B, 2]`` (a modality attention), the column masses ``T sigmoid(2 z) / sum`` ``[B, T]`` (a frame attention),
    so both sides carry mass T. Draws from ``generator``, or from a new one seeded with ``seed``.

    >>> cost, a, b = random_2xT_problems(3, 5, seed=0)
    >>> cost.shape, a.shape, b.shape
    (torch.Size([3, 2, 5]), torch.Size([3, 2]), torch.Size([3, 5]))
    >>> torch.allclose(a.sum(-1), b.sum(-1)) and bool(((cost > 0) & (cost < 1)).all())
    True
    """
    generator = generator if generator is not None else torch.Generator().manual_seed(seed)
    cost = torch.sigmoid(2 * torch.randn(batch, 2, length, generator=generator, dtype=dtype))
    rows = length * torch.softmax(torch.randn(batch, 2, generator=generator, dtype=dtype), dim=-1)
    columns = torch.sigmoid(2 * torch.randn(batch, length, generator=generator, dtype=dtype))
    return cost, rows, length * columns / columns.sum(-1, keepdim=True)
