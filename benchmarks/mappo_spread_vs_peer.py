"""Speed and score benchmark: rlkit MAPPO vs BenchMARL's MAPPO on MPE ``simple_spread_v3``.

The peer is BenchMARL (Meta's TorchRL-based MARL benchmarking library), the most widely used
MAPPO implementation that installs and runs here; it trains on the very same env code as
rlkit (``mpe2.simple_spread_v3``), so scores are comparable. Other candidates, checked on
Python 3.11 with torch 2.13 (CPU), gymnasium 1.4, numpy 2.4, pettingzoo 1.27, mpe2 1.1.1:

- ``openrl`` 0.2.0 (last release Dec 2023): installs, but imports only with
  ``gymnasium==0.29.1`` (it uses ``gymnasium.wrappers.AutoResetWrapper``, gone in 1.x) and
  ``jsonargparse<4.33`` (its config parser gives positional arguments defaults, which newer
  jsonargparse refuses). Its MAPPO (``PPONet``/``PPOAgent``) then trains on its own copy of the
  ``on-policy`` MPE, whose simple_spread gives every agent the *sum* of all agents' rewards
  (about 3x mpe2's scale, no ``local_ratio``): speed comparable, returns not.
- ``xuance`` 1.4.4: would downgrade numpy to 1.26 and gymnasium to 1.2.3 and bring torch
  2.14.1 with CUDA wheels: a separate venv without system site packages; not tried.
- ``marllib`` 1.0.3: does not install (``gym==0.21.0`` fails to build: "'extras_require' must
  be a dictionary ..."; it also needs ``ray[rllib]==1.8``, which has no Python 3.11 wheels).
- BenchMARL's own ``pettingzoo/simple_spread`` task builds ``torchrl.envs.PettingZooEnv``,
  which imports ``pettingzoo.mpe``; pettingzoo 1.27 replaced that module with an ImportError
  ("MPE has been moved into its own package: MPE2"). This script therefore subclasses
  BenchMARL's ``PettingZooClass`` to wrap ``mpe2.simple_spread_v3.parallel_env`` in
  ``torchrl.envs.PettingZooWrapper`` (the same wrapper ``PettingZooEnv`` uses); everything
  else is BenchMARL's ``Experiment`` loop, ``Mappo`` algorithm and ``Mlp`` model.

Peer venv (BenchMARL 1.5.2, torchrl 0.11.1, tensordict 0.11.0; torch kept at the main
environment's 2.13.0+cpu, otherwise pip pulls torchvision 0.29.1 and with it CUDA torch 2.14.1):

    python -m venv /tmp/peer-venv --system-site-packages
    echo 'torch==2.13.0' > /tmp/peer-constraints.txt
    /tmp/peer-venv/bin/pip install -c /tmp/peer-constraints.txt benchmarl==1.5.2

(This adds torchvision 0.28.0, hydra-core, av, tensordict, torchrl to the venv only; mpe2,
pettingzoo, gymnasium and numpy come from the main environment.) Then:

    python benchmarks/mappo_spread_vs_peer.py --peer-python /tmp/peer-venv/bin/python \\
        --steps 20000 --seeds 0                                # smoke test, ~1 minute
    python benchmarks/mappo_spread_vs_peer.py --peer-python /tmp/peer-venv/bin/python \\
        --steps 1000000 --seeds 0 1 2 --json mappo_spread.json  # a real comparison

Every run (each library, each seed) is a fresh subprocess, one at a time, with
``torch.set_num_threads(--threads)`` and OMP/MKL threads set to the same number; the order of
the two libraries alternates with the seed. ``--steps`` counts ENV steps (one step of all 3
agents); rlkit's ``train(total_steps)`` counts agent steps, so it gets ``3 x --steps``. Both
train in whole rollouts of ``25 x --num-envs`` env steps, so ``--steps`` is rounded up to a
multiple of that. Timed: the training call only (``agent.train`` / ``Experiment.run``), the
construction of agent and envs is reported apart (``setup_s``). The figures: env steps/s,
mean per-agent episode return and team return (sum over the 3 agents) over the first and the
last 100 episodes, wall-clock seconds. ``--env-baseline`` also times raw mpe2 stepping with
random actions (the same number of copies, in a Python loop): the ceiling for both.

Settings (``rlkit`` = ``MAPPO(env)``'s defaults, which are the MAPPO paper's MPE ones; the
peer is set to the same wherever BenchMARL exposes the knob):

setting: rlkit MAPPO / BenchMARL Mappo (its knob)

- env: mpe2 simple_spread_v3, N=3, local_ratio 0.5, max_cycles 25, discrete actions / the
  same code and arguments
- copies of the env: ``--num-envs``, in-process ``AgentRowsVecEnv`` / ``--num-envs``, torchrl
  ``SerialEnv`` (``on_policy_n_envs_per_worker``, ``parallel_collection=False``)
- rollout: 25 steps per copy / ``on_policy_collected_frames_per_batch`` = 25 x copies
- epochs x minibatches: 10 x 1 (``batch_size`` = the whole rollout) /
  ``on_policy_n_minibatch_iters`` 10, ``on_policy_minibatch_size`` = the whole rollout
- lr, Adam eps: 7e-4, 1e-5 / ``lr`` 7e-4, ``adam_eps`` 1e-5
- clip, entropy, value coefficient: 0.2, 0.01, 1.0 / ``clip_epsilon`` 0.2, ``entropy_coef``
  0.01, ``critic_coef`` 1.0
- gamma, GAE lambda: 0.99, 0.95 / ``gamma`` 0.99, ``lmbda`` 0.95
- value loss: squared error / ``loss_critic_type`` l2 (squared error)
- grad clip: global norm 10 over actor and critic (one Adam) / ``clip_grad_val`` 10 with
  ``clip_grad_norm``, actor and critic apart (two Adams, as the paper's code)
- networks: 64-64 ReLU actor and critic, shared by the agents / ``MlpConfig`` 64-64 ReLU,
  ``share_policy_params``, ``share_param_critic``
- time-limit ends: bootstrapped from the value of the last observation / bootstrapped
  (torchrl's GAE reads ``terminated``, not ``truncated``)
- stochastic actions in collection, no evaluation episodes, no logging / the same
  (``evaluation=False``, ``loggers=[]``, ``create_json=False``)

What differs and cannot be set the same (BenchMARL does not expose it; left at its behaviour):

- advantage normalisation: rlkit yes (MAPPO paper); BenchMARL no (its ``Mappo`` builds
  ``ClipPPOLoss(normalize_advantage=False)``).
- value normalisation (MAPPO's ValueNorm): rlkit yes; BenchMARL no.
- input LayerNorm (MAPPO's feature normalisation) and a one-hot agent id on actor and critic
  inputs: rlkit yes; BenchMARL no (one shared MLP on the agent's observation).
- critic output: rlkit one value per agent (state + agent id; rewards differ per agent with
  local_ratio 0.5); BenchMARL one value of the state, copied to the 3 agents.
- initialisation: rlkit orthogonal (gain 0.01 on the action head, 1 on the value head);
  BenchMARL PyTorch's default.
- the seed does not give the same random numbers in the two libraries.

Stdout gets the table; ``--json PATH`` writes every run and the summary. Progress goes to
stderr.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any

ENV_ID = "mpe2:simple_spread_v3"
#: mpe2.simple_spread_v3.parallel_env keyword arguments, the same for both libraries.
ENV_KWARGS: dict[str, Any] = {
    "N": 3,
    "local_ratio": 0.5,
    "max_cycles": 25,
    "continuous_actions": False,
}
N_AGENTS = 3
ROLLOUT = 25  # env steps per copy per update (MPE episodes are 25 steps)
#: the shared hyperparameters, named as in rlkit (BenchMARL's names in :func:`run_benchmarl`).
HYPERPARAMETERS: dict[str, Any] = {
    "num_steps": ROLLOUT,
    "num_epochs": 10,
    "lr": 7e-4,
    "adam_eps": 1e-5,
    "clip_range": 0.2,
    "ent_coef": 0.01,
    "vf_coef": 1.0,
    "gamma": 0.99,
    "gae_lambda": 0.95,
    "max_grad_norm": 10.0,
}
HIDDEN = [64, 64]
WINDOW = 100  # episodes in the "first" and "last" return figures
RESULT_TAG = "@@RESULT@@ "


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def pin_threads(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)
    with contextlib.suppress(RuntimeError):  # set already once parallel work ran
        torch.set_num_interop_threads(threads)


def _returns_summary(team_returns: list[float]) -> dict[str, Any]:
    """First/last ``WINDOW`` team returns (sum over agents) and the per-agent means (/3)."""
    first = team_returns[:WINDOW]
    last = team_returns[-WINDOW:]
    out: dict[str, Any] = {"episodes": len(team_returns)}
    if last:
        out["team_return_last"] = statistics.fmean(last)
        out["agent_return_last"] = out["team_return_last"] / N_AGENTS
        out["team_return_first"] = statistics.fmean(first)
        out["agent_return_first"] = out["team_return_first"] / N_AGENTS
    return out


# --------------------------------------------------------------------------- workers


def run_rlkit(seed: int, env_steps: int, num_envs: int, threads: int) -> dict[str, Any]:
    """rlkit MAPPO with its defaults (checked against HYPERPARAMETERS), ``3 x env_steps``
    agent steps."""
    pin_threads(threads)
    import gymnasium
    import mpe2
    import numpy
    import pettingzoo
    import torch

    import rlkit
    from rlkit.agents import MAPPO
    from rlkit.envs import make_vec_env

    t0 = time.perf_counter()
    env = make_vec_env(
        ENV_ID, num_envs=num_envs, seed=seed, env_kwargs=ENV_KWARGS, stats_window=10**7
    )
    hp = dict(HYPERPARAMETERS, batch_size=ROLLOUT * num_envs * N_AGENTS)
    agent = MAPPO(env, seed=seed, num_threads=threads, **hp)
    cfg = agent.config
    assert cfg.centralised_critic and cfg.normalize_value and cfg.normalize_advantages
    setup_s = time.perf_counter() - t0

    cpu0, t0 = time.process_time(), time.perf_counter()
    agent.train(env_steps * N_AGENTS, progress_bar=False)
    train_s = time.perf_counter() - t0
    cpu_s = time.process_time() - cpu0
    done = int(agent.global_step) // N_AGENTS
    team = [float(x) for x in env.team_return_queue]
    out = {
        "library": "rlkit",
        "seed": seed,
        "env_steps": done,
        "train_s": train_s,
        "cpu_s": cpu_s,
        "setup_s": setup_s,
        "env_steps_per_s": done / train_s,
        **_returns_summary(team),
        # cross-check: rlkit's own per-agent statistic (last 100 agent-episodes = ~33 episodes)
        "rlkit_episodes_return_mean": float(agent.episodes.return_mean),
        "torch_threads": torch.get_num_threads(),
        "backend_report": str(getattr(agent, "backend_report", "")).splitlines(),
        "versions": {
            "rlkit": rlkit.__version__,
            "torch": torch.__version__,
            "numpy": numpy.__version__,
            "gymnasium": gymnasium.__version__,
            "pettingzoo": pettingzoo.__version__,
            "mpe2": _dist_version("mpe2", mpe2),
        },
    }
    env.close()
    return out


def run_benchmarl(seed: int, env_steps: int, num_envs: int, threads: int) -> dict[str, Any]:
    """BenchMARL's Mappo on mpe2 simple_spread, set to HYPERPARAMETERS where it can be."""
    os.environ.setdefault("TQDM_DISABLE", "1")  # BenchMARL's progress bar
    pin_threads(threads)
    import warnings

    warnings.filterwarnings("ignore")
    import benchmarl
    import mpe2
    import numpy
    import pettingzoo
    import tensordict
    import torch
    import torchrl
    from benchmarl.algorithms import MappoConfig
    from benchmarl.environments import PettingZooTask
    from benchmarl.environments.pettingzoo.common import PettingZooClass
    from benchmarl.experiment import Experiment, ExperimentConfig
    from benchmarl.experiment.callback import Callback
    from benchmarl.models.mlp import MlpConfig
    from torchrl.envs import PettingZooWrapper

    class Mpe2SimpleSpread(PettingZooClass):
        """BenchMARL's pettingzoo simple_spread task on mpe2 (pettingzoo.mpe is gone in
        pettingzoo 1.27); the same PettingZooWrapper that torchrl's PettingZooEnv builds."""

        def get_env_fun(self, num_envs, continuous_actions, seed, device):  # type: ignore[no-untyped-def]
            kwargs = {k: v for k, v in self.config.items() if k != "task"}
            kwargs["continuous_actions"] = continuous_actions

            def make() -> Any:
                from mpe2 import simple_spread_v3

                return PettingZooWrapper(
                    simple_spread_v3.parallel_env(**kwargs),
                    categorical_actions=True,
                    seed=seed,
                    return_state=True,
                    device=device,
                )

            return make

    # BenchMARL pickles the task into its save folder: make the class findable by name.
    Mpe2SimpleSpread.__qualname__ = Mpe2SimpleSpread.__name__
    globals()[Mpe2SimpleSpread.__name__] = Mpe2SimpleSpread

    class EpisodeReturns(Callback):
        """Per-agent episode returns (torchrl's RewardSum) at each finished episode."""

        def __init__(self) -> None:
            super().__init__()
            self.team: list[float] = []
            self.frames = 0

        def on_batch_collected(self, batch: Any) -> None:
            done = batch.get(("next", "done")).squeeze(-1)
            per_agent = batch.get(("next", "agent", "episode_reward")).squeeze(-1)
            self.team.extend(per_agent[done].sum(-1).tolist())
            self.frames += batch.numel()

    EpisodeReturns.__qualname__ = EpisodeReturns.__name__  # pickled too
    globals()[EpisodeReturns.__name__] = EpisodeReturns

    yaml_task = PettingZooTask.SIMPLE_SPREAD.get_from_yaml()
    task = Mpe2SimpleSpread(yaml_task.name, dict(yaml_task.config, **ENV_KWARGS))
    task.config.pop("continuous_actions")  # set by the experiment (prefer_continuous_actions)

    frames = ROLLOUT * num_envs
    hp = HYPERPARAMETERS
    ec = ExperimentConfig.get_from_yaml()
    ec.sampling_device = ec.train_device = ec.buffer_device = "cpu"
    ec.prefer_continuous_actions = False
    ec.share_policy_params = True
    ec.parallel_collection = False
    ec.collect_with_grad = False
    ec.gamma = hp["gamma"]
    ec.lr = hp["lr"]
    ec.adam_eps = hp["adam_eps"]
    ec.clip_grad_norm = True
    ec.clip_grad_val = hp["max_grad_norm"]
    ec.max_n_iters = None
    ec.max_n_frames = env_steps
    ec.on_policy_collected_frames_per_batch = frames
    ec.on_policy_n_envs_per_worker = num_envs
    ec.on_policy_n_minibatch_iters = hp["num_epochs"]
    ec.on_policy_minibatch_size = frames
    ec.evaluation = False
    ec.render = False
    ec.loggers = []
    ec.create_json = False
    ec.checkpoint_interval = 0
    ec.checkpoint_at_end = False
    ec.save_folder = tempfile.mkdtemp(prefix="benchmarl-")

    ac = MappoConfig.get_from_yaml()
    ac.share_param_critic = True
    ac.clip_epsilon = hp["clip_range"]
    ac.entropy_coef = hp["ent_coef"]
    ac.critic_coef = hp["vf_coef"]
    ac.loss_critic_type = "l2"
    ac.lmbda = hp["gae_lambda"]
    ac.minibatch_advantage = False

    model = MlpConfig(
        num_cells=list(HIDDEN), layer_class=torch.nn.Linear, activation_class=torch.nn.ReLU
    )
    callback = EpisodeReturns()
    t0 = time.perf_counter()
    experiment = Experiment(
        task=task,
        algorithm_config=ac,
        model_config=model,
        critic_model_config=model,
        seed=seed,
        config=ec,
        callbacks=[callback],
    )
    setup_s = time.perf_counter() - t0

    cpu0, t0 = time.process_time(), time.perf_counter()
    experiment.run()
    train_s = time.perf_counter() - t0
    cpu_s = time.process_time() - cpu0
    return {
        "library": "benchmarl",
        "seed": seed,
        "env_steps": callback.frames,
        "train_s": train_s,
        "cpu_s": cpu_s,
        "setup_s": setup_s,
        "env_steps_per_s": callback.frames / train_s,
        **_returns_summary(callback.team),
        "torch_threads": torch.get_num_threads(),
        "versions": {
            "benchmarl": _dist_version("benchmarl", benchmarl),
            "torchrl": torchrl.__version__,
            "tensordict": _dist_version("tensordict", tensordict),
            "torch": torch.__version__,
            "numpy": numpy.__version__,
            "pettingzoo": pettingzoo.__version__,
            "mpe2": _dist_version("mpe2", mpe2),
        },
    }


def run_env_baseline(seed: int, env_steps: int, num_envs: int, threads: int) -> dict[str, Any]:
    """Raw mpe2 parallel_env stepping with random actions, ``num_envs`` copies in a loop."""
    import numpy as np
    from mpe2 import simple_spread_v3

    envs = [simple_spread_v3.parallel_env(**ENV_KWARGS) for _ in range(num_envs)]
    for i, e in enumerate(envs):
        e.reset(seed=seed + i)
    rng = np.random.default_rng(seed)
    steps = min(env_steps, 200 * num_envs)
    t0 = time.perf_counter()
    done = 0
    while done < steps:
        for e in envs:
            actions = {a: int(rng.integers(5)) for a in e.agents}
            _, _, term, trunc, _ = e.step(actions)
            if any(term.values()) or any(trunc.values()):
                e.reset()
            done += 1
    elapsed = time.perf_counter() - t0
    return {
        "library": "mpe2 (random actions)",
        "seed": seed,
        "env_steps": done,
        "train_s": elapsed,
        "env_steps_per_s": done / elapsed,
    }


def _dist_version(dist: str, module: Any) -> str:
    try:
        from importlib.metadata import version

        return version(dist)
    except Exception:
        return str(getattr(module, "__version__", "?"))


WORKERS = {"rlkit": run_rlkit, "benchmarl": run_benchmarl, "env": run_env_baseline}


# --------------------------------------------------------------------------- driver


def launch(python: str, side: str, seed: int, args: argparse.Namespace) -> dict[str, Any]:
    cmd = [
        python,
        os.path.abspath(__file__),
        "--worker",
        side,
        "--seeds",
        str(seed),
        "--steps",
        str(args.steps),
        "--num-envs",
        str(args.num_envs),
        "--threads",
        str(args.threads),
    ]
    env = dict(os.environ)
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        env[var] = str(args.threads)
    wall0 = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=args.timeout)
    wall = time.perf_counter() - wall0
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith(RESULT_TAG)]
    if proc.returncode != 0 or not lines:
        tail = "\n".join(proc.stderr.strip().splitlines()[-25:])
        if "No module named 'benchmarl'" in tail:
            tail += (
                "\n(set up the peer venv as this script's docstring says and pass "
                "--peer-python /tmp/peer-venv/bin/python)"
            )
        raise RuntimeError(
            f"{side} worker (seed {seed}, {python}) failed (exit {proc.returncode}):\n{tail}"
        )
    result: dict[str, Any] = json.loads(lines[-1][len(RESULT_TAG) :])
    result["process_wall_s"] = wall
    result["python"] = python
    return result


def summarise(runs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for lib in dict.fromkeys(r["library"] for r in runs):
        rs = [r for r in runs if r["library"] == lib]
        s: dict[str, Any] = {"runs": len(rs)}
        for key in (
            "env_steps_per_s",
            "train_s",
            "agent_return_first",
            "agent_return_last",
            "team_return_first",
            "team_return_last",
            "process_wall_s",
        ):
            vals = [r[key] for r in rs if key in r]
            if vals:
                s[key] = statistics.fmean(vals)
                s[key + "_std"] = statistics.pstdev(vals) if len(vals) > 1 else 0.0
        out[lib] = s
    return out


def print_table(summary: dict[str, dict[str, Any]]) -> None:
    cols = [
        ("env steps/s", "env_steps_per_s", "{:.0f}"),
        ("train s", "train_s", "{:.1f}"),
        ("agent ret first100", "agent_return_first", "{:.2f}"),
        ("agent ret last100", "agent_return_last", "{:.2f}"),
        ("team ret last100", "team_return_last", "{:.2f}"),
        ("process wall s", "process_wall_s", "{:.1f}"),
    ]
    head = f"{'library':<24}" + "".join(f"{c:>20}" for c, _, _ in cols)
    print(head)
    print("-" * len(head))
    for lib, s in summary.items():
        cells = []
        for _, key, fmt in cols:
            if key not in s:
                cells.append(f"{'-':>20}")
                continue
            cell = fmt.format(s[key])
            if s["runs"] > 1:
                cell += " ±" + fmt.format(s[key + "_std"])
            cells.append(f"{cell:>20}")
        print(f"{lib:<24}" + "".join(cells))


def machine() -> dict[str, Any]:
    cpu = platform.processor()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument(
        "--steps",
        type=int,
        default=200_000,
        help="ENV steps per training run (rounded up to whole rollouts)",
    )
    p.add_argument("--seeds", type=int, nargs="+", default=[0])
    p.add_argument("--num-envs", type=int, default=32, help="copies of the env (both)")
    p.add_argument("--threads", type=int, default=1, help="torch threads (both)")
    p.add_argument(
        "--peer-python",
        default=sys.executable,
        help="the Python of the venv with BenchMARL (default: this one)",
    )
    p.add_argument(
        "--only", choices=["rlkit", "benchmarl"], default=None, help="run one library only"
    )
    p.add_argument(
        "--env-baseline",
        action="store_true",
        help="also time raw mpe2 stepping with random actions",
    )
    p.add_argument("--timeout", type=float, default=3600, help="seconds per run")
    p.add_argument("--json", default=None, help="also write runs and summary here")
    p.add_argument("--worker", choices=sorted(WORKERS), default=None, help=argparse.SUPPRESS)
    args = p.parse_args()
    per_update = ROLLOUT * args.num_envs
    args.steps = -(-args.steps // per_update) * per_update

    if args.worker:
        result = WORKERS[args.worker](args.seeds[0], args.steps, args.num_envs, args.threads)
        print(RESULT_TAG + json.dumps(result), flush=True)
        return

    sides = ["rlkit", "benchmarl"] if args.only is None else [args.only]
    pythons = {"rlkit": sys.executable, "benchmarl": args.peer_python, "env": sys.executable}
    runs: list[dict[str, Any]] = []
    if args.env_baseline:
        runs.append(launch(sys.executable, "env", args.seeds[0], args))
    total = len(args.seeds) * len(sides)
    k = 0
    for i, seed in enumerate(args.seeds):
        order = sides if i % 2 == 0 else sides[::-1]
        for side in order:
            k += 1
            log(
                f"[{k}/{total}] {side} seed {seed}: {args.steps} env steps, "
                f"{args.num_envs} copies, {args.threads} thread(s)"
            )
            r = launch(pythons[side], side, seed, args)
            log(
                f"    {r['env_steps_per_s']:.0f} env steps/s, {r['train_s']:.1f} s, "
                f"last-{WINDOW} team return {r.get('team_return_last', float('nan')):.2f}"
            )
            runs.append(r)

    summary = summarise(runs)
    info = machine()
    print(
        f"MAPPO on {ENV_ID} {ENV_KWARGS}: {args.steps} env steps "
        f"({args.steps * N_AGENTS} agent steps), {args.num_envs} copies x {ROLLOUT} steps "
        f"per update, seeds {args.seeds}, {args.threads} torch thread(s)"
    )
    print(f"CPU: {info['cpu']} ({info['cores']} cores)")
    print(f"returns: mean over the first / last {WINDOW} episodes; agent = team / {N_AGENTS}")
    print()
    print_table(summary)
    print()
    for lib in summary:
        versions = next(
            (r["versions"] for r in runs if r["library"] == lib and "versions" in r), None
        )
        if versions:
            print(f"{lib} versions: {versions}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(
                {
                    "settings": {
                        "env": ENV_ID,
                        "env_kwargs": ENV_KWARGS,
                        "steps": args.steps,
                        "num_envs": args.num_envs,
                        "threads": args.threads,
                        "seeds": args.seeds,
                        "hyperparameters": HYPERPARAMETERS,
                        "hidden": HIDDEN,
                    },
                    "machine": info,
                    "summary": summary,
                    "runs": runs,
                },
                f,
                indent=2,
            )
        log(f"wrote {args.json}")


if __name__ == "__main__":
    main()
