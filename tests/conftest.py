"""Test-session settings: one torch thread (the small networks here run fastest on one, and
CI has two cores), set explicitly because constructing an agent never changes it."""

from __future__ import annotations

import torch

torch.set_num_threads(1)
