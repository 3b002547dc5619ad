"""Run logger: ``progress.csv``, TensorBoard scalars and (optionally) Weights & Biases."""

from __future__ import annotations

import csv
import importlib
import logging
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

log = logging.getLogger("rlkit")


class Logger:
    """Writes one row of scalars per call to :meth:`write`.

    ``progress.csv`` always (the header grows when new keys appear; the file is rewritten then),
    TensorBoard event files when ``tensorboard=True`` and the package is installed (extra
    ``rlkit[tensorboard]``), and W&B when ``wandb`` is a dict of ``wandb.init`` arguments
    (extra ``rlkit[wandb]``).
    """

    def __init__(
        self,
        run_dir: str | Path,
        tensorboard: bool = True,
        wandb: Mapping[str, Any] | None = None,
        config: Mapping[str, Any] | None = None,
    ) -> None:
        self.run_dir = Path(run_dir)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.csv_path = self.run_dir / "progress.csv"
        self._keys: list[str] = []
        self._rows: list[dict[str, Any]] = []
        if self.csv_path.exists():  # resuming: keep earlier rows
            with self.csv_path.open(newline="") as f:
                reader = csv.DictReader(f)
                self._keys = list(reader.fieldnames or [])
                self._rows = list(reader)
        self._tb: Any = None
        if tensorboard:
            try:
                tb = importlib.import_module("torch.utils.tensorboard")
                self._tb = tb.SummaryWriter(log_dir=str(self.run_dir / "tensorboard"))
            except ImportError:
                log.warning(
                    "TensorBoard logging skipped: install it with `pip install rlkit[tensorboard]`"
                )
        self._wandb: Any = None
        if wandb is not None:
            try:
                wb = importlib.import_module("wandb")
            except ImportError:
                raise ImportError("W&B logging needs wandb: `pip install rlkit[wandb]`") from None
            self._wandb = wb.init(config=dict(config or {}), dir=str(self.run_dir), **dict(wandb))

    def write(self, step: int, scalars: Mapping[str, float]) -> None:
        """Record ``scalars`` at global env step ``step``."""
        row = {"global_step": step, **{k: _clean(v) for k, v in scalars.items()}}
        new_keys = [k for k in row if k not in self._keys]
        self._rows.append(row)
        if new_keys or not self.csv_path.exists():
            self._keys.extend(new_keys)
            self._rewrite_csv()
        else:
            with self.csv_path.open("a", newline="") as f:
                csv.DictWriter(f, fieldnames=self._keys).writerow(row)
        if self._tb is not None:
            for key, value in row.items():
                if key != "global_step" and value != "":
                    self._tb.add_scalar(key, value, step)
        if self._wandb is not None:
            self._wandb.log(dict(row), step=step)

    def _rewrite_csv(self) -> None:
        tmp = self.csv_path.with_suffix(".csv.tmp")
        with tmp.open("w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=self._keys, restval="")
            writer.writeheader()
            writer.writerows(self._rows)
        tmp.replace(self.csv_path)

    def close(self) -> None:
        if self._tb is not None:
            self._tb.close()
        if self._wandb is not None:
            self._wandb.finish()


def _clean(value: Any) -> Any:
    value = float(value)
    return "" if math.isnan(value) else value
