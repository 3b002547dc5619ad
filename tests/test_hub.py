"""Hugging Face Hub sharing, tested offline: the files of a repo and its model card, loading from
a directory and from the huggingface_hub cache with HF_HUB_OFFLINE=1, the upload step, errors.

Nothing here touches the network. The upload test uses ``RecordingApi``, a small real subclass
of ``huggingface_hub.HfApi`` whose ``create_repo`` / ``create_commit`` record what would be sent
instead of sending it (no mock library).
"""

from __future__ import annotations

import hashlib
import json
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import yaml
from huggingface_hub import (
    CommitOperationAdd,
    HfApi,
    ModelCard,
    scan_cache_dir,
    try_to_load_from_cache,
)
from huggingface_hub import constants as hf_constants
from huggingface_hub.hf_api import CommitInfo, RepoUrl
from safetensors.torch import load as load_safetensors

from rlkit.agents import A2C, PPO
from rlkit.checkpoint import CheckpointError
from rlkit.cli.main import build_parser, parse_overrides
from rlkit.cli.main import main as cli_main
from rlkit.envs import make_vec_env
from rlkit.hub import (
    build_hub_files,
    from_pretrained,
    model_card,
    push_to_hub,
    train_command,
    train_command_and_notes,
)

TINY = {"num_steps": 16, "batch_size": 32, "num_epochs": 2}
COMMIT = "0123456789abcdef0123456789abcdef01234567"
REPO = "user/cartpole-ppo"


@pytest.fixture(scope="module")
def agent() -> PPO:
    env = make_vec_env("CartPole-v1", num_envs=4, seed=0)
    return PPO(env, seed=0, **TINY).train(300, progress_bar=False)


@pytest.fixture(scope="module")
def hub_files(agent: PPO, tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes | Path]:
    directory = tmp_path_factory.mktemp("hub") / "repo"
    return build_hub_files(agent, directory, repo_id=REPO, eval_episodes=3)


@pytest.fixture(scope="module")
def observations(agent: PPO) -> np.ndarray:
    env = make_vec_env("CartPole-v1", num_envs=8, seed=123)
    obs, _ = env.reset(seed=123)
    env.close()
    sampled = np.stack([agent.observation_space.sample() for _ in range(32)])
    return np.concatenate([obs, sampled]).astype(np.float32)


def assert_same_actions(a: Any, b: Any, obs: np.ndarray) -> None:
    np.testing.assert_array_equal(a.act(obs, deterministic=True), b.act(obs, deterministic=True))


def as_bytes(content: bytes | Path) -> bytes:
    return content if isinstance(content, bytes) else content.read_bytes()


def front_matter(readme: str) -> dict[str, Any]:
    assert readme.startswith("---\n")
    block = readme.split("---\n", 2)[1]
    data = yaml.safe_load(block)
    assert isinstance(data, dict)
    return data


def populate_cache(cache: Path, repo_id: str, files: dict[str, bytes], commit: str) -> Path:
    """Lay ``files`` out as huggingface_hub caches a downloaded repo: content-addressed blobs
    (sha256 for LFS files, the git blob sha1 otherwise), ``snapshots/<commit>/<file>`` symlinks
    to them, and ``refs/main`` holding the commit hash."""
    repo_dir = cache / ("models--" + repo_id.replace("/", "--"))
    (repo_dir / "blobs").mkdir(parents=True)
    snapshot = repo_dir / "snapshots" / commit
    snapshot.mkdir(parents=True)
    for name, data in files.items():
        if name.endswith(".safetensors"):
            etag = hashlib.sha256(data).hexdigest()
        else:
            etag = hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()
        (repo_dir / "blobs" / etag).write_bytes(data)
        (snapshot / name).symlink_to(Path("..", "..", "blobs", etag))
    (repo_dir / "refs").mkdir()
    (repo_dir / "refs" / "main").write_text(commit)
    return snapshot


@pytest.fixture()
def offline_cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """An empty Hugging Face cache with offline mode on. huggingface_hub reads HF_HUB_OFFLINE
    and HF_HUB_CACHE into ``huggingface_hub.constants`` at import, so both the environment and
    those constants are set (as if the process had started with them)."""
    cache = tmp_path / "hf-cache"
    cache.mkdir()
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(hf_constants, "HF_HUB_CACHE", str(cache))
    return cache


# ----------------------------------------------------------------- files and round trips
def test_build_hub_files_lists_checkpoint_and_card(hub_files: dict[str, bytes | Path]) -> None:
    assert set(hub_files) == {
        "README.md",
        "config.json",
        "model.safetensors",
        "training_state.safetensors",
    }
    assert isinstance(hub_files["README.md"], bytes)
    for name in ("config.json", "model.safetensors", "training_state.safetensors"):
        path = hub_files[name]
        assert isinstance(path, Path) and path.is_file() and path.name == name


def test_round_trip_through_a_local_dir_acts_identically(
    agent: PPO, hub_files: dict[str, bytes | Path], observations: np.ndarray
) -> None:
    directory = Path(str(hub_files["config.json"])).parent
    loaded = PPO.from_pretrained(directory)
    assert isinstance(loaded, PPO)
    assert loaded.global_step == agent.global_step
    assert_same_actions(agent, loaded, observations)
    # a downloaded repo dir (README included), loaded without naming the class
    (directory / "README.md").write_bytes(as_bytes(hub_files["README.md"]))
    any_agent = from_pretrained(str(directory), device="cpu")
    assert isinstance(any_agent, PPO)
    assert_same_actions(agent, any_agent, observations)


def test_model_card_metadata_follows_the_hub_rl_convention(agent: PPO, tmp_path: Path) -> None:
    results = {"return_mean": 123.456, "return_std": 7.891, "episodes": 4.0, "length_mean": 12.0}
    files = build_hub_files(agent, tmp_path / "repo", repo_id=REPO, eval_results=results)
    readme = as_bytes(files["README.md"]).decode()
    meta = front_matter(readme)
    assert meta["library_name"] == "rlkit"
    assert meta["tags"] == ["reinforcement-learning", "rlkit", "ppo", "CartPole-v1"]
    assert meta["model-index"] == [
        {
            "name": "PPO",
            "results": [
                {
                    "task": {"type": "reinforcement-learning", "name": "reinforcement-learning"},
                    "dataset": {"name": "CartPole-v1", "type": "CartPole-v1"},
                    "metrics": [
                        {
                            "type": "mean_reward",
                            "value": "123.46 +/- 7.89",
                            "name": "mean_reward",
                            "verified": False,
                        }
                    ],
                }
            ],
        }
    ]
    # huggingface_hub's own parser reads the evaluation result back
    card = ModelCard(readme)
    assert card.data.library_name == "rlkit"
    [result] = card.data.eval_results
    assert (result.task_type, result.dataset_type, result.metric_type) == (
        "reinforcement-learning",
        "CartPole-v1",
        "mean_reward",
    )
    assert result.metric_value == "123.46 +/- 7.89"
    # the body: what it is, the reproducing command, how to load it
    command = train_command(agent)
    assert command is not None and command.startswith("rlkit train ppo --env CartPole-v1 ")
    assert f"```bash\n{command}\n```" in readme
    assert "from rlkit.agents import PPO" in readme
    assert f'PPO.from_pretrained("{REPO}")' in readme
    assert "over 4 episodes: **123.46 +/- 7.89**" in readme


def test_build_hub_files_evaluates_the_agent(
    agent: PPO, hub_files: dict[str, bytes | Path]
) -> None:
    # evaluate() is seeded and deterministic, so the card's number can be recomputed
    expected = agent.evaluate(episodes=3)
    [result] = ModelCard(as_bytes(hub_files["README.md"]).decode()).data.eval_results
    assert result.metric_value == f"{expected['return_mean']:.2f} +/- {expected['return_std']:.2f}"


def test_custom_reproduce_command_and_no_evaluation(agent: PPO, tmp_path: Path) -> None:
    command = "python my_train.py --seed 0"
    files = build_hub_files(agent, tmp_path / "r", reproduce_command=command, eval_episodes=0)
    readme = as_bytes(files["README.md"]).decode()
    assert f"```bash\n{command}\n```" in readme
    assert "model-index" not in front_matter(readme)
    assert "Not evaluated" in readme


def test_reproduce_command_retrains_identical_weights(agent: PPO, tmp_path: Path) -> None:
    """Running the card's command through the real CLI gives bit-identical weights."""
    command = train_command(agent)
    assert command is not None
    argv = shlex.split(command)
    assert argv[:3] == ["rlkit", "train", "ppo"]
    out = tmp_path / "run"
    assert cli_main([*argv[1:], "--out", str(out), "--no-progress"]) == 0
    retrained = load_safetensors((out / "final" / "model.safetensors").read_bytes())
    saved = agent.save(tmp_path / "original")
    original = load_safetensors((saved / "model.safetensors").read_bytes())
    assert retrained.keys() == original.keys()
    for key, value in original.items():
        assert torch.equal(retrained[key], value), key
    config = json.loads((out / "final" / "config.json").read_text())
    assert config["counters"]["global_step"] == agent.global_step


def identity_wrapper(env: Any) -> Any:
    return env


def test_reproduce_command_env_kwargs_and_what_it_cannot_capture(tmp_path: Path) -> None:
    env = make_vec_env(
        "CartPole-v1",
        num_envs=2,
        seed=1,
        env_kwargs={"max_episode_steps": 50},
        wrappers=[identity_wrapper],
    )
    agent = PPO(env, seed=2, **TINY)
    command, notes = train_command_and_notes(agent)
    assert command is not None
    args = build_parser().parse_known_args(shlex.split(command)[1:])
    overrides = parse_overrides(args[1])
    assert overrides["env_kwargs"] == {"max_episode_steps": 50}
    assert overrides["lr"] == agent.config.lr and overrides["clip_range_vf"] is None
    assert (args[0].env, args[0].num_envs, args[0].seed) == ("CartPole-v1", 2, 2)
    assert any("identity_wrapper" in note for note in notes)
    assert any("seeded with 1" in note for note in notes)
    readme = model_card(agent, None)
    for note in notes:
        assert f"- {note}" in readme


# ----------------------------------------------------------------- the offline cache
def test_loads_from_the_offline_cache(
    agent: PPO,
    hub_files: dict[str, bytes | Path],
    observations: np.ndarray,
    offline_cache: Path,
) -> None:
    contents = {name: as_bytes(content) for name, content in hub_files.items()}
    populate_cache(offline_cache, REPO, contents, COMMIT)
    # huggingface_hub itself recognises the layout
    [repo] = scan_cache_dir(offline_cache).repos
    assert repo.repo_id == REPO and repo.repo_type == "model"
    [revision] = repo.revisions
    assert revision.commit_hash == COMMIT and revision.refs == frozenset({"main"})
    assert {f.file_name for f in revision.files} == set(contents)
    cached = try_to_load_from_cache(REPO, "config.json", cache_dir=offline_cache)
    assert isinstance(cached, str) and Path(cached).read_bytes() == contents["config.json"]

    loaded = PPO.from_pretrained(REPO)
    assert isinstance(loaded, PPO)
    assert_same_actions(agent, loaded, observations)
    by_commit = from_pretrained(REPO, revision=COMMIT, device="cpu")
    assert isinstance(by_commit, PPO)
    assert_same_actions(agent, by_commit, observations)


def test_offline_missing_repo_names_offline_mode_and_cache(offline_cache: Path) -> None:
    with pytest.raises(CheckpointError) as info:
        PPO.from_pretrained("user/not-downloaded")
    message = str(info.value)
    assert "user/not-downloaded" in message
    assert "HF_HUB_OFFLINE" in message
    assert str(offline_cache) in message


def test_repo_without_checkpoint(offline_cache: Path) -> None:
    populate_cache(offline_cache, "user/only-a-card", {"README.md": b"# hello\n"}, COMMIT)
    with pytest.raises(CheckpointError, match=r"holds no rlkit checkpoint.*README\.md"):
        from_pretrained("user/only-a-card")


# ----------------------------------------------------------------- upload
class RecordingApi(HfApi):
    """A real ``HfApi`` whose two network calls record their arguments instead of sending."""

    def __init__(self) -> None:
        super().__init__(token="hf_never_sent")
        self.repos: list[dict[str, Any]] = []
        self.commits: list[dict[str, Any]] = []

    def create_repo(self, repo_id: str, **kwargs: Any) -> RepoUrl:  # type: ignore[override]
        self.repos.append({"repo_id": repo_id, **kwargs})
        return RepoUrl(f"https://huggingface.co/{repo_id}")

    def create_commit(  # type: ignore[override]
        self, repo_id: str, operations: list[Any], **kwargs: Any
    ) -> CommitInfo:
        files: dict[str, bytes] = {}
        for op in operations:
            assert isinstance(op, CommitOperationAdd)
            with op.as_file() as f:
                files[op.path_in_repo] = f.read()
        self.commits.append({"repo_id": repo_id, "files": files, **kwargs})
        return CommitInfo(
            commit_url=f"https://huggingface.co/{repo_id}/commit/{COMMIT}",
            commit_message=kwargs["commit_message"],
            commit_description="",
            oid=COMMIT,
        )


def test_push_to_hub_sends_one_commit_of_safe_files(agent: PPO) -> None:
    api = RecordingApi()
    url = push_to_hub(agent, REPO, api=api, eval_episodes=2, commit_message="Add PPO", private=True)
    assert url == f"https://huggingface.co/{REPO}/commit/{COMMIT}"
    assert api.repos == [
        {"repo_id": REPO, "repo_type": "model", "exist_ok": True, "private": True, "token": None}
    ]
    [commit] = api.commits
    assert commit["repo_id"] == REPO
    assert commit["commit_message"] == "Add PPO"
    files: dict[str, bytes] = commit["files"]
    assert set(files) == {
        "README.md",
        "config.json",
        "model.safetensors",
        "training_state.safetensors",
    }
    assert not [n for n in files if n.endswith((".pkl", ".pickle", ".pt", ".pth", ".bin"))]
    for name, data in files.items():  # no pickle (protocol 2+ starts 0x80) or torch zip
        assert not data.startswith((b"\x80", b"PK")), name
    config = json.loads(files["config.json"])
    assert config["agent"] == "ppo" and config["env"]["id"] == "CartPole-v1"
    weights = load_safetensors(files["model.safetensors"])
    policy = {k.removeprefix("policy."): v for k, v in weights.items() if k.startswith("policy.")}
    for key, value in agent.policy.state_dict().items():
        assert torch.equal(policy[key], value), key
    load_safetensors(files["training_state.safetensors"])
    readme = files["README.md"].decode()
    meta = front_matter(readme)
    assert meta["library_name"] == "rlkit"
    assert {"reinforcement-learning", "rlkit", "ppo", "CartPole-v1"} <= set(meta["tags"])
    value = meta["model-index"][0]["results"][0]["metrics"][0]["value"]
    expected = agent.evaluate(episodes=2)
    assert value == f"{expected['return_mean']:.2f} +/- {expected['return_std']:.2f}"
    assert f"```bash\n{train_command(agent)}\n```" in readme


def test_agent_push_to_hub_method_delegates(agent: PPO) -> None:
    api = RecordingApi()
    url = agent.push_to_hub(REPO, api=api, eval_results={"return_mean": 1.0, "return_std": 0.0})
    assert url.endswith(COMMIT)
    [commit] = api.commits
    assert "value: 1.00 +/- 0.00" in commit["files"]["README.md"].decode()
    assert commit["commit_message"].startswith("Upload PPO agent")


# ----------------------------------------------------------------- errors
def test_directory_without_checkpoint(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(CheckpointError, match="holds no checkpoint"):
        PPO.from_pretrained(tmp_path / "empty")
    with pytest.raises(CheckpointError, match="does not exist"):
        from_pretrained(tmp_path / "missing")
    with pytest.raises(CheckpointError, match="does not exist"):
        from_pretrained("./runs/nothing/here")


def test_agent_id_mismatch(hub_files: dict[str, bytes | Path]) -> None:
    directory = Path(str(hub_files["config.json"])).parent
    with pytest.raises(
        CheckpointError, match=r"holds a 'ppo' agent, not 'a2c'.*PPO\.from_pretrained"
    ):
        A2C.from_pretrained(directory)


def test_without_huggingface_hub(hub_files: dict[str, bytes | Path]) -> None:
    """In a fresh interpreter where huggingface_hub cannot be imported, rlkit.hub imports, a
    local directory still loads, and Hub calls say how to install the extra."""
    directory = Path(str(hub_files["config.json"])).parent
    script = f"""
import sys
sys.modules["huggingface_hub"] = None  # makes `import huggingface_hub` fail
from rlkit.agents import PPO
assert isinstance(PPO.from_pretrained({str(directory)!r}), PPO)
try:
    PPO.from_pretrained("user/name")
except ImportError as e:
    print(e)
"""
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert "pip install rlkit[hub]" in result.stdout
