"""Trainer guards: the device rule, datasets of single tensors, Ctrl-C during fit, one seed mixing."""

from __future__ import annotations

import shutil

import _train_script
import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import Dataset, TensorDataset

from physinv._random import mix_seed
from physinv.data import sample_generator
from physinv.train import Trainer, TrainingInterrupted, evaluate, load_checkpoint
from physinv.train.devices import resolve_device


class Scale(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Parameter(torch.tensor(1.0))

    def forward(self, y):
        return self.a * y


def _pairs(n=32):
    x = torch.rand(n, 6, 6, generator=torch.Generator().manual_seed(0))
    return TensorDataset(0.5 * x, x)


@pytest.fixture
def one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _same(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def _weights(t):
    return {k: v.clone() for k, v in t.module.state_dict().items()}


# ------------------------------------------------------------------ devices
def test_cpu_devices_in_every_spelling():
    for d in ("cpu", torch.device("cpu"), "cpu:0"):
        assert resolve_device(d).type == "cpu"
    t = Trainer(Scale(), None, None, _pairs(), batch_size=8, epochs=1, device="cpu", progress=False)
    assert t.device == torch.device("cpu") and t.fit()[0]["step"] == 4


@pytest.mark.parametrize("device, text", [
    ("gpu", "is not a device torch knows"), ("cuda:x", "is not a device torch knows"),
    ("cuda:-1", "is not a device torch knows"), (-1, "must be >= 0"), (1.5, "device must be"),
])
def test_unknown_devices_are_a_value_error_naming_device(device, text):
    with pytest.raises(ValueError, match="device") as e:
        resolve_device(device)
    assert text in str(e.value)
    with pytest.raises(ValueError, match=text):
        Trainer(Scale(), None, None, _pairs(), batch_size=8, device=device)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error without CUDA")
@pytest.mark.parametrize("device", ["cuda", "cuda:0", "cuda:3", torch.device("cuda", 1), 0])
def test_cuda_without_cuda_is_a_clear_value_error(device):
    with pytest.raises(ValueError, match=r"device=.*CUDA is not available"):
        Trainer(Scale(), None, None, _pairs(), batch_size=8, device=device)
    with pytest.raises(ValueError, match="CUDA is not available"):
        evaluate(Scale(), _pairs(), device=device)


@pytest.mark.skipif(torch.backends.mps.is_available(), reason="checks the error without MPS")
def test_mps_without_mps_is_a_clear_value_error():
    with pytest.raises(ValueError, match="device='mps': MPS"):
        Trainer(Scale(), None, None, _pairs(), batch_size=8, device="mps")


@pytest.fixture
def two_fake_gpus(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 1)


def test_index_less_cuda_gets_the_process_gpu(two_fake_gpus, monkeypatch):
    assert resolve_device("cuda") == torch.device("cuda", 1)  # the current device
    assert resolve_device("cuda", local_rank=0) == torch.device("cuda", 0)  # torchrun: LOCAL_RANK
    assert resolve_device(None) == torch.device("cuda", 0)
    assert resolve_device(None, local_rank=1) == torch.device("cuda", 1)
    assert resolve_device("cuda:1") == resolve_device(1) == torch.device("cuda", 1)
    for bad in ("cuda:2", 5):
        with pytest.raises(ValueError, match=r"no CUDA device \d; this process sees 2 \(cuda:0 to cuda:1\)"):
            resolve_device(bad)

    class Stop(Exception):
        pass

    seen = []

    def set_device(d):
        seen.append(d)
        raise Stop  # no real GPU here: stop where the Trainer hands the device over

    monkeypatch.setattr(torch.cuda, "set_device", set_device)
    with pytest.raises(Stop):
        Trainer(Scale(), None, None, _pairs(), batch_size=8, device="cuda")
    assert seen == [torch.device("cuda", 1)] and seen[0].index is not None


# ------------------------------------------------------- single-tensor data
class Images(Dataset):
    def __init__(self, n=16):
        self.x = torch.rand(n, 6, 6, generator=torch.Generator().manual_seed(1))

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        return self.x[i]


@pytest.mark.parametrize("data, arrived", [
    (Images(), "got a Tensor of shape (8, 6, 6)"),
    (TensorDataset(torch.rand(16, 6, 6)), "got a list of 1 item: [Tensor of shape (8, 6, 6)]"),
])
def test_a_dataset_of_single_tensors_is_refused_on_the_first_batch(data, arrived):
    model = Scale()
    t = Trainer(model, None, None, data, batch_size=8, epochs=1, progress=False)
    with pytest.raises(TypeError, match=r"expects each batch to be a \(y, x, \.\.\.\)") as e:
        t.fit()
    msg = str(e.value)
    assert arrived in msg and "single tensors" in msg and "forward=" in msg and "step_fn=" in msg
    assert t.global_step == 0 and float(model.a.detach()) == 1.0  # nothing was trained
    with pytest.raises(TypeError, match="expects each batch"):
        evaluate(model, data, batch_size=8)


def test_a_custom_forward_trains_on_single_tensors():
    model = Scale()
    t = Trainer(model, None, torch.optim.SGD(model.parameters(), lr=0.5), Images(), batch_size=8,
                epochs=1, forward=lambda m, b: (m(0.5 * b), b), progress=False)
    t.fit()
    assert t.global_step == 2 and float(model.a.detach()) > 1.0  # moves towards the inverse, a = 2


# ---------------------------------------------------------------- Ctrl-C
def test_ctrl_c_saves_and_both_kinds_of_continuation_are_exact(tmp_path, one_thread, capsys):
    ref = _train_script.build(None, epochs=3, dropout=0.3)
    ref.fit()
    out = tmp_path / "run"
    t = _train_script.build(str(out), epochs=3, dropout=0.3, interrupt_at=8)
    with pytest.raises(KeyboardInterrupt) as e:
        t.fit()
    assert isinstance(e.value, TrainingInterrupted)
    last = str(out / "last.pt")
    assert (e.value.step, e.value.checkpoint) == (7, last)
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0] == (f"Trainer interrupted after step 7 of 12 (epoch 2/3, batch 3/4 done); saved the "
                      f"training state to {last}; continue with Trainer(..., output_dir={str(out)!r}, "
                      f"resume=True).fit()")
    ck = load_checkpoint(last)
    assert (ck["global_step"], ck["epoch"], ck["batch_in_epoch"]) == (7, 1, 3)  # not a checkpoint_every step
    shutil.copytree(out, tmp_path / "copy")
    # 1. the same Trainer, called again in this process
    t.fit()
    assert _same(_weights(t), _weights(ref))
    # 2. a new Trainer resuming from the saved state
    torch.manual_seed(1234)  # scramble the global RNG: the checkpoint must restore it
    r = _train_script.build(str(tmp_path / "copy"), epochs=3, dropout=0.3, resume=True)
    assert r.global_step == 7
    r.fit()
    assert r.loss_calls["n"] == 12 - 7
    assert _same(_weights(r), _weights(ref))
    assert [dict(h, time=0) for h in r.history] == [dict(h, time=0) for h in ref.history]


class InterruptingSchedule:
    """A per-step schedule (constant lr) whose n-th step raises KeyboardInterrupt: after the weight update."""

    def __init__(self, at):
        self.n, self.at = 0, at

    def step(self):
        self.n += 1
        if self.n == self.at:
            raise KeyboardInterrupt

    def state_dict(self):
        return {"n": self.n}

    def load_state_dict(self, st):
        self.n = st["n"]


def test_ctrl_c_during_a_weight_update_saves_nothing_and_points_to_the_last_checkpoint(tmp_path, capsys):
    model = Scale()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    t = Trainer(model, None, opt, _pairs(), batch_size=8, epochs=2, scheduler=InterruptingSchedule(6),
                scheduler_interval="step", output_dir=tmp_path, progress=False)
    with pytest.raises(TrainingInterrupted) as e:
        t.fit()
    last = str(tmp_path / "last.pt")
    assert (e.value.step, e.value.checkpoint) == (5, last)
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0] == (
        f"Trainer interrupted after step 5 of 8 (epoch 2/2, batch 1/4 done) in the middle of a weight "
        f"update, which cannot be saved; the last checkpoint is {last} (step 4): continue with "
        f"Trainer(..., output_dir={str(tmp_path)!r}, resume=True).fit()")
    assert load_checkpoint(last)["global_step"] == 4
    with pytest.raises(RuntimeError, match="interrupted in the middle of optimizer step 6"):
        t.fit()
    again = Trainer(Scale(), None, None, _pairs(), batch_size=8, epochs=2, output_dir=tmp_path, resume=True,
                    progress=False)
    assert again.global_step == 4


def test_ctrl_c_without_output_dir_says_nothing_was_saved(capsys):
    calls = {"n": 0}

    def loss(p, x):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return ((p - x) ** 2).mean()

    t = Trainer(Scale(), loss, None, _pairs(), batch_size=8, epochs=1, progress=False)
    with pytest.raises(TrainingInterrupted) as e:
        t.fit()
    assert e.value.checkpoint is None
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["Trainer interrupted after step 2 of 4 (epoch 1/1, batch 2/4 done); calling fit() again "
                   "on this Trainer continues the run; nothing was saved (no output_dir), so a new run "
                   "starts from the beginning"]
    t.fit()
    assert t.global_step == 4


# ------------------------------------------------------------ seed mixing
def test_one_seed_mixing_for_data_and_training():
    rng = np.random.default_rng(0)
    drawn = [tuple(rng.integers(0, 2**31, k)) for k in (2, 4)]  # numpy integers are accepted
    for ints in [(0,), (0, 5), (5, 0, 0), (2**40, 3, 7, 1), *drawn]:
        w = np.random.SeedSequence([int(i) for i in ints]).generate_state(2, np.uint32)
        want = (int(w[0]) << 31) ^ int(w[1])  # the mixing the data and the sample order always used
        assert mix_seed(*ints) == want and 0 <= want < 2**63
    g = torch.Generator().manual_seed(mix_seed(3, 11))
    assert torch.equal(torch.rand(4, generator=sample_generator(3, 11)), torch.rand(4, generator=g))
    assert mix_seed(0, 5) != mix_seed(0, 6) and mix_seed(0, 5) != mix_seed(5, 0)
    with pytest.raises(TypeError, match="argument 1 must be a non-negative int, got 1.5"):
        mix_seed(0, 1.5)
    with pytest.raises(ValueError, match="argument 0 must be a non-negative int, got -1"):
        mix_seed(-1)
    with pytest.raises(ValueError, match="at least one"):
        mix_seed()
