"""IR files: HDF5 round trip and injected faults, FLIR ADAS v1/v2 folders, folders of 16-bit frames."""

from __future__ import annotations

import json
import os

import h5py
import numpy as np
import pytest
import skimage.io
import tifffile
import torch

from physinv.ir import Camera, simulate
from physinv.ir.io import (
    IR_FORMAT_VERSION,
    IRFileError,
    load_ir,
    read_flir_adas,
    read_frames,
    read_image,
    save_ir,
)


@pytest.fixture(scope="module")
def frames():
    return simulate(3, Camera.tau2(detector_shape=(12, 16)), seed=2, drift=True)


@pytest.fixture
def saved(frames, tmp_path):
    return save_ir(tmp_path / "f.h5", frames, metadata={"run": 7})


def test_round_trip_keeps_everything(frames, saved):
    back = load_ir(saved)
    for name in ("counts", "temperature_k", "mask", "radiance", "gain", "offset", "offset_drift",
                 "sensor_temperature_k", "n_clipped", "noise_std_radiance"):
        a, b = getattr(frames, name), getattr(back, name)
        assert a.dtype == b.dtype and torch.equal(a, b), name
    assert back.camera == frames.camera and back.metadata == {"run": 7}
    assert load_ir(save_ir(os.path.join(os.path.dirname(saved), "again.h5"), back)).metadata == {"run": 7}
    with h5py.File(saved, "r") as f:
        assert f.attrs["physinv_ir_format"] == IR_FORMAT_VERSION == 1
        assert f["counts"].dtype == np.uint16 and f["mask"].dtype == np.uint8
        assert json.loads(f.attrs["camera"])["pixel_pitch_um"] == 17.0


def test_write_is_atomic(frames, tmp_path, saved):
    before = open(saved, "rb").read()
    with pytest.raises(ValueError, match="metadata must be JSON-serialisable"):
        save_ir(saved, frames, metadata={"bad": object()})
    assert open(saved, "rb").read() == before
    assert sorted(os.listdir(tmp_path)) == ["f.h5"]  # no temporary left behind
    with pytest.raises(TypeError, match="frames must be IRFrames"):
        save_ir(tmp_path / "g.h5", frames.counts)


def test_truncated_file_is_named(saved):
    size = os.path.getsize(saved)
    with open(saved, "r+b") as fh:
        fh.truncate(size // 2)
    with pytest.raises(IRFileError, match=r"f\.h5"):
        load_ir(saved)


def _flip(path, offset):
    with open(path, "r+b") as fh:
        fh.seek(offset)
        b = fh.read(1)
        fh.seek(offset)
        fh.write(bytes([b[0] ^ 0xFF]))


def test_flipped_bytes_in_data_are_caught(saved, tmp_path, frames):
    with h5py.File(saved, "r") as f:
        gain_at = f["gain"].id.get_offset()  # contiguous map
        counts_at = f["counts"].id.get_chunk_info(1).byte_offset  # second frame's compressed chunk
    _flip(saved, gain_at + 5)
    with pytest.raises(IRFileError, match=r"f\.h5: dataset 'gain' does not match its SHA-256 digest"):
        load_ir(saved)
    other = save_ir(tmp_path / "h.h5", frames)
    _flip(other, counts_at + 10)
    with pytest.raises(IRFileError, match=r"h\.h5"):
        load_ir(other)


def test_altered_values_attributes_version_and_missing_data(saved, tmp_path, frames):
    with h5py.File(saved, "r+") as f:
        f["offset"][0, 0] = 0.0  # a valid HDF5 edit: only the digest notices
    with pytest.raises(IRFileError, match="dataset 'offset' does not match"):
        load_ir(saved)
    p = save_ir(tmp_path / "a.h5", frames)
    with h5py.File(p, "r+") as f:
        f.attrs["camera"] = json.dumps({**frames.camera.to_dict(), "netd_k": 0.5}, sort_keys=True)
    with pytest.raises(IRFileError, match="root attributes do not match attrs_sha256"):
        load_ir(p)
    p = save_ir(tmp_path / "v.h5", frames)
    with h5py.File(p, "r+") as f:
        f.attrs["physinv_ir_format"] = 2
    with pytest.raises(IRFileError, match="physinv_ir_format 2 is not supported"):
        load_ir(p)
    p = save_ir(tmp_path / "m.h5", frames)
    with h5py.File(p, "r+") as f:
        del f["mask"]
    with pytest.raises(IRFileError, match=r"m\.h5: dataset 'mask' is missing"):
        load_ir(p)
    p = tmp_path / "other.h5"
    with h5py.File(p, "w") as f:
        f.attrs["format"] = "something-else"
    with pytest.raises(IRFileError, match="not 'physinv-ir'"):
        load_ir(p)
    with pytest.raises(FileNotFoundError, match="nope.h5"):
        load_ir(tmp_path / "nope.h5")
    (tmp_path / "text.h5").write_text("hello")
    with pytest.raises(IRFileError, match=r"text\.h5: cannot be opened as HDF5"):
        load_ir(tmp_path / "text.h5")


# ------------------------------------------------------------------------------------- FLIR ADAS
def _raw(value, shape=(6, 8)):
    rng = np.random.default_rng(value)
    return (value + rng.integers(0, 50, shape)).astype(np.uint16)


def _coco(images, annotations):
    return {"images": images, "annotations": annotations,
            "categories": [{"id": 1, "name": "person"}, {"id": 3, "name": "car"}]}


def test_flir_adas_v1_layout(tmp_path):
    (tmp_path / "Data").mkdir()
    (tmp_path / "PreviewData").mkdir()
    for i, v in ((1, 7000), (2, 9000)):
        tifffile.imwrite(tmp_path / "Data" / f"FLIR_{i:05d}.tiff", _raw(v))
    coco = _coco([{"id": 10, "file_name": "thermal_8_bit/FLIR_00001.jpeg"},
                  {"id": 11, "file_name": "thermal_8_bit/FLIR_00002.jpeg"}],
                 [{"id": 1, "image_id": 10, "category_id": 3, "bbox": [1, 2, 3, 4]},
                  {"id": 2, "image_id": 10, "category_id": 1, "bbox": [0, 0, 2, 5]}])
    (tmp_path / "thermal_annotations.json").write_text(json.dumps(coco))
    ds = read_flir_adas(tmp_path)
    assert ds.version == 1 and len(ds) == 2
    counts, labels, name = ds[0]
    assert name == "FLIR_00001.tiff" and counts.dtype == torch.int32
    assert torch.equal(counts, torch.from_numpy(_raw(7000).astype(np.int32)))
    assert [lab["category"] for lab in labels] == ["car", "person"] and labels[0]["bbox"] == [1.0, 2, 3, 4]
    assert ds[1][1] == []  # listed in the labels, no objects
    assert [n for _, _, n in ds] == ["FLIR_00001.tiff", "FLIR_00002.tiff"]


def test_flir_adas_v2_layout(tmp_path):
    (tmp_path / "analyticsData").mkdir()
    (tmp_path / "data").mkdir()
    tifffile.imwrite(tmp_path / "analyticsData" / "video-a-frame-000001.tiff", _raw(8000))
    tifffile.imwrite(tmp_path / "analyticsData" / "video-a-frame-000002.tiff", _raw(8100))
    coco = _coco([{"id": 0, "file_name": "data/video-a-frame-000001.jpg"}],
                 [{"id": 4, "image_id": 0, "category_id": 1, "bbox": [2, 2, 1, 3]}])
    (tmp_path / "coco.json").write_text(json.dumps(coco))
    ds = read_flir_adas(tmp_path, version="auto")
    assert ds.version == 2 and ds[0][1][0]["category"] == "person"
    assert ds[1][1] is None  # a frame the label file does not list
    with pytest.raises(IRFileError, match="Data/, which is missing"):
        read_flir_adas(tmp_path, version=1)


def test_flir_adas_without_labels_and_bad_folders(tmp_path):
    (tmp_path / "Data").mkdir()
    tifffile.imwrite(tmp_path / "Data" / "FLIR_00001.tiff", _raw(7000))
    assert read_flir_adas(tmp_path)[0][1] is None
    with pytest.raises(ValueError, match="version must be 'auto', 1 or 2"):
        read_flir_adas(tmp_path, version=3)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(IRFileError, match="neither a FLIR ADAS v1 split"):
        read_flir_adas(empty)
    with pytest.raises(FileNotFoundError):
        read_flir_adas(tmp_path / "missing")
    tifffile.imwrite(tmp_path / "Data" / "FLIR_00002.tiff", np.full((6, 8), 20000, np.uint16))
    with pytest.raises(IRFileError, match=r"FLIR_00002\.tiff: values up to 20000 exceed the 14-bit range"):
        read_flir_adas(tmp_path)[1]
    (tmp_path / "coco.json").write_text("{not json")
    with pytest.raises(IRFileError, match=r"coco\.json: cannot be read as JSON"):
        read_flir_adas(tmp_path)
    (tmp_path / "coco.json").write_text(json.dumps(_coco([], [{"id": 1, "image_id": 5, "category_id": 1,
                                                                 "bbox": [0, 0, 1, 1]}])))
    with pytest.raises(IRFileError, match="refers to unknown image 5"):
        read_flir_adas(tmp_path)


# ---------------------------------------------------------------------------------- frame folders
def test_read_frames_tiff_and_png(tmp_path):
    a, b, c = _raw(100), _raw(30000), _raw(65000)
    tifffile.imwrite(tmp_path / "f0.tiff", a)
    skimage.io.imsave(tmp_path / "f1.png", b, check_contrast=False)
    tifffile.imwrite(tmp_path / "f2.tif", c)
    (tmp_path / "notes.txt").write_text("ignored")
    counts, names = read_frames(tmp_path, return_names=True)
    assert names == ["f0.tiff", "f1.png", "f2.tif"] and counts.dtype == torch.int32
    assert torch.equal(counts, torch.from_numpy(np.stack([a, b, c]).astype(np.int32)))
    with pytest.raises(IRFileError, match=r"f1\.png: values up to"):
        read_frames(tmp_path, bits=14)


def test_read_frames_bad_input(tmp_path):
    with pytest.raises(IRFileError, match="no .tif/.tiff/.png frames"):
        read_frames(tmp_path)
    tifffile.imwrite(tmp_path / "a.tiff", _raw(10, (6, 8)))
    tifffile.imwrite(tmp_path / "b.tiff", _raw(10, (6, 9)))
    with pytest.raises(IRFileError, match=r"b\.tiff: frame of shape \(6, 9\) differs"):
        read_frames(tmp_path)
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "x.tiff").write_bytes(b"II*\x00garbage")
    with pytest.raises(IRFileError, match=r"x\.tiff: cannot be decoded"):
        read_frames(bad)
    tifffile.imwrite(bad / "y.tiff", _raw(10, (64, 80)))
    with open(bad / "y.tiff", "r+b") as fh:
        fh.truncate(os.path.getsize(bad / "y.tiff") // 2)
    with pytest.raises(IRFileError, match=r"y\.tiff: cannot be decoded"):
        read_image(bad / "y.tiff")
    tifffile.imwrite(tmp_path / "rgb.tiff", np.zeros((4, 4, 3), np.uint16))
    with pytest.raises(IRFileError, match=r"rgb\.tiff: expected a single-channel 2-D frame"):
        read_image(tmp_path / "rgb.tiff")
    tifffile.imwrite(tmp_path / "float.tiff", np.zeros((4, 4), np.float32))
    with pytest.raises(IRFileError, match=r"float\.tiff: expected 8- or 16-bit unsigned"):
        read_image(tmp_path / "float.tiff")
    with pytest.raises(FileNotFoundError):
        read_frames(tmp_path / "missing")
