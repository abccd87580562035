"""Shared fixtures: the quick surrogate (written once per test session) and a quick config on it.

Every test runs with one torch CPU thread, as the book and the CLI do by default, so that training is
bit-identical whatever the machine's core count.
"""

import pytest
import torch

from sac_minimal.config import profile
from sac_minimal.data.synthetic import write_synthetic_thumos


def pytest_configure(config):
    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def surrogates(tmp_path_factory):
    """``surrogates(version=2, seed=3)``: the quick surrogate of that generator version and seed, written once."""
    written = {}

    def surrogate_of(version: int = 2, seed: int = 3):
        if (version, seed) not in written:
            root = tmp_path_factory.mktemp(f"surrogate_v{version}_seed{seed}")
            write_synthetic_thumos(root, "quick", seed=seed, version=version)
            written[version, seed] = root
        return written[version, seed]

    return surrogate_of


@pytest.fixture(scope="session")
def surrogate(surrogates):
    """The quick surrogate (generator v2, seed 3) the training tests share; tests must not modify it."""
    return surrogates()


@pytest.fixture
def quick(surrogate):
    """``quick(**changes)``: the quick profile on :func:`surrogate`, on the CPU."""

    def config(**changes):
        return profile("quick", data_root=str(surrogate), device="cpu", **changes)

    return config
