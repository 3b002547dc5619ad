"""Logging: run files (CSV, TensorBoard, W&B) and the console progress bar."""

from rlkit.logging.logger import Logger
from rlkit.logging.progress import ProgressBar

__all__ = ["Logger", "ProgressBar"]
