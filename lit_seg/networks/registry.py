"""The model registry: names to model classes, with the facts each paper model is tested against.

``register_model`` fills it; ``create_model`` and ``list_models`` are its public face. A paper
model also records its paper and the reference parameter counts of ``../shared/PAPERS.md``, which
the tests check, ``lit-seg models --references`` prints and the README shows.
"""

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from torch import nn


@dataclass(frozen=True)
class ReferenceCount:
    """A trainable-parameter count from PAPERS.md (or the released code) and the configuration it holds in.

    Attributes:
        params: the count.
        num_classes: classes of that configuration.
        options: constructor options of that configuration (beyond the defaults).
        description: the configuration in words, e.g. "ResNet-101, with aux".
        exact: True where PAPERS.md marks the count *exact* (it follows from the layer list);
            False for *ref* counts of a replica of the official code, matched within 0.5 %.
    """

    params: int
    num_classes: int
    description: str
    options: Mapping[str, object] = field(default_factory=dict)
    exact: bool = False


@dataclass(frozen=True)
class ModelEntry:
    """A registered model: its builder and, for paper models, the paper and reference counts."""

    builder: Callable[..., nn.Module]
    paper: str | None = None
    references: tuple[ReferenceCount, ...] = ()


_MODELS: dict[str, ModelEntry] = {}


def register_model(
    name: str, *, paper: str | None = None, references: tuple[ReferenceCount, ...] = ()
) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    """Registers a model class (or builder) under ``name``; a name can be taken only once.

    Args:
        name: the registry name, e.g. ``"pspnet"``.
        paper: the arXiv link of the paper that defines the architecture; marks a paper model.
        references: the reference parameter counts of PAPERS.md for this model.
    """

    def decorator(builder: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        if name in _MODELS:
            raise ValueError(f"model name {name!r} is already registered to {_MODELS[name].builder}")
        _MODELS[name] = ModelEntry(builder, paper, tuple(references))
        return builder

    return decorator


def list_models(paper_only: bool = False) -> list[str]:
    """The registered model names, sorted; with ``paper_only``, the paper models in the order they
    were registered (FCN first, RefineNet last)."""
    if paper_only:
        return [name for name, entry in _MODELS.items() if entry.paper]
    return sorted(_MODELS)


def model_entry(name: str) -> ModelEntry:
    """The registry entry of ``name``."""
    if name not in _MODELS:
        raise ValueError(f"unknown model {name!r}; known models: {', '.join(list_models())}")
    return _MODELS[name]


def get_model_class(name: str) -> Callable[..., nn.Module]:
    """Returns the class (or builder) registered under ``name``."""
    return model_entry(name).builder


def create_model(name: str, num_classes: int, **options: object) -> nn.Module:
    """Builds the model registered under ``name``.

    Args:
        name: a name from :func:`list_models`, e.g. ``"pspnet"`` or ``"smp.unet"``.
        num_classes: number of output classes.
        **options: the typed constructor arguments of that model (see its class).
    """
    return get_model_class(name)(num_classes, **options)
