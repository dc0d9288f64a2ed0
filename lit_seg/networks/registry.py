"""The model registry: names to model classes, filled by the ``register_model`` decorator."""

from collections.abc import Callable

from torch import nn

_MODELS: dict[str, Callable[..., nn.Module]] = {}


def register_model(name: str) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    """Registers a model class (or builder) under ``name``; a name can be taken only once."""

    def decorator(builder: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        if name in _MODELS:
            raise ValueError(f"model name {name!r} is already registered to {_MODELS[name]}")
        _MODELS[name] = builder
        return builder

    return decorator


def list_models() -> list[str]:
    """Returns the registered model names, sorted."""
    return sorted(_MODELS)


def get_model_class(name: str) -> Callable[..., nn.Module]:
    """Returns the class (or builder) registered under ``name``."""
    if name not in _MODELS:
        raise ValueError(f"unknown model {name!r}; known models: {', '.join(list_models())}")
    return _MODELS[name]


def create_model(name: str, num_classes: int, **options: object) -> nn.Module:
    """Builds the model registered under ``name``.

    Args:
        name: a name from :func:`list_models`, e.g. ``"pspnet"`` or ``"smp.unet"``.
        num_classes: number of output classes.
        **options: the typed constructor arguments of that model (see its class).
    """
    return get_model_class(name)(num_classes, **options)
