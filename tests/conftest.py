"""Shared fixtures: the quick surrogate (written once per test session) and a quick config on it.

Every test runs with one torch CPU thread, as the book and the CLI do by default, so that training is
bit-identical whatever the machine's core count.
"""

import json

import numpy as np
import pytest
import torch

from sac_minimal.lab.config import profile
from sac_minimal.data.synthetic import write_synthetic_thumos
from sac_minimal.data.thumos14 import THUMOS14_CLASSES


def pytest_configure(config):
    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def surrogates(tmp_path_factory):
    """``surrogates(seed=3, heterogeneity=1.0)``: the quick surrogate of that world and h, written once."""
    written = {}

    def surrogate_of(seed: int = 3, heterogeneity: float = 1.0):
        if (seed, heterogeneity) not in written:
            root = tmp_path_factory.mktemp(f"surrogate_world{seed}_h{heterogeneity:g}")
            write_synthetic_thumos(root, "quick", seed=seed, heterogeneity=heterogeneity)
            written[seed, heterogeneity] = root
        return written[seed, heterogeneity]

    return surrogate_of


@pytest.fixture(scope="session")
def surrogate(surrogates):
    """The quick surrogate (world 3, h = 1) the training tests share; tests must not modify it."""
    return surrogates()


@pytest.fixture
def quick(surrogate):
    """``quick(**changes)``: the quick profile on :func:`surrogate`, on the CPU."""

    def config(**changes):
        return profile("quick", data_root=str(surrogate), device="cpu", world=3, **changes)

    return config


@pytest.fixture(scope="session")
def shared_data_home(tmp_path_factory):
    return tmp_path_factory.mktemp("data_home")


@pytest.fixture
def data_home(shared_data_home, monkeypatch):
    """``SAC_MINIMAL_DATA`` pointed at one folder for the whole test session, so that the surrogates of the worlds a
    grid asks for are written once (under ``cache/``) and its checkpoints go there too."""
    monkeypatch.setenv("SAC_MINIMAL_DATA", str(shared_data_home))
    return shared_data_home


def write_tiny_dataset(root, videos, *, width=2048, steps=None, subset_names=("Validation", "Test")):
    """ActionFormer layout; ``videos``: name -> (split, duration, fps, [(label, start, end)]); random features."""
    rng = np.random.default_rng(0)
    database = {}
    (root / "i3d_features").mkdir(parents=True, exist_ok=True)
    (root / "annotations").mkdir(exist_ok=True)
    for name, (split, duration, fps, segments) in videos.items():
        database[name] = {
            "subset": subset_names[0] if split == "train" else subset_names[1], "duration": duration, "fps": fps,
            "annotations": [{"label": label, "segment": [start, end], "label_id": THUMOS14_CLASSES.index(label)
                             if label in THUMOS14_CLASSES else -1} for label, start, end in segments]}
        rows = steps or round(duration * fps) // 4
        np.save(root / "i3d_features" / f"{name}.npy", rng.standard_normal((rows, width)).astype(np.float32))
    (root / "annotations" / "thumos14.json").write_text(json.dumps({"database": database}))
    return root


TINY = {
    "video_validation_0000001": ("train", 40.0, 30.0, [("HighJump", 2.0, 5.0), ("HighJump", 20.0, 23.5)]),
    "video_validation_0000002": ("train", 12.0, 25.0, [("CliffDiving", 1.0, 3.0), ("Diving", 1.0, 3.0)]),
    "video_test_0000001": ("test", 30.0, 29.97, [("Billiards", 4.0, 6.0)]),
}
