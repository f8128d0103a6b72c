"""fit_simulated: a fixed step budget over the Trainer, fresh measurements per batch, best weights kept."""

from __future__ import annotations

import pytest
import torch
from torch.utils.data import TensorDataset

from physinv.metrics import psnr
from physinv.train import Trainer, evaluate, fit_simulated


def _model():
    torch.manual_seed(0)
    return torch.nn.Conv2d(1, 1, 3, padding=1, bias=False)


def _fwd(m, b):
    return m(b[0].unsqueeze(1)).squeeze(1), b[1]


def test_budget_fresh_noise_and_extras():
    x = torch.rand(6, 8, 8, generator=torch.Generator().manual_seed(1))
    extra = 10 + torch.arange(6.0)
    seen, noises = [], []
    g = torch.Generator().manual_seed(2)

    def measure(batch):
        xb, eb = batch
        # the extras travel with their images
        assert torch.equal(xb, x[(eb - 10).long()])
        seen.append(eb.clone())
        n = torch.randn(xb.shape, generator=g)
        noises.append(n)
        return 0.5 * xb + 0.01 * n

    def fwd(m, b):
        return m(b[0].unsqueeze(1)).squeeze(1), b[1]

    hist = fit_simulated(_model(), (x, extra), measure, steps=12, batch_size=3, checks=4, forward=fwd)
    assert [h["step"] for h in hist] == [3, 6, 9, 12]
    assert len(noises) == 12 and not any(torch.equal(noises[0], n) for n in noises[1:])
    # every image is visited equally often over the run (36 visits of 6 images, 9 per check)
    counts = torch.bincount(torch.cat(seen).long() - 10, minlength=6)
    assert counts.tolist() == [6] * 6


def test_budget_rounds_up_to_whole_checks():
    x = torch.rand(4, 8, 8)
    hist = fit_simulated(_model(), x, lambda xb: xb, steps=7, batch_size=2, checks=3, forward=_fwd)
    assert hist[-1]["step"] == 9 and len(hist) == 3
    assert len(fit_simulated(_model(), x, lambda xb: xb, steps=2, batch_size=2, forward=_fwd)) == 2


def test_best_validation_weights_are_kept():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(8, 8, 8, generator=g)
    val = TensorDataset(0.5 * x, x)
    model = _model()
    # a learning rate large enough that later checks can be worse than earlier ones
    hist = fit_simulated(model, x, lambda xb: 0.5 * xb + 0.05 * torch.randn(xb.shape, generator=g),
                         steps=20, batch_size=4, lr=0.3, val_data=val, forward=_fwd, checks=5)
    best = max(h["val_psnr"] for h in hist)
    got = evaluate(model, val, forward=_fwd)["psnr"]
    assert got == pytest.approx(best, abs=1e-9)


def test_custom_metric_picks_the_best():
    x = torch.rand(4, 8, 8)
    val = TensorDataset(0.5 * x, x)
    hist = fit_simulated(_model(), x, lambda xb: 0.5 * xb, steps=4, batch_size=2, val_data=val, forward=_fwd,
                         metrics={"p1": lambda p, t: psnr(p.clamp(0, 1), t, data_range=1.0)}, checks=2)
    assert "val_p1" in hist[-1] and "val_psnr" not in hist[-1]


def test_sigma_reaches_forward():
    x = torch.rand(4, 8, 8)
    got = []

    def fwd(m, b):
        got.append(b[2])
        return _fwd(m, b)

    fit_simulated(_model(), x, lambda xb: (xb, torch.full((len(xb),), 0.25)), steps=2, batch_size=2,
                  forward=fwd)
    assert all(torch.equal(s, torch.full((2,), 0.25)) for s in got)


def test_not_distributed_under_torchrun_env(monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("LOCAL_RANK", "1")
    x = torch.rand(4, 8, 8)
    t = Trainer(_model(), train_data=TensorDataset(x, x), batch_size=2, epochs=1, progress=False,
                distributed=False, device="cpu", forward=_fwd)
    assert (t.rank, t.world, t.local_rank) == (0, 1, 1)
    t.fit()


@pytest.mark.parametrize("kwargs, match", [
    ({"steps": 0}, "steps must be a positive int"),
    ({"batch_size": 9}, r"batch_size \(9\) must be at most the number of images \(4\)"),
    ({"checks": 1.5}, "checks must be a positive int"),
])
def test_bad_arguments(kwargs, match):
    args = {"steps": 2, "batch_size": 2, **kwargs}
    with pytest.raises(ValueError, match=match):
        fit_simulated(_model(), torch.rand(4, 8, 8), lambda xb: xb, **args)


def test_bad_images_and_measure():
    with pytest.raises(ValueError, match="images must be"):
        fit_simulated(_model(), (torch.rand(4, 8, 8), torch.rand(3)), lambda b: b[0], steps=1, batch_size=1)
    with pytest.raises(TypeError, match="measure must be callable"):
        fit_simulated(_model(), torch.rand(4, 8, 8), None, steps=1, batch_size=1)
    with pytest.raises(TypeError, match="model must be"):
        fit_simulated("net", torch.rand(4, 8, 8), lambda xb: xb, steps=1, batch_size=1)


def test_a_diverging_run_returns_its_untrained_weights():
    # the start is the exact inverse of y = 0.5 x (a centre tap of 2); a huge learning rate
    # throws every check far from it, so the untrained weights must come back, unchanged
    x = torch.rand(8, 8, 8, generator=torch.Generator().manual_seed(3))
    model = torch.nn.Conv2d(1, 1, 3, padding=1, bias=False)
    with torch.no_grad():
        model.weight.zero_()
        model.weight[0, 0, 1, 1] = 2.0
    start = model.weight.detach().clone()
    val = TensorDataset(0.5 * x, x)
    hist = fit_simulated(model, x, lambda xb: 0.5 * xb + 0.05 * torch.randn_like(xb), steps=8, batch_size=4,
                         checks=4, lr=50.0, val_data=val, forward=_fwd)
    assert max(h["val_psnr"] for h in hist) < evaluate(model, val, forward=_fwd)["psnr"]
    assert torch.equal(model.weight, start)


def test_a_run_that_improves_keeps_its_best_check_not_the_start():
    x = torch.rand(8, 8, 8, generator=torch.Generator().manual_seed(4))
    model = _model()
    start = model.weight.detach().clone()
    val = TensorDataset(0.5 * x, x)
    before = evaluate(model, val, forward=_fwd)["psnr"]
    hist = fit_simulated(model, x, lambda xb: 0.5 * xb, steps=40, batch_size=4, checks=4, lr=5e-2,
                         val_data=val, forward=_fwd)
    after = evaluate(model, val, forward=_fwd)["psnr"]
    assert after > before and not torch.equal(model.weight, start)
    assert after == pytest.approx(max(h["val_psnr"] for h in hist), abs=1e-6)
