"""Fixtures shared by the test modules: the digits data and the default digits classifier
(trained once per session), and one build folder for the toolchain smoke checks."""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import pytest

from spikelut.compiler.frontend.datasets import Dataset, load_dataset
from spikelut.compiler.ir.classifier import ClassifierMLP
from spikelut.compiler.ir.golden import ClassifierTrace, run_classifier
from spikelut.compiler.passes.quantize_classifier import quantize_classifier
from spikelut.compiler.train.classifier import train_on_dataset


@pytest.fixture(scope="session")
def smoke_dir(tmp_path_factory):
    """One build folder for the toolchain smoke checks, shared so Verilator builds once."""
    return tmp_path_factory.mktemp("smoke")


@pytest.fixture(scope="session")
def digits() -> Dataset:
    """The scikit-learn digits data on the fixed split."""
    return load_dataset("digits")


@dataclass
class DigitsTraining:
    """The default digits classifier (64 -> 10, 256 tables, N_C 4) as trained once: the
    float model, its per-epoch progress records and the training's wall time."""

    model: ClassifierMLP
    epochs: list[dict]
    seconds: float


@pytest.fixture(scope="session")
def digits_training(digits) -> DigitsTraining:
    """Train the default digits classifier once per session."""
    epochs: list[dict] = []
    start = time.perf_counter()
    model = train_on_dataset(digits, progress=epochs.append)
    return DigitsTraining(model, epochs, time.perf_counter() - start)


@dataclass
class DigitsInteger:
    """The default digits classifier quantised (8-bit tables, calibrated on the training
    split), its integer test inputs and the golden model's trace of them."""

    model: ClassifierMLP
    x: np.ndarray
    trace: ClassifierTrace
    labels: np.ndarray


@pytest.fixture(scope="session")
def digits_int(digits, digits_training) -> DigitsInteger:
    """The quantised default digits classifier and its test set, once per session."""
    model = quantize_classifier(digits_training.model, calib_raw=digits.X_train)
    x = model.encoding.encode_int(digits.X_test)
    return DigitsInteger(model, x, run_classifier(model, x), digits.y_test)
