"""physinv.jpo: problem definitions, optimizers and evaluation counting, the win statistics."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from physinv.jpo import optimize as opt
from physinv.jpo.problems import (
    Billiards,
    BlurShift,
    CosineLandscape,
    LogisticMap,
    Problem,
    WavePacket,
    billiards_rest,
    get_problem,
    logistic_iterates,
    problem_names,
)
from physinv.jpo.study import compare, wilson, win_count

D = torch.float64


def t(*v):
    return torch.tensor(v, dtype=D)


# ----------------------------------------------------------------------------- problems

def test_registry_and_shapes():
    assert problem_names() == ("wave", "cosine", "logistic", "billiards", "blur")
    for name in problem_names():
        p = get_problem(name)
        obs, truth = p.generate(3, seed=1)
        assert obs.shape == (3, *p.obs_shape) and truth.shape == (3, p.dim)
        assert obs.dtype == D and truth.dtype == D
        assert len(p.param_names) == p.dim == len(p.scale)
        x0 = p.start(obs)
        assert x0.shape == (3, p.dim)
        L = p.loss(x0, obs)
        assert L.shape == (3,) and torch.isfinite(L).all()
        again, _ = p.generate(3, seed=1)
        assert torch.equal(obs, again)                     # seeded
        other, _ = p.generate(3, seed=2)
        assert not torch.equal(obs, other)


def test_losses_are_per_instance():
    # row i of the batched loss depends only on row i of x and obs
    for name in problem_names():
        p = get_problem(name)
        obs, truth = p.generate(4, seed=0)
        x = p.start(obs)
        full = p.loss(x, obs)
        for i in range(4):
            assert torch.allclose(p.loss(x[i:i + 1], obs[i:i + 1])[0], full[i], rtol=1e-12, atol=1e-15)


def test_cosine_landscape_at_a_point():
    p = CosineLandscape(n_terms=2)
    # x_i = 1, lambda = 0.5, A = (2, 1), omega = (3, 1), phi = (0, pi/2)
    obs = t(1.0, 0.5, 2.0, 1.0, 3.0, 1.0, 0.0, math.pi / 2)[None]
    x = 0.4
    want = 0.5 * abs(x - 1) - 2 * math.cos(3 * x) - 1 * math.cos(x + math.pi / 2)
    assert float(p.loss(t(x)[None], obs)) == pytest.approx(want, abs=1e-14)


@pytest.mark.parametrize("name", ["wave", "cosine", "logistic", "billiards", "blur"])
def test_autograd_gradient_matches_finite_differences(name):
    p = get_problem(name)
    obs, truth = p.generate(1, seed=3)
    # a point near the truth where every loss is smooth (inside the billiards hit region)
    x = (truth + 0.01 * torch.tensor(p.scale, dtype=D)).requires_grad_(True)
    (g,) = torch.autograd.grad(p.loss(x, obs)[0], x)
    h = 1e-6
    for k in range(p.dim):
        e = torch.zeros_like(x)
        e[0, k] = h * p.scale[k]
        with torch.no_grad():
            fd = (p.loss(x + e, obs) - p.loss(x - e, obs))[0] / (2 * e[0, k])
        assert float(g[0, k]) == pytest.approx(float(fd), rel=1e-5, abs=1e-9)


def test_wave_packet_signal_and_minimum():
    p = WavePacket(noise=0.0)
    x = t(4.0, 1.2)[None]
    s = p.signal(x)[0]
    k = int((p.t - 4.0).abs().argmin())
    d = float(p.t[k] - 4.0)
    assert float(s[k]) == pytest.approx(1.2 * math.exp(-d * d / 8) * math.cos(6 * d), abs=1e-13)
    obs, truth = p.generate(3, seed=0)
    assert float(p.loss(truth, obs).max()) < 1e-28
    # a local minimum: half a carrier period away the loss is larger than at the truth, and the
    # landscape along t0 has several local minima
    grid = truth[:1, 0] + torch.linspace(-3, 3, 601, dtype=D)
    xs = torch.stack([grid, truth[0, 1].expand(601)], 1)
    L = p.loss(xs, obs[:1].expand(601, -1))
    interior = (L[1:-1] < L[:-2]) & (L[1:-1] < L[2:])
    assert int(interior.sum()) >= 3


def test_logistic_map_known_iterates():
    z = logistic_iterates(t(0.5), 4.0, 3)
    assert z.tolist() == [[1.0, 0.0, 0.0]]
    z = logistic_iterates(t(0.2), 3.9, 2)[0]
    assert float(z[0]) == pytest.approx(3.9 * 0.2 * 0.8, abs=1e-15)
    assert float(z[1]) == pytest.approx(3.9 * 0.624 * 0.376, abs=1e-15)
    p = LogisticMap(noise=0.0)
    assert float(p.state(t(0.5))) == pytest.approx(0.5)
    obs, truth = p.generate(5, seed=0)
    assert float(p.loss(truth, obs).max()) < 1e-28
    # chaos: two initial phases 1e-9 apart end up far apart after 40 steps
    a = logistic_iterates(p.state(t(0.3)), 3.9, 40)[0, -1]
    b = logistic_iterates(p.state(t(0.3 + 1e-9)), 3.9, 40)[0, -1]
    assert abs(float(a - b)) > 1e-3
    with pytest.raises(ValueError, match="n must be"):
        logistic_iterates(t(0.5), 3.9, 0)


def test_billiards_geometry():
    # straight shot: object ball moves along +x by the speed
    pos, hit = billiards_rest(t(0.0), t(0.7))
    assert hit.tolist() == [True] and pos[0].tolist() == pytest.approx([1.7, 0.0])
    # a line passing 0.099 < 2 r = 0.1 from the object ball's centre hits, 0.101 misses
    for off, want in ((0.099, True), (0.101, False)):
        th = torch.asin(t(off))
        assert billiards_rest(th, t(1.0))[1].tolist() == [want]
    # shooting backwards misses
    assert billiards_rest(t(math.pi), t(1.0))[1].tolist() == [False]
    # cut shot: the object ball leaves along the line of centres, speed v cos(alpha)
    sin_a = 0.6
    th = torch.asin(t(0.1 * sin_a))
    pos, hit = billiards_rest(th, t(1.0))
    step = pos[0] - t(1.0, 0.0)
    assert float(step.norm()) == pytest.approx(0.8, abs=1e-12)             # cos(alpha) = 0.8
    # the line of centres points from the contact position of the cue to the object ball
    s = math.cos(float(th)) - 0.1 * 0.8
    contact = t(s * math.cos(float(th)), s * math.sin(float(th)))
    n = (t(1.0, 0.0) - contact) / 0.1
    assert step.tolist() == pytest.approx((0.8 * n).tolist(), abs=1e-12)
    # zero-gradient region: a miss leaves the ball in place, the loss is flat
    p = Billiards()
    obs = t(1.5, 0.2)[None]
    x = t(0.3, 1.0)[None].requires_grad_(True)
    L = p.loss(x, obs)
    (g,) = torch.autograd.grad(L[0], x)
    assert float(L.detach()) == pytest.approx(0.5**2 + 0.2**2) and g.abs().max() == 0


def test_blur_model_matches_physinv_convolution():
    from physinv.operators import Convolution
    from physinv.psf import gaussian

    p = BlurShift(noise=0.0)
    for s in (0.8, 1.7, 2.5):
        A = Convolution(gaussian(s, p.kernel), (p.size, p.size), "circular")
        want = A(p.target)
        got = p.model(t(s, 0.0)[None])[0]
        assert torch.allclose(got, want, atol=1e-13)
    # an integer shift is a circular roll along x
    got = p.model(t(1.2, 3.0)[None])[0]
    ref = torch.roll(p.model(t(1.2, 0.0)[None])[0], 3, dims=1)
    assert torch.allclose(got, ref, atol=1e-12)


def test_blur_loss_minimal_at_true_width_noise_free():
    p = BlurShift(noise=0.0)
    obs, truth = p.generate(2, seed=4)
    for i in range(2):
        widths = truth[i, 0] + torch.linspace(-0.5, 0.5, 41, dtype=D)
        xs = torch.stack([widths, truth[i, 1].expand(41)], 1)
        L = p.loss(xs, obs[i:i + 1].expand(41, -1, -1))
        assert int(L.argmin()) == 20 and float(L[20]) < 1e-28


def test_problem_input_errors():
    p = get_problem("wave")
    obs, _ = p.generate(2, seed=0)
    with pytest.raises(ValueError, match="x must be"):
        p.loss(torch.zeros(2, 3, dtype=D), obs)
    with pytest.raises(ValueError, match="obs must be"):
        p.loss(torch.zeros(2, 2, dtype=D), obs[:, :10])
    with pytest.raises(ValueError, match="n must be"):
        p.generate(0, seed=0)
    with pytest.raises(ValueError, match="seed must be"):
        p.generate(2, seed=-1)
    with pytest.raises(ValueError, match="problem must be one of"):
        get_problem("rosenbrock")
    with pytest.raises(ValueError, match="n_terms"):
        CosineLandscape(n_terms=0)
    with pytest.raises(ValueError, match="kernel"):
        BlurShift(kernel=4)


# ----------------------------------------------------------------------------- optimizers

class Quadratic(Problem):
    """Convex test family: L(x) = |x - c|^2 with c the observation."""

    name = "quadratic"
    dim = 2
    obs_shape = (2,)
    param_names = ("a", "b")
    scale = (1.0, 1.0)

    def _generate(self, n, seed):
        g = torch.Generator().manual_seed(seed)
        c = 4 * torch.rand(n, 2, generator=g, dtype=D) - 2
        return c, c

    def start(self, obs):
        return torch.zeros(obs.shape[0], 2, dtype=obs.dtype)

    def _loss(self, x, obs):
        return ((x - obs) ** 2).sum(1) + 0.5 * (x[:, 0] - obs[:, 0]) * (x[:, 1] - obs[:, 1])


@pytest.mark.parametrize("method", ["bfgs-scipy", "lbfgsb-scipy", "lbfgs-torch"])
def test_bfgs_reaches_global_minimum_on_convex_instances(method):
    p = Quadratic()
    obs, truth = p.generate(3, seed=0)
    r = opt.solve(p, obs, (method,), budget=50)[method]
    assert torch.allclose(r.x, truth, atol=1e-6)
    assert float(r.loss.max()) < 1e-10
    assert bool((r.evals <= 50).all()) and bool((r.evals >= 2).all())


class Counting(Quadratic):
    def __init__(self):
        self.rows = 0
        self.calls = 0

    def _loss(self, x, obs):
        self.rows += x.shape[0]
        self.calls += 1
        return super()._loss(x, obs)


@pytest.mark.parametrize("method", ["bfgs-scipy", "lbfgsb-scipy", "lbfgs-torch"])
@pytest.mark.parametrize("budget", [1, 3, 7])
def test_per_instance_evaluations_are_counted_and_capped(method, budget):
    p = Counting()
    obs, _ = p.generate(4, seed=1)
    r = opt.solve(p, obs, (method,), budget=budget)[method]
    # every call evaluates one instance; the counters agree with the real number of evaluations
    assert p.rows == p.calls == int(r.evals.sum())
    assert bool((r.evals <= budget).all())
    # a tight budget is used up exactly (the instance is not converged after < 3 evaluations)
    if budget <= 3:
        assert r.evals.tolist() == [budget] * 4


def test_jpo_counts_one_batched_evaluation_per_step_and_instance():
    p = Counting()
    obs, truth = p.generate(5, seed=2)
    res, snap = opt.jpo(p, obs, budget=9, snapshot=4, seed=0)
    assert p.calls == 9 and p.rows == 9 * 5               # 9 batched calls over 5 instances
    assert res.evals.tolist() == [9] * 5 and snap.evals.tolist() == [4] * 5
    # the untrained network outputs the starting point, so the best loss never exceeds the start
    start = p.loss(p.start(obs), obs)
    assert bool((res.loss <= start).all()) and bool((res.loss <= snap.loss).all())


def test_jpo_first_output_is_the_start():
    p = Counting()
    obs, _ = p.generate(3, seed=0)
    res, _ = opt.jpo(p, obs, budget=1)
    assert torch.equal(res.x, p.start(obs)) and p.rows == 3


def test_jpo_learns_the_convex_family():
    p = Quadratic()
    obs, truth = p.generate(32, seed=0)
    res, _ = opt.jpo(p, obs, budget=300, lr=1e-2, seed=0)
    start = p.loss(p.start(obs), obs)
    assert float(res.loss.mean()) < 0.01 * float(start.mean())


def test_jpo_plus_lbfgs_total_budget():
    p = Counting()
    obs, _ = p.generate(4, seed=3)
    r = opt.solve(p, obs, ("jpo+lbfgs",), budget=12, refine_budget=4)["jpo+lbfgs"]
    assert bool((r.evals <= 12).all()) and bool((r.evals >= 9).all())
    # network part: 8 batched calls of 4 rows; refinement: single-instance calls
    assert p.rows == int(r.evals.sum())


def test_same_start_for_every_method():
    p = get_problem("billiards")
    obs, _ = p.generate(3, seed=0)
    res = opt.solve(p, obs, ("bfgs-scipy", "jpo"), budget=1)
    start = p.loss(p.start(obs), obs)
    for r in res.values():
        assert torch.allclose(r.loss, start)


def test_budgeted_loss_keeps_best():
    p = Quadratic()
    obs, _ = p.generate(1, seed=0)
    f = opt.BudgetedLoss(p, obs[0], budget=3)
    f(obs[0] + 1.0)
    f(obs[0].clone())
    f(obs[0] + 2.0)
    assert f.best_loss == 0.0 and torch.equal(f.best_x, obs[0])
    with pytest.raises(opt.BudgetExhausted):
        f(obs[0])
    assert f.count == 3


def test_optimizer_input_errors():
    p = get_problem("cosine")
    obs, _ = p.generate(2, seed=0)
    with pytest.raises(ValueError, match="budget must be"):
        opt.minimize_scipy(p, obs, budget=0)
    with pytest.raises(ValueError, match="method must be"):
        opt.minimize_scipy(p, obs, budget=3, method="nelder-mead")
    with pytest.raises(ValueError, match="x0 must be"):
        opt.minimize_torch(p, obs, torch.zeros(3, 1, dtype=D), budget=3)
    with pytest.raises(ValueError, match="x0 must be finite"):
        opt.jpo(p, obs, torch.full((2, 1), math.nan, dtype=D), budget=3)
    with pytest.raises(ValueError, match="obs must be"):
        opt.jpo(p, obs[:, :3], budget=3)
    with pytest.raises(ValueError, match="lr must be"):
        opt.jpo(p, obs, budget=3, lr=-1.0)
    with pytest.raises(ValueError, match="snapshot must be"):
        opt.jpo(p, obs, budget=3, snapshot=4)
    with pytest.raises(ValueError, match="refine_budget must be"):
        opt.solve(p, obs, ("jpo+lbfgs",), budget=4, refine_budget=4)
    with pytest.raises(ValueError, match="methods: unknown"):
        opt.solve(p, obs, ("adam",), budget=4)
    with pytest.raises(ValueError, match="methods: duplicates"):
        opt.solve(p, obs, ("jpo", "jpo"), budget=4)
    with pytest.raises(TypeError, match="problem must be"):
        opt.minimize_scipy("wave", obs, budget=3)


def test_method_names_rule():
    for m in opt.METHODS:
        # every JPO-type name starts with jpo, every other one is a BFGS variant and says so
        assert m.startswith("jpo") if "jpo" in m else "bfgs" in m
    assert any(m.startswith("jpo") for m in opt.METHODS) and any("bfgs" in m for m in opt.METHODS)


# ----------------------------------------------------------------------------- statistics

def test_wilson_hand_made():
    lo, hi = wilson(8, 10)
    # p = 0.8, n = 10, z = 1.96: (0.8 + 0.19208) / 1.38415 -/+ 1.96 sqrt(0.016 + 0.0096040) / 1.38415
    z = 1.959963984540054
    c = (0.8 + z * z / 20) / (1 + z * z / 10)
    h = z * math.sqrt(0.8 * 0.2 / 10 + z * z / 400) / (1 + z * z / 10)
    assert (lo, hi) == pytest.approx((c - h, c + h), abs=1e-12)
    assert wilson(0, 4)[0] == 0.0 and wilson(4, 4)[1] == 1.0
    for bad in ((5, 4), (-1, 4), (0, 0), (1.5, 4)):
        with pytest.raises(ValueError, match="wilson needs"):
            wilson(*bad)


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 500), st.floats(0, 1))
def test_wilson_contains_the_estimate(n, frac):
    k = int(round(frac * n))
    lo, hi = wilson(k, n)
    assert 0.0 <= lo <= k / n <= hi <= 1.0


def test_compare_and_win_count_hand_made():
    assert compare(1.0, 2.0) == 1 and compare(2.0, 1.0) == -1
    assert compare(1.0, 1.0 + 5e-4) == 0                       # inside 1e-3 relative
    assert compare(1.0, 1.0 + 2e-3) == 1
    assert compare(0.0, 1e-13) == 0                            # absolute floor
    assert compare(-1.0, -0.5) == 1                            # negative losses: lower wins
    assert compare(math.inf, 1.0) == -1 and compare(1.0, math.nan) == 1 and compare(math.inf, math.nan) == 0
    w = win_count([0.1, 0.5, 1.0, 2.0, -3.0], [0.2, 0.5, 0.9, 2.0, -2.0])
    assert (w.wins, w.ties, w.losses, w.n) == (2, 2, 1, 5)
    assert w.fraction == pytest.approx(0.4) and w.interval == pytest.approx(wilson(2, 5))
    with pytest.raises(ValueError, match="same length"):
        win_count([1.0], [1.0, 2.0])


@settings(max_examples=40, deadline=None)
@given(st.lists(st.floats(-10, 10), min_size=1, max_size=30))
def test_win_count_is_antisymmetric(values):
    rng = np.random.default_rng(len(values))
    other = [v + float(rng.normal()) for v in values]
    a, b = win_count(values, other), win_count(other, values)
    assert (a.wins, a.ties, a.losses) == (b.losses, b.ties, b.wins)
