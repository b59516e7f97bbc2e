"""Configuration of the OOV provider (no torch here).

The same keys are accepted from a config file (``--oov-config FILE``, YAML or JSON) or from keyword
arguments; :meth:`OOVConfig.from_mapping` validates them.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from errortaxa.providers.oov.errors import OOVConfigError

DEFAULT_MODEL = "ViT-L-14-336"
DEFAULT_PRETRAINED = "openai"
DEFAULT_TEMPLATE = "A photo of a {}"


def default_cache_dir() -> Path:
    """``$ERRORTAXA_CACHE`` or ``$XDG_CACHE_HOME/errortaxa`` or ``~/.cache/errortaxa``."""
    env = os.environ.get("ERRORTAXA_CACHE")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "errortaxa"


@dataclass(frozen=True)
class OOVConfig:
    """Where the CLIP model, its weights, the caches, the images and the training-set index are.

    Weights (exactly one source is used, in this order):

    * ``checkpoint``: a local file (``.pt``/``.bin``/``.pth``/``.safetensors``, an OpenAI TorchScript
      archive included) for the architecture ``model`` (or ``model_config``);
    * ``pretrained``: an open_clip tag (``openai`` for ``ViT-L-14-336``) whose file must already be in
      open_clip's cache (``open_clip_cache_dir``, ``~/.cache/clip`` or the Hugging Face cache), or a
      file path;
    * ``random_init: true``: random weights from ``seed`` (tests and benchmarks only).

    Nothing is ever downloaded; missing weights raise :class:`WeightsNotFoundError`.
    """

    model: str = DEFAULT_MODEL
    pretrained: str | None = DEFAULT_PRETRAINED
    checkpoint: str | None = None
    model_config: Mapping[str, Any] | None = None
    random_init: bool = False
    seed: int = 0
    open_clip_cache_dir: str | None = None
    cache_dir: str | None = None  # None: default_cache_dir(); "" or "none": no on-disk cache
    index: str | None = None  # training-set embedding index (a directory written by build_index)
    images: tuple[str, ...] = ()  # directories (flat or ImageFolder-style) that hold the sample images
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    precision: str = "auto"  # auto (bf16 on CUDA, fp32 on CPU) | bf16 | fp32
    batch_size: int = 128
    text_batch_size: int = 512
    num_workers: int | None = None  # DataLoader workers for decoding; None: min(8, cores - 1)
    k: int = 10  # neighbours of the kNN gate
    top: int = 5  # proposals listed in the evidence
    template: str = DEFAULT_TEMPLATE
    temperature: float = 100.0
    require_gpu: bool = False

    def __post_init__(self) -> None:
        if self.precision not in ("auto", "bf16", "fp32"):
            raise OOVConfigError(f"oov.precision must be auto, bf16 or fp32, not {self.precision!r}")
        if not (self.device == "auto" or self.device == "cpu" or self.device.startswith("cuda")):
            raise OOVConfigError(f"oov.device must be auto, cpu or cuda[:N], not {self.device!r}")
        for name in ("batch_size", "text_batch_size", "k", "top"):
            if int(getattr(self, name)) < 1:
                raise OOVConfigError(f"oov.{name} must be at least 1")
        if self.num_workers is not None and self.num_workers < 0:
            raise OOVConfigError("oov.num_workers must be >= 0")
        if "{}" not in self.template:
            raise OOVConfigError("oov.template must contain '{}' for the lemma")

    @classmethod
    def from_mapping(cls, mapping: Mapping[str, Any] | None = None, **overrides: Any) -> OOVConfig:
        """Build from a mapping (unknown keys are an error); ``images`` may be a string or a list."""
        data: dict[str, Any] = dict(mapping or {})
        data.update(overrides)
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise OOVConfigError(
                f"unknown oov configuration keys: {', '.join(unknown)}; known: {sorted(names)}"
            )
        images = data.get("images")
        if isinstance(images, str | os.PathLike):
            data["images"] = (os.fspath(images),)
        elif isinstance(images, Sequence):
            data["images"] = tuple(os.fspath(p) for p in images)
        for key in ("checkpoint", "index", "cache_dir", "open_clip_cache_dir"):
            if isinstance(data.get(key), os.PathLike):
                data[key] = os.fspath(data[key])
        return cls(**data)

    def resolved_cache_dir(self) -> Path | None:
        """The on-disk cache root, or None when caching is off."""
        if self.cache_dir is None:
            return default_cache_dir()
        if self.cache_dir.strip().lower() in ("", "none", "off"):
            return None
        return Path(self.cache_dir).expanduser()

    def replace(self, **changes: Any) -> OOVConfig:
        return dataclasses.replace(self, **changes)


def read_config_file(path: str | os.PathLike[str]) -> dict[str, Any]:
    """A YAML or JSON mapping of OOV settings (the keys of :class:`OOVConfig`); OOVConfigError when it
    is not one, FileNotFoundError when there is no such file."""
    import yaml

    with open(path, encoding="utf-8") as stream:
        try:
            data = yaml.safe_load(stream) or {}
        except yaml.YAMLError as exc:
            raise OOVConfigError(f"invalid YAML/JSON: {' '.join(str(exc).split())}") from None
    if not isinstance(data, dict):
        raise OOVConfigError("the OOV config must be a mapping of settings")
    return data
