"""Several runs of one model trained at once: stacked parameters and one vectorised forward (``torch.func``).

The seeds of a Table I row are R runs of the same architecture that differ only in their initial weights, their
batch order and their random negatives. Instead of R small training loops, stack the R models' parameters along a new
leading axis (``torch.func.stack_module_state``) and map one forward over it (``torch.func.vmap``): every layer then
runs once on R x B windows, which is what keeps a GPU busy when the official batch is only 4 windows. Adam acts on
each parameter element on its own, so one Adam over the stacked parameters is exactly R independent Adams.

A group of one is the plain module (no ``torch.func``), so single runs train as ordinary PyTorch code.

Each run's model and optimizer state can be taken out of the group and put back (:meth:`ModelGroup.state_dict`,
:func:`optimizer_state_of`, :func:`load_optimizer_states`) in the format of a single run, so checkpoints of a group
and of single runs are interchangeable.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import torch
from torch import nn
from torch.func import functional_call, stack_module_state, vmap


class ModelGroup:
    """R models of one architecture trained together.

    ``group(appearance [R, B, Da, T], motion [R, B, Dm, T]) -> (raw [R, B, A, V], sac_losses {name: [R]})`` for
    :class:`~sac_minimal.lab.train.Detector`-like modules returning ``(tensor, dict of scalars)``.
    """

    def __init__(self, models: Sequence[nn.Module]):
        if not models:
            raise ValueError("a ModelGroup needs at least one model")
        self.size = len(models)
        self.template = models[0]  # a real module: the single run itself, or where a run is loaded for evaluation
        if self.size == 1:
            self.parameters_by_name = dict(self.template.named_parameters())
            self.buffers_by_name = dict(self.template.named_buffers())
            return
        self.parameters_by_name, self.buffers_by_name = stack_module_state(list(models))
        self.stateless = copy.deepcopy(self.template).to("meta")  # structure only; weights come from the stacks
        self._set_host_sync(self.stateless, False)  # data-dependent branches cannot run under vmap

    @staticmethod
    def _set_host_sync(module: nn.Module, allowed: bool) -> None:
        for submodule in module.modules():
            if hasattr(submodule, "allow_host_sync"):
                submodule.allow_host_sync = allowed

    def disable_host_sync(self) -> None:
        """Turn off every step that makes the host read a device value (input checks, early stops), for compiled
        or graph-captured training; the caller checks its data once instead."""
        self._set_host_sync(self.template, False)

    def parameters(self) -> list[torch.Tensor]:
        """The trainable tensors, in ``named_parameters`` order (stacked ``[R, ...]`` when R > 1)."""
        return list(self.parameters_by_name.values())

    def train(self, mode: bool = True) -> ModelGroup:
        self.template.train(mode)
        if self.size > 1:
            self.stateless.train(mode)
        return self

    def __call__(self, appearance: torch.Tensor, motion: torch.Tensor):
        if self.size == 1:
            raw, losses = self.template(appearance[0], motion[0])
            return raw[None], {name: value[None] for name, value in losses.items()}

        def one_run(parameters, buffers, run_appearance, run_motion):
            return functional_call(self.stateless, (parameters, buffers), (run_appearance, run_motion))

        return vmap(one_run)(self.parameters_by_name, self.buffers_by_name, appearance, motion)

    def state_dict(self, run: int) -> dict:
        """Run ``run``'s weights, with the keys of the single model's ``state_dict``."""
        if self.size == 1:
            return self.template.state_dict()
        stacked = {**self.parameters_by_name, **self.buffers_by_name}
        return {name: stacked[name][run].detach().clone() for name in self.template.state_dict()}

    def load_state_dict(self, run: int, state: dict) -> None:
        if self.size == 1:
            self.template.load_state_dict(state)
            return
        stacked = {**self.parameters_by_name, **self.buffers_by_name}
        if set(state) != set(stacked):
            raise ValueError(f"state of run {run} does not fit the group: keys differ by "
                             f"{sorted(set(state) ^ set(stacked))[:5]}")
        with torch.no_grad():
            for name, value in state.items():
                stacked[name][run].copy_(value)

    def model(self, run: int) -> nn.Module:
        """A module holding run ``run``'s weights (the template itself for a group of one)."""
        if self.size > 1:
            self.template.load_state_dict(self.state_dict(run))
        return self.template


def optimizer_state_of(optimizer: torch.optim.Optimizer, group: ModelGroup, run: int) -> dict:
    """Run ``run``'s share of an optimizer over the group's parameters, as the ``state_dict`` of an optimizer over
    that run's model alone (per-element tensors sliced, shared scalars such as Adam's step kept)."""
    state = optimizer.state_dict()
    if group.size == 1:
        return state
    sliced = {index: {key: value[run].clone() if torch.is_tensor(value) and value.dim() > 0 else value
                      for key, value in entry.items()}
              for index, entry in state["state"].items()}
    return {"state": sliced, "param_groups": state["param_groups"]}


def load_optimizer_states(optimizer: torch.optim.Optimizer, group: ModelGroup, states: Sequence[dict]) -> None:
    """Inverse of :func:`optimizer_state_of`: stack R single-run optimizer states into the group's optimizer."""
    if len(states) != group.size:
        raise ValueError(f"{len(states)} optimizer states for a group of {group.size} runs")
    if group.size == 1:
        optimizer.load_state_dict(states[0])
        return
    stacked = {}
    for index, entry in states[0]["state"].items():
        stacked[index] = {}
        for key, value in entry.items():
            values = [state["state"][index][key] for state in states]
            if torch.is_tensor(value) and value.dim() > 0:
                stacked[index][key] = torch.stack(values)
            elif any(not torch.equal(torch.as_tensor(other), torch.as_tensor(value)) for other in values):
                raise ValueError(f"runs disagree on the optimizer's {key!r}; they were not trained together")
            else:
                stacked[index][key] = value
    optimizer.load_state_dict({"state": stacked, "param_groups": states[0]["param_groups"]})
