"""Fine-tuning: start from reference weights (`--init`), freeze part of the network (`--freeze`), and give
the re-initialised tensors their own learning rate (`--lr-head`).

`--init SOURCE` reads a state dict from

- `torchvision:NAME`: torchvision's DEFAULT weights for NAME, from the local torch hub cache only
  (`$TORCH_HOME/hub/checkpoints/`, where `torchvision.models.NAME(weights="DEFAULT")` leaves them);
  nothing is downloaded: when they are absent, the error says which file to place where;
- a `.pt`/`.pth` state dict of a torchvision or timm model (a dict of tensors, or one under
  "state_dict" / "model" / "model_state_dict", as timm and most training scripts save it), read with
  `weights_only=True`; or a `.safetensors` file, whose format keeps tensors sorted by name: their
  registration order is taken from the torchvision (or timm) model the file is named after
  (`resnet18.safetensors`), or the names must be the network's own;
- an archc checkpoint (`best.pt`, `last.pt`): its model's weights.

The tensors move by position, as `archc port` moves them (compiler/weights.py); those whose shapes
no longer fit (the classifier after `num_classes` changed, a widened stage) keep the network's own
initialisation and are listed. `--freeze PATTERN...` names parts of the network as `archc check`
prints them: a section (`features`, `classifier`), a module path (`features.3`), or rows of a
section as a Python slice (`features[:9]`, `features[-2:]`, `features[4]`). Frozen tensors get no
gradient and no optimizer step; frozen batch norms stay in eval mode, so their running statistics
are those of the source too, and bit-identical after training.

    >>> parse_pattern("features[:9]")
    ('features', slice(None, 9, None))
    >>> parse_pattern("features.3")
    ('features.3', None)
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import torch

from ..compiler.weights import WeightMismatch, refit_pairs
from .config import ConfigError

STATE_DICT_KEYS = ("state_dict", "model_state_dict", "model")  # where training scripts nest a state dict
PATTERN = re.compile(r"(?P<path>[A-Za-z_]\w*(?:\.\w+)*)(?:\[(?P<index>[^\]]*)\])?")


class InitError(Exception):
    """The --init source cannot be read or does not fit the network (exit status 1)."""


# --- reading a source ------------------------------------------------------------------------------------------

@dataclass
class Source:
    """What --init read: the state dict, and an archc checkpoint's input normalisation (the weights were
    trained on inputs normalised so; None for other sources)."""

    state: dict[str, torch.Tensor]
    normalize: dict | None = None


def read_source(source: str) -> Source:
    """The weights named by `--init SOURCE` (see the module's docstring). ConfigError for a name that cannot
    be a source, InitError for a source that cannot be read."""
    kind, colon, name = source.partition(":")
    if colon and kind == "torchvision":
        return _read_file(torchvision_cached(name), source)
    path = Path(source)
    if not path.is_file():
        raise ConfigError(f"--init {source}: no such file (give torchvision:NAME, a .pt/.safetensors state dict "
                          "or an archc checkpoint)")
    return _read_file(path, source)


def torchvision_cached(name: str) -> Path:
    """Where torch's hub cache keeps torchvision's DEFAULT weights for `name`; InitError if they are not there."""
    import torchvision

    try:
        weights = torchvision.models.get_model_weights(name).DEFAULT
    except ValueError:
        known = ", ".join(sorted(torchvision.models.list_models(torchvision.models)))
        raise ConfigError(f"--init torchvision:{name}: torchvision has no model '{name}' (it has: {known})") from None
    path = Path(torch.hub.get_dir()) / "checkpoints" / Path(weights.url).name
    if not path.is_file():
        raise InitError(f"--init torchvision:{name}: torchvision's weights {weights} are not in the local torch "
                        f"hub cache, and archc train downloads nothing. Place {weights.url} at {path} "
                        f"(or run `python -c \"import torchvision; torchvision.models.get_model('{name}', "
                        "weights='DEFAULT')\"` once where there is a network; set TORCH_HOME to use another cache)")
    return path


def _read_file(path: Path, source: str) -> Source:
    if path.suffix == ".safetensors":
        return Source(_read_safetensors(path, source))
    import pickle

    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError, EOFError, pickle.UnpicklingError, KeyError, ValueError, TypeError) as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise InitError(f"--init {source}: {path} is not a readable state dict ({first})") from None
    state = _state_dict_in(payload)
    if state is None:
        raise InitError(f"--init {source}: {path} holds no state dict (a dict of tensors, as model.state_dict() "
                        f"gives, or one under {' / '.join(repr(k) for k in STATE_DICT_KEYS)})")
    from .checkpoint import FORMAT

    normalize = payload.get("normalize") if payload.get("format") == FORMAT else None
    return Source(state, normalize if _is_normalization(normalize) else None)


def _is_normalization(value) -> bool:
    return (isinstance(value, dict) and set(value) == {"mean", "std"}
            and all(isinstance(v, list) and v and all(isinstance(x, float) for x in v) for v in value.values())
            and len(value["mean"]) == len(value["std"]) and all(x > 0 for x in value["std"]))


class SortedByName(dict):
    """A .safetensors state dict whose registration order could not be recovered (the format keeps its
    tensors sorted by name): it can fill only a network whose tensors have the same names."""


def _read_safetensors(path: Path, source: str) -> dict[str, torch.Tensor]:
    try:
        from safetensors import SafetensorError
        from safetensors.torch import load_file
    except ImportError:
        raise InitError(f"--init {source}: reading .safetensors needs the safetensors package "
                        "(pip install 'archc[train]')") from None
    try:
        state = load_file(str(path), device="cpu")
    except (SafetensorError, OSError, ValueError) as error:
        raise InitError(f"--init {source}: {path} is not a readable .safetensors file ({error})") from None
    order = _registration_order(set(state), path)
    return {key: state[key] for key in order} if order else SortedByName(state)


def _registration_order(keys: set[str], path: Path) -> list[str] | None:
    """The keys in registration order, from the torchvision (or, when installed, timm) model the file or its
    folder is named after (`resnet18.safetensors`, `resnet18.a1_in1k/model.safetensors`) when that model
    has exactly these tensors; None when no such model is found."""
    import torchvision

    names = " ".join(part.lower() for part in (path.stem, path.parent.name))
    known = [(name, lambda n: torchvision.models.get_model(n, weights=None))
             for name in torchvision.models.list_models(torchvision.models)]
    try:
        import timm

        known += [(name, lambda n: timm.create_model(n, pretrained=False)) for name in timm.list_models()]
    except ImportError:
        pass
    for name, build in sorted(known, key=lambda item: -len(item[0])):  # resnet18 before resnet1
        if re.search(rf"(?<![a-z0-9]){re.escape(name)}(?![a-z0-9])", names):
            order = list(build(name).state_dict())
            if set(order) == keys:
                return order
    return None


def _state_dict_in(payload) -> dict[str, torch.Tensor] | None:
    """A dict of tensors, at the top or one level down (an archc checkpoint keeps it under "model")."""
    def tensors(value) -> bool:
        return isinstance(value, dict) and bool(value) and all(
            isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in value.items())

    if tensors(payload):
        return payload
    if isinstance(payload, dict):
        for key in STATE_DICT_KEYS:
            if tensors(payload.get(key)):
                return payload[key]
    return None


# --- loading it into the network --------------------------------------------------------------------------------

@dataclass
class InitReport:
    """What --init did: for the log and summary.json's `init`."""

    source: str
    loaded: int
    reinitialised: list[str]  # our tensor names, in registration order
    details: list[str]  # "name (shape), the reference has name (shape)" for each of them

    def summary(self) -> dict:
        return {"source": self.source, "loaded": self.loaded, "reinitialised": self.reinitialised}

    def message(self) -> str:
        head = f"--init {self.source}: {self.loaded} tensors loaded by position"
        if not self.reinitialised:
            return head + ", every one fits"
        shown = "; ".join(self.details[:8]) + (" …" if len(self.details) > 8 else "")
        return head + f"; {len(self.reinitialised)} no longer fit and keep their own initialisation: {shown}"


def load_init(model: torch.nn.Module, state: dict[str, torch.Tensor], source: str) -> InitReport:
    """Copy the tensors of `state` that fit into `model`, by position; InitError when the counts differ."""
    ours = model.state_dict()
    if isinstance(state, SortedByName):
        if set(state) != set(ours):
            raise InitError(f"--init {source}: a .safetensors file keeps its tensors sorted by name, not in the order "
                            "the model registered them, and no torchvision or timm model named like the file has "
                            "these tensors, so they cannot be matched by position. Name the file after the model "
                            "(resnet18.safetensors), or save it as a .pt: torch.save(model.state_dict(), 'w.pt')")
        state = {key: state[key] for key in ours}  # this network's own tensors, by name
    try:
        matching = refit_pairs(ours, state)
    except WeightMismatch as error:
        raise InitError(f"--init {source}: {error}") from None
    with torch.no_grad():
        for pair in matching.loaded:
            ours[pair.key].copy_(state[pair.source_key])  # ours are the model's own tensors: in place
    misfits = matching.misfits
    return InitReport(source, len(matching.loaded), [p.key for p in misfits], [p.describe() for p in misfits])


# --- freezing ---------------------------------------------------------------------------------------------------

def parse_pattern(text: str) -> tuple[str, slice | None]:
    """`features[:9]` -> ("features", slice(None, 9)); `features[4]` -> ("features", slice(4, 5)); a path alone
    -> (path, None). ConfigError for anything else."""
    found = PATTERN.fullmatch(text.strip())
    if not found:
        raise ConfigError(f"--freeze {text!r}: write a section or module path (features, features.3) or rows of a "
                          "section (features[:9], features[4])")
    index = found["index"]
    if index is None:
        return found["path"], None
    try:
        parts = [int(p) if p.strip() else None for p in index.split(":")]
    except ValueError:
        raise ConfigError(f"--freeze {text!r}: the rows go as whole numbers, features[:9] or features[2:5]") from None
    if len(parts) == 1 and parts[0] is not None:
        return found["path"], slice(parts[0], None if parts[0] == -1 else parts[0] + 1)
    if len(parts) != 2:
        raise ConfigError(f"--freeze {text!r}: rows as start:stop (features[2:5]), without a step")
    return found["path"], slice(*parts)


@dataclass
class Frozen:
    """The frozen part of a network: its tensors' names and its batch-norm layers."""

    patterns: list[str] = field(default_factory=list)
    names: list[str] = field(default_factory=list)  # parameters and buffers, as in the state dict
    norms: list[torch.nn.Module] = field(default_factory=list)

    def keep_norms_in_eval(self) -> None:
        """After model.train(): frozen batch norms keep normalising with (and keeping) their running statistics."""
        for norm in self.norms:
            norm.eval()

    def summary(self) -> dict:
        return {"patterns": self.patterns, "tensors": len(self.names)}


def freeze(model: torch.nn.Module, patterns: list[str]) -> Frozen:
    """Freeze the modules `patterns` name; ConfigError for a pattern that names nothing."""
    if not patterns:
        return Frozen()
    modules = dict(model.named_modules())
    chosen: dict[str, torch.nn.Module] = {}
    for text in patterns:
        path, rows = parse_pattern(text)
        if path not in modules or not path:
            sections = [name for name, _ in model.named_children()]
            raise ConfigError(f"--freeze {text}: the network has no part '{path}' (its sections: "
                              f"{', '.join(sections)}; rows and blocks as `archc check` names them, e.g. "
                              f"{sections[0]}.0)")
        if rows is None:
            chosen[path] = modules[path]
            continue
        children = [(name, child) for name, child in modules[path].named_children() if name.isdigit()]
        children.sort(key=lambda item: int(item[0]))
        picked = children[rows]
        if not picked:
            raise ConfigError(f"--freeze {text}: selects none of the {len(children)} rows of {path} "
                              f"({path}[0] to {path}[{len(children) - 1}])")
        for name, child in picked:
            chosen[f"{path}.{name}"] = child
    frozen = Frozen(patterns=list(patterns))
    seen: set[int] = set()
    for prefix, module in chosen.items():
        for name, parameter in module.named_parameters(prefix=prefix):
            parameter.requires_grad_(False)
        for name, tensor in [*module.named_parameters(prefix=prefix), *module.named_buffers(prefix=prefix)]:
            if id(tensor) not in seen:
                seen.add(id(tensor))
                frozen.names.append(name)
        frozen.norms += [m for m in module.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)
                         and m not in frozen.norms]
    if not any(p.requires_grad for p in model.parameters()):
        raise ConfigError(f"--freeze {' '.join(patterns)}: freezes every parameter, so nothing would train")
    return frozen


def head_groups(groups: list[dict], model: torch.nn.Module, head: list[str], lr_head: float | None) -> list[dict]:
    """The optimizer's parameter groups, each split into the re-initialised parameters (learning rate ×
    `lr_head`) and the rest; unchanged without `lr_head`. Empty groups are dropped."""
    if lr_head is None:
        return [g for g in groups if g["params"]]
    names = {id(p): name for name, p in model.named_parameters()}
    chosen = set(head)
    out = []
    for group in groups:
        mine = [p for p in group["params"] if names.get(id(p)) in chosen]
        rest = [p for p in group["params"] if names.get(id(p)) not in chosen]
        out += [{**group, "params": rest}, {**group, "params": mine, "lr_scale": lr_head}]
    return [g for g in out if g["params"]]
