"""physinv.losses: values and gradients by hand, derivative terms, composition, the Trainer, bad input."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.utils.data import TensorDataset

from physinv import psf
from physinv.losses import (
    Composite,
    DerivativeMatch,
    EncoderDecoder,
    EncoderDecoderNet,
    GradientPenalty,
    MeasurementConsistency,
    Misfit,
    Smoothness,
    frozen,
    norm,
    total,
)
from physinv.operators import Convolution, Matrix

D = torch.float64
# Reading loss values that are still in the autograd graph is the point of several tests.
pytestmark = pytest.mark.filterwarnings("ignore:Converting a tensor with requires_grad=True:UserWarning")


def _matrix_op(m: int = 5, n: int = 4, seed: int = 0) -> tuple[Matrix, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    M = torch.randn(m, n, generator=g, dtype=D)
    return Matrix(M), M


# ----------------------------------------------------------------------------- norms


def test_norm_values_by_hand():
    r = torch.tensor([3.0, -4.0, 0.0, 1.0], dtype=D)
    assert float(norm(r, "l1")) == pytest.approx(8.0 / 4)
    assert float(norm(r, "l2")) == pytest.approx(26.0 / 4)


@settings(max_examples=30, deadline=None)
@given(shape=st.lists(st.integers(1, 4), min_size=1, max_size=3), c=st.floats(0.1, 10.0),
       seed=st.integers(0, 99))
def test_norm_homogeneity_and_jensen(shape, c, seed):
    r = torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=D)
    assert float(norm(c * r, "l1")) == pytest.approx(c * float(norm(r, "l1")), rel=1e-12)
    assert float(norm(c * r, "l2")) == pytest.approx(c * c * float(norm(r, "l2")), rel=1e-12)
    # mean |r| <= sqrt(mean r^2)
    assert float(norm(r, "l1")) <= math.sqrt(float(norm(r, "l2"))) + 1e-12


@pytest.mark.parametrize("bad, exc, words", [
    ([1.0, 2.0], TypeError, "residual must be a torch.Tensor"),
    (torch.tensor([1, 2]), TypeError, "residual must have a floating dtype"),
    (torch.tensor([1j]), TypeError, "residual must be real"),
    (torch.zeros(0), ValueError, "residual must not be empty"),
])
def test_norm_bad_residual(bad, exc, words):
    with pytest.raises(exc, match=words):
        norm(bad)


@pytest.mark.parametrize("kind", ["L2", "l3", None, 2])
def test_norm_bad_kind(kind):
    with pytest.raises(ValueError, match="norm must be one of"):
        norm(torch.ones(2), kind)


def test_total_sums_and_rejects_empty():
    assert float(total({"a": torch.tensor(1.5), "b": torch.tensor(-0.5)})) == 1.0
    with pytest.raises(TypeError, match="terms must be a non-empty dict"):
        total({})


# ----------------------------------------------------------------------------- misfit, measurement


@pytest.mark.parametrize("kind", ["l1", "l2"])
def test_misfit_value_and_gradient(kind):
    pred = torch.tensor([1.0, -2.0, 0.5], dtype=D, requires_grad=True)
    target = torch.tensor([0.0, 1.0, 0.5], dtype=D)
    out = Misfit(kind, name="inverse")(pred, target)
    assert list(out) == ["inverse"]
    r = (pred - target).detach()
    want = r.abs().mean() if kind == "l1" else r.square().mean()
    assert float(out["inverse"].detach()) == pytest.approx(float(want))
    out["inverse"].backward()
    grad = torch.sign(r) / 3 if kind == "l1" else 2 * r / 3
    assert torch.allclose(pred.grad, grad)


def test_misfit_bad_input():
    with pytest.raises(ValueError, match="pred and target must have the same shape"):
        Misfit()(torch.zeros(3), torch.zeros(4))
    with pytest.raises(TypeError, match="target must be a torch.Tensor"):
        Misfit()(torch.zeros(3), [0.0, 0.0, 0.0])
    with pytest.raises(ValueError, match="name must be a non-empty str other than 'loss'"):
        Misfit(name="loss")
    with pytest.raises(ValueError, match="norm must be one of"):
        Misfit("l0")


def test_measurement_consistency_operator_gradient_is_adjoint_residual():
    """d/dx mean((Ax - y)^2) = 2 A^T (Ax - y) / m, for a physinv LinearOperator."""
    A = Convolution(psf.gaussian(1.0, 5), (8, 8))
    g = torch.Generator().manual_seed(1)
    x = torch.rand(2, 8, 8, generator=g, dtype=D).requires_grad_(True)
    y = torch.rand(2, 8, 8, generator=g, dtype=D)
    out = MeasurementConsistency(A, "l2")(x, y)
    r = (A(x) - y).detach()
    assert float(out["measurement"].detach()) == pytest.approx(float(r.square().mean()))
    out["measurement"].backward()
    assert torch.allclose(x.grad, 2 * A.adjoint(r) / r.numel(), atol=1e-12)


def test_measurement_consistency_callable_equals_operator():
    A, M = _matrix_op()
    x = torch.randn(3, 4, dtype=D)
    y = torch.randn(3, 5, dtype=D)
    a = MeasurementConsistency(A, "l1")(x, y)["measurement"]
    b = MeasurementConsistency(lambda t: t @ M.T, "l1")(x, y)["measurement"]
    assert float(a) == pytest.approx(float(b), rel=1e-12)


def test_measurement_consistency_zero_on_both_branches():
    loss = MeasurementConsistency(torch.square, "l2")
    y = torch.tensor([1.0, 4.0, 9.0])
    assert float(loss(torch.tensor([1.0, -2.0, 3.0]), y)["measurement"]) == 0.0
    assert float(loss(torch.zeros(3), y)["measurement"]) > 0


def test_measurement_consistency_bad_input():
    with pytest.raises(TypeError, match="forward_model must be callable"):
        MeasurementConsistency(3.0)
    with pytest.raises(ValueError, match=r"forward_model\(x_pred\) and y must have the same shape"):
        MeasurementConsistency(torch.square)(torch.zeros(3), torch.zeros(2))
    with pytest.raises(TypeError, match="forward_model must return a tensor"):
        MeasurementConsistency(lambda t: 1.0)(torch.zeros(3), torch.zeros(3))


def test_frozen_passes_input_gradients_only():
    lin = torch.nn.Linear(2, 2)
    f = frozen(lin)
    assert all(p.requires_grad for p in lin.parameters())
    assert not any(p.requires_grad for p in f.parameters())
    x = torch.randn(4, 2, requires_grad=True)
    f(x).sum().backward()
    assert torch.allclose(x.grad, lin.weight.detach().sum(0).expand(4, 2))
    with pytest.raises(TypeError, match="module must be a torch.nn.Module"):
        frozen(torch.square)


# ----------------------------------------------------------------------------- derivative terms


@pytest.mark.parametrize("eps", [1.0, 0.5, 1e-3])
def test_difference_term_of_square_is_its_truncation_error(eps):
    """((x + e)^2 - x^2) / e - 2x = e: the finite-difference term of the exact model is e (l1) or e^2 (l2)."""
    x = torch.linspace(-3, 3, 7, dtype=D)[:, None]
    for kind, want in (("l1", eps), ("l2", eps ** 2)):
        d = DerivativeMatch(torch.square, epsilon=eps, norm=kind)(torch.square, x)["derivative"]
        assert float(d) == pytest.approx(want, rel=1e-6)
    assert float(DerivativeMatch(torch.square, mode="exact")(torch.square, x)["derivative"].detach()) == 0.0


def test_difference_term_tends_to_exact_term():
    """For a model g = sin against F = x^2, the finite-difference term -> the exact term as eps -> 0."""
    x = torch.linspace(-2, 2, 9, dtype=D)[:, None]
    exact = float(DerivativeMatch(torch.square, mode="exact", norm="l1")(torch.sin, x)["derivative"].detach())
    assert exact == pytest.approx(float((torch.cos(x) - 2 * x).abs().mean()), rel=1e-12)
    fd = [float(DerivativeMatch(torch.square, epsilon=e, norm="l1")(torch.sin, x)["derivative"])
          for e in (1e-1, 1e-2, 1e-3)]
    gaps = [abs(v - exact) for v in fd]
    assert gaps[0] > gaps[1] > gaps[2]
    assert gaps[2] < 1e-3


def test_operator_adjoint_equals_autograd():
    """The exact term through A's adjoint equals reverse-mode autograd of the same map as a function."""
    A, M = _matrix_op(5, 4)
    g = torch.Generator().manual_seed(2)
    x = torch.randn(3, 4, generator=g, dtype=D)
    w = torch.randn(3, 5, generator=g, dtype=D)
    model = torch.nn.Linear(4, 5, dtype=D)
    by_adjoint = DerivativeMatch(A, mode="exact")(model, x, v=w)["derivative"]
    by_autograd = DerivativeMatch(lambda t: t @ M.T, mode="exact")(model, x, v=w)["derivative"]
    assert float(by_adjoint) == pytest.approx(float(by_autograd), rel=1e-10)
    # and the difference mode's target A v equals the forward-mode jvp of the function
    v = torch.randn(3, 4, generator=g, dtype=D)
    a = DerivativeMatch(A, epsilon=1e-2)(model, x, v=v)["derivative"]
    b = DerivativeMatch(lambda t: t @ M.T, epsilon=1e-2)(model, x, v=v)["derivative"]
    assert float(a) == pytest.approx(float(b), rel=1e-10)
    # a linear model equal to A makes both terms vanish
    with torch.no_grad():
        model.weight.copy_(M)
        model.bias.zero_()
    assert DerivativeMatch(A, mode="exact")(model, x, v=w)["derivative"].item() < 1e-20
    assert DerivativeMatch(A, epsilon=0.3)(model, x, v=v)["derivative"].item() < 1e-20


@pytest.mark.parametrize("mode", ["difference", "exact"])
def test_derivative_term_trains_the_model(mode):
    """The term's gradient reaches the model's parameters: a line fitted to slope 2 gets slope 2."""
    model = torch.nn.Linear(1, 1, dtype=D)
    term = DerivativeMatch(lambda t: 2 * t, mode=mode, epsilon=0.5)
    x = torch.linspace(-1, 1, 5, dtype=D)[:, None]
    opt = torch.optim.SGD(model.parameters(), lr=0.2)
    for _ in range(100):
        opt.zero_grad()
        term(model, x)["derivative"].backward()
        opt.step()
    assert float(model.weight) == pytest.approx(2.0, abs=1e-6)


def test_derivative_match_with_target_and_bad_input():
    x = torch.tensor([[1.0], [2.0]])
    d = DerivativeMatch(mode="exact")(torch.square, x, target=torch.tensor([[2.0], [3.0]]))["derivative"]
    assert float(d) == pytest.approx(0.5)  # residuals 0 and 1
    with pytest.raises(ValueError, match="target is required"):
        DerivativeMatch()(torch.square, x)
    with pytest.raises(ValueError, match="mode must be 'difference' or 'exact'"):
        DerivativeMatch(torch.square, mode="adjoint")
    with pytest.raises(ValueError, match="epsilon must be > 0"):
        DerivativeMatch(torch.square, epsilon=0.0)
    with pytest.raises(ValueError, match="epsilon must be finite"):
        DerivativeMatch(torch.square, epsilon=math.inf)
    with pytest.raises(ValueError, match="v and x must have the same shape"):
        DerivativeMatch(torch.square)(torch.square, x, v=torch.ones(3, 1))
    with pytest.raises(TypeError, match="model must be callable"):
        DerivativeMatch(torch.square)(None, x)


# ----------------------------------------------------------------------------- smoothness


def test_smoothness_is_the_difference_slope():
    x = torch.linspace(-3, 3, 7, dtype=D)[:, None]
    # ((x + e)^2 - x^2) / e = 2x + e
    for kind in ("l1", "l2"):
        s = Smoothness(epsilon=0.5, norm=kind)(torch.square, x)["smooth"]
        slope = 2 * x + 0.5
        assert float(s) == pytest.approx(float(norm(slope, kind)))
    with pytest.raises(ValueError, match="epsilon must be > 0"):
        Smoothness(epsilon=-1)
    with pytest.raises(TypeError, match="epsilon must be a real number"):
        Smoothness(epsilon="1")


def test_gradient_penalty_by_hand():
    img = torch.tensor([[0.0, 1.0], [2.0, 4.0]], dtype=D)
    # rows: diffs along -2: [2, 3]; along -1: [1, 2]
    assert float(GradientPenalty(norm="l1")(img)["smooth"]) == pytest.approx(2.5 + 1.5)
    assert float(GradientPenalty(norm="l2")(img)["smooth"]) == pytest.approx(6.5 + 2.5)
    assert float(GradientPenalty()(torch.full((3, 3), 7.0))["smooth"]) == 0.0
    with pytest.raises(ValueError, match="dims: 3 is out of range"):
        GradientPenalty(dims=(3,))(img)
    with pytest.raises(ValueError, match="pred must have at least 2 entries along dim -1"):
        GradientPenalty(dims=(-1,))(torch.zeros(3, 1))
    with pytest.raises(TypeError, match="dims must be a non-empty tuple of ints"):
        GradientPenalty(dims=())


# ----------------------------------------------------------------------------- encoder-decoder


def test_encoder_decoder_terms():
    x = torch.tensor([[-1.0], [2.0]])
    y = x ** 2
    assert {k: float(v) for k, v in EncoderDecoder()(torch.square, torch.sqrt, x, y).items()} == {
        "forward": 0.0, "consistency": 0.0}
    # a surrogate 2x^2: forward residual x^2 = [1, 4] (l1 mean 2.5); consistency through sqrt: 2y - y = y
    two = lambda t: 2 * t ** 2  # noqa: E731
    t = EncoderDecoder("l1", weights={"consistency": 3.0})(two, torch.sqrt, x, y)
    assert float(t["forward"]) == pytest.approx(2.5)
    assert float(t["consistency"]) == pytest.approx(3.0 * 2.5)
    s = EncoderDecoder("l1", smooth_weight=0.5, epsilon=1.0)(torch.square, torch.sqrt, x, y,
                                                            x_smooth=torch.zeros(3, 1))
    assert float(s["smooth"]) == pytest.approx(0.5 * 1.0)  # ((0+1)^2 - 0) / 1 = 1
    with pytest.raises(ValueError, match=r"weights: unknown term\(s\) \['smooth'\]"):
        EncoderDecoder(weights={"smooth": 1.0})
    with pytest.raises(ValueError, match="smooth_weight must be >= 0"):
        EncoderDecoder(smooth_weight=-1.0)
    with pytest.raises(ValueError, match=r"forward_net\(x\) and y must have the same shape"):
        EncoderDecoder()(torch.square, torch.sqrt, x, torch.ones(3, 1))


def test_encoder_decoder_net_trains_both_networks():
    net = EncoderDecoderNet(torch.nn.Linear(1, 1), torch.nn.Linear(1, 1))
    x = torch.linspace(0.5, 2, 8)[:, None]
    t = EncoderDecoder("l2")(net.forward_net, net, x, 3 * x)
    total(t).backward()
    assert all(p.grad is not None for p in net.parameters())
    with pytest.raises(TypeError, match="inverse_net must be a torch.nn.Module"):
        EncoderDecoderNet(torch.nn.Identity(), torch.sqrt)


# ----------------------------------------------------------------------------- composite


def test_composite_weights_and_names():
    data = MeasurementConsistency(lambda t: 2 * t, "l2", name="data")
    loss = Composite({"data": data, "smooth": GradientPenalty(dims=(-1,))}, {"smooth": 0.25})
    x = torch.tensor([[0.0, 2.0]], requires_grad=True)
    y = torch.tensor([[0.0, 2.0]])
    out = loss(x, y)
    assert list(out) == ["data", "smooth"]
    assert float(out["data"]) == pytest.approx(2.0)  # residual [0, 2]
    assert float(out["smooth"]) == pytest.approx(0.25 * 4.0)
    total(out).backward()
    # d/dx [mean((2x - y)^2) + 0.25 (x1 - x0)^2] = [0, 4] + 0.25 * [-4, 4]
    assert torch.allclose(x.grad, torch.tensor([[-1.0, 5.0]]))


def test_composite_nested_and_scalar_terms():
    inner = Composite({"a": Misfit("l1"), "b": Misfit("l2")})
    loss = Composite({"fit": inner, "mse": lambda p, t: (p - t).square().mean()}, {"fit": 2.0})
    out = loss(torch.tensor([1.0, 3.0]), torch.zeros(2))
    assert {k: float(v) for k, v in out.items()} == {"fit_a": 4.0, "fit_b": 10.0, "mse": 5.0}


def test_composite_bad_input():
    with pytest.raises(TypeError, match="terms must be a non-empty mapping"):
        Composite({})
    with pytest.raises(ValueError, match=r"weights: unknown term\(s\) \['b'\]"):
        Composite({"a": Misfit()}, {"b": 1.0})
    with pytest.raises(ValueError, match=r"weights\['a'\] must be >= 0"):
        Composite({"a": Misfit()}, {"a": -1.0})
    with pytest.raises(TypeError, match=r"weights\['a'\] must be a real number"):
        Composite({"a": Misfit()}, {"a": "1"})
    with pytest.raises(ValueError, match="name must be a non-empty str other than 'loss'"):
        Composite({"loss": Misfit()})
    with pytest.raises(TypeError, match=r"terms\['a'\] must be callable"):
        Composite({"a": 1.0})
    with pytest.raises(ValueError, match="term 'a' returned 'a' that is not a scalar tensor"):
        Composite({"a": lambda p, t: {"a": p - t}})(torch.ones(2), torch.zeros(2))
    with pytest.raises(TypeError, match="term 'a' must return a non-empty dict"):
        Composite({"a": lambda p, t: 1.0})(torch.ones(2), torch.zeros(2))


# ----------------------------------------------------------------------------- with the Trainer


def test_trainer_logs_each_term_of_an_unsupervised_composite():
    """A SpectralFilterNet trained from blurred data alone; the Trainer logs both terms and their sum."""
    from physinv.nets import SpectralFilterNet
    from physinv.train import Trainer

    torch.manual_seed(0)
    A = Convolution(psf.gaussian(1.5, 7), (16, 16))
    x = torch.rand(8, 16, 16)
    y = A(x) + 0.01 * torch.randn(8, 16, 16)
    net = SpectralFilterNet(A, lam=1.0)  # strongly regularized start: large data misfit
    loss = Composite({"data": MeasurementConsistency(A), "smooth": GradientPenalty()}, {"smooth": 1e-3})
    t = Trainer(net, loss=loss, train_data=TensorDataset(y), batch_size=4, epochs=3, lr=0.05,
                forward=lambda m, b: (m(b[0]), b[0]), progress=False)
    hist = t.fit()
    assert len(hist) == 3
    for rec in hist:
        assert {"train_loss", "train_data", "train_smooth"} <= set(rec)
        assert rec["train_loss"] == pytest.approx(rec["train_data"] + rec["train_smooth"], rel=1e-6)
    assert hist[-1]["train_data"] < 0.5 * hist[0]["train_data"]
