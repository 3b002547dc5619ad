"""The ``rlkit`` command line: train, eval, list, settings precedence, run-dir safety, resume."""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from rlkit.cli.main import main


def _cli(argv: list[str]) -> int:
    """Run the CLI in-process and return its exit status (as the interpreter would)."""
    try:
        return main(argv)
    except SystemExit as e:
        if e.code is None:
            return 0
        if isinstance(e.code, int):
            return e.code
        print(e.code, file=sys.stderr)
        return 1


def _subprocess(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("rlkit")
    cmd = [exe] if exe else [sys.executable, "-m", "rlkit"]
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    return subprocess.run(
        [*cmd, *args], cwd=cwd, capture_output=True, text=True, timeout=120, env=env
    )


def _rows(run_dir: Path) -> list[dict[str, Any]]:
    with (run_dir / "progress.csv").open(newline="") as f:
        return list(csv.DictReader(f))


def _config(run_dir: Path) -> dict[str, Any]:
    return json.loads((run_dir / "final" / "config.json").read_text())


def _snapshot(directory: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(directory)): p.read_bytes() for p in directory.rglob("*") if p.is_file()
    }


BASE = ["--env", "CartPole-v1", "--seed", "0", "--no-progress"]
TINY = ["--num-envs", "2", "--num-steps", "16", "--num-epochs", "1", "--eval-episodes", "1"]


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``rlkit train ppo --env CartPole-v1 --total-steps 2048 --num-envs 4 --seed 0``."""
    out = tmp_path_factory.mktemp("cli") / "run"
    args = ["train", "ppo", "--total-steps", "2048", "--num-envs", "4"]
    rc = _cli([*args, *BASE, "--out", str(out)])
    assert rc == 0
    return out


# --------------------------------------------------------------------------- train / eval / list
def test_train_writes_run_directory(trained_run: Path) -> None:
    assert (trained_run / "final" / "config.json").is_file()
    assert (trained_run / "final" / "model.safetensors").is_file()
    rows = _rows(trained_run)
    assert len(rows) == 2048 // (4 * 32)  # one row per update (preset num_steps 32)
    assert int(rows[-1]["global_step"]) == 2048
    assert {"loss/policy", "loss/value", "train/lr", "time/sps"} <= set(rows[0])
    evaluation = json.loads((trained_run / "eval.json").read_text())
    assert evaluation["episodes"] == 10 and evaluation["return_mean"] > 0
    tb = trained_run / "tensorboard"
    assert tb.is_dir()
    assert any(p.name.startswith("events.out.tfevents") for p in tb.iterdir())
    config = _config(trained_run)
    assert config["agent"] == "ppo"
    assert config["env"]["id"] == "CartPole-v1" and config["env"]["num_envs"] == 4
    assert config["counters"] == {"global_step": 2048, "num_updates": 16}
    hyper = config["hyperparameters"]
    assert hyper["seed"] == 0
    # the built-in CartPole preset applied
    assert (hyper["num_steps"], hyper["lr"], hyper["gamma"]) == (32, 0.001, 0.98)


def test_train_prints_saved_and_eval(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run"
    assert _cli(["train", "a2c", *BASE, *TINY, "--total-steps", "64", "--out", str(out)]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    # the resolved configuration first (also saved in the run directory), then the results
    assert lines[0] == f"rlkit train a2c: resolved config (saved to {out / 'config.yaml'}):"
    resolved = yaml.safe_load((out / "config.yaml").read_text())
    assert "\n".join(lines[1:-2]) == (out / "config.yaml").read_text().strip()
    assert resolved["env"] == "CartPole-v1" and resolved["total_steps"] == 64
    assert resolved["lr"] == 7e-4 and resolved["num_steps"] == 16  # default and flag, resolved
    assert lines[-2] == f"saved {out / 'final'}"
    result = json.loads(lines[-1])["eval"]
    assert result["episodes"] == 1.0 and result["return_mean"] > 0
    assert _config(out)["agent"] == "a2c"


def test_resolved_config_reproduces_the_run(tmp_path: Path) -> None:
    """``rlkit train ALGO --config RUN/config.yaml`` trains with the same configuration."""
    first, second = tmp_path / "a", tmp_path / "b"
    args = ["train", "ppo", *BASE, *TINY, "--total-steps", "64", "--lr", "0.002"]
    assert _cli([*args, "--out", str(first)]) == 0
    assert _cli(["train", "ppo", "--config", str(first / "config.yaml"), "--out", str(second)]) == 0
    assert (first / "config.yaml").read_text() == (second / "config.yaml").read_text()
    assert yaml.safe_load((second / "config.yaml").read_text())["lr"] == 0.002


def test_train_help_lists_the_hyperparameters_and_the_preset(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert _cli(["train", "ppo", "--env", "CartPole-v1", "--help"]) == 0
    text = capsys.readouterr().out
    assert "hyperparameters of ppo (PPOConfig" in text
    assert "  --clip-range float (default 0.2)\n      policy-ratio clip." in text
    assert "  --gamma float (default 0.99)" in text
    assert "preset for --env CartPole-v1 (rlkit/presets/ppo.yaml): num_envs=8" in text
    assert "(no description)" not in text  # every field says what it means


def test_eval_json_subprocess(trained_run: Path) -> None:
    proc = _subprocess(["eval", str(trained_run), "--episodes", "3", "--json"], trained_run.parent)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert len(lines) == 1
    result = json.loads(lines[0])
    assert isinstance(result, dict)
    assert {"return_mean", "return_std", "episodes"} <= set(result)
    assert result["episodes"] == 3
    assert result["return_std"] >= 0
    # CartPole: return == number of steps survived, at least 8 for any policy
    assert result["return_mean"] >= 8


def test_eval_human_readable_and_checkpoint_dir(
    trained_run: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _cli(["eval", str(trained_run / "final"), "--episodes", "2", "--seed", "1"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("2 episodes: return ")
    assert "length" in out


def test_eval_missing_checkpoint(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _cli(["eval", str(tmp_path / "nothing")]) == 2
    assert "no checkpoint directory" in capsys.readouterr().err


def test_list_prints_agents_and_primitives(capsys: pytest.CaptureFixture[str]) -> None:
    assert _cli(["list"]) == 0
    out = capsys.readouterr().out
    lines = {line.split()[0]: line for line in out.splitlines() if line.strip()}
    assert "ppo" in lines["agents"] and "a2c" in lines["agents"]
    for ident in ("identity", "mlp", "nature_cnn", "dict"):
        assert ident in lines["encoders"]
    assert "actor_critic" in lines["policies"]
    assert "categorical" in lines["distributions"]
    assert "diag_gaussian" in lines["distributions"]
    assert "rnd" in out and "random_shift" in out


# --------------------------------------------------------------------------- precedence
def test_config_file_beats_preset_and_flag_beats_file(tmp_path: Path) -> None:
    cfg = tmp_path / "run.yaml"
    cfg.write_text(
        "env: CartPole-v1\n"
        "lr: 0.0005\n"
        "num_steps: 16\n"
        "gamma: 0.95\n"
        "num-epochs: 2\n"
        "eval_episodes: 1\n"
    )
    out = tmp_path / "run"
    args = ["train", "ppo", "--gamma", "0.97", "--num-envs", "2", "--total-steps", "64"]
    args += ["--seed", "3", "--no-progress"]
    rc = _cli([*args, "--config", str(cfg), "--out", str(out)])
    assert rc == 0
    config = _config(out)
    hyper = config["hyperparameters"]
    assert hyper["lr"] == 0.0005  # file beats preset (0.001)
    assert hyper["num_steps"] == 16  # file beats preset (32)
    assert hyper["num_epochs"] == 2  # file (dashed key) beats preset (20)
    assert hyper["gamma"] == 0.97  # flag beats file (0.95) and preset (0.98)
    assert hyper["gae_lambda"] == 0.8  # preset kept where nothing overrides it
    assert hyper["anneal_lr"] is True
    assert hyper["seed"] == 3
    assert config["env"]["id"] == "CartPole-v1"  # env came from the file
    assert config["counters"]["global_step"] == 64


def test_flag_forms(tmp_path: Path) -> None:
    out = tmp_path / "run"
    flags = ["--ent-coef=0.01", "--no-anneal-lr", "--normalize-obs", "--clip-range", "0.3"]
    rc = _cli(["train", "ppo", *BASE, *TINY, "--total-steps", "32", "--out", str(out), *flags])
    assert rc == 0
    hyper = _config(out)["hyperparameters"]
    assert hyper["ent_coef"] == 0.01
    assert hyper["anneal_lr"] is False
    assert hyper["normalize_obs"] is True
    assert hyper["clip_range"] == 0.3


# --------------------------------------------------------------------------- errors
def test_unknown_flag_exit_code_2_subprocess(tmp_path: Path) -> None:
    out = tmp_path / "run"
    proc = _subprocess(
        ["train", "ppo", "--env", "CartPole-v1", "--learning-rate", "0.1", "--out", str(out)],
        tmp_path,
    )
    assert proc.returncode == 2
    assert "learning_rate" in proc.stderr
    for name in ("lr", "gamma", "num_steps", "clip_range", "total_steps", "intrinsic_reward"):
        assert name in proc.stderr
    assert not out.exists()


def test_unknown_flag_in_process(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["train", "ppo", "--env", "CartPole-v1", "--gama", "0.9"]
    assert _cli([*args, "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert "unknown option(s) gama" in err and "valid hyperparameters" in err
    assert not (tmp_path / "run").exists()


def test_bad_hyperparameter_value(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _cli(["train", "ppo", *BASE, "--gamma", "2", "--out", str(tmp_path / "run")]) == 2
    assert "gamma=2" in capsys.readouterr().err


def test_missing_env(tmp_path: Path) -> None:
    assert _cli(["train", "ppo", "--out", str(tmp_path / "run")]) != 0


def test_existing_out_without_overwrite_untouched(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    (out / "final").mkdir()
    (out / "final" / "config.json").write_text("{}")
    before = _snapshot(out)
    assert main(["train", "ppo", *BASE, *TINY, "--total-steps", "32", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("rlkit: error: run directory") and "--overwrite" in err
    assert _snapshot(out) == before

    args = ["train", "ppo", *BASE, *TINY, "--total-steps", "32", "--overwrite"]
    assert _cli([*args, "--out", str(out)]) == 0
    assert not (out / "notes.txt").exists()
    assert _config(out)["counters"]["global_step"] == 32
    assert len(_rows(out)) == 1


def test_existing_empty_out_is_fine(tmp_path: Path) -> None:
    out = tmp_path / "run"
    out.mkdir()
    assert _cli(["train", "ppo", *BASE, *TINY, "--total-steps", "32", "--out", str(out)]) == 0
    assert (out / "final" / "config.json").is_file()


# --------------------------------------------------------------------------- resume / extras
def test_resume_continues_from_checkpoint(trained_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "resumed"
    args = ["train", "ppo", *BASE, "--num-envs", "4", "--eval-episodes", "1"]
    args += ["--total-steps", "2560"]
    rc = _cli([*args, "--resume", str(trained_run / "final"), "--out", str(out)])
    assert rc == 0
    counters = _config(out)["counters"]
    assert counters == {"global_step": 2560, "num_updates": 16 + 4}
    steps = [int(r["global_step"]) for r in _rows(out)]
    assert steps == [2176, 2304, 2432, 2560]  # started after the checkpoint's 2048 steps
    # learning-rate annealing continued from the checkpoint's position, not from the start
    assert float(_rows(out)[0]["train/lr"]) < 0.001 * 0.25


def test_resume_keeps_checkpoint_hyperparameters(tmp_path: Path) -> None:
    """Resuming continues with the checkpoint's hyperparameters: the built-in preset must not
    silently replace them (only an explicit flag or --config value may)."""
    first, second, third = tmp_path / "first", tmp_path / "second", tmp_path / "third"
    args = ["train", "ppo", *BASE, "--num-envs", "2", "--eval-episodes", "1"]
    custom = ["--num-steps", "16", "--num-epochs", "2", "--lr", "0.0005"]
    assert _cli([*args, *custom, "--total-steps", "64", "--out", str(first)]) == 0
    # an explicit flag on resume does override
    resume = ["--resume", str(first), "--total-steps", "96"]
    assert _cli([*args, *resume, "--lr", "0.0002", "--out", str(third)]) == 0
    assert _config(third)["hyperparameters"]["lr"] == 0.0002
    # without flags the checkpoint's values stay (the CartPole preset has lr 0.001,
    # num_steps 32, num_epochs 20)
    assert _cli([*args, *resume, "--out", str(second)]) == 0
    hyper = _config(second)["hyperparameters"]
    assert (hyper["lr"], hyper["num_steps"], hyper["num_epochs"]) == (0.0005, 16, 2)


def test_resume_from_run_directory(trained_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "resumed"
    args = ["train", "ppo", *BASE, "--num-envs", "4", "--eval-episodes", "1"]
    args += ["--total-steps", "2176"]
    rc = _cli([*args, "--resume", str(trained_run), "--out", str(out)])
    assert rc == 0
    assert _config(out)["counters"]["global_step"] == 2176


def test_intrinsic_reward_flag(tmp_path: Path) -> None:
    out = tmp_path / "run"
    args = ["train", "ppo", *BASE, *TINY, "--total-steps", "64", "--intrinsic-reward", "rnd"]
    rc = _cli([*args, "--out", str(out)])
    assert rc == 0
    assert _config(out)["primitives"]["intrinsic_reward"]["id"] == "rnd"
    rows = _rows(out)
    assert len(rows) == 2
    assert all(r["rollout/intrinsic_reward_mean"] != "" for r in rows)


def test_async_flag(tmp_path: Path) -> None:
    out = tmp_path / "run"
    rc = _cli(["train", "ppo", *BASE, *TINY, "--total-steps", "32", "--async", "--out", str(out)])
    assert rc == 0
    assert _config(out)["counters"]["global_step"] == 32


def test_resume_in_place_continues_the_run(tmp_path: Path) -> None:
    """``--resume RUN --out RUN`` continues that run: no --overwrite needed, nothing deleted,
    progress.csv keeps its earlier rows and final/ is replaced by the longer run."""
    out = tmp_path / "run"
    args = ["train", "ppo", *BASE, *TINY]
    assert _cli([*args, "--total-steps", "64", "--out", str(out)]) == 0
    rows_before = len(_rows(out))
    assert _cli([*args, "--total-steps", "128", "--out", str(out), "--resume", str(out)]) == 0
    assert _config(out)["counters"]["global_step"] == 128
    steps = [int(r["global_step"]) for r in _rows(out)]
    assert len(steps) > rows_before and steps == sorted(steps) and steps[-1] == 128


def test_resume_carries_env_kwargs(tmp_path: Path) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    args = ["train", "ppo", *BASE, *TINY, "--env-kwargs", "{max_episode_steps: 20}"]
    assert _cli([*args, "--total-steps", "32", "--out", str(first)]) == 0
    resume = ["train", "ppo", "--no-progress", "--eval-episodes", "1", "--total-steps", "64"]
    assert _cli([*resume, "--resume", str(first), "--out", str(second)]) == 0
    env = _config(second)["env"]
    assert env["id"] == "CartPole-v1" and env["num_envs"] == 2
    assert env["kwargs"] == {"__dict__": {"max_episode_steps": 20}}
