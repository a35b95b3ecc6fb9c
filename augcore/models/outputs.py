"""What a classification model's forward returns, read the same way for any model.

augcore's own models return ``(logits, embedding)``; torchvision, timm and plain
``nn.Sequential`` models return logits only (a Hugging Face model, a mapping with
``"logits"``). ``logits_of`` takes the logits out of any of these; ``EmbeddingReader``
gives ``(logits, embedding)`` for any model, the embedding being the returned one or the
input of the final ``nn.Linear`` read by a forward hook; ``find_classifier`` names that
layer. Every layer that needs the classifier or the penultimate embedding (selection,
influence, the training loop) reads it here.
"""
from __future__ import annotations

from typing import Any, List, Mapping, Optional, Tuple, Union

import torch
from torch import nn

__all__ = ["EmbeddingReader", "find_classifier", "logits_of"]


def _linear_calls(model: nn.Module, x: torch.Tensor, call=None) -> Tuple[Any, List[Tuple[nn.Module, Any, Any]]]:
    """``call(x)`` (default ``model(x)``) and every (linear layer of ``model``, input, output) call
    it made, in call order."""
    calls: List[Tuple[nn.Module, Any, Any]] = []
    hooks = [m.register_forward_hook(lambda mod, inp, out: calls.append((mod, inp, out)))
             for m in model.modules() if isinstance(m, nn.Linear)]
    try:
        out = (call or model)(x)
    finally:
        for h in hooks:
            h.remove()
    return out, calls


def _final_linear(model: nn.Module, logits: torch.Tensor, calls) -> Tuple[nn.Module, torch.Tensor]:
    """The linear call that produced ``logits`` (the returned object itself, else the
    last call whose output equals it) and its input."""
    for match in (lambda out: out is logits,
                  lambda out: out.shape == logits.shape and torch.equal(out, logits)):
        found = [(mod, inp[0]) for mod, inp, out in calls if isinstance(out, torch.Tensor) and match(out)]
        if found:
            return found[-1]
    linear = sorted(name for name, m in model.named_modules() if isinstance(m, nn.Linear))
    if not linear:
        raise ValueError(f"{type(model).__name__} has no nn.Linear layer to read the penultimate embedding from; "
                         "return (logits, embedding) from forward (collect_stats: or pass embeddings=False)")
    raise ValueError(f"no nn.Linear of {type(model).__name__} produces its logits directly "
                     f"(linear layers: {linear}); pass classifier='<name of the final linear layer>' or return "
                     "(logits, embedding) from forward")


def find_classifier(model: nn.Module, x: torch.Tensor) -> str:
    """Name of the ``nn.Linear`` whose output is the model's logits (the final linear
    layer), found by running ``model(x)`` once with a hook on every linear layer.

    The layer whose output object is returned wins; failing that, the last one
    called whose output equals the logits. Raises when none does: the logits then
    come out of something else (name the layer with ``classifier``). The probe runs
    in eval mode without autograd, so BatchNorm statistics stay untouched.
    """
    modes = {m: m.training for m in model.modules()}
    try:
        model.eval()
        with torch.inference_mode():
            out, calls = _linear_calls(model, x)
            layer, _ = _final_linear(model, logits_of(out), calls)
    finally:
        for m, training in modes.items():
            m.training = training
    return next(name for name, m in model.named_modules() if m is layer)


class _ClassifierInput:
    """Forward hook keeping the latest input of one layer: the penultimate embedding."""

    def __init__(self, layer: nn.Module):
        self.value: Optional[torch.Tensor] = None
        self._hook = layer.register_forward_hook(self._keep)

    def _keep(self, module, inputs, output) -> None:
        self.value = inputs[0]

    def take(self) -> torch.Tensor:
        value, self.value = self.value, None
        if value is None:
            raise ValueError("the classifier layer was not called during the forward pass")
        return value

    def remove(self) -> None:
        self._hook.remove()


def _resolve_layer(model: nn.Module, classifier: Union[str, nn.Module]) -> nn.Module:
    if isinstance(classifier, nn.Module):
        if not any(m is classifier for m in model.modules()):
            raise ValueError("classifier is a module that is not part of the model")
        return classifier
    if not isinstance(classifier, str):
        raise TypeError(f"classifier must be a module name (str) or an nn.Module, got {type(classifier).__name__}")
    try:
        return model.get_submodule(classifier)
    except AttributeError as exc:
        raise ValueError(f"classifier={classifier!r} names no submodule of {type(model).__name__}; linear layers: "
                         f"{sorted(n for n, m in model.named_modules() if isinstance(m, nn.Linear))}") from exc


def _is_pair(out: Any) -> bool:
    return isinstance(out, (tuple, list)) and len(out) == 2


def logits_of(out: Any) -> torch.Tensor:
    """The logits in a model's output: the tensor itself, the first of a (logits, embedding) pair, or
    ``out["logits"]`` (a Hugging Face ``ModelOutput`` or a dict)."""
    if isinstance(out, Mapping) and "logits" in out:  # a Hugging Face ModelOutput or a dict
        out = out["logits"]
    logits = out[0] if _is_pair(out) else out
    if not isinstance(logits, torch.Tensor):
        raise TypeError("the model's forward must return logits, (logits, embedding) or a mapping "
                        "with 'logits' "
                        f"(augcore.models convention), got {type(out).__name__}"
                        + (" of length %d" % len(out) if isinstance(out, (tuple, list)) else ""))
    return logits


class EmbeddingReader:
    """``reader(x) -> (logits, embedding)`` for any model: the model's returned pair, or the
    input of its classifier (``classifier``, a name or the module; else the final
    ``nn.Linear``, found on the first call as ``find_classifier`` does), read by a forward
    hook. ``call`` runs the forward (default ``model``; a DDP or compiled wrapper of it).
    The embedding keeps its autograd graph (detach it to store it); ``close()`` removes the hook."""

    def __init__(self, model: nn.Module, classifier: Optional[Union[str, nn.Module]] = None, *, call=None):
        self.model = model
        self.call = call or model
        self.hook = None if classifier is None else _ClassifierInput(_resolve_layer(model, classifier))
        self.settled = classifier is not None

    def __call__(self, x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        if self.settled:
            out = self.call(x)
            return logits_of(out), self.hook.take() if self.hook is not None else self._returned(out)
        out, calls = _linear_calls(self.model, x, self.call)
        self.settled = True
        logits = logits_of(out)
        if _is_pair(out):
            return logits, self._returned(out)
        layer, embedding = _final_linear(self.model, logits, calls)
        self.hook = _ClassifierInput(layer)
        return logits, embedding

    @staticmethod
    def _returned(out: Any) -> torch.Tensor:
        if not isinstance(out[1], torch.Tensor):
            raise TypeError(f"the model returned {type(out[1]).__name__} as its embedding; return a tensor "
                            "(collect_stats: or pass embeddings=False to collect logits only)")
        return out[1]

    def close(self) -> None:
        if self.hook is not None:
            self.hook.remove()
