"""Share agents on the Hugging Face Hub (``pip install rlkit[hub]``).

``push_to_hub`` uploads a checkpoint (JSON + safetensors, no pickle) with a model card;
``from_pretrained`` loads one from a repo id, the local Hugging Face cache (``HF_HUB_OFFLINE=1``)
or a directory. Agents offer both as ``agent.push_to_hub(...)`` and ``PPO.from_pretrained(...)``.
Loading imports no code a repo names unless ``trust_code=True`` (see :mod:`rlkit.trust`).
"""

from rlkit.hub.card import model_card, train_command, train_command_and_notes
from rlkit.hub.hub import ALLOW_PATTERNS, build_hub_files, from_pretrained, push_to_hub

__all__ = [
    "ALLOW_PATTERNS",
    "build_hub_files",
    "from_pretrained",
    "model_card",
    "push_to_hub",
    "train_command",
    "train_command_and_notes",
]
