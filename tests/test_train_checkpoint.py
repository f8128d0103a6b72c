"""Checkpoint files: every damaged or foreign file is refused by name, stale temporaries are removed."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

from physinv._io import atomic_write
from physinv.train import CheckpointError, Trainer, atomic_save, load_checkpoint, load_weights
from physinv.train.checkpoint import HEADER_SIZE, TRAINING_KEYS, remove_stale_temporaries

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(ROOT, "tests", "_train_script.py")


class Scale(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Parameter(torch.tensor(1.0))

    def forward(self, y):
        return self.a * y


def _data(n=32):
    x = torch.rand(n, 6, 6, generator=torch.Generator().manual_seed(0))
    return TensorDataset(0.5 * x, x)


def _resume(path):
    return Trainer(Scale(), None, None, _data(), batch_size=8, epochs=2, resume=str(path), progress=False)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A finished 1-epoch run: a real last.pt (training state) and best.pt (weights)."""
    out = tmp_path_factory.mktemp("run")
    Trainer(Scale(), None, None, _data(), _data(8), batch_size=8, epochs=1, output_dir=out,
            progress=False).fit()
    return out


def _refused(path, call, *extra):
    with pytest.raises(CheckpointError, match=re.escape(str(path))) as e:
        call(path)
    for text in extra:
        assert text in str(e.value)
    return str(e.value)


def test_a_checkpoint_roundtrips_and_resumes(run_dir):
    ck = load_checkpoint(run_dir / "last.pt", required=TRAINING_KEYS)
    assert ck["global_step"] == 4 and ck["epoch"] == 1
    t = _resume(run_dir / "last.pt")
    assert t.global_step == 4 and float(t.module.a.detach()) == float(ck["model"]["a"])
    assert load_weights(Scale(), run_dir / "best.pt").a.item() == ck["model"]["a"].item()
    head = (run_dir / "last.pt").read_bytes()[:HEADER_SIZE]
    assert re.fullmatch(rb"physinv-checkpoint 1 sha256=[0-9a-f]{64} size=\d{20}\n", head)


def test_every_flipped_byte_is_refused_with_the_path(run_dir, tmp_path):
    data = (run_dir / "last.pt").read_bytes()
    header = [0, 5, 19, 30, 60, 95, 105, HEADER_SIZE - 1]  # magic, version, digest, size, newline
    positions = sorted(set(header) | set(np.linspace(HEADER_SIZE, len(data) - 1, 30).astype(int).tolist()))
    assert len(positions) >= 30
    for pos in positions:
        bad = bytearray(data)
        bad[pos] ^= 0xFF
        p = tmp_path / f"flip{pos}.pt"
        p.write_bytes(bytes(bad))
        _refused(p, load_checkpoint)
        _refused(p, _resume)
    best = (run_dir / "best.pt").read_bytes()
    for pos in np.linspace(0, len(best) - 1, 10).astype(int):
        bad = bytearray(best)
        bad[pos] ^= 0x01  # a single flipped bit
        p = tmp_path / f"bit{pos}.pt"
        p.write_bytes(bytes(bad))
        _refused(p, lambda q: load_weights(Scale(), q))


def test_truncated_or_extended_files_are_refused(run_dir, tmp_path):
    data = (run_dir / "last.pt").read_bytes()
    for n in (0, 10, HEADER_SIZE - 1, HEADER_SIZE, HEADER_SIZE + 1, len(data) // 2, len(data) - 1):
        p = tmp_path / f"cut{n}.pt"
        p.write_bytes(data[:n])
        msg = _refused(p, load_checkpoint)
        assert "damaged" in msg and ("truncated" in msg or "empty" in msg)
        _refused(p, _resume)
    p = tmp_path / "longer.pt"
    p.write_bytes(data + b"\0")
    _refused(p, load_checkpoint, "extended")


def test_foreign_files_are_refused_by_name(run_dir, tmp_path):
    plain = tmp_path / "plain.pt"
    torch.save({"model": Scale().state_dict()}, plain)  # a valid torch file without the digest header
    _refused(plain, load_checkpoint, "plain torch.save archive")
    _refused(plain, lambda q: load_weights(Scale(), q), "plain torch.save archive")
    other = tmp_path / "other.pt"
    atomic_save({"weights": torch.ones(2)}, other)  # intact, but other keys
    _refused(other, _resume, f"{other} is not a physinv checkpoint (missing keys ['physinv_checkpoint',")
    _refused(other, lambda q: load_weights(Scale(), q),
             f"{other} is not a physinv checkpoint (missing keys ['model'])")
    msg = _refused(run_dir / "best.pt", _resume, "is not a physinv checkpoint (missing keys", "load_weights")
    assert "'config'" in msg and "'model'" not in msg.split("missing keys")[1].split(")")[0]
    listed = tmp_path / "list.pt"
    atomic_save([1, 2], listed)
    _refused(listed, lambda q: load_weights(Scale(), q), "holds a list")
    text = tmp_path / "notes.pt"
    text.write_text("hello")
    _refused(text, load_checkpoint, "not a physinv checkpoint file")
    with pytest.raises(FileNotFoundError):
        load_checkpoint(tmp_path / "missing.pt")


def test_stale_temporaries_of_the_trainer_are_removed(run_dir, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(run_dir, out)
    # the name atomic_write gives its temporary file, seen while it is written
    seen = []
    atomic_write(out / "probe.pt", lambda fh: seen.extend(f for f in os.listdir(out) if f.endswith(".tmp")))
    assert remove_stale_temporaries(out, ["probe.pt"]) == []  # renamed: nothing left
    stale_names = [seen[0].replace("probe.pt", name) for name in ("last.pt", "best.pt", "log.jsonl")]
    for name in stale_names:
        shutil.copy(out / "last.pt", out / name)  # full-size, as a killed write leaves it
    kept = [".data.h5.abcdefgh.tmp", "last.pt.tmp", "notes.tmp", ".last.pt.tmp"]
    for name in kept:
        (out / name).write_text("not ours")
    t = Trainer(Scale(), None, None, _data(), batch_size=8, epochs=2, output_dir=out, resume=True,
                progress=False)
    assert t.global_step == 4
    left = set(os.listdir(out))
    assert not left & set(stale_names) and set(kept) <= left


@pytest.mark.slow  # a subprocess; test_stale_temporaries_of_the_trainer_are_removed is the quick variant
def test_a_kill_during_a_checkpoint_write_leaves_a_temporary_that_the_next_start_removes(tmp_path):
    out = tmp_path / "killed"
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""),
               OMP_NUM_THREADS="1")
    # checkpoints every 3 steps: write 1 is step 3, write 2 is step 4 (end of epoch 1), write 3 is step 6
    r = subprocess.run([sys.executable, SCRIPT, "--out", str(out), "--kill-in-write", "3"], cwd=ROOT,
                       env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == -9, r.stderr[-2000:]
    temps = [f for f in os.listdir(out) if f.startswith(".last.pt.") and f.endswith(".tmp")]
    assert len(temps) == 1 and os.path.getsize(out / temps[0]) > HEADER_SIZE
    assert load_checkpoint(out / temps[0])["global_step"] == 6  # complete, never renamed
    assert load_checkpoint(out / "last.pt")["global_step"] == 4  # the previous checkpoint is intact
    sys.path.insert(0, os.path.dirname(SCRIPT))
    try:
        import _train_script
    finally:
        sys.path.remove(os.path.dirname(SCRIPT))
    t = _train_script.build(str(out), epochs=3, resume=True)
    assert t.global_step == 4 and not [f for f in os.listdir(out) if f.endswith(".tmp")]
