"""physinv.train.Trainer: reproducibility, exact resume after a kill, torchrun/DDP, logging, guards."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys

import _train_script
import numpy as np
import pytest
import torch
from _procs import run_group, torchrun_env
from torch import nn
from torch.utils.data import TensorDataset

from physinv.metrics import psnr
from physinv.train import Trainer, evaluate, load_checkpoint, load_weights

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(ROOT, "tests", "_train_script.py")


def _env():
    env = dict(os.environ)
    env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
    env["OMP_NUM_THREADS"] = "1"
    return env


def _run(args, timeout=120):
    return subprocess.run([sys.executable, *args], cwd=ROOT, env=_env(), capture_output=True, text=True,
                          timeout=timeout)


@pytest.fixture
def one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)  # same intra-op reduction order as the subprocesses
    yield
    torch.set_num_threads(n)


def _weights(path_or_trainer):
    if isinstance(path_or_trainer, Trainer):
        return {k: v.clone() for k, v in path_or_trainer.module.state_dict().items()}
    return load_checkpoint(path_or_trainer)["model"]


def _same(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def _max_diff(a, b):
    return max(float((a[k] - b[k]).abs().max()) for k in a)


# ----------------------------------------------------------- reproducibility
def test_same_seed_same_weights_other_seed_other_weights(one_thread):
    runs = []
    for seed in (5, 5, 6):
        t = _train_script.build(None, epochs=2, dropout=0.3, seed=seed)
        t.fit()
        runs.append((_weights(t), t.history))
    assert _same(runs[0][0], runs[1][0])
    assert [r["train_loss"] for r in runs[0][1]] == [r["train_loss"] for r in runs[1][1]]
    assert not _same(runs[0][0], runs[2][0])


def test_resume_after_sigkill_gives_identical_weights(tmp_path, one_thread):
    # uninterrupted reference, in this process
    ref = _train_script.build(str(tmp_path / "ref"), epochs=3, dropout=0.3)
    ref.fit()
    # killed run: SIGKILL while computing step 8 (checkpoints every 3 steps: the last one is step 6,
    # in the middle of epoch 2, so resuming must replay the rest of that epoch's sample order)
    out = str(tmp_path / "killed")
    r = _run([SCRIPT, "--out", out, "--dropout", "--kill-at-step", "8"])
    assert r.returncode == -9, r.stderr[-2000:]
    assert not os.path.exists(os.path.join(out, "final.pt"))
    ck = load_checkpoint(os.path.join(out, "last.pt"))
    assert (ck["global_step"], ck["epoch"], ck["batch_in_epoch"]) == (6, 1, 2)
    assert [f for f in os.listdir(out) if f.endswith(".tmp")] == []
    # resume in a fresh Trainer (a new process would do the same: everything comes from last.pt)
    torch.manual_seed(1234)  # scramble the global RNG: the checkpoint must restore it
    t = _train_script.build(out, epochs=3, dropout=0.3, resume=True)
    assert t.resumed_from == os.path.join(out, "last.pt") and t.global_step == 6
    t.fit()
    assert t.loss_calls["n"] == 12 - 6  # it really continued instead of starting over
    assert _same(_weights(t), _weights(ref))
    assert [dict(h, time=0) for h in t.history] == [dict(h, time=0) for h in ref.history]


def test_torchrun_two_processes_match_single_process(tmp_path, one_thread):
    single = _train_script.build(None, epochs=3)
    single.fit()
    # --standalone: the c10d rendezvous binds a free port itself (no race with other jobs).
    # A launch can hang after training when the machine is overloaded (a rank stuck on its way
    # out, about 1 launch in 4 with both cores busy): it is killed with all its processes and
    # retried in a fresh directory, up to three launches.
    r = run_group(lambda attempt: [sys.executable, "-m", "torch.distributed.run", "--standalone",
                                   "--nproc_per_node=2", SCRIPT, "--out", str(tmp_path / f"ddp{attempt}")],
                  timeout=150, attempts=3, cwd=ROOT, env=torchrun_env(_env()))
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-3000:]
    out = r.args[-1]
    final = load_checkpoint(os.path.join(out, "final.pt"))
    assert final["world"] == 2
    assert final["steps_run"] == 12  # each rank took every step, on half of each global batch
    assert _max_diff(final["model"], _weights(single)) < 1e-6
    for a, b in zip(final["history"], single.history):
        assert a["train_loss"] == pytest.approx(b["train_loss"], rel=1e-6)
        assert a["val_psnr"] == pytest.approx(b["val_psnr"], rel=1e-6)
    lines = open(os.path.join(out, "log.jsonl")).read().splitlines()  # rank 0 wrote one log
    assert len(lines) == 3


def test_dataloader_workers_do_not_change_the_run(one_thread):
    results = []
    for workers in (0, 2):
        t = _train_script.build(None, epochs=1)
        t.num_workers = workers
        t.fit()
        results.append(_weights(t))
    assert _same(*results)


# -------------------------------------------------------------- behaviour
def _linear_problem(n=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 6, 6, generator=g)
    return TensorDataset(0.5 * x, x)


class Scale(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Parameter(torch.tensor(1.0))

    def forward(self, y, sigma=None):
        return self.a * y


def test_logs_checkpoints_plot_and_weights_only(tmp_path):
    data = _linear_problem()
    model = Scale()
    t = Trainer(model, lambda p, x: {"mse": ((p - x) ** 2).mean(), "l1": (p - x).abs().mean()},
                torch.optim.SGD(model.parameters(), lr=0.5), data, data, batch_size=8, epochs=3,
                output_dir=tmp_path, plot=True, progress=False)
    hist = t.fit()
    assert float(model.a.detach()) == pytest.approx(2.0, abs=0.2)  # learns the inverse of y = x / 2
    lines = [json.loads(s) for s in open(tmp_path / "log.jsonl")]
    assert lines == hist and len(lines) == 3
    for rec in lines:
        assert rec["train_loss"] == pytest.approx(rec["train_mse"] + rec["train_l1"])
        assert rec["val_loss"] == pytest.approx(rec["val_mse"] + rec["val_l1"])
        assert {"val_psnr", "lr", "step", "epoch"} <= set(rec)
    assert lines[-1]["val_psnr"] > lines[0]["val_psnr"]
    assert (tmp_path / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    ck = load_checkpoint(tmp_path / "last.pt")
    assert ck["epoch"] == 3 and ck["global_step"] == 12 and ck["batch_in_epoch"] == 0
    assert set(ck["rng"][0]) == {"torch", "cuda", "numpy", "python"}
    best = load_checkpoint(tmp_path / "best.pt")
    assert best["monitor"] == "val_psnr" and best["value"] == pytest.approx(t.best)
    m2 = load_weights(Scale(), tmp_path / "best.pt")
    assert evaluate(m2, data, batch_size=8)["psnr"] == pytest.approx(best["value"], rel=1e-9)
    assert best["value"] == max(r["val_psnr"] for r in hist)
    assert not [f for f in os.listdir(tmp_path) if "tmp" in f]
    # a finished run resumed does nothing more
    again = Trainer(Scale(), None, None, data, data, batch_size=8, epochs=3, output_dir=tmp_path,
                    resume=True, progress=False)
    assert again.fit() == hist and float(again.module.a.detach()) == float(model.a.detach())
    with pytest.raises(ValueError, match="different settings"):
        Trainer(Scale(), None, None, data, data, batch_size=4, epochs=3, output_dir=tmp_path, resume=True)


def test_metric_matches_direct_psnr():
    data = _linear_problem(10)
    r = evaluate(Scale(), data, batch_size=3)
    want = psnr(0.5 * data.tensors[1], data.tensors[1]).mean()
    assert r["psnr"] == pytest.approx(float(want), rel=1e-6)


def test_non_finite_loss_names_the_step():
    data = _linear_problem()
    calls = {"n": 0}

    def loss(p, x):
        calls["n"] += 1
        out = ((p - x) ** 2).mean()
        return out * float("nan") if calls["n"] == 6 else out

    t = Trainer(Scale(), loss, None, data, batch_size=8, epochs=3, progress=False)
    with pytest.raises(FloatingPointError, match=r"non-finite loss at step 6 \(epoch 2, batch 2\)"):
        t.fit()
    assert t.global_step == 5


def test_early_stopping_on_a_flat_metric():
    data = _linear_problem()
    model = Scale()
    t = Trainer(model, None, torch.optim.SGD(model.parameters(), lr=0.0), data, data, batch_size=8,
                epochs=20, early_stopping=2, progress=False)
    hist = t.fit()
    assert len(hist) == 3 and t.stopped_early and t.best_epoch == 1


@pytest.mark.parametrize("name", ["cosine", "step", "exponential"])
def test_named_schedules_follow_their_formula(name):
    data = _linear_problem()
    t = Trainer(Scale(), None, None, data, batch_size=8, epochs=6, lr=0.1, scheduler=name, progress=False)
    lrs = [r["lr"] for r in t.fit()]
    e = np.arange(6)
    want = {"cosine": 0.05 * (1 + np.cos(np.pi * e / 6)), "step": 0.1 * 0.1 ** (e // 2),
            "exponential": 0.1 * 0.9**e}[name]
    np.testing.assert_allclose(lrs, want, rtol=1e-12)


def test_scheduler_object_per_step_and_plateau():
    data = _linear_problem()
    model = Scale()
    opt = torch.optim.SGD(model.parameters(), lr=1.0)
    sch = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.5**s)
    t = Trainer(model, None, opt, data, batch_size=8, epochs=2, scheduler=sch, scheduler_interval="step",
                progress=False)
    assert [r["lr"] for r in t.fit()] == [0.5**3, 0.5**7]  # the lr of each epoch's last step
    model = Scale()
    t = Trainer(model, None, torch.optim.SGD(model.parameters(), lr=0.0), data, data, batch_size=8,
                epochs=8, scheduler="plateau", progress=False)
    assert t.fit()[-1]["lr"] == 0.0  # lr 0 stays 0; the plateau scheduler ran without error
    with pytest.raises(ValueError, match="scheduler must be one of"):
        Trainer(Scale(), None, None, data, batch_size=8, scheduler="warmup")


def test_gradient_clipping_bounds_the_update():
    data = _linear_problem()
    moves = {}
    for clip in (None, 1e-3):
        model = Scale()
        t = Trainer(model, None, torch.optim.SGD(model.parameters(), lr=1.0), data, batch_size=32,
                    epochs=1, clip_grad_norm=clip, progress=False)
        t.fit()
        moves[clip] = abs(float(model.a.detach()) - 1.0)
    assert moves[1e-3] == pytest.approx(1e-3, rel=1e-4)  # float32 weights: 6e-8 resolution near 1
    assert moves[None] > 0.05


def test_forward_and_step_fn_hooks_see_the_whole_batch():
    x = torch.rand(16, 4, 4)
    sig = torch.full((16,), 0.3)
    data = TensorDataset(0.5 * x, x, sig)
    seen = []

    class NoiseAware(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = nn.Parameter(torch.tensor(1.0))

        def forward(self, y, sigma):
            seen.append(sigma)
            return self.a * y + 0 * sigma[:, None, None]

    def step_fn(model, batch):
        y, xb, s = batch
        return {"fit": ((model(y, s) - xb) ** 2).mean(), "reg": 1e-3 * model.module.a ** 2
                if hasattr(model, "module") else 1e-3 * model.a ** 2}

    t = Trainer(NoiseAware(), None, None, data, data, batch_size=4, epochs=1, progress=False,
                forward=lambda m, b: (m(b[0], b[2]), b[1]), step_fn=step_fn)
    rec = t.fit()[0]
    assert {"train_fit", "train_reg", "val_psnr"} <= set(rec) and "val_loss" not in rec
    assert all(torch.equal(s, torch.full_like(s, 0.3)) for s in seen)


def test_bad_arguments():
    data = _linear_problem()
    with pytest.raises(TypeError, match="model"):
        Trainer(lambda y: y, None, None, data)
    with pytest.raises(ValueError, match="batch_size"):
        Trainer(Scale(), None, None, data, batch_size=0)
    with pytest.raises(ValueError, match="fewer than batch_size"):
        Trainer(Scale(), None, None, data, batch_size=64)
    with pytest.raises(ValueError, match="needs output_dir"):
        Trainer(Scale(), None, None, data, resume=True)
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        Trainer(Scale(), None, None, data, resume="/nonexistent/last.pt")
    with pytest.raises(ValueError, match="loss dict"):
        Trainer(Scale(), lambda p, x: {"loss": (p - x).pow(2).mean()}, None, data, batch_size=8,
                progress=False).fit()
    with pytest.raises(KeyError, match="monitor"):
        Trainer(Scale(), None, None, data, batch_size=8, monitor="val_ssim", progress=False).fit()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_uses_the_gpu_without_code_change():
    data = _linear_problem()
    model = Scale()
    t = Trainer(model, None, None, data, data, batch_size=8, epochs=1, progress=False)
    assert t.device.type == "cuda" and model.a.device.type == "cuda"
    rec = t.fit()[0]
    assert math.isfinite(rec["val_psnr"])


# ------------------------------------------------------------ docs example
def _doc_block(md, marker):
    text = open(os.path.join(ROOT, "docs", md)).read()
    after = text[text.index(marker):]
    fence = after.index("```python")  # the fence may carry a tag (```python no-run)
    start = after.index("\n", fence) + 1
    return after[start:after.index("```\n", start)]


def test_docs_example_runs_as_written(tmp_path, one_thread, capsys):
    script = os.path.join(ROOT, "benchmarks", "example_training.py")
    block = _doc_block("training.md", "<!-- example: benchmarks/example_training.py -->")
    assert block == open(script).read()
    sys.path.insert(0, os.path.dirname(script))
    try:
        import example_training
    finally:
        sys.path.remove(os.path.dirname(script))
    rows = example_training.main(["--out", str(tmp_path), "--quick"])
    assert f"resuming at epoch 1 (step 4) from {tmp_path / 'run' / 'last.pt'}" in capsys.readouterr().out
    log = [json.loads(s) for s in open(tmp_path / "run" / "log.jsonl")]
    assert [r["epoch"] for r in log] == [1, 2] and [r["step"] for r in log] == [4, 8]  # 1 epoch + 1 resumed
    best = load_checkpoint(tmp_path / "run" / "best.pt")
    assert best["value"] == max(r["val_psnr"] for r in log)
    assert all(math.isfinite(v) for v in rows.values()) and len(rows) == 4
    # the best checkpoint, evaluated again, reproduces the logged best validation PSNR
    from physinv.data import H5Dataset

    val = H5Dataset(tmp_path / "val.h5")
    model = load_weights(example_training.SpectralFilterNet(val.operator), tmp_path / "run" / "best.pt")
    assert evaluate(model, val)["psnr"] == pytest.approx(best["value"], rel=1e-6)
    # the network starts as Tikhonov exactly (physics fixed, zero-initialized refiner)
    A = example_training.Convolution(example_training.gaussian(1.5, size=9), (16, 16))
    y = torch.rand(3, 16, 16)
    net = example_training.SpectralFilterNet(A)
    torch.testing.assert_close(net(y), A.svd().tikhonov(y, 1e-2), rtol=1e-5, atol=1e-6)
