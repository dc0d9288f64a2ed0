"""The config files of ``lit-seg``: recipes that name their parts, registry names of networks, and
errors that name the file they came from.

A recipe names the files it builds on in a ``config:`` list, relative to itself::

    config: [../base.yaml, ../data/camvid.yaml, ../models/pspnet.yaml]

Before parsing, each ``--config RECIPE`` becomes ``--config`` of each part (with its own parts
first), then ``--config RECIPE``: later files override earlier ones, and ``--print_config`` shows
the merged whole. jsonargparse (4.53) keeps a list under ``config:`` unread (tested), and a single
path there does not let the file's own ``model.net.init_args`` refine the named model file (they
are checked against ``torch.nn.Module``), so the list is expanded here.

Where a network is given (``--model.net``, or ``model.net`` in a YAML file, alone or as its
``class_path``), a registry name (``pspnet``, ``smp.unet``: ``lit-seg models`` lists them) stands
for its class path; an smp name also sets ``arch``. A saved config holds the class paths.
"""

import functools
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml
from jsonargparse import ArgumentError, ArgumentParser, get_loader, set_loader
from lightning.pytorch.cli import LightningCLI

from lit_seg.networks import SegmentationNet, get_model_class, list_models

# The parser mode of lit-seg's parsers: jsonargparse's YAML loader with registry names of networks
# replaced by class paths (registered at the end of this file).
PARSER_MODE = "lit_seg"

# The ways a config file is given on the command line.
CONFIG_OPTIONS = ("--config", "-c")
# The options that name a network, and the one that shows a network's options.
NET_OPTIONS = ("--model.net", "--model.net.class_path")
NET_HELP = "--model.net.help"
# Lightning's subcommands, under which a config file may also hold a subcommand's options.
SUBCOMMANDS = tuple(LightningCLI.subcommands())
# The start of jsonargparse's error for a config that lacks required options (it then names them).
_MISSING_REQUIRED = "the following arguments are required:"


class ConfigError(ValueError):
    """A config file or option that cannot be used, named with the file it came from."""


def class_path(cls: type) -> str:
    """The import path of ``cls``, as a config's ``class_path`` names it."""
    return f"{cls.__module__}.{cls.__qualname__}"


def registered_net(name: str) -> dict[str, Any] | None:
    """The ``class_path`` (and ``init_args`` that the name fixes, smp's ``arch``) of the network
    registered as ``name``, or None where no network is registered under it."""
    if name not in list_models():
        return None
    builder = get_model_class(name)
    if isinstance(builder, functools.partial):
        return {"class_path": class_path(builder.func), "init_args": dict(builder.keywords)}
    return {"class_path": class_path(builder)}


def _with_net_class_path(net: Any) -> Any:
    """``net`` (a ``model.net`` value) with a registry name replaced by its class path."""
    name = net.get("class_path") if isinstance(net, dict) else net
    registered = registered_net(name) if isinstance(name, str) else None
    if registered is None:
        return net
    given = net if isinstance(net, dict) else {}
    init_args = {**registered.get("init_args", {}), **(given.get("init_args") or {})}
    return {**given, **registered, **({"init_args": init_args} if init_args else {})}


def with_net_class_paths(config: Any) -> Any:
    """Loaded YAML ``config`` with a registry name as ``model.net`` (or its ``class_path``) replaced
    by the class path, at the top level and under a subcommand; other values are kept."""
    if not isinstance(config, dict):
        return config
    for section in (config, *(config.get(name) for name in SUBCOMMANDS)):
        model = section.get("model") if isinstance(section, dict) else None
        if isinstance(model, dict) and "net" in model:
            model["net"] = _with_net_class_path(model["net"])
    return config


def load_yaml_file(path: Path) -> Any:
    """The YAML of ``path``; a syntax error names the file and line."""
    try:
        return yaml.safe_load(path.read_text())
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(error, "problem", None) or str(error)
        raise ConfigError(f"{path}: not valid YAML{where}: {problem}") from None


def config_parts(path: Path, named_by: tuple[Path, ...] = ()) -> list[Path]:
    """The files that a ``--config path`` stands for: the files its ``config:`` list names (each
    with its own parts first, paths relative to the naming file), then ``path`` itself."""
    if path in named_by:
        raise ConfigError(f"{named_by[-1]}: config names {path}, which names it in turn")
    parts = (load_yaml_file(path) or {}).get("config") if path.suffix in (".yaml", ".yml") else None
    if not isinstance(parts, list):
        return [path]
    files = []
    for part in parts:
        file = Path(os.path.normpath(path.parent / part))
        if not file.is_file():
            raise ConfigError(f"{path}: config names {part}, but {file} is not a file")
        files += config_parts(file, (*named_by, path))
    return [*files, path]


def _leaf_keys(config: Any, prefix: str = "") -> Iterator[str]:
    if isinstance(config, dict) and config:
        for key, value in config.items():
            if prefix or key != "config":
                yield from _leaf_keys(value, f"{prefix}{key}.")
    elif prefix:
        yield prefix[:-1]


def check_order(earlier: list[Path], recipe: Path, parts: list[Path]) -> None:
    """Refuses a file given before ``recipe`` that sets an option the recipe (or one of its
    ``parts``) sets again: the recipe would silently override it."""
    recipe_keys = {key for part in parts for key in _leaf_keys(load_yaml_file(part))}
    for file in earlier:
        if file in parts:  # the recipe's own part, as the four-file stack gives it
            continue
        overridden = sorted(set(_leaf_keys(load_yaml_file(file))) & recipe_keys)
        if overridden:
            raise ConfigError(
                f"{file} is given before {recipe}, which sets {overridden[0]} again (later files override "
                "earlier ones): give it after the recipe"
            )


def _option_value(argv: list[str], index: int, options: tuple[str, ...]) -> tuple[str | None, int]:
    """The value of ``argv[index]`` if it is one of ``options`` (``--option value`` or
    ``--option=value``), and the number of arguments it spans."""
    argument = argv[index]
    if argument in options and index + 1 < len(argv):
        return argv[index + 1], 2
    name, equals, value = argument.partition("=")
    if equals and name in options:
        return value, 1
    return None, 1


def expand_arguments(argv: list[str]) -> list[str]:
    """``argv`` with each ``--config`` file preceded by the files its ``config:`` list names, and a
    registry name after ``--model.net`` (or ``--model.net.help``) replaced by the network's class path
    (and smp's ``arch``).

    Raises:
        ConfigError: a config file that is not valid YAML, names a missing part, or comes before a
            recipe that would override it.
    """
    expanded: list[str] = []
    given: list[Path] = []
    index = 0
    while index < len(argv):
        config, config_span = _option_value(argv, index, CONFIG_OPTIONS)
        net, net_span = _option_value(argv, index, NET_OPTIONS)
        help_of, help_span = _option_value(argv, index, (NET_HELP,))
        if config is not None and Path(config).is_file():
            files = config_parts(Path(config))
            if len(files) > 1:
                check_order([file for earlier in given for file in config_parts(earlier)], Path(config), files)
            given.append(Path(config))
            expanded += [argument for file in files for argument in ("--config", str(file))]
            index += config_span
        elif net is not None:
            expanded += _net_arguments(net)
            index += net_span
        elif help_of is not None and registered_net(help_of):
            expanded += [NET_HELP, registered_net(help_of)["class_path"]]
            index += help_span
        else:
            expanded.append(argv[index])
            index += 1
    return expanded


def _net_classes(base: type = SegmentationNet) -> Iterator[type]:
    for subclass in base.__subclasses__():
        yield subclass
        yield from _net_classes(subclass)


def _net_arguments(value: str) -> list[str]:
    """The arguments that give the network ``value`` names (a registry name, a class name or path).

    Raises:
        ConfigError: ``value`` is a single word that names no network.
    """
    registered = registered_net(value)
    if registered is not None:
        init_args = registered.get("init_args", {})
        return ["--model.net", registered["class_path"], *(
            argument for key, option in init_args.items() for argument in (f"--model.net.init_args.{key}", str(option))
        )]
    if value.isidentifier() and value not in {cls.__name__ for cls in _net_classes()}:
        raise ConfigError(
            f"--model.net {value}: no network has this name; give a registry name ({', '.join(list_models())}) "
            "or a class path"
        )
    return ["--model.net", value]


def given_configs(argv: list[str]) -> Iterator[tuple[int, Path]]:
    """Each config file of ``argv``, with the index just past it."""
    index = 0
    while index < len(argv):
        value, span = _option_value(argv, index, CONFIG_OPTIONS)
        index += span
        if value is not None and Path(value).is_file():
            yield index, Path(value)


def _on_one_line(message: str) -> str:
    """jsonargparse's message (often several indented lines) on one line."""
    return " ".join(line.strip() for line in message.splitlines() if line.strip())


def culprit_message(parser: ArgumentParser, argv: list[str], message: str) -> str:
    """The parse error ``message`` of ``argv``, led by the config file it came from: the first file
    whose addition (to the files before it, without the options after) makes parsing fail for a
    reason other than options still missing. An error of no file is returned as it is."""
    subcommand = next((argument for argument in argv if argument in SUBCOMMANDS), None)
    for end, path in given_configs(argv):
        prefix = argv[:end]
        if subcommand is not None and subcommand not in prefix:
            prefix.append(subcommand)
        try:
            parser.parse_args(prefix)
        except ArgumentError as error:
            if not str(error).startswith(_MISSING_REQUIRED):
                return f"{path}: {_on_one_line(str(error))}"
    return _on_one_line(message)


def _load(text: str) -> Any:
    """jsonargparse's YAML loader, then registry names of networks replaced by class paths."""
    return with_net_class_paths(get_loader("yaml")(text))


set_loader(PARSER_MODE, _load, exceptions=(yaml.YAMLError,))
