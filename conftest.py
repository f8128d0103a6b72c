"""Test-session settings shared by tests/ and the doctests in physinv/."""

import os

import matplotlib

matplotlib.use("Agg")

import torch  # noqa: E402

# One intra-op thread per test process: CI runs two pytest-xdist workers on two
# cores, and oversubscribed FFT thread pools make small problems 10-100x slower.
torch.set_num_threads(int(os.environ.get("PHYSINV_TEST_THREADS", "1")))

import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def _seed_global_rng():
    """Seed torch's global generator before every test.

    Networks built with default initialisation draw from it; without a fixed seed
    a test's outcome would depend on which tests ran earlier in the same worker.
    """
    torch.manual_seed(0)
