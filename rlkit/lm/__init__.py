"""Language-model RL support (extra ``lm``): the Hugging Face import helper and a toy model
builder for tests, examples and benchmarks. Importing this package imports no transformers."""

from rlkit.lm.hf import LM_INSTALL_HINT, load_causal_lm, load_tokenizer, require_transformers

__all__ = ["LM_INSTALL_HINT", "load_causal_lm", "load_tokenizer", "require_transformers"]
