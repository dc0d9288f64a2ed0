"""Who a run is on W&B: its project, group, name, tags and job type, derived from the experiment's model,
backbone and dataset (the ``wandb.*`` options override each), and its run id (kept across a resumed fit)."""

import os
import time
from pathlib import Path
from typing import Any, Literal

from jsonargparse import Namespace
from lightning.pytorch.cli import LightningArgumentParser

from lit_seg.networks import get_model_class, list_models
from lit_seg.training.loggers import new_run_id, saved_run_id


def experiment_tags(config: Namespace) -> tuple[str, str | None, str]:
    """The model (its registry name), backbone (None where the net has no such option) and dataset
    of a parsed ``fit`` config, e.g. ``("pspnet", "resnet50", "camvid")``."""
    net = config.model.net
    class_path = net if isinstance(net, str) else net.class_path
    options = (None if isinstance(net, str) else net.get("init_args")) or Namespace()
    registered = {getattr(get_model_class(name), "__qualname__", None): name for name in list_models()}
    class_name = class_path.rsplit(".", 1)[-1]
    # smp models are named by their architecture, as in the registry ("smp.unet").
    model = f"smp.{options.arch.lower()}" if options.get("arch") else registered.get(class_name, class_name.lower())
    backbone = options.get("backbone") or options.get("encoder_name")
    dataset = config.data.class_path.rsplit(".", 1)[-1].removesuffix("DataModule").lower()
    return model, backbone, dataset


# Subcommands whose W&B runs evaluate a checkpoint rather than train.
EVALUATIONS = ("validate", "test")


def wandb_names(config: Namespace, subcommand: str = "fit") -> dict[str, Any]:
    """W&B ``project`` (``lit_seg-<dataset>``), ``group`` (``<model>[-<backbone>]``, shared by a
    training run and its evaluations), run ``name`` (group, dataset, the subcommand for evaluations,
    start time), ``tags`` (model, backbone, dataset), ``entity`` and ``job_type`` ("train", or "eval"
    for ``validate`` and ``test``) of a parsed config; its ``wandb.*`` options override each and add tags."""
    model, backbone, dataset = experiment_tags(config)
    group = f"{model}-{backbone}" if backbone else model
    wandb = config.get("wandb") or Namespace()
    evaluation = subcommand in EVALUATIONS
    name = "-".join([group, dataset, *([subcommand] if evaluation else []), time.strftime("%Y%m%d-%H%M%S")])
    return {
        "project": wandb.get("project") or f"lit_seg-{dataset}",
        "group": wandb.get("group") or group,
        "name": wandb.get("name") or name,
        "tags": list(dict.fromkeys([model, *([backbone] if backbone else []), dataset, *(wandb.get("tags") or [])])),
        "entity": wandb.get("entity"),
        "job_type": wandb.get("job_type") or ("eval" if evaluation else "train"),
    }


def wandb_run_id(config: Namespace, subcommand: str) -> tuple[str, bool]:
    """The W&B run id of this run, and whether it continues the run of a resumed fit.

    In order: ``wandb.id``; ``WANDB_RUN_ID`` (set by a sweep agent); for a ``fit`` resumed from a
    checkpoint file, the id kept beside it (:func:`lit_seg.training.loggers.saved_run_id`); else a new id,
    so that an evaluation never logs into the training run whose config it reuses.
    """
    given = (config.get("wandb") or Namespace()).get("id") or os.environ.get("WANDB_RUN_ID")
    if given:
        return given, False
    checkpoint = config.get("ckpt_path")
    if subcommand == "fit" and checkpoint and Path(checkpoint).is_file():
        saved = saved_run_id(Path(checkpoint).parent)
        if saved:
            return saved, True
    return new_run_id(), False




def add_wandb_arguments(parser: LightningArgumentParser) -> None:
    """The ``wandb.*`` options, which name the W&B run of every fit, validate and test; the CLI hands
    them to the W&B logger (see :func:`wandb_names` and :func:`wandb_run_id`)."""
    derived = {
        "project": "lit_seg-<dataset>", "group": "<model>-<backbone>", "name": "<group>-<dataset>[-<subcommand>]-<time>",
        "entity": "the API key's default entity", "job_type": "train for fit, eval for validate and test",
        "id": "a new id; a fit resumed from a checkpoint continues the run whose id is kept beside it",
    }
    for option, default in derived.items():
        parser.add_argument(f"--wandb.{option}", type=str | None, default=None, help=f"W&B {option} (default: {default})")
    parser.add_argument("--wandb.tags", type=list[str], default=[], help="W&B tags besides model, backbone and dataset")
    parser.add_argument(
        "--wandb.resume", type=Literal["allow", "must", "never", "auto"] | None, default=None,
        help="W&B resume mode for a run of the same id (default: allow, which continues it if it exists)",
    )
