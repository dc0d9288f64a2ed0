"""Every YAML under experiments/ runs: each recipe on its own (it names its parts) trains on a fake dataset
and prints as its parts stacked one by one; overlays stack after it; W&B runs are named and sweeps give
valid options."""

from pathlib import Path

import pytest
import torch
import yaml
from wandb.sdk.launch.sweeps.utils import create_sweep_command_args

from lit_seg.commands.cli import BatchSizeError, SegmentationCLI, run_cli, split_total_batch
from lit_seg.commands.compare import read_local_run
from lit_seg.commands.main import main
from lit_seg.evaluation.crf import DenseCRF
from lit_seg.evaluation.inference import MultiScaleFlip
from lit_seg.training.optim import NORM_LAYERS
from tests.helpers.experiment_runs import (
    EXPERIMENTS,
    FAKES,
    PAPER_MODELS,
    SMALL_NETS,
    recipe_file,
    recipe_parts,
    small_run_args,
    stacked_configs,
)
from tests.helpers.fakes import fake_camvid

pytestmark = pytest.mark.filterwarnings("ignore:LightningCLI.s args parameter")

RECIPES = sorted((EXPERIMENTS / "recipes").glob("*.yaml"))
# Per recipe: the (learning rate, weight decay) each kind of parameter trains at (see group_rates), as the
# authors' released code trains them: Caffe's biases at 2x without decay (FCN, SegNet, DeepLab), DeepLabV2's
# ASPP at 10x/20x on a frozen-BN backbone, PSPNet's heads at 10x, TF-slim's undecayed batch norms (DeepLabV3/V3+),
# RefineNet's backbone at 0.1x with frozen BN; the CamVid-from-scratch recipes (our choice) one rate for all.
_FCN = {"backbone.bias": (2e-4, 0.0), "head.bias": (2e-4, 0.0)}  # head.weight: the score layers; upsamplers fixed
_PSPNET = {
    f"{part}.{kind}": (0.1, 1e-4) for part in ("head", "aux_head") for kind in ("weight", "bias", "norm")
} | {"backbone.weight": (0.01, 1e-4), "backbone.norm": (0.01, 1e-4)}
_SEGNET = {"backbone.weight": (1.0, 5e-4), "backbone.norm": (1.0, 5e-4), "backbone.bias": (2.0, 0.0),
           "head.weight": (1.0, 5e-4), "head.norm": (1.0, 5e-4), "head.bias": (2.0, 0.0)}


def _scaled(table: dict[str, tuple[float, float]], lr: float) -> dict[str, tuple[float, float]]:
    return {key: (round(multiplier * lr, 12), decay) for key, (multiplier, decay) in table.items()}


def _deeplabv3(lr: float) -> dict[str, tuple[float, float]]:
    return {"backbone.weight": (lr, 1e-4), "backbone.norm": (lr, 0.0), "head.weight": (lr, 1e-4),
            "head.norm": (lr, 0.0), "head.bias": (2 * lr, 0.0)}


def _one_rate(lr: float, decay: float, parts: dict[str, tuple[str, ...]]) -> dict[str, tuple[float, float]]:
    return {f"{part}.{kind}": (lr, decay) for part, kinds in parts.items() for kind in kinds}


_RESNET_HEAD = {"backbone": ("weight", "norm"), "head": ("weight", "bias", "norm")}
RECIPE_GROUPS = {
    "deeplabv2_voc": {"backbone.norm": "frozen", "backbone.weight": (2.5e-4, 5e-4), "head.weight": (2.5e-3, 5e-4),
                      "head.bias": (5e-3, 0.0)},
    "deeplabv3_voc": _deeplabv3(0.007), "deeplabv3plus_voc": _deeplabv3(0.007),
    "deeplabv3_cityscapes": _deeplabv3(0.01), "deeplabv3plus_cityscapes": _deeplabv3(0.01),
    "deeplabv3plus_camvid": _one_rate(1e-3, 1e-4, _RESNET_HEAD),
    "denseaspp_cityscapes": _one_rate(3e-4, 1e-5, _RESNET_HEAD),
    "fcn8s_voc": _FCN | {"backbone.weight": (1e-4, 5e-4), "head.weight": {"frozen", (1e-4, 5e-4)}},
    "fcn8s_camvid": _FCN | {"backbone.weight": (1e-4, 1e-4), "head.weight": {"frozen", (1e-4, 1e-4)}},
    "pspnet_voc": _PSPNET, "pspnet_ade20k": _PSPNET, "pspnet_cityscapes": _PSPNET,
    "pspnet_camvid": _one_rate(1e-3, 1e-4, {"backbone": ("weight", "norm"), "head": ("weight", "bias", "norm"),
                                            "aux_head": ("weight", "bias", "norm")}),
    "refinenet_voc": {"backbone.norm": "frozen", "backbone.weight": (5e-5, 5e-4), "head.weight": (5e-4, 5e-4),
                      "head.bias": (5e-4, 5e-4)},
    "segnet_camvid": _scaled(_SEGNET, 1e-3), "segnet_basic_camvid": _scaled(_SEGNET, 0.1),
    "smp_unet_camvid": _one_rate(1e-3, 1e-4, _RESNET_HEAD),
}
RECIPE_GROUPS["refinenet_nyudv2"] = RECIPE_GROUPS["refinenet_voc"]
SWEEPS = sorted((EXPERIMENTS / "sweeps").glob("*.yaml"))


@pytest.fixture(scope="module")
def fake_data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A fake copy of every dataset's release, by dataset name."""
    root = tmp_path_factory.mktemp("datasets")
    return {name: make(root / name) for name, make in FAKES.items()}


EVAL_OVERLAYS = [("ms_flip", "deeplabv3plus", "inference", MultiScaleFlip), ("crf", "deeplabv2", "crf", DenseCRF)]
# Overlays with a test of their own (here or in test_launchers.py).
OVERLAYS = {"schedules/camvid_cpu.yaml", "launch/ddp.yaml", *(f"eval/{name}.yaml" for name, *_ in EVAL_OVERLAYS)}


def test_every_file_is_tested() -> None:
    files = {path.relative_to(EXPERIMENTS).as_posix() for path in EXPERIMENTS.rglob("*.yaml")}
    recipe_models, recipe_data = zip(*(recipe_parts(recipe) for recipe in RECIPES))
    models = {path.stem for path in (EXPERIMENTS / "models").glob("*.yaml")}
    assert models == set(SMALL_NETS) and models <= set(recipe_models) | set(PAPER_MODELS)
    assert {path.stem for path in (EXPERIMENTS / "data").glob("*.yaml")} == set(recipe_data) == set(FAKES)
    parametrized = {f"{folder}/{path.name}" for folder in ("data", "models", "recipes", "sweeps")
                    for path in (EXPERIMENTS / folder).glob("*.yaml")}
    untested = files - parametrized - OVERLAYS - {"base.yaml"}
    assert not untested, f"YAMLs no test runs: {sorted(untested)}"


def printed_config(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    """What ``lit-seg <args> --print_config`` prints."""
    with pytest.raises(SystemExit) as exit_info:
        main([*args, "--print_config"])
    assert exit_info.value.code in (0, None)
    return capsys.readouterr().out


@pytest.mark.parametrize("recipe", RECIPES, ids=lambda path: path.stem)
def test_recipe_names_its_parts(recipe: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model, dataset = recipe_parts(recipe)
    parts = ["../base.yaml", f"../data/{dataset}.yaml", f"../models/{model}.yaml"]
    assert yaml.safe_load(recipe.read_text())["config"] == parts
    one_file = printed_config(capsys, "fit", "--config", str(recipe))
    assert one_file == printed_config(capsys, "fit", *stacked_configs(model, dataset, recipe))
    assert "config:" not in one_file


def group_rates(module: torch.nn.Module, optimizer: torch.optim.Optimizer) -> dict[str, tuple[float, float]]:
    """The (learning rate, weight decay) at which each kind of parameter trains, by part of the network
    (``backbone``, ``head``, ``aux_head``) and kind (``weight``; ``bias`` of a convolution or linear layer;
    ``norm`` for a batch norm's scale and shift); ``frozen`` where no group trains it."""
    rates = {id(p): (group["initial_lr"], group["weight_decay"]) for group in optimizer.param_groups for p in group["params"]}
    layers = dict(module.named_modules())
    table: dict[str, set[tuple[float, float]]] = {}
    for name, parameter in module.named_parameters():
        layer = layers[name.rsplit(".", 1)[0]]
        part = name.split(".")[1]
        kind = "norm" if isinstance(layer, NORM_LAYERS) else name.rsplit(".", 1)[1]
        rate = rates.get(id(parameter), "frozen")
        table.setdefault(f"{part}.{kind}", set()).add(rate if rate == "frozen" else tuple(round(v, 12) for v in rate))
    return {key: next(iter(value)) if len(value) == 1 else value for key, value in sorted(table.items())}


@pytest.mark.parametrize("recipe", RECIPES, ids=lambda path: path.stem)
def test_recipe_trains(recipe: Path, fake_data: dict[str, Path], tmp_path: Path) -> None:
    model, dataset = recipe_parts(recipe)
    settings = yaml.safe_load(recipe.read_text())
    cli = run_cli([
        "fit", "--config", str(recipe), *small_run_args(model, fake_data[dataset], tmp_path),
        "--trainer.fast_dev_run", "true",
    ])
    metrics = cli.trainer.callback_metrics
    assert torch.isfinite(metrics["train/loss"]) and "val/mIoU" in metrics
    # The recipe's total batch is kept with per-process batches of 2; its learning rate is the base rate.
    assert cli.trainer.accumulate_grad_batches == settings["total_batch_size"] // 2
    base_lr = settings["model"]["optimizer"]["init_args"]["lr"]
    assert cli.trainer.optimizers[0].param_groups[0]["initial_lr"] == pytest.approx(base_lr)
    assert group_rates(cli.model, cli.trainer.optimizers[0]) == RECIPE_GROUPS[recipe.stem]


@pytest.mark.parametrize(("overlay", "model", "attribute", "kind"), EVAL_OVERLAYS)
def test_eval_overlay(
    overlay: str, model: str, attribute: str, kind: type, fake_data: dict[str, Path], tmp_path: Path
) -> None:
    cli = run_cli([
        "validate", "--config", str(recipe_file(model, "voc")),
        "--config", str(EXPERIMENTS / "eval" / f"{overlay}.yaml"),
        *small_run_args(model, fake_data["voc"], tmp_path), "--trainer.limit_val_batches", "1",
    ])
    assert isinstance(getattr(cli.model, attribute), kind)
    assert "val/mIoU" in cli.trainer.callback_metrics


def test_cpu_schedule_overlay(fake_data: dict[str, Path], tmp_path: Path) -> None:
    cli = run_cli([
        "fit", "--config", str(recipe_file("segnet_basic", "camvid")),
        "--config", str(EXPERIMENTS / "schedules" / "camvid_cpu.yaml"),
        "--data.init_args.root", str(fake_data["camvid"]), "--data.init_args.crop_size", "[32, 48]",
        "--data.init_args.batch_size", "2", "--total_batch_size", "2",
        "--trainer.max_steps", "2", "--trainer.val_check_interval", "1", "--trainer.limit_val_batches", "1",
        "--trainer.default_root_dir", str(tmp_path), "--trainer.enable_progress_bar", "false",
    ])
    assert cli.trainer.global_step == 2 and cli.trainer.accumulate_grad_batches == 1
    assert (tmp_path / "checkpoints" / "last.ckpt").exists()


def wandb_settings(model: str, dataset: str, data_root: Path, run_dir: Path, *extra: str, recipe: bool = True) -> dict:
    """What ``lit-seg fit`` with the model's and dataset's files (and their recipe) gives W&B."""
    configs = ["--config", str(recipe_file(model, dataset))] if recipe else stacked_configs(model, dataset)
    args = [*configs, *small_run_args(model, data_root, run_dir), *extra]
    cli = SegmentationCLI(args=args, run=False)
    loggers = cli.config.trainer.logger  # as the run's config.yaml records them
    return next(logger.init_args for logger in loggers if logger.class_path.endswith(".WandbLogger")).as_dict()


def test_wandb_names_from_recipe(fake_data: dict[str, Path], tmp_path: Path) -> None:
    settings = wandb_settings("pspnet", "voc", fake_data["voc"], tmp_path)
    assert settings["project"] == "lit_seg-voc"
    assert settings["group"] == "pspnet_voc"  # the recipe's group
    assert settings["tags"] == ["pspnet", "resnet18", "voc", "paper-recipe"]
    assert settings["name"].startswith("pspnet-resnet18-voc-")


def test_wandb_names_without_recipe(fake_data: dict[str, Path], tmp_path: Path) -> None:
    settings = wandb_settings("smp_unet", "camvid", fake_data["camvid"], tmp_path, "--wandb.project", "mine", recipe=False)
    assert (settings["project"], settings["group"]) == ("mine", "smp.unet-resnet18")
    assert settings["tags"] == ["smp.unet", "resnet18", "camvid"]
    settings = wandb_settings("segnet_basic", "camvid", fake_data["camvid"], tmp_path, recipe=False)
    assert (settings["group"], settings["tags"]) == ("segnet_basic", ["segnet_basic", "camvid"])


def test_sweep_runs_get_their_own_folder(fake_data: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WANDB_SWEEP_ID", "sweep1")
    monkeypatch.setenv("WANDB_RUN_ID", "run7")
    args = [*stacked_configs("segnet_basic", "camvid"), *small_run_args("segnet_basic", fake_data["camvid"], tmp_path)]
    cli = SegmentationCLI(args=args, run=False)
    assert Path(cli.trainer.default_root_dir) == tmp_path / "run7"
    assert {Path(callback.dirpath) for callback in cli.trainer.checkpoint_callbacks} == {tmp_path / "run7" / "checkpoints"}


def _nested(config: dict, key: str) -> object:
    for part in key.split("."):
        config = config[part]
    return config


@pytest.mark.parametrize("sweep", SWEEPS, ids=lambda path: path.stem)
def test_sweep_parameters_are_cli_options(
    sweep: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    definition = yaml.safe_load(sweep.read_text())
    command = definition["command"]
    assert command[:3] == ["${env}", "lit-seg", "fit"] and command[-1] == "${args}"
    assert command[3:5] == ["--config", f"experiments/recipes/{sweep.name}"]  # the recipe on its own
    # One value per parameter, formatted as the W&B agent formats ${args}.
    values = {key: spec["values"][0] if "values" in spec else spec["min"] for key, spec in definition["parameters"].items()}
    arguments = create_sweep_command_args({"args": {key: {"value": value} for key, value in values.items()}})["args"]
    monkeypatch.chdir(EXPERIMENTS.parent)
    printed = yaml.safe_load(printed_config(capsys, *command[2:-1], *arguments))
    for key, value in values.items():
        assert _nested(printed, key) == value, key


@pytest.mark.parametrize(
    ("total", "processes", "largest", "expected"),
    [(16, 1, 16, (16, 1)), (16, 4, 16, (4, 1)), (16, 1, 6, (4, 4)), (16, 2, 8, (8, 1)), (10, 1, 4, (2, 5))],
)
def test_split_total_batch(total: int, processes: int, largest: int, expected: tuple[int, int]) -> None:
    assert split_total_batch(total, processes, largest) == expected


def test_total_batch_not_divisible() -> None:
    with pytest.raises(BatchSizeError, match="not divisible by the 3 processes"):
        split_total_batch(16, 3, 16)


def test_camvid_recipe_resumes_to_same_metrics(tmp_path: Path) -> None:
    data = fake_camvid(tmp_path / "camvid", {"train": 4, "val": 2})

    def fit(run_dir: Path, *extra: str) -> SegmentationCLI:
        return run_cli([
            "fit", "--config", str(recipe_file("segnet_basic", "camvid")),
            *small_run_args("segnet_basic", data, run_dir, crop=(32, 48)),
            "--total_batch_size", "2", "--trainer.max_steps", "6", "--trainer.val_check_interval", "2",
            "--last_checkpoint.every_n_train_steps", "2", *extra,
        ])

    def final_metrics(cli: SegmentationCLI) -> dict[str, float]:
        return {k: v.item() for k, v in cli.trainer.callback_metrics.items() if k.startswith("val/")}

    whole = final_metrics(fit(tmp_path / "whole"))
    stopped = tmp_path / "stopped"
    with pytest.raises(SystemExit):  # stopped (as by Ctrl-C) when the second epoch starts
        fit(stopped, "--trainer.callbacks+=tests.helpers.nets.StopAtStep", "--trainer.callbacks.step", "2")
    resumed = fit(stopped, "--ckpt_path", "last")
    assert resumed.trainer.global_step == 6
    assert final_metrics(resumed) == whole and "val/mIoU" in whole
    # The two sessions' logs read as one run, whose clock went on from the first session.
    run = read_local_run(stopped)
    assert [row["step"] for row in run.rows] == [2, 4, 6]
    assert run.final["val/mIoU"] == pytest.approx(whole["val/mIoU"])
    assert run.rows[-1]["time/wall_s"] > run.rows[0]["time/wall_s"]
