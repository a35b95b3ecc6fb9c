"""Training-framework callbacks that re-select every R epochs and train on the augmented subset.

* ``augcore.integrations.lightning.AugcoreSelectionCallback``: PyTorch Lightning
  (``pip install augcore[lightning]``).
* ``augcore.integrations.huggingface.AugcoreSelectionCallback``: the Hugging Face
  ``transformers.Trainer`` (``pip install augcore[huggingface]``).

Each submodule imports its framework when it is imported; ``import augcore`` and
``import augcore.integrations`` import neither. See docs/integrations.md.
"""
__all__ = ["huggingface", "lightning"]
