"""Fetching, unpacking, converting and checking public dataset releases (for data/prepare_*.py)."""

import argparse
import hashlib
import shutil
import zipfile
from collections.abc import Callable
from pathlib import Path
from urllib import error, request

import numpy as np
from PIL import Image
from scipy.io import loadmat
from scipy.io.matlab import MatReadError
from torchvision.datasets.utils import extract_archive

from lit_seg.data.io import DatasetError
from lit_seg.data.palette import class_palette
from lit_seg.evaluation.prediction_writer import save_mask

# Label PNGs written here (SBD, NYUDv2) carry the VOC colour map, as VOC's own masks do.
VOC_COLOURS = class_palette(256)


class DownloadError(RuntimeError):
    """A file could not be fetched or does not match its known checksum."""


def run_script(
    script: str, doc: str, prepare: Callable[[Path], None], default_root: str, ready: str, argv: list[str] | None
) -> None:
    """The command line of a ``data/prepare_*.py`` script: ``prepare(--root)``, then ``ready``
    (formatted with ``root``) is printed; a failure exits with ``"<script>: <error>"``."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", type=Path, default=Path(default_root), help="where the dataset goes")
    args = parser.parse_args(argv)
    try:
        prepare(args.root)
    except (DownloadError, DatasetError) as failure:
        raise SystemExit(f"{script}: {failure}") from failure
    print(ready.format(root=args.root))


def file_digest(path: Path, algorithm: str) -> str:
    """The hex digest of a file (``md5``, ``sha1``, ``sha256``...)."""
    with path.open("rb") as file:
        return hashlib.file_digest(file, algorithm).hexdigest()


def _check_digest(path: Path, checksum: tuple[str, str] | None, url: str, remove: bool = False) -> None:
    """Raises if ``path`` does not have the known checksum; ``remove`` deletes it first (a bad download)."""
    if checksum is None or (found := file_digest(path, checksum[0])) == checksum[1]:
        return
    if remove:
        path.unlink()
    action = "deleted it; run again to download it afresh" if remove else "delete it and run again"
    raise DownloadError(f"{path} has {checksum[0]} {found}, expected {checksum[1]} (the file of {url}): {action}")


# Not torchvision's download_url: it waits on the network without a timeout, cannot resume, checks md5 only,
# writes to the final name (a partial file then passes where no checksum is known) and fails with "File not
# found or corrupted." instead of saying what to fetch by hand.
def download(url: str, dest: Path, checksum: tuple[str, str] | None = None, timeout: float = 10.0) -> Path:
    """Fetches ``url`` to ``dest`` unless a verified copy is there already.

    Bytes arrive in ``<dest>.part``; a later call resumes it with an HTTP Range request (or
    starts over where the server ignores ranges). Every network step waits at most ``timeout``
    seconds, so an offline machine fails at once.

    Args:
        url: where the file is published.
        dest: where it goes; a file put there by hand is used as it is (after the checksum).
        checksum: ``(algorithm, hex digest)`` where the published value is known.
        timeout: seconds to wait for the server to connect or send.

    Raises:
        DownloadError: with the URL and what to fetch by hand when the network fails, or when
            the checksum differs.
    """
    if dest.is_file():
        _check_digest(dest, checksum, url)
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    start = part.stat().st_size if part.is_file() else 0
    headers = {"Range": f"bytes={start}-"} if start else {}
    print(f"downloading {url} -> {dest}" + (f" (resuming at {start / 2**20:.1f} MiB)" if start else ""), flush=True)
    try:
        with request.urlopen(request.Request(url, headers=headers), timeout=timeout) as response:
            resumed = start and response.status == 206
            with part.open("ab" if resumed else "wb") as file:
                shutil.copyfileobj(response, file, 1 << 20)
    except error.HTTPError as failure:
        if not (failure.code == 416 and start):  # 416: nothing left to fetch; the part is complete
            raise DownloadError(f"cannot download {url}: HTTP {failure.code} {failure.reason}") from failure
    except OSError as failure:  # URLError, timeouts, refused connections
        reason = getattr(failure, "reason", failure)
        raise DownloadError(
            f"cannot download {url} ({reason}). Without network access, fetch it by hand, save it as {dest} "
            "and run this script again; a partial download is resumed."
        ) from failure
    _check_digest(part, checksum, url, remove=True)
    part.replace(dest)
    return dest


def extract(archive: Path, dest: Path, prefix: str = "") -> None:
    """Unpacks a tar (``.tar``, ``.tgz``...) or zip archive into ``dest``, by its suffix; with
    ``prefix`` (zip archives), only the members under it, with the prefix cut from their paths."""
    print(f"unpacking {archive} -> {dest}", flush=True)
    if not prefix:
        extract_archive(archive, dest)  # tar members are unpacked with tarfile's "data" filter
        return
    with zipfile.ZipFile(archive) as package:  # torchvision unpacks whole archives only
        for info in package.infolist():
            if info.filename.startswith(prefix) and info.filename != prefix:
                info.filename = info.filename[len(prefix):]
                package.extract(info, dest)


def layout_problems(root: Path, files: dict[str, int], lines: dict[str, int] | None = None) -> list[str]:
    """What differs from the expected layout: ``files`` maps glob patterns under ``root`` to file
    counts, ``lines`` list files to their number of non-empty lines."""
    problems = [
        f"{count} files match {root / pattern}, expected {expected}"
        for pattern, expected in files.items()
        if (count := sum(1 for _ in root.glob(pattern))) != expected
    ]
    for name, expected in (lines or {}).items():
        path = root / name
        if not path.is_file():
            problems.append(f"{path} is missing")
        elif (count := sum(1 for line in path.read_text().splitlines() if line.strip())) != expected:
            problems.append(f"{path} has {count} lines, expected {expected}")
    return problems


def check_layout(root: Path, files: dict[str, int], lines: dict[str, int] | None = None) -> None:
    """Raises :class:`DatasetError` listing every difference from the expected layout."""
    if problems := layout_problems(root, files, lines):
        raise DatasetError(f"the dataset under {root} is incomplete:\n  " + "\n  ".join(problems))


def read_sbd_mask(path: Path) -> np.ndarray:
    """The class mask of an SBD ``cls/<id>.mat`` (MATLAB struct ``GTcls``, field ``Segmentation``)."""
    try:
        return np.asarray(loadmat(path, squeeze_me=True, struct_as_record=False)["GTcls"].Segmentation, dtype=np.uint8)
    except (MatReadError, OSError, ValueError, IndexError, KeyError, AttributeError, TypeError, NotImplementedError) as failure:
        raise DatasetError(f"cannot read the SBD label {path}: {failure}") from failure


def build_voc_aug(voc: Path, sbd: Path) -> list[str]:
    """Writes the SBD-augmented VOC training set: ``SegmentationClassAug/<id>.png`` and
    ``ImageSets/Segmentation/train_aug.txt``.

    The set is SBD train + SBD val + VOC train, minus VOC val. An image with a VOC 2012 mask keeps
    it (it marks boundaries with 255); the others get SBD's mask. Masks already written are kept,
    so an interrupted run resumes.

    Args:
        voc: ``VOCdevkit/VOC2012``.
        sbd: SBD's ``benchmark_RELEASE/dataset`` (``cls/``, ``train.txt``, ``val.txt``).

    Returns:
        The image ids of the set, sorted.
    """
    lists = voc / "ImageSets" / "Segmentation"
    voc_val = set((lists / "val.txt").read_text().split())
    candidates = [lists / "train.txt", sbd / "train.txt", sbd / "val.txt"]
    ids = sorted({image_id for listing in candidates for image_id in listing.read_text().split()} - voc_val)
    out = voc / "SegmentationClassAug"
    out.mkdir(exist_ok=True)
    for image_id in ids:
        target, voc_mask = out / f"{image_id}.png", voc / "SegmentationClass" / f"{image_id}.png"
        if target.is_file():
            continue
        if voc_mask.is_file():
            shutil.copyfile(voc_mask, target)
        else:
            save_mask(read_sbd_mask(sbd / "cls" / f"{image_id}.mat"), VOC_COLOURS, target)
    (lists / "train_aug.txt").write_text("".join(f"{image_id}\n" for image_id in ids))
    return ids


def convert_nyudv2(labeled: Path, splits: Path, mapping: Path, root: Path) -> dict[str, int]:
    """Writes the 40-class NYUDv2 as PNGs: ``images/<split>/<NNNN>.png`` (RGB) and
    ``labels/<split>/<NNNN>.png`` (0 = unlabelled, 1..40) for splits ``train`` and ``test``.

    Args:
        labeled: ``nyu_depth_v2_labeled.mat`` (MATLAB v7.3, i.e. HDF5): ``images`` stored as
            ``[N, 3, W, H]`` uint8 and ``labels`` as ``[N, W, H]`` with the 894 NYU classes (0 = none).
        splits: ``splits.mat`` with the 1-based frame numbers ``trainNdxs`` and ``testNdxs``.
        mapping: ``classMapping40.mat``, whose ``mapClass`` maps NYU class k (1..894) to 1..40.
        root: where the PNGs go; ``NNNN`` is the frame's 1-based number in the release.

    Returns:
        The number of frames written per split.
    """
    import h5py  # only this conversion reads HDF5

    indices = loadmat(splits)
    table = np.concatenate([[0], loadmat(mapping)["mapClass"].ravel()]).astype(np.uint8)
    written = {}
    with h5py.File(labeled, "r") as release:
        images, labels = release["images"], release["labels"]
        for split, key in (("train", "trainNdxs"), ("test", "testNdxs")):
            (root / "images" / split).mkdir(parents=True, exist_ok=True)
            (root / "labels" / split).mkdir(parents=True, exist_ok=True)
            numbers = indices[key].ravel().astype(int)
            for number in numbers:
                if not 1 <= number <= len(images):
                    raise DatasetError(f"{splits} names frame {number}, but {labeled} holds {len(images)}")
                label = np.asarray(labels[number - 1]).T
                if label.max(initial=0) >= len(table):
                    raise DatasetError(f"frame {number} of {labeled} holds class {label.max()}, beyond {mapping}")
                image = np.asarray(images[number - 1]).transpose(2, 1, 0)
                Image.fromarray(image).save(root / "images" / split / f"{number:04d}.png")
                save_mask(table[label], VOC_COLOURS, root / "labels" / split / f"{number:04d}.png")
            written[split] = len(numbers)
    return written
