"""Command lines that run the experiment YAMLs on fake datasets with small networks (test helpers)."""

from collections.abc import Callable
from functools import partial
from pathlib import Path

from lit_seg.networks import list_models
from tests.helpers.fakes import fake_ade20k, fake_camvid, fake_cityscapes, fake_nyudv2, fake_voc
from tests.helpers.tiny_runs import REPO

EXPERIMENTS = REPO / "experiments"

FAKES: dict[str, Callable[[Path], Path]] = {
    "ade20k": fake_ade20k,
    "camvid": fake_camvid,
    "cityscapes": fake_cityscapes,
    "nyudv2": fake_nyudv2,
    "voc": partial(fake_voc, prepared=True),
}

# The paper architectures, each with its own file under experiments/models/.
PAPER_MODELS = tuple(list_models(paper_only=True))

# Per model file: options that make the paper's network small and offline (no pretrained weights).
_OFFLINE = ["--model.net.init_args.pretrained", "null"]
_RESNET18 = ["--model.net.init_args.backbone", "resnet18", *_OFFLINE]
SMALL_NETS: dict[str, list[str]] = {
    "fcn32s": _OFFLINE,
    "fcn16s": _OFFLINE,
    "fcn8s": _OFFLINE,
    "segnet": _OFFLINE,
    "segnet_basic": [],
    "pspnet": _RESNET18,
    "deeplabv2": _RESNET18,
    "deeplabv3": [*_RESNET18, "--model.net.init_args.multi_grid", "null"],
    "deeplabv3plus": [*_RESNET18, "--model.net.init_args.multi_grid", "null"],
    "denseaspp": ["--model.net.init_args.backbone", "densenet121", *_OFFLINE],
    "refinenet": _RESNET18,
    "smp_unet": ["--model.net.init_args.encoder_name", "resnet18"],
}


def recipe_parts(recipe: Path) -> tuple[str, str]:
    """The model file and dataset of ``recipes/<model>_<dataset>.yaml``."""
    model, dataset = recipe.stem.rsplit("_", 1)
    return model, dataset


def recipe_file(model: str, dataset: str) -> Path:
    """The recipe file of a model file and a dataset."""
    return EXPERIMENTS / "recipes" / f"{model}_{dataset}.yaml"


def stacked_configs(model: str, dataset: str, recipe: Path | None = None) -> list[str]:
    """``--config`` arguments of the files stacked one by one: base, dataset, model (the parts that a
    recipe names), then the ``recipe`` if given."""
    files = [EXPERIMENTS / "base.yaml", EXPERIMENTS / "data" / f"{dataset}.yaml", EXPERIMENTS / "models" / f"{model}.yaml"]
    files += [recipe] if recipe is not None else []
    return [argument for path in files for argument in ("--config", str(path))]


def small_run_args(
    model: str, data_root: Path, run_dir: Path, batch_size: int = 2, crop: tuple[int, int] = (64, 64)
) -> list[str]:
    """Overrides for a quick CPU run: the small network, the fake data, tiny crops, no workers."""
    return [
        *SMALL_NETS[model],
        "--data.init_args.root", str(data_root),
        "--data.init_args.batch_size", str(batch_size),
        "--data.init_args.num_workers", "0",
        "--data.init_args.crop_size", f"[{crop[0]}, {crop[1]}]",
        "--trainer.accelerator", "cpu",
        "--trainer.devices", "1",
        "--trainer.enable_progress_bar", "false",
        "--trainer.enable_model_summary", "false",
        "--trainer.default_root_dir", str(run_dir),
    ]
