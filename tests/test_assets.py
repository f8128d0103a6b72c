"""The shipped files (``physinv.assets``): found after installation, digest-checked, and packaged."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

from physinv import assets

tomllib = pytest.importorskip("tomllib")  # Python 3.11+

REPO = Path(__file__).resolve().parents[1]


def test_every_manifest_entry_loads_and_matches_its_digest():
    listed = assets.names()
    assert listed, "the manifest lists no files"
    for name in listed:
        raw = (REPO / "data" / name).read_bytes()
        assert hashlib.sha256(raw).hexdigest() == assets.manifest()[name]["sha256"]
        assert assets.read_bytes(name) == raw
        if not name.endswith(".npy"):
            continue
        arr = assets.load_array(name)
        assert list(arr.shape) == assets.manifest()[name]["shape"]
        assert np.isfinite(arr).all()
    for name in assets.names("psf"):
        k = assets.load_array(name)
        assert (k >= 0).all() and abs(k.sum() - 1) < 1e-9


def test_every_file_in_data_is_in_the_manifest():
    on_disk = {p.relative_to(REPO / "data").as_posix() for p in (REPO / "data").rglob("*")
               if p.is_file() and p.suffix not in (".py", ".pyc") and p.name != "manifest.json"
               and "__pycache__" not in p.parts}
    assert on_disk == set(assets.names())


def test_unknown_and_damaged_assets_are_refused(monkeypatch):
    with pytest.raises(assets.AssetError, match="unknown asset 'psfs/nope.npy'"):
        assets.load_array("psfs/nope.npy")
    with pytest.raises(TypeError, match="name must be a str"):
        assets.load_array(3)
    name = assets.names()[0]
    forged = {n: dict(m) for n, m in assets.manifest().items()}
    forged[name]["sha256"] = "0" * 64
    monkeypatch.setattr(assets, "manifest", lambda: forged)
    with pytest.raises(assets.AssetError, match=f"asset '{name}' is damaged"):
        assets.load_array(name)


def test_pyproject_lists_every_package_and_ships_the_data():
    conf = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    found = {".".join(p.parent.relative_to(REPO / "src").parts)
             for p in (REPO / "src" / "physinv").rglob("__init__.py")}
    assert set(conf["packages"]) == found | {"physinv.assets"}
    patterns = conf["package-data"]["physinv.assets"]
    for name in ["manifest.json", *assets.names()]:
        assert any(Path(name).match(pat) for pat in patterns), f"{name} would not be installed"
