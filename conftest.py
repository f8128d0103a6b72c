"""Test-session settings shared by tests/ and the doctests in physinv/."""

import os

import matplotlib

matplotlib.use("Agg")

import torch  # noqa: E402

# One intra-op thread per test process: CI runs two pytest-xdist workers on two
# cores, and oversubscribed FFT thread pools make small problems 10-100x slower.
torch.set_num_threads(int(os.environ.get("PHYSINV_TEST_THREADS", "1")))
