"""``rlkit tune``: search spaces, the Optuna study (results, resume, parallel trials, errors)
and the Ray Tune backend, on real CartPole trials kept to a few thousand steps."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

optuna = pytest.importorskip("optuna")

from rlkit.cli.main import main  # noqa: E402
from rlkit.prototypes import AGENTS  # noqa: E402
from rlkit.tune import SearchSpace, SpaceError, builtin_space, builtin_spaces, tune  # noqa: E402
from rlkit.tune.records import TrialRecord, table, to_csv  # noqa: E402
from rlkit.tune.space import apply_params  # noqa: E402

PPO = AGENTS.get("ppo")
LR = {"lr": {"type": "loguniform", "low": 1e-4, "high": 3e-3}}
QUICK: dict[str, Any] = {
    "trials": 3,
    "budget": 1024,
    "evals": 2,
    "eval_episodes": 3,
    "top": 0,
    "plots": False,
    "quiet": True,
}


def _draw(space: SearchSpace, n: int, seed: int = 0) -> list[dict[str, Any]]:
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    out = []
    for _ in range(n):
        trial = study.ask()
        out.append(space.suggest(trial))
        study.tell(trial, 0.0)
    return out


# --------------------------------------------------------------------------- spaces


def test_every_kind_draws_inside_its_bounds_and_list_choices_come_back_as_lists() -> None:
    space = SearchSpace.from_dict(
        {
            "lr": {"type": "loguniform", "low": 1e-5, "high": 1e-2},
            "vf_coef": {"type": "uniform", "low": 0.2, "high": 1.0, "step": 0.2},
            "num_epochs": {"type": "int", "low": 1, "high": 16, "log": True},
            "num_steps": {"type": "int", "low": 8, "high": 64, "step": 8},
            "policy.hidden_sizes": [[64], [64, 64]],
            "anneal_lr": [True, False],
        }
    )
    for drawn in _draw(space, 40):
        assert 1e-5 <= drawn["lr"] <= 1e-2
        assert round(drawn["vf_coef"] / 0.2, 6) == round(drawn["vf_coef"] / 0.2)
        assert isinstance(drawn["num_epochs"], int) and 1 <= drawn["num_epochs"] <= 16
        assert drawn["num_steps"] % 8 == 0 and 8 <= drawn["num_steps"] <= 64
        assert drawn["policy.hidden_sizes"] in ([64], [64, 64])
        assert drawn["anneal_lr"] in (True, False)


def test_a_conditional_parameter_is_drawn_only_when_its_condition_holds() -> None:
    space = SearchSpace.from_dict(
        {
            "intrinsic_reward.id": [None, "rnd"],
            "intrinsic_reward.coef": {
                "type": "loguniform",
                "low": 1e-3,
                "high": 0.1,
                "when": {"intrinsic_reward.id": "rnd"},
            },
        }
    )
    draws = _draw(space, 30)
    assert {d["intrinsic_reward.id"] for d in draws} == {None, "rnd"}
    for d in draws:
        assert ("intrinsic_reward.coef" in d) == (d["intrinsic_reward.id"] == "rnd")


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        ({"lr": {"type": "gaussian"}}, "lr.type is 'gaussian'; allowed: loguniform"),
        ({"lr": {"type": "loguniform", "low": 0, "high": 1}}, "lr is drawn on a log scale"),
        ({"lr": {"type": "uniform", "low": 1, "high": 1}}, "lr needs low < high"),
        ({"lr": {"type": "uniform", "low": 0}}, "lr (uniform) needs 'high'"),
        ({"lr": {"type": "uniform", "low": "a", "high": 1}}, "lr.low must be a number"),
        ({"lr": {"type": "uniform", "low": 0, "high": ".inf"}}, "lr.high must be a number"),
        (
            {"lr": {"type": "uniform", "low": 0, "high": 1, "choices": [1]}},
            "unknown key(s) choices",
        ),
        ({"lr": {"type": "uniform", "low": 0, "high": 1, "step": -1}}, "lr.step must be > 0"),
        ({"n": {"type": "int", "low": 1.5, "high": 3}}, "n.low must be an integer"),
        ({"n": {"type": "int", "low": 1, "high": 9, "step": 2, "log": True}}, "log: true needs"),
        ({"c": {"type": "categorical", "choices": []}}, "c.choices must be a non-empty list"),
        ({"c": [1, 1]}, "c.choices has duplicates"),
        ({"c": 3}, "c must be a mapping with a 'type'"),
        ({}, "expected a non-empty mapping"),
        (
            {"b": {"type": "uniform", "low": 0, "high": 1, "when": {"a": 1}}, "a": [1, 2]},
            "b.when names 'a', which is not a parameter listed before it",
        ),
        (
            {"a": [1, 2], "b": {"type": "uniform", "low": 0, "high": 1, "when": {"a": 3}}},
            "b.when: a is never [3]; its choices are [1, 2]",
        ),
        (
            {
                "a": {"type": "uniform", "low": 0, "high": 1},
                "b": {"type": "uniform", "low": 0, "high": 1, "when": {"a": 1}},
            },
            "conditions must name categorical parameters",
        ),
        ({"a": {"type": "uniform", "low": 0, "high": 1, "when": 3}}, "a.when must map"),
    ],
)
def test_a_bad_space_is_one_error_naming_the_parameter(data: Any, fragment: str) -> None:
    with pytest.raises(SpaceError) as info:
        SearchSpace.from_dict(data)
    assert fragment in str(info.value)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        ({"lrate": [0.1]}, "'lrate' is not a hyperparameter of PPO; valid: seed"),
        ({"num_steps": {"type": "uniform", "low": 8, "high": 64}}, "num_steps is an integer"),
        ({"gamma": {"type": "uniform", "low": 0.5, "high": 1.5}}, "gamma=1.5 is not allowed"),
        ({"lr": ["fast"]}, "expected a number, got 'fast'"),
        ({"critic.size": [1]}, "'critic' is not a primitive"),
    ],
)
def test_a_space_that_does_not_fit_the_agent_is_refused(data: Any, fragment: str) -> None:
    with pytest.raises(SpaceError) as info:
        SearchSpace.from_dict(data).check_agent(PPO)
    assert fragment in str(info.value)


@pytest.mark.parametrize("algo", sorted(AGENTS))
def test_every_agent_has_a_builtin_space_that_fits_it(algo: str) -> None:
    space = builtin_space(algo)
    space.check_agent(AGENTS.get(algo))
    assert algo in builtin_spaces() and len(space.params) >= 5


def test_params_go_over_the_base_config_and_into_primitive_specs() -> None:
    run, hyper, prims = apply_params(
        {"lr": 0.01, "num_envs": 4, "encoder.feature_dim": 32, "intrinsic_reward.id": None},
        {"env": "CartPole-v1", "num_envs": 8},
        {"lr": 0.001, "gamma": 0.9},
        {"encoder": "mlp", "intrinsic_reward": {"id": "rnd"}},
    )
    assert run == {"env": "CartPole-v1", "num_envs": 4}
    assert hyper == {"lr": 0.01, "gamma": 0.9}
    assert prims == {"encoder": {"id": "mlp", "feature_dim": 32}}
    with pytest.raises(SpaceError, match=r"encoder\.feature_dim needs encoder\.id"):
        apply_params({"encoder.feature_dim": 32}, {}, {}, {})


def test_start_values_must_be_in_the_space() -> None:
    space = SearchSpace.from_dict({"lr": [0.1, 0.2], **{"gamma": [0.9, 0.99]}})
    assert space.encode_start({"lr": 0.1}) == {"lr": 0.1}
    with pytest.raises(SpaceError, match=r"start: ent_coef not in the search space"):
        space.encode_start({"ent_coef": 0.1})
    with pytest.raises(SpaceError, match=r"start: lr=0.3 is not one of its choices"):
        space.encode_start({"lr": 0.3})


def test_trial_table_sorts_best_first_and_csv_keeps_every_trial() -> None:
    records = [
        TrialRecord(0, "complete", 10.0, {"lr": 0.1}),
        TrialRecord(1, "failed", None, {"lr": 0.2}, error="ValueError: x"),
        TrialRecord(2, "complete", 30.0, {"lr": 0.3}),
        TrialRecord(3, "pruned", 50.0, {"lr": 0.4}),
    ]
    rows = table(records).splitlines()
    assert [r.split()[0] for r in rows[1:]] == ["2", "0", "3", "1"]
    lines = to_csv(records).splitlines()
    assert lines[0].split(",")[:6] == ["trial", "state", "value", "steps", "seconds", "error"]
    assert len(lines) == 5 and "ValueError: x" in lines[2]


# --------------------------------------------------------------------------- studies


def test_a_study_writes_its_results_and_a_best_config_that_rlkit_train_accepts(
    tmp_path: Path,
) -> None:
    out = tmp_path / "study"
    space = {"lr": [3e-4, 1e-3, 3e-3], "num_epochs": {"type": "int", "low": 1, "high": 10}}
    result = tune(
        "ppo",
        "CartPole-v1",
        space=space,
        start={"lr": 3e-4, "num_epochs": 1},
        out=out,
        **{**QUICK, "trials": 4, "top": 1, "plots": True, "pruner": "none"},
        eval_seeds=2,
    )
    assert result.trials[0].params == {"lr": 3e-4, "num_epochs": 1}
    assert len(result.trials) == 4 and all(r.state == "complete" for r in result.trials)
    assert result.best is not None
    assert result.best.value == max(r.value for r in result.trials if r.value is not None)
    for name in ("study.db", "trials.csv", "best.yaml", "summary.json", "history.png"):
        assert (out / name).stat().st_size > 0, name
    assert (out / "importance.png").exists() == bool(result.importances)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["best"]["number"] == result.best.number
    assert summary["trials"] == {"complete": 4, "pruned": 0, "failed": 0, "running": 0}
    # the best trial, and the start configuration beside it for comparison
    row, *rest = result.reevaluation
    assert (row.role, row.number) == ("top", result.best.number) and len(row.scores) == 2
    assert [(r.role, r.number) for r in rest] == ([] if result.best.number == 0 else [("start", 0)])
    for r in result.reevaluation:
        assert not set(r.seeds) & {0}  # fresh seeds, not the one the search selected on
        assert r.ci_low <= r.iqm <= r.ci_high
    best = yaml.safe_load((out / "best.yaml").read_text())
    assert best["env"] == "CartPole-v1" and best["total_steps"] == 1024
    assert best["lr"] == result.best.params["lr"]
    assert best["num_epochs"] == result.best.params["num_epochs"]
    assert best["gamma"] == 0.98  # the preset's value, which the space does not vary
    run = tmp_path / "trained"
    args = ["train", "ppo", "--config", str(out / "best.yaml"), "--out", str(run)]
    assert main([*args, "--total-steps", "256", "--no-progress", "--eval_episodes", "1"]) == 0
    saved = json.loads((run / "final" / "config.json").read_text())
    assert saved["hyperparameters"]["lr"] == result.best.params["lr"]


def test_a_failed_trial_is_recorded_with_its_error_and_the_search_goes_on(
    tmp_path: Path,
) -> None:
    result = tune(
        "ppo",
        "CartPole-v1",
        space={"num_envs": [1, 0]},
        start=[{"num_envs": 0}, {"num_envs": 1}],
        out=tmp_path / "s",
        **{**QUICK, "trials": 2},
    )
    failed, complete = result.trials
    assert failed.state == "failed" and "num_envs" in (failed.error or "")
    assert complete.state == "complete" and complete.params == {"num_envs": 1}
    with pytest.raises(RuntimeError, match=r"no trial completed \(1 failed, 0 pruned\)"):
        tune(
            "ppo",
            "CartPole-v1",
            space={"num_envs": [0, 1]},
            start={"num_envs": 0},
            out=tmp_path / "t",
            **{**QUICK, "trials": 1},
        )


def test_primitives_and_their_arguments_are_searched(tmp_path: Path) -> None:
    space = {
        "encoder.id": ["mlp"],
        "encoder.feature_dim": [16, 32],
        "intrinsic_reward.id": [None, "rnd"],
        "intrinsic_reward.coef": {
            "type": "loguniform",
            "low": 1e-3,
            "high": 0.1,
            "when": {"intrinsic_reward.id": "rnd"},
        },
    }
    with_rnd = {
        "encoder.id": "mlp",
        "encoder.feature_dim": 16,
        "intrinsic_reward.id": "rnd",
        "intrinsic_reward.coef": 0.01,
    }
    without = {"encoder.id": "mlp", "encoder.feature_dim": 32, "intrinsic_reward.id": None}
    result = tune(
        "ppo",
        "CartPole-v1",
        space=space,
        start=[with_rnd, without],
        out=tmp_path / "s",
        **{**QUICK, "trials": 2, "pruner": "none"},
    )
    assert [r.params for r in result.trials] == [with_rnd, without]
    assert all(r.state == "complete" for r in result.trials), result.trials
    from rlkit.tune.outputs import best_config
    from rlkit.tune.trial import TrialPlan

    plan = TrialPlan("ppo", {"env": "CartPole-v1"}, {}, {}, 1024, (0,))
    assert best_config(plan, with_rnd)["intrinsic_reward"] == {"id": "rnd", "coef": 0.01}
    assert best_config(plan, with_rnd)["encoder"] == {"id": "mlp", "feature_dim": 16}
    assert "intrinsic_reward" not in best_config(plan, without)


@pytest.mark.parametrize("pruner", ["median", "halving", "none"])
def test_each_pruner_has_an_optuna_pruner_and_a_ray_scheduler(pruner: str) -> None:
    from rlkit.tune.optuna_backend import SearchSettings, make_pruner
    from rlkit.tune.trial import TrialPlan

    settings = SearchSettings(trials=9, pruner=pruner)
    plan = TrialPlan("ppo", {"env": "CartPole-v1"}, {}, {}, 3000, (0, 1), evals=3)
    expected = {"median": "MedianPruner", "halving": "SuccessiveHalvingPruner", "none": "NopPruner"}
    assert type(make_pruner(settings, plan)).__name__ == expected[pruner]
    pytest.importorskip("ray.tune")
    from rlkit.tune.ray_backend import _scheduler

    scheduler = _scheduler(settings, plan)
    names = {"median": "MedianStoppingRule", "halving": "AsyncHyperBandScheduler"}
    assert type(scheduler).__name__ == names.get(pruner, "FIFOScheduler")


def test_a_study_refuses_other_settings_another_directory_and_a_live_lock(
    tmp_path: Path,
) -> None:
    out = tmp_path / "s"
    tune("ppo", "CartPole-v1", space=LR, out=out, **{**QUICK, "trials": 1, "pruner": "none"})
    with pytest.raises(ValueError, match=r"other settings \(budget: 1024 there, 2048 now\)"):
        tune("ppo", "CartPole-v1", space=LR, out=out, **{**QUICK, "budget": 2048})
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="holds no study"):
        tune("ppo", "CartPole-v1", space=LR, out=tmp_path / "other", **QUICK)
    assert (tmp_path / "other" / "notes.txt").read_text() == "mine"
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (out / "tune.lock").write_text(str(sleeper.pid))
        with pytest.raises(RuntimeError, match=f"in use by process {sleeper.pid}"):
            tune("ppo", "CartPole-v1", space=LR, out=out, **QUICK)
    finally:
        sleeper.kill()
        sleeper.wait()
    # The holder is gone: the lock is stale and the study resumes to 3 trials.
    result = tune("ppo", "CartPole-v1", space=LR, out=out, **QUICK)
    assert len(result.trials) == 3 and not (out / "tune.lock").exists()


def test_a_killed_study_resumes_where_it_stopped(tmp_path: Path) -> None:
    out = tmp_path / "s"
    space = tmp_path / "space.yaml"
    space.write_text(yaml.safe_dump(LR))
    command = [
        sys.executable, "-m", "rlkit", "tune", "ppo", "--env", "CartPole-v1",
        "--space", str(space), "--trials", "6", "--budget", "2048", "--evals", "2",
        "--eval-episodes", "3", "--pruner", "none", "--top", "0", "--no-plots", "--out", str(out),
    ]  # fmt: skip
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    storage = f"sqlite:///{out / 'study.db'}"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.1)  # (a trial takes ~2 s: polling slowly risks the study finishing first)
        if _complete_trials(out / "study.db") >= 2:
            break
    assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    killed = optuna.load_study(study_name="ppo-CartPole-v1", storage=storage).trials
    done = [t for t in killed if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(done) >= 2
    before = {t.number: t.params for t in done}
    assert (out / "tune.lock").exists()  # left behind by the killed process
    assert main([*command[3:]]) == 0
    study = optuna.load_study(study_name="ppo-CartPole-v1", storage=storage)
    counted = [t for t in study.trials if not t.user_attrs.get("interrupted")]
    assert len(counted) == 6
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in counted)
    assert {t.number: t.params for t in counted if t.number in before} == before
    for lost in (t for t in study.trials if t.user_attrs.get("interrupted") and t.params):
        # a trial cut off by the kill is run again with the values it had drawn (one killed
        # before drawing any has nothing to repeat: see the test below)
        assert any(t.params == lost.params and t.number > lost.number for t in counted)
    assert len(list(csv_rows(out / "trials.csv"))) == 6


def test_trials_left_running_are_repeated_with_the_values_they_drew(tmp_path: Path) -> None:
    """What a kill leaves behind, made exactly: one trial cut off after drawing its values, one
    cut off before drawing any (the kill landed between creating it and its first ``suggest``)."""
    out = tmp_path / "s"
    tune("ppo", "CartPole-v1", space=LR, out=out, **{**QUICK, "trials": 1, "pruner": "none"})
    storage = f"sqlite:///{out / 'study.db'}"
    study = optuna.load_study(study_name="ppo-CartPole-v1", storage=storage)
    drew = study.ask()
    drew.suggest_float("lr", 1e-4, 3e-3, log=True)
    study.ask()  # none drawn
    result = tune(
        "ppo", "CartPole-v1", space=LR, out=out, **{**QUICK, "trials": 3, "pruner": "none"}
    )
    assert [r.state for r in result.trials] == ["complete"] * 3
    study = optuna.load_study(study_name="ppo-CartPole-v1", storage=storage)
    lost = [t for t in study.trials if t.user_attrs.get("interrupted")]
    assert [t.number for t in lost] == [1, 2]
    assert all(t.state == optuna.trial.TrialState.FAIL for t in lost)
    repeated = [t for t in study.trials if t.number > 2 and t.params == lost[0].params]
    assert len(repeated) == 1 and repeated[0].state == optuna.trial.TrialState.COMPLETE
    # nothing waits: the empty trial was not queued again as a trial without values
    assert len(study.trials) == 5
    assert not any(t.state == optuna.trial.TrialState.WAITING for t in study.trials)


def _complete_trials(db: Path) -> int:
    """Complete trials in a study file, read without writing to it: opening it through Optuna
    while the study's own process creates its tables races on the schema."""
    if not db.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as connection:
            row = connection.execute("SELECT count(*) FROM trials WHERE state = 'COMPLETE'")
            return int(row.fetchone()[0])
    except sqlite3.Error:  # the tables are not there yet, or the file is locked for a moment
        return 0


def csv_rows(path: Path) -> list[str]:
    return path.read_text().splitlines()[1:]


def test_parallel_trials_share_the_study(tmp_path: Path) -> None:
    result = tune(
        "ppo",
        "CartPole-v1",
        space=LR,
        out=tmp_path / "s",
        jobs=2,
        **{**QUICK, "trials": 4, "pruner": "none"},
    )
    assert sorted(r.number for r in result.trials) == [0, 1, 2, 3]
    assert all(r.state == "complete" for r in result.trials)
    assert len({r.params["lr"] for r in result.trials}) == 4


@pytest.mark.xdist_group("ray")
def test_the_ray_backend_runs_the_same_search_on_a_local_ray(tmp_path: Path) -> None:
    pytest.importorskip("ray.tune")
    import ray

    if ray.is_initialized():
        pytest.skip("Ray was already initialised by another test module")
    result = tune(
        "ppo",
        "CartPole-v1",
        space={"lr": [1e-3, 3e-3], "num_epochs": [5, 10]},
        start={"lr": 1e-3, "num_epochs": 10},
        backend="ray",
        jobs=2,
        out=tmp_path / "s",
        **{**QUICK, "trials": 2, "pruner": "none"},
    )
    assert not ray.is_initialized()  # the instance rlkit started is shut down
    assert len(result.trials) == 2 and all(r.state == "complete" for r in result.trials)
    assert {"lr": 1e-3, "num_epochs": 10} in [r.params for r in result.trials]
    assert all(r.value is not None and r.steps == 1024 for r in result.trials)
    assert yaml.safe_load((tmp_path / "s" / "best.yaml").read_text())["lr"] in (1e-3, 3e-3)


# --------------------------------------------------------------------------- the command


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--trials", "0"], "--trials must be an integer >= 1, got 0"),
        (["--budget", "0"], "--budget must be an integer >= 1, got 0"),
        (["--address", "10.0.0.1:6379"], "--address joins a Ray cluster; it needs --backend ray"),
        (["--space", "missing.yaml"], "search space file missing.yaml does not exist"),
        (["--lrate", "0.1"], "unknown option(s) lrate"),
        (["--start", "missing.yaml"], "--start file missing.yaml does not exist"),
    ],
)
def test_the_command_reports_bad_input_in_one_line(
    args: list[str], fragment: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = ["--out", str(tmp_path / "s")]
    assert main(["tune", "ppo", "--env", "CartPole-v1", *out, *args]) == 2
    err = capsys.readouterr().err
    assert fragment in err and err.count("\n") == 1 and "Traceback" not in err


def test_the_command_names_the_extra_when_optuna_is_missing(tmp_path: Path) -> None:
    code = (
        "import sys; sys.modules['optuna'] = None\n"
        "from rlkit.cli.main import main\n"
        f"sys.exit(main(['tune', 'ppo', '--env', 'CartPole-v1', '--out', r'{tmp_path / 's'}']))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 2
    assert "pip install 'rlkit[tune]'" in done.stderr and "Traceback" not in done.stderr
