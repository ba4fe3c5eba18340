"""Training configs: YAML files with sections model / ilora / data / train / predict, each a pydantic model.

`load_config("tiny")` reads the shipped trainer/configs/tiny.yaml; a path reads that file. `overrides` are
dotted `key=value` strings (`train.max_steps=100`, `model.path=/models/Qwen2.5-Omni-7B`), values parsed as YAML.
An unknown key (`train.lrr=0.1`) or a value of the wrong type is a ValueError that names the key.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

CONFIG_DIR = Path(__file__).parent / "configs"
SECTIONS = ("model", "ilora", "data", "train", "predict")


class Section(BaseModel):
    """A config section: unknown keys are errors; `get` reads a key like a dict (None when unset)."""

    model_config = ConfigDict(extra="forbid", protected_namespaces=())

    def get(self, key: str, default: Any = None) -> Any:
        """The value of `key`, or `default` when it is None."""
        value = getattr(self, key, None)
        return default if value is None else value


class ModelConfig(Section):
    """`model:` which paradigm, where its weights are (local folders), dtype; tiny-model sizes for tests."""

    paradigm: Literal["omni", "modular"] = "omni"
    path: str | None = None  # omni: a local Qwen2.5-Omni or thinker folder
    llm: str | None = None  # modular: causal LM, CLIP/SigLIP and Whisper folders
    vision: str | None = None
    audio: str | None = None
    tokenizer: str | None = None
    system_prompt: str | None = None
    dtype: Literal["float32", "bfloat16", "float16"] = "float32"
    attn_implementation: str = "sdpa"  # or auto: flash_attention_2 when flash-attn is importable on a GPU
    frame_size: int = Field(224, gt=0)
    vision_pool: int = Field(1, gt=0)
    audio_pool: int = Field(1, gt=0)
    tiny: bool = False
    hidden: int = Field(64, gt=0)
    layers: int = Field(2, gt=0)
    vocab_size: int = Field(512, gt=0)
    init_range: float = 0.2


class ILoRASection(Section):
    """`ilora:` rank, scale, heads, dropout and placement (null = the paradigm's, see trainer/placement.py)."""

    r: int = Field(128, gt=0)
    alpha: float = 256.0
    num_heads: int = Field(3, gt=0)
    dropout: float = Field(0.1, ge=0.0, lt=1.0)
    target_modules: list[str] | None = None


class DataConfig(Section):
    """`data:` split, batch, workers, length, mixture; packing; the held-out split for validation."""

    split: str | list[str] = "train"
    batch_size: int = Field(1, gt=0)
    num_workers: int = Field(0, ge=0)
    max_length: int = Field(4096, gt=8)
    shuffle: bool = True
    weights: dict[str, float] | None = None
    mix_by: Literal["source", "family"] = "source"
    temperature: float | None = None
    lanes: int | None = Field(None, ge=0)  # loader reading order (see avuie.shards.loader.AVStream)
    window_bytes: int | None = Field(None, gt=0)
    cache_dir: str | None = None  # node-local cache of remote shards
    cache_bytes: int | None = Field(None, gt=0)
    pack: bool = False  # several samples per row, up to max_length (attention never crosses samples)
    eval_split: str | list[str] | None = None  # held-out split for validation loss (train.eval_every)
    eval_samples: int = Field(64, gt=0)  # samples per validation pass
    token: str | None = None  # shard server token: never written to RUN/config.yaml
    source: str | None = None  # recorded by the recipe: the data a run was trained on


class TrainConfig(Section):
    """`train:` schedule, optimiser, precision, checkpointing, parallelism, logging and saving."""

    max_steps: int = Field(1000, gt=0)
    grad_accum: int = Field(1, gt=0)
    lr: float = Field(1e-4, gt=0)
    weight_decay: float = Field(0.0, ge=0)
    betas: tuple[float, float] = (0.9, 0.999)
    warmup_ratio: float = Field(0.0, ge=0, le=1)
    warmup_steps: int | None = None
    clip_grad: float = 0.0
    precision: Literal["auto", "bf16", "fp32"] = "auto"
    gradient_checkpointing: bool | Literal["llm"] = False  # true: every tower's blocks; llm: the LLM's only
    loss_chunk: int = Field(1024, ge=0)  # label positions per cross-entropy chunk (0: all at once)
    distributed: Literal["ddp", "fsdp"] = "ddp"
    save_every: int = Field(0, ge=0)
    keep_checkpoints: int = Field(2, gt=0)
    log_every: int = Field(1, gt=0)
    eval_every: int = Field(0, ge=0)  # validation loss every N steps on data.eval_split (0: never)
    tensorboard: bool = False  # also write TensorBoard events under RUN/tensorboard (needs tensorboard)
    seed: int = 0
    resume: bool = True
    stop_after: int | None = None  # stop at this step (the schedule still runs to max_steps)


class PredictConfig(Section):
    """`predict:` prompts per generate call and the longest answer."""

    batch_size: int = Field(8, gt=0)
    max_new_tokens: int = Field(512, gt=0)


class Config(BaseModel):
    """A whole training config; `cfg["train"]` and `cfg.train` both give a section."""

    model_config = ConfigDict(extra="forbid", protected_namespaces=())

    model: ModelConfig = ModelConfig()
    ilora: ILoRASection = ILoRASection()
    data: DataConfig = DataConfig()
    train: TrainConfig = TrainConfig()
    predict: PredictConfig = PredictConfig()

    def __getitem__(self, section: str) -> Section:
        return getattr(self, section)

    def to_dict(self) -> dict:
        """Plain dict of every section (unset optional keys left out), ready for YAML."""
        return self.model_dump(mode="json", exclude_none=True)


def validate_config(raw: dict | Config, where: str = "config") -> Config:
    """A Config from a dict; raises ValueError naming each bad key (`train.lrr: unknown key`)."""
    if isinstance(raw, Config):
        return raw
    try:
        return Config.model_validate(raw or {})
    except ValidationError as error:
        problems = []
        for item in error.errors():
            key = ".".join(str(part) for part in item["loc"])
            what = "unknown key" if item["type"] == "extra_forbidden" else item["msg"]
            problems.append(
                f"{key}: {what}"
                + ("" if item["type"] == "extra_forbidden" else f" (got {item.get('input')!r})")
            )
        raise ValueError(f"{where}: " + "; ".join(problems)) from None


def shipped_configs() -> list[str]:
    """Names of the configs that ship with the trainer."""
    return sorted(p.stem for p in CONFIG_DIR.glob("*.yaml"))


def resolve_config_path(name_or_path: str | Path) -> Path:
    """A YAML path as given, or trainer/configs/<name>.yaml for a shipped name; raises FileNotFoundError."""
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml") or path.exists():
        if not path.exists():
            raise FileNotFoundError(f"config file {path} does not exist")
        return path
    shipped = CONFIG_DIR / f"{name_or_path}.yaml"
    if not shipped.exists():
        raise FileNotFoundError(f"no config {name_or_path!r}: give a YAML path or one of {shipped_configs()}")
    return shipped


def apply_overrides(cfg: dict, overrides: list[str] | None) -> dict:
    """Return a copy of cfg with dotted `a.b=value` overrides applied (values parsed as YAML)."""
    cfg = copy.deepcopy(cfg)
    for item in overrides or []:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise ValueError(f"override {item!r} is not of the form section.key=value")
        node = cfg
        *parents, leaf = key.strip().split(".")
        for part in parents:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ValueError(f"override {item!r}: {part} is not a section")
        node[leaf] = yaml.safe_load(raw)
    return cfg


def load_config(name_or_path: str | Path, overrides: list[str] | None = None) -> Config:
    """Read a config (name or path), apply overrides, validate every section; raises ValueError naming bad keys."""
    path = resolve_config_path(name_or_path)
    cfg = yaml.safe_load(path.read_text()) or {}
    if not isinstance(cfg, dict):
        raise ValueError(f"{path}: a config must be a mapping with sections {SECTIONS}")
    return validate_config(apply_overrides(cfg, overrides), str(path))
