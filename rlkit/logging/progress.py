"""Console progress bar with live steps per second and recent return."""

from __future__ import annotations

from tqdm.auto import tqdm


class ProgressBar:
    """A tqdm bar over env steps; ``update`` shows SPS and the recent mean return."""

    def __init__(self, total: int, initial: int = 0, enabled: bool = True, desc: str = "") -> None:
        self._bar = tqdm(
            total=total,
            initial=initial,
            disable=not enabled,
            desc=desc,
            unit="step",
            dynamic_ncols=True,
            smoothing=0.1,
        )

    def update(self, steps: int, sps: float, return_mean: float | None) -> None:
        postfix = {"sps": f"{sps:,.0f}"}
        if return_mean is not None:
            postfix["return"] = f"{return_mean:.2f}"
        self._bar.set_postfix(postfix, refresh=False)
        if self._bar.total is not None and self._bar.n + steps > self._bar.total:
            self._bar.total = self._bar.n + steps  # the last rollout may pass the target
        self._bar.update(steps)

    def close(self) -> None:
        self._bar.close()
