"""Config files of lit-seg: a recipe's parts, registry names of networks, errors that name their file."""

import functools
import importlib
from pathlib import Path

import pytest
import yaml
from jsonargparse import ActionConfigFile, ArgumentParser

from lit_seg.commands.cli import run_cli
from lit_seg.commands.config_files import ConfigError, expand_arguments, registered_net, with_net_class_paths
from lit_seg.commands.main import main
from lit_seg.networks import list_models, model_entry
from tests.helpers.experiment_runs import EXPERIMENTS, recipe_file, stacked_configs

pytestmark = pytest.mark.filterwarnings("ignore:LightningCLI.s args parameter")

CAMVID = ["--config", str(EXPERIMENTS / "base.yaml"), "--config", str(EXPERIMENTS / "data" / "camvid.yaml")]
RECIPE = ["--config", str(recipe_file("segnet_basic", "camvid"))]


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_pinned_jsonargparse_keeps_a_list_under_config_unloaded(tmp_path: Path) -> None:
    """What the expansion relies on: jsonargparse neither loads the files of a ``config:`` list nor fails."""
    parser = ArgumentParser(exit_on_error=False)
    parser.add_argument("--config", action=ActionConfigFile)
    parser.add_argument("--x", type=int, default=0)
    parser.add_argument("--y", type=int, default=0)
    write(tmp_path / "part.yaml", "x: 1\n")
    recipe = write(tmp_path / "recipe.yaml", "config: [part.yaml]\ny: 2\n")
    parsed = parser.parse_args(["--config", str(recipe)])
    assert (parsed.x, parsed.y) == (0, 2)
    parsed = parser.parse_args(expand_arguments(["--config", str(recipe)]))
    assert (parsed.x, parsed.y) == (1, 2)


def test_parts_expand_in_order_relative_to_the_file_that_names_them(tmp_path: Path) -> None:
    base = write(tmp_path / "base.yaml", "seed_everything: 1\n")
    middle = write(tmp_path / "parts" / "middle.yaml", "config: [../base.yaml]\n")
    top = write(tmp_path / "recipes" / "top.yaml", "config: [../parts/middle.yaml]\n")
    expected = ["--config", str(base), "--config", str(middle), "--config", str(top)]
    assert expand_arguments(["fit", "--config", str(top), "--trainer.max_steps", "2"]) == ["fit", *expected,
                                                                                          "--trainer.max_steps", "2"]
    assert expand_arguments(["fit", f"--config={top}"]) == ["fit", *expected]
    assert expand_arguments(["-c", str(top), "fit"]) == [*expected, "fit"]


def test_a_missing_part_and_a_cycle_are_named(tmp_path: Path) -> None:
    recipe = write(tmp_path / "recipe.yaml", "config: [nowhere.yaml]\n")
    missing = tmp_path / "nowhere.yaml"
    with pytest.raises(ConfigError, match=f"{recipe}: config names nowhere.yaml, but {missing} is not a file"):
        expand_arguments(["fit", "--config", str(recipe)])
    first = write(tmp_path / "first.yaml", "config: [second.yaml]\n")
    write(tmp_path / "second.yaml", "config: [first.yaml]\n")
    with pytest.raises(ConfigError, match=f"config names {first}, which names it in turn"):
        expand_arguments(["fit", "--config", str(first)])


def test_an_overlay_before_the_recipe_is_refused() -> None:
    schedule = EXPERIMENTS / "schedules" / "camvid_cpu.yaml"
    recipe = recipe_file("segnet_basic", "camvid")
    refused = f"{schedule} is given before {recipe}, which sets .* again .*: give it after"
    with pytest.raises(ConfigError, match=refused):
        expand_arguments(["fit", "--config", str(schedule), "--config", str(recipe)])
    assert expand_arguments(["fit", "--config", str(recipe), "--config", str(schedule)])[-1] == str(schedule)
    # The recipe's own parts, stacked one by one before it (the old four-file form), are no overlay.
    assert expand_arguments(["fit", *stacked_configs("segnet_basic", "camvid", recipe)])[-1] == str(recipe)


def error_line(capsys: pytest.CaptureFixture[str], args: list[str]) -> str:
    """The error of a refused ``lit-seg`` command line: one line, exit status 1."""
    with pytest.raises(SystemExit) as exit_info:
        run_cli(args)
    assert exit_info.value.code == 1
    error = capsys.readouterr().err
    assert len(error.strip().splitlines()) == 1 and error.startswith("lit-seg: error: ")
    return error


def test_a_yaml_syntax_error_names_the_file_and_line(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    broken = write(tmp_path / "broken.yaml", "trainer:\n  max_steps: [1, 2\n")
    error = error_line(capsys, ["fit", *RECIPE, "--config", str(broken)])
    assert f"{broken}: not valid YAML at line 3" in error


def test_a_bad_key_in_a_recipe_part_names_the_part(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    model = write(tmp_path / "model.yaml", "model:\n  net:\n    class_path: segnet_basic\n    init_args: {widthz: 8}\n")
    recipe = write(
        tmp_path / "recipe.yaml",
        f"config: [{EXPERIMENTS / 'base.yaml'}, {EXPERIMENTS / 'data' / 'camvid.yaml'}, model.yaml]\n",
    )
    error = error_line(capsys, ["fit", "--config", str(recipe)])
    assert error.startswith(f"lit-seg: error: {model}: ") and "'widthz'" in error
    trainer = write(tmp_path / "trainer.yaml", "trainer:\n  max_stepz: 3\n")
    error = error_line(capsys, ["fit", *RECIPE, "--config", str(trainer)])
    assert error.startswith(f"lit-seg: error: {trainer}: ") and "max_stepz" in error


def test_a_bad_option_on_the_command_line_names_no_file(capsys: pytest.CaptureFixture[str]) -> None:
    error = error_line(capsys, ["fit", *RECIPE, "--trainer.max_stepz", "3"])
    assert "--trainer.max_stepz" in error and ".yaml" not in error


@pytest.mark.parametrize("name", list_models())
def test_every_registry_name_stands_for_its_builder(name: str) -> None:
    net = registered_net(name)
    module, class_name = net["class_path"].rsplit(".", 1)
    builder = model_entry(name).builder
    expected = builder.func if isinstance(builder, functools.partial) else builder
    assert getattr(importlib.import_module(module), class_name) is expected
    assert net.get("init_args", {}) == (builder.keywords if isinstance(builder, functools.partial) else {})


def test_only_model_net_is_rewritten() -> None:
    config = {
        "model": {"net": "smp.fpn", "optimizer": "pspnet"}, "wandb": {"group": "pspnet"},
        "fit": {"model": {"net": {"class_path": "pspnet", "init_args": {"backbone": "resnet18"}}}},
        "data": {"class_path": "pspnet"},
    }
    assert with_net_class_paths(config) == {
        "model": {
            "net": {"class_path": "lit_seg.networks.smp.SMPModel", "init_args": {"arch": "FPN"}}, "optimizer": "pspnet",
        },
        "wandb": {"group": "pspnet"},
        "fit": {
            "model": {"net": {"class_path": "lit_seg.networks.pspnet.PSPNet", "init_args": {"backbone": "resnet18"}}},
        },
        "data": {"class_path": "pspnet"},
    }


def printed_net(capsys: pytest.CaptureFixture[str], *args: str) -> dict:
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", *CAMVID, *args, "--print_config"])
    assert exit_info.value.code in (0, None)
    return yaml.safe_load(capsys.readouterr().out)["model"]["net"]


def test_registry_names_on_the_command_line(capsys: pytest.CaptureFixture[str]) -> None:
    net = printed_net(capsys, "--model.net", "pspnet", "--model.net.init_args.backbone", "resnet18")
    assert net["class_path"] == "lit_seg.networks.pspnet.PSPNet" and net["init_args"]["backbone"] == "resnet18"
    net = printed_net(capsys, "--model.net=smp.unet", "--model.net.init_args.encoder_name", "resnet18")
    assert net["class_path"] == "lit_seg.networks.smp.SMPModel" and net["init_args"]["arch"] == "Unet"
    # Given after a recipe of another network, the name replaces the recipe's network.
    net = printed_net(capsys, "--config", str(recipe_file("pspnet", "camvid")), "--model.net", "smp.unet")
    assert net["class_path"] == "lit_seg.networks.smp.SMPModel" and "backbone" not in net["init_args"]


def test_registry_names_in_yaml(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    short = write(tmp_path / "short.yaml", "model:\n  net: smp.fpn\n")
    net = printed_net(capsys, "--config", str(short))
    assert net["class_path"] == "lit_seg.networks.smp.SMPModel" and net["init_args"]["arch"] == "FPN"
    full = write(tmp_path / "full.yaml", "model:\n  net: {class_path: deeplabv3, init_args: {backbone: resnet18}}\n")
    net = printed_net(capsys, "--config", str(full))
    assert net["class_path"] == "lit_seg.networks.deeplabv3.DeepLabV3" and net["init_args"]["backbone"] == "resnet18"


def test_an_unknown_network_name_lists_the_registry(capsys: pytest.CaptureFixture[str]) -> None:
    error = error_line(capsys, ["fit", *CAMVID, "--model.net", "pspnet2"])
    assert "--model.net pspnet2: no network has this name" in error and "smp.unet" in error


def test_help_of_a_registry_name(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", "--model.net.help", "smp.unet"])
    assert exit_info.value.code == 0
    assert "--model.net.encoder_name" in capsys.readouterr().out
