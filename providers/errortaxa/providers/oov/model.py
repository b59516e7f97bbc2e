"""The open_clip model: local weights only, a stable model id, batched image and text encoding.

The model is built with ``pretrained=None`` (open_clip never touches the network) and the state dict is
loaded from a local file that :func:`resolve_weights` found; a missing file is a
:class:`WeightsNotFoundError` that says where it looked. The model id (a hash of the architecture, the
weights file's content, the preprocessing and the precision) keys the embedding caches, so nothing
has to be loaded when every embedding a run needs is cached.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from errortaxa.engine.outputs import write_text
from errortaxa.providers.oov.config import OOVConfig
from errortaxa.providers.oov.errors import OOVConfigError, WeightsNotFoundError

log = logging.getLogger(__name__)

MODEL_ID_VERSION = 1
_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pth", ".pt")


@dataclass(frozen=True)
class WeightsSource:
    """Resolved weights: a local file (or None for a random init) and how it was found."""

    path: Path | None
    description: str
    quick_gelu: bool
    preprocess: Mapping[str, Any]


def resolve_device(config: OOVConfig) -> torch.device:
    if config.device == "auto":
        dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    else:
        dev = torch.device(config.device)
        if dev.type == "cuda" and not torch.cuda.is_available():
            raise OOVConfigError(f"oov.device is {config.device!r} but CUDA is not available here")
    if config.require_gpu and dev.type != "cuda":
        raise OOVConfigError("oov.require_gpu is set but no GPU is available")
    return dev


def resolve_precision(config: OOVConfig, device: torch.device) -> str:
    if config.precision == "auto":
        return "bf16" if device.type == "cuda" else "fp32"
    return config.precision


def _arch_config(config: OOVConfig) -> dict[str, Any]:
    """The open_clip architecture dict (embed_dim, vision_cfg, text_cfg, ...), without building the model."""
    import open_clip

    if config.model_config is not None:
        cfg = json.loads(json.dumps(dict(config.model_config)))
    elif config.model.startswith("local-dir:"):
        path = Path(config.model[len("local-dir:") :]) / "open_clip_config.json"
        if not path.is_file():
            raise WeightsNotFoundError(f"open_clip model directory has no open_clip_config.json: {path}")
        data = json.loads(path.read_text(encoding="utf-8"))
        cfg = data.get("model_cfg", data)
    elif config.model.startswith("hf-hub:"):
        raise OOVConfigError(
            f"oov.model {config.model!r}: hf-hub models are fetched over the network; "
            "ErrorTaxa never downloads. Download the repository yourself and use 'local-dir:/path/to/it'."
        )
    else:
        cfg = open_clip.get_model_config(config.model.replace("/", "-"))
        if cfg is None:
            raise OOVConfigError(
                f"unknown open_clip model {config.model!r}; known: {', '.join(open_clip.list_models())}"
            )
    if not all(k in cfg for k in ("embed_dim", "vision_cfg", "text_cfg")):
        raise OOVConfigError("an open_clip model config needs embed_dim, vision_cfg and text_cfg")
    return dict(cfg)


def _base_preprocess(arch: Mapping[str, Any]) -> dict[str, Any]:
    from open_clip.transform import PreprocessCfg

    pre: dict[str, Any] = dict(PreprocessCfg().__dict__)
    size = arch.get("vision_cfg", {}).get("image_size")
    if size is not None:
        pre["size"] = size
    return pre


def _hf_cached(repo_id: str, filename: str | None, cache_dir: str | None) -> Path | None:
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:  # pragma: no cover - huggingface_hub is an open_clip dependency
        return None
    names = [filename] if filename else ["open_clip_model.safetensors", "open_clip_pytorch_model.bin"]
    if filename and (filename.endswith(".bin") or filename.endswith(".pth")):
        names.insert(0, filename[:-4] + ".safetensors")
    for name in names:
        got = try_to_load_from_cache(repo_id=repo_id, filename=name, cache_dir=cache_dir)
        if isinstance(got, str) and os.path.isfile(got):
            return Path(got)
    return None


def resolve_weights(config: OOVConfig, arch: Mapping[str, Any] | None = None) -> WeightsSource:
    """Find the configured weights on this machine; never downloads. Raises WeightsNotFoundError.
    ``arch``: the config's architecture dict when the caller has it already."""
    import open_clip

    if arch is None:
        arch = _arch_config(config)
    pre = _base_preprocess(arch)
    quick_gelu = bool(arch.get("quick_gelu", False))
    if config.checkpoint:
        path = Path(config.checkpoint).expanduser()
        if not path.is_file():
            raise WeightsNotFoundError(f"CLIP checkpoint not found: {path} (oov.checkpoint)")
        return WeightsSource(path, f"checkpoint {path}", quick_gelu, pre)
    if config.model.startswith("local-dir:"):
        root = Path(config.model[len("local-dir:") :])
        data = json.loads((root / "open_clip_config.json").read_text(encoding="utf-8"))
        pre.update({k: v for k, v in data.get("preprocess_cfg", {}).items() if k in pre})
        files = sorted(p for p in root.iterdir() if p.suffix in _WEIGHT_SUFFIXES)
        if not files:
            raise WeightsNotFoundError(f"no weights file (*.safetensors, *.bin, *.pth) in {root}")
        files.sort(key=lambda p: p.suffix != ".safetensors")
        return WeightsSource(files[0], f"local-dir {files[0]}", quick_gelu, pre)
    if config.pretrained:
        tag = config.pretrained
        as_path = Path(tag).expanduser()
        if as_path.is_file():
            return WeightsSource(as_path, f"file {as_path}", quick_gelu, pre)
        name = config.model.replace("/", "-")
        tag_cfg = open_clip.get_pretrained_cfg(name, tag)
        if not tag_cfg:
            if os.sep in tag or tag.endswith(_WEIGHT_SUFFIXES):
                raise WeightsNotFoundError(f"CLIP weights file not found: {as_path} (oov.pretrained)")
            tags = open_clip.list_pretrained_tags_by_model(name)
            raise OOVConfigError(f"open_clip has no pretrained tag {tag!r} for {name}; known tags: {tags}")
        quick_gelu = bool(tag_cfg.get("quick_gelu", quick_gelu))
        pre.update({k: tag_cfg[k] for k in ("mean", "std", "interpolation", "resize_mode") if k in tag_cfg})
        looked: list[str] = []
        if tag_cfg.get("file"):
            f = Path(tag_cfg["file"])
            if f.is_file():
                return WeightsSource(f, f"{name}/{tag} at {f}", quick_gelu, pre)
            looked.append(str(f))
        hub = tag_cfg.get("hf_hub", "")
        if hub:
            repo_id, filename = os.path.split(hub)
            got = _hf_cached(repo_id, filename or None, config.open_clip_cache_dir)
            if got is not None:
                return WeightsSource(got, f"{name}/{tag} at {got}", quick_gelu, pre)
            looked.append(f"Hugging Face cache: {repo_id}")
        url = tag_cfg.get("url", "")
        if url:
            cache = Path(config.open_clip_cache_dir or "~/.cache/clip").expanduser()
            f = cache / os.path.basename(url)
            if f.is_file():
                return WeightsSource(f, f"{name}/{tag} at {f}", quick_gelu, pre)
            looked.append(str(f))
        raise WeightsNotFoundError(
            f"CLIP weights for {name} / {tag} are not on this machine (looked in: {'; '.join(looked)}). "
            "ErrorTaxa never downloads weights: put the file in open_clip's cache or set oov.checkpoint "
            "to a local file (see docs/OOV.md)."
        )
    if config.random_init:
        return WeightsSource(None, f"random init (seed {config.seed})", quick_gelu, pre)
    raise WeightsNotFoundError(
        "no CLIP weights configured: set oov.checkpoint (a local file) or oov.pretrained (an open_clip tag "
        "whose weights are in the local cache); oov.random_init is for tests only"
    )


_FINGERPRINT_LOCK = threading.Lock()


def file_fingerprint(path: Path, memo_dir: Path | None = None) -> str:
    """blake2b of a file's content, memoised on (path, size, mtime) under ``memo_dir``."""
    st = path.stat()
    memo_key = f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}"
    memo_file = memo_dir / "fingerprints.json" if memo_dir is not None else None
    with _FINGERPRINT_LOCK:
        memo: dict[str, str] = {}
        if memo_file is not None and memo_file.is_file():
            with contextlib.suppress(ValueError, OSError):
                memo = json.loads(memo_file.read_text())
        if memo_key in memo:
            return memo[memo_key]
        h = hashlib.blake2b(digest_size=16)
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 22), b""):
                h.update(block)
        digest = h.hexdigest()
        if memo_file is not None:
            with contextlib.suppress(OSError):
                memo_file.parent.mkdir(parents=True, exist_ok=True)
                memo[memo_key] = digest
                write_text(memo_file, json.dumps(memo))
        return digest


def _load_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """A state dict from a file: safetensors, torch pickles (weights only) or OpenAI TorchScript archives."""
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return dict(load_file(str(path), device="cpu"))
    try:
        obj: Any = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception:  # an OpenAI TorchScript archive
        obj = torch.jit.load(str(path), map_location="cpu")
    if isinstance(obj, torch.jit.ScriptModule):
        obj = obj.state_dict()
        for key in ("input_resolution", "context_length", "vocab_size"):
            obj.pop(key, None)
    if isinstance(obj, Mapping) and "state_dict" in obj:
        obj = obj["state_dict"]
    if not isinstance(obj, Mapping):
        raise WeightsNotFoundError(f"{path} does not hold a state dict")
    sd = {str(k): v for k, v in obj.items()}
    if sd and next(iter(sd)).startswith("module."):
        sd = {k[7:]: v for k, v in sd.items()}
    return sd


class ClipEncoder:
    """An open_clip model, loaded lazily, that embeds preprocessed images and prompts (L2-normalised)."""

    def __init__(self, config: OOVConfig) -> None:
        self.config = config
        self.device = resolve_device(config)
        self.precision = resolve_precision(config, self.device)
        self.arch = _arch_config(config)
        self.weights = resolve_weights(config, self.arch)
        self.embed_dim = int(self.arch["embed_dim"])
        self.preprocess_cfg: dict[str, Any] = dict(self.weights.preprocess)
        cache_root = config.resolved_cache_dir()
        fp = (
            ("random", config.seed)
            if self.weights.path is None
            else ("file", file_fingerprint(self.weights.path, cache_root))
        )
        ident = {
            "v": MODEL_ID_VERSION,
            "arch": self.arch,
            "quick_gelu": self.weights.quick_gelu,
            "weights": fp,
            "preprocess": self.preprocess_cfg,
            "precision": self.precision,
        }
        self.name = config.model if config.model_config is None else "custom"
        name = self.name.replace("/", "-").replace(":", "-").split(os.sep)[-1][:40]
        blob = json.dumps(ident, sort_keys=True, default=str).encode()
        # model_id keys the caches (precision included: bf16 and fp32 embeddings differ slightly);
        # space_id names the embedding space (same weights, any precision), checked against an index
        self.model_id = f"{name}-{hashlib.sha256(blob).hexdigest()[:20]}"
        ident.pop("precision")
        blob = json.dumps(ident, sort_keys=True, default=str).encode()
        self.space_id = f"{name}-{hashlib.sha256(blob).hexdigest()[:20]}"
        self._model: torch.nn.Module | None = None
        self._tokenizer: Callable[..., torch.Tensor] | None = None
        self._transform: Callable[[Any], torch.Tensor] | None = None
        self._lock = threading.Lock()

    # -- construction -------------------------------------------------------------------------
    @property
    def loaded(self) -> bool:
        return self._model is not None

    def _build(self) -> torch.nn.Module:
        import open_clip

        cfg = dict(self.arch)
        custom_text = bool(cfg.pop("custom_text", False)) or "hf_model_name" in cfg.get("text_cfg", {})
        if "hf_model_name" in cfg.get("text_cfg", {}):
            cfg["text_cfg"] = {**cfg["text_cfg"], "hf_model_pretrained": False}
        if "timm_model_name" in cfg.get("vision_cfg", {}):
            cfg["vision_cfg"] = {**cfg["vision_cfg"], "timm_model_pretrained": False}
        cfg["quick_gelu"] = self.weights.quick_gelu
        cls: Any = open_clip.CustomTextCLIP if custom_text else open_clip.CLIP
        if "multimodal_cfg" in cfg:
            cls = open_clip.CoCa
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.config.seed)
            model = cls(**cfg)
        if self.weights.path is not None:
            sd = _load_state_dict(self.weights.path)
            try:
                _load_into(model, sd)
            except Exception as exc:
                raise WeightsNotFoundError(
                    f"cannot load {self.weights.path} into {self.config.model}: {exc}"
                ) from exc
        model.eval()
        model.requires_grad_(False)
        return model.to(self.device)

    def load(self) -> torch.nn.Module:
        with self._lock:
            if self._model is None:
                log.info(
                    "loading CLIP %s (%s) on %s", self.config.model, self.weights.description, self.device
                )
                self._model = self._build()
            return self._model

    @property
    def transform(self) -> Callable[[Any], torch.Tensor]:
        """The model's own evaluation preprocessing (PIL image -> float tensor [3, H, W])."""
        if self._transform is None:
            from open_clip.transform import PreprocessCfg, image_transform_v2

            self._transform = image_transform_v2(PreprocessCfg(**self.preprocess_cfg), is_train=False)
        return self._transform

    @property
    def input_shape(self) -> tuple[int, int, int]:
        size = self.preprocess_cfg["size"]
        h, w = (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))
        return (3, h, w)

    @property
    def tokenizer(self) -> Callable[..., torch.Tensor]:
        if self._tokenizer is None:
            import open_clip

            text_cfg = self.arch.get("text_cfg", {})
            ctx = int(text_cfg.get("context_length", 77))
            if text_cfg.get("hf_tokenizer_name"):
                self._tokenizer = open_clip.HFTokenizer(
                    text_cfg["hf_tokenizer_name"], context_length=ctx, **text_cfg.get("tokenizer_kwargs", {})
                )
            else:
                self._tokenizer = open_clip.SimpleTokenizer(context_length=ctx)
        return self._tokenizer

    # -- encoding --------------------------------------------------------------------------------
    @contextlib.contextmanager
    def _autocast(self) -> Iterator[None]:
        if self.device.type == "cuda" and self.precision == "bf16":
            from torch.nn.attention import SDPBackend, sdpa_kernel

            backends = [SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION, SDPBackend.MATH]
            with torch.autocast("cuda", dtype=torch.bfloat16), sdpa_kernel(backends):
                yield
        else:
            yield

    def encode_pixels(self, pixels: torch.Tensor) -> torch.Tensor:
        """[B, 3, H, W] preprocessed images -> float32 [B, D] unit vectors (on the model's device)."""
        model = self.load()
        with torch.inference_mode(), self._autocast():
            x = pixels.to(self.device, non_blocking=True)
            feats = model.encode_image(x)  # type: ignore[operator]
        return F.normalize(feats.float(), dim=-1)

    def encode_texts(self, prompts: Sequence[str]) -> np.ndarray:
        """Prompts -> float32 [P, D] unit vectors (numpy, CPU).

        Prompts are grouped by token length and, for open_clip's standard CLIP text tower (causal
        attention, pooled at the end-of-text token), run at their own length instead of the padded
        context (77): the pooled token only sees the tokens before it, so the result is the same up to
        float rounding, and a prompt's embedding never depends on the other prompts of the batch.
        """
        n = len(prompts)
        out = np.zeros((n, self.embed_dim), dtype=np.float32)
        if n == 0:
            return out
        model = self.load()
        tokens = self.tokenizer(list(prompts))
        lengths = _text_lengths(model, tokens)
        bs = self.config.text_batch_size
        if lengths is None:
            groups = [np.arange(s, min(s + bs, n)) for s in range(0, n, bs)]
        else:
            groups = []
            for length in np.unique(lengths):
                members = np.flatnonzero(lengths == length)
                groups.extend(members[s : s + bs] for s in range(0, members.size, bs))
        for idx in groups:
            batch = tokens[torch.from_numpy(idx)].to(self.device)
            with torch.inference_mode(), self._autocast():
                if lengths is None:
                    feats = model.encode_text(batch)  # type: ignore[operator]
                else:
                    feats = _encode_text_prefix(model, batch[:, : int(lengths[idx[0]])])
            out[idx] = F.normalize(feats.float(), dim=-1).cpu().numpy()
        return out


def _text_lengths(model: Any, tokens: torch.Tensor) -> np.ndarray | None:
    """Per prompt, the tokens up to and including the pooled one, when truncating is exact; else None."""
    import open_clip

    if type(model) is not open_clip.CLIP or getattr(model, "attn_mask", None) is None:
        return None
    pool = getattr(model, "text_pool_type", "argmax")
    if pool == "argmax":
        pos = tokens.argmax(dim=-1)
    elif pool == "eos" and getattr(model, "text_eos_id", None) is not None:
        pos = (tokens == model.text_eos_id).int().argmax(dim=-1)
    else:
        return None
    return (pos + 1).numpy().astype(np.int64)


def _encode_text_prefix(model: Any, text: torch.Tensor) -> torch.Tensor:
    """open_clip CLIP.encode_text on the first L tokens (positional embedding and causal mask cut to L)."""
    from open_clip.transformer import text_global_pool

    n_ctx = text.shape[1]
    cast_dtype = model.transformer.get_cast_dtype()
    x = model.token_embedding(text).to(cast_dtype)
    x = x + model.positional_embedding[:n_ctx].to(cast_dtype)
    x = model.transformer(x, attn_mask=model.attn_mask[:n_ctx, :n_ctx])
    x = model.ln_final(x)
    x = text_global_pool(x, text, model.text_pool_type, eos_token_id=getattr(model, "text_eos_id", None))
    if model.text_projection is not None:
        proj = model.text_projection
        x = proj(x) if isinstance(proj, torch.nn.Linear) else x @ proj
    return x


def _load_into(model: torch.nn.Module, sd: dict[str, torch.Tensor]) -> None:
    """open_clip.load_checkpoint's conversions, on a state dict loaded here (strict)."""
    from open_clip.convert import convert_state_dict
    from open_clip.model import convert_to_custom_text_state_dict, resize_pos_embed, resize_text_pos_embed

    sd = convert_state_dict(model, sd)
    if "positional_embedding" in sd and not hasattr(model, "positional_embedding"):
        sd = convert_to_custom_text_state_dict(sd)
    for key in ("logit_scale", "logit_bias"):
        param = getattr(model, key, None)
        if key in sd and isinstance(param, torch.Tensor) and sd[key].ndim != param.ndim:
            sd[key] = sd[key].reshape(param.shape)
    if "logit_bias" not in sd and getattr(model, "logit_bias", None) is not None:
        sd["logit_bias"] = torch.zeros_like(sd["logit_scale"])
    sd.pop("text.transformer.embeddings.position_ids", None)
    resize_pos_embed(sd, model)
    resize_text_pos_embed(sd, model)
    model.load_state_dict(sd, strict=True)
