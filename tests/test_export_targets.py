"""Deployment targets: TensorRT engines, Ascend OM models (atc), and the NPU device.

What runs everywhere: the exact ``atc`` commands, the conversion script and metadata written
without CANN, ``atc`` run through a stand-in on PATH, the OM runner's batch padding through a
stand-in ``ais_bench`` (onnxruntime underneath), ``rlkit export --format om``, and the clear
errors without TensorRT / ais_bench / torch_npu. The real round trips are skipped unless
TensorRT with CUDA, or atc with ais_bench, are present.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shlex
import shutil
import sys
import types
from pathlib import Path
from typing import Any, cast

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium import spaces

from rlkit.agents import PPO
from rlkit.cli.main import main
from rlkit.device import npu_available, resolve_device
from rlkit.envs import make_vec_env
from rlkit.export import OnnxPolicy, check_parity, to_onnx
from rlkit.export.ascend import (
    OmPolicy,
    atc_command,
    convert_to_om,
    dynamic_batch_sizes,
    om_sidecar_path,
)
from rlkit.export.metadata import ExportMetadata
from rlkit.export.onnx import FP16_TOLERANCE
from rlkit.export.source import cpu_acting_path
from rlkit.export.tensorrt import TensorRTPolicy, build_tensorrt_engine, sidecar_path

TINY = {"num_steps": 8, "batch_size": 16, "num_epochs": 1}
ALL_BATCHES = "1,2,4,8,16,32,64,128,256"


def has_module(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


class ImageEnv(gym.Env[np.ndarray, np.int64]):
    """uint8 (2, 36, 36) frames, Discrete(3) actions."""

    def __init__(self) -> None:
        self.observation_space = spaces.Box(0, 255, (2, 36, 36), np.uint8)
        self.action_space = spaces.Discrete(3)

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        self.observation_space.seed(seed)
        return self.observation_space.sample(), {}

    def step(self, action: np.int64) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        return self.observation_space.sample(), 0.0, False, False, {}


class DictEnv(gym.Env[Any, np.ndarray]):
    """Dict observation (keys declared out of order), Box(2) actions."""

    def __init__(self) -> None:
        self.observation_space = spaces.Dict(
            {
                "vel": spaces.Box(-1.0, 1.0, (4,), np.float32),
                "pos": spaces.Box(-1.0, 1.0, (2,), np.float32),
            }
        )
        self.action_space = spaces.Box(-1.0, 1.0, (2,), np.float32)

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        super().reset(seed=seed)
        self.observation_space.seed(seed)
        return self.observation_space.sample(), {}

    def step(
        self, action: np.ndarray
    ) -> tuple[dict[str, np.ndarray], float, bool, bool, dict[str, Any]]:
        return self.observation_space.sample(), 0.0, False, False, {}


def tiny_ppo(env: Any) -> PPO:
    return PPO(make_vec_env(env, num_envs=2, seed=0), **TINY)


@pytest.fixture(scope="module")
def exports(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[PPO, Path]]:
    """Tiny PPO agents and their ONNX exports: vector, image and dict observations."""
    root = tmp_path_factory.mktemp("exports")
    out = {}
    for name, env in (("vector", "CartPole-v1"), ("image", ImageEnv), ("dict", DictEnv)):
        agent = tiny_ppo(env)
        out[name] = (agent, to_onnx(agent, root / name / "policy.onnx", check=False).path)
    return out


@pytest.fixture
def no_atc(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A PATH on which no atc can be found."""
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))


def install_fake_atc(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, body: str) -> None:
    """Put an executable ``atc`` shell script first on PATH."""
    bindir = tmp_path / "fake-bin"
    bindir.mkdir()
    atc = bindir / "atc"
    atc.write_text("#!/bin/sh\n" + body)
    atc.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ.get('PATH', '')}")


# --- atc commands ---------------------------------------------------------------------------


def test_atc_command_vector_observation(exports: dict[str, tuple[PPO, Path]]) -> None:
    onnx_path = exports["vector"][1]
    assert atc_command(onnx_path) == [
        "atc",
        f"--model={onnx_path}",
        "--framework=5",
        f"--output={onnx_path.with_suffix('')}",
        "--soc_version=Ascend310P3",
        "--input_format=ND",
        "--input_shape=obs:-1,4",
        f"--dynamic_batch_size={ALL_BATCHES}",
        "--precision_mode=force_fp32",
    ]


def test_atc_command_image_observation(
    exports: dict[str, tuple[PPO, Path]], tmp_path: Path
) -> None:
    onnx_path = exports["image"][1]
    om = tmp_path / "models" / "frames.om"
    command = atc_command(onnx_path, soc_version="Ascend910B3", max_batch=100, om_path=om)
    assert command == [
        "atc",
        f"--model={onnx_path}",
        "--framework=5",
        f"--output={tmp_path / 'models' / 'frames'}",
        "--soc_version=Ascend910B3",
        "--input_format=NCHW",
        "--input_shape=obs:-1,2,36,36",
        "--dynamic_batch_size=1,2,4,8,16,32,64,100",
        "--precision_mode=force_fp32",
    ]


def test_atc_command_dict_observation(exports: dict[str, tuple[PPO, Path]]) -> None:
    onnx_path = exports["dict"][1]
    command = atc_command(onnx_path, max_batch=8, precision_mode="must_keep_origin_dtype")
    assert command[5:] == [
        "--input_format=ND",
        "--input_shape=pos:-1,2;vel:-1,4",  # one input per key, sorted like the graph's
        "--dynamic_batch_size=1,2,4,8",
        "--precision_mode=must_keep_origin_dtype",
    ]
    # the shell form quotes the ';' and splits back into the same argv
    assert shlex.split(shlex.join(command)) == command
    assert "'--input_shape=pos:-1,2;vel:-1,4'" in shlex.join(command)


def test_atc_command_static_batch_and_atc_default_precision(
    exports: dict[str, tuple[PPO, Path]],
) -> None:
    command = atc_command(exports["dict"][1], max_batch=1, precision_mode=None)
    assert command[-2:] == ["--input_format=ND", "--input_shape=pos:1,2;vel:1,4"]
    assert not any(arg.startswith(("--dynamic_batch_size", "--precision_mode")) for arg in command)


def test_dynamic_batch_sizes() -> None:
    assert dynamic_batch_sizes(1) == [1]
    assert dynamic_batch_sizes(2) == [1, 2]
    assert dynamic_batch_sizes(3) == [1, 2, 3]
    assert dynamic_batch_sizes(2048) == [2**i for i in range(12)]
    for bad in (0, 2049):
        with pytest.raises(ValueError, match=r"\[1, 2048\]"):
            dynamic_batch_sizes(bad)


def test_atc_command_rejects_bad_arguments(
    exports: dict[str, tuple[PPO, Path]], tmp_path: Path
) -> None:
    onnx_path = exports["vector"][1]
    with pytest.raises(ValueError, match=r"\.om"):
        atc_command(onnx_path, om_path=tmp_path / "policy.bin")
    clash = tmp_path / "policy.om"  # an ONNX file named .om would be overwritten by atc
    shutil.copy(onnx_path, clash)
    with pytest.raises(ValueError, match="replace its own ONNX input"):
        atc_command(clash)
    with pytest.raises(ValueError, match="soc_version"):
        atc_command(onnx_path, soc_version="")
    with pytest.raises(FileNotFoundError):
        atc_command(tmp_path / "missing.onnx")


# --- convert_to_om --------------------------------------------------------------------------


@pytest.mark.usefixtures("no_atc")
def test_convert_to_om_without_atc_writes_script_and_metadata(
    exports: dict[str, tuple[PPO, Path]], tmp_path: Path
) -> None:
    agent, source = exports["dict"]
    onnx_path = tmp_path / "policy.onnx"
    shutil.copy(source, onnx_path)
    conversion = convert_to_om(onnx_path, soc_version="Ascend310B1", max_batch=16)

    assert conversion.ran is False and conversion.returncode is None
    assert conversion.om_path == tmp_path / "policy.om" and not conversion.om_path.exists()
    reason = conversion.skipped_reason or ""
    assert "atc" in reason and "CANN" in reason and str(conversion.script_path) in reason
    # the command runs from the script's folder, so the folder can be copied elsewhere
    assert conversion.command[:4] == [
        "atc",
        "--model=policy.onnx",
        "--framework=5",
        "--output=policy",
    ]
    assert "--dynamic_batch_size=1,2,4,8,16" in conversion.command

    script = conversion.script_path
    assert script == tmp_path / "policy.om.atc.sh" and os.access(script, os.X_OK)
    text = script.read_text()
    assert text.startswith("#!/bin/sh\n")
    assert 'cd "$(dirname "$0")"\n' in text
    assert text.rstrip().endswith(shlex.join(conversion.command))

    strings = json.loads(om_sidecar_path(conversion.om_path).read_text())
    metadata = ExportMetadata.from_strings(strings, "sidecar")
    _, expected = cpu_acting_path(agent)
    assert metadata.observation_space == expected.observation_space
    assert metadata.action_space == expected.action_space
    assert metadata.input_names == ["pos", "vel"]
    assert json.loads(strings["rlkit.om.batch_sizes"]) == [1, 2, 4, 8, 16]

    summary = conversion.summary()
    assert json.loads(json.dumps(summary)) == summary
    assert summary["command"] == shlex.join(conversion.command)
    assert summary["workdir"] == str(tmp_path)
    assert summary["ran"] is False and summary["om_path"] == str(tmp_path / "policy.om")


FAKE_ATC_OK = """\
for arg in "$@"; do
  case "$arg" in
    --model=*) model="${arg#--model=}" ;;
    --output=*) output="${arg#--output=}" ;;
  esac
done
[ -f "$model" ] || { echo "model $model not found from $(pwd)"; exit 3; }
printf '%s\\n' "$@" > "$output.args"
echo fake > "$output.om"
echo "ATC run success, welcome to the next use."
"""


def test_convert_to_om_runs_atc_from_the_script_folder(
    exports: dict[str, tuple[PPO, Path]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    install_fake_atc(tmp_path, monkeypatch, FAKE_ATC_OK)
    om = tmp_path / "deploy" / "actor.om"
    monkeypatch.chdir(tmp_path)  # relative paths must not depend on the caller's directory
    conversion = convert_to_om(exports["vector"][1], max_batch=4, om_path=om)
    assert conversion.ran is True and conversion.returncode == 0
    assert conversion.skipped_reason is None
    assert om.read_text() == "fake\n"
    assert (tmp_path / "deploy" / "actor.args").read_text().splitlines() == conversion.command[1:]
    assert conversion.command[1] == f"--model={os.path.relpath(exports['vector'][1], om.parent)}"


def test_convert_to_om_reports_atc_failure(
    exports: dict[str, tuple[PPO, Path]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    noise = "".join(f'echo "progress line {i}"\n' for i in range(60))
    install_fake_atc(
        tmp_path, monkeypatch, noise + 'echo "E10001: bad --input_shape" >&2\nexit 1\n'
    )
    with pytest.raises(RuntimeError, match="exit code 1") as info:
        convert_to_om(exports["vector"][1], om_path=tmp_path / "policy.om")
    message = str(info.value)
    assert "E10001: bad --input_shape" in message
    assert "progress line 59" in message and "progress line 0\n" not in message  # the tail


@pytest.mark.usefixtures("no_atc")
def test_cli_export_om_prints_conversion_summary(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    agent = tiny_ppo("CartPole-v1")
    checkpoint = agent.save(tmp_path / "agent")
    code = main(
        [
            "export",
            str(checkpoint),
            "--format",
            "om",
            "--soc-version",
            "Ascend310B1",
            "--max-batch",
            "8",
        ]
    )
    assert code == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0] == f"exported {checkpoint / 'policy.onnx'}"
    summary = json.loads(lines[-1])
    command = shlex.split(summary["command"])
    assert command[0] == "atc"
    assert "--soc_version=Ascend310B1" in command
    assert "--input_shape=obs:-1,4" in command
    assert "--dynamic_batch_size=1,2,4,8" in command
    assert summary["ran"] is False and "atc" in summary["skipped_reason"]
    assert summary["om_path"] == str(checkpoint / "policy.om")
    assert Path(summary["script_path"]).is_file()


# --- OmPolicy -------------------------------------------------------------------------------


@pytest.mark.skipif(has_module("ais_bench"), reason="ais_bench is installed here")
def test_om_policy_without_ais_bench_says_what_to_install(tmp_path: Path) -> None:
    with pytest.raises(ImportError, match="ais_bench"):
        OmPolicy(tmp_path / "policy.om")


class FakeInferSession:
    """Stands in for ais_bench's InferSession: runs the file with onnxruntime and, like an OM
    model with dynamic batch profiles, accepts only batches that are profiles."""

    calls: list[tuple[int, str]] = []

    def __init__(self, device_id: int, model_path: str) -> None:
        self.runner = OnnxPolicy(model_path)
        profiles = om_sidecar_path(model_path).read_text()
        self.profiles = json.loads(json.loads(profiles)["rlkit.om.batch_sizes"])

    def infer(self, feeds: list[np.ndarray], mode: str = "static") -> list[np.ndarray]:
        batch = feeds[0].shape[0]
        assert batch in self.profiles, f"batch {batch} is not a profile {self.profiles}"
        FakeInferSession.calls.append((batch, mode))
        return [self.runner.run(feeds)]


@pytest.mark.usefixtures("no_atc")
def test_om_policy_pads_batches_to_profiles(
    exports: dict[str, tuple[PPO, Path]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    interface = types.ModuleType("ais_bench.infer.interface")
    interface.InferSession = FakeInferSession  # type: ignore[attr-defined]
    for name, module in (
        ("ais_bench", types.ModuleType("ais_bench")),
        ("ais_bench.infer", types.ModuleType("ais_bench.infer")),
        ("ais_bench.infer.interface", interface),
    ):
        monkeypatch.setitem(sys.modules, name, module)
    FakeInferSession.calls = []
    agent, source = exports["dict"]
    conversion = convert_to_om(source, max_batch=12, om_path=tmp_path / "policy.om")
    shutil.copy(source, conversion.om_path)  # the stand-in session reads ONNX

    policy = OmPolicy(conversion.om_path)
    assert policy.batch_sizes == [1, 2, 4, 8, 12]
    acting, _ = cpu_acting_path(agent)
    report = check_parity(acting, policy.run, "om (stand-in)", batch_sizes=(1, 3, 7, 12))
    assert report.ok, str(report)
    assert FakeInferSession.calls == [
        (1, "dymbatch"),
        (4, "dymbatch"),
        (8, "dymbatch"),
        (12, "dymbatch"),
    ]
    obs = {"pos": np.zeros(2, np.float32), "vel": np.ones(4, np.float32)}
    assert policy.act(obs).shape == (2,)  # an unbatched observation gives one action
    with pytest.raises(ValueError, match=r"\[1, 12\]"):
        policy.run([np.zeros((13, 2), np.float32), np.zeros((13, 4), np.float32)])


# --- TensorRT -------------------------------------------------------------------------------


@pytest.mark.skipif(has_module("tensorrt"), reason="tensorrt is installed here")
def test_tensorrt_without_tensorrt_says_what_to_install(
    exports: dict[str, tuple[PPO, Path]], tmp_path: Path
) -> None:
    with pytest.raises(ImportError, match=r"rlkit\[tensorrt\].*NVIDIA GPU"):
        build_tensorrt_engine(exports["vector"][1], engine_path=tmp_path / "policy.engine")
    assert not (tmp_path / "policy.engine").exists()
    with pytest.raises(ImportError, match=r"rlkit\[tensorrt\]"):
        TensorRTPolicy(tmp_path / "policy.engine")


def test_tensorrt_sidecar_path() -> None:
    assert sidecar_path("runs/x/policy.engine") == Path("runs/x/policy.engine.json")


class FakeTensorRT:
    """Records the TensorRT builder calls :func:`build_tensorrt_engine` makes (the names are
    TensorRT 10's Python API); the parser takes the graph inputs from the ONNX file."""

    def __init__(self, parse_errors: tuple[str, ...] = (), engine: bytes | None = b"ENGINE"):
        self.calls: dict[str, Any] = {"flags": [], "cleared": [], "shapes": {}}
        fake = self
        self.module: Any = cast(Any, types.ModuleType("tensorrt"))
        self.module.Logger = type("Logger", (), {"WARNING": 2, "__init__": lambda s, lvl: None})
        self.module.BuilderFlag = type("BuilderFlag", (), {"FP16": "FP16", "TF32": "TF32"})
        self.module.MemoryPoolType = type("MemoryPoolType", (), {"WORKSPACE": "WORKSPACE"})

        class Network:
            inputs: list[str] = []

            @property
            def num_inputs(self) -> int:
                return len(self.inputs)

            def get_input(self, i: int) -> Any:
                return types.SimpleNamespace(name=self.inputs[i])

        class Parser:
            def __init__(self, network: Network, logger: Any) -> None:
                self.network = network
                self.num_errors = len(parse_errors)

            def parse_from_file(self, path: str) -> bool:
                import onnx

                self.network.inputs = [i.name for i in onnx.load(path).graph.input]
                return not parse_errors

            def get_error(self, i: int) -> str:
                return parse_errors[i]

        class Profile:
            def set_shape(self, name: str, lo: Any, opt: Any, hi: Any) -> None:
                fake.calls["shapes"][name] = (tuple(lo), tuple(opt), tuple(hi))

        class Config:
            def set_memory_pool_limit(self, pool: str, size: int) -> None:
                fake.calls["pool"] = (pool, size)

            def set_flag(self, flag: str) -> None:
                fake.calls["flags"].append(flag)

            def clear_flag(self, flag: str) -> None:
                fake.calls["cleared"].append(flag)

            def add_optimization_profile(self, profile: Profile) -> int:
                fake.calls["profiles"] = fake.calls.get("profiles", 0) + 1
                return 0

        class Builder:
            def __init__(self, logger: Any) -> None:
                pass

            def create_network(self, flags: int) -> Network:
                fake.calls["network_flags"] = flags
                return Network()

            def create_builder_config(self) -> Config:
                return Config()

            def create_optimization_profile(self) -> Profile:
                return Profile()

            def build_serialized_network(self, network: Network, config: Config) -> Any:
                return engine

        self.module.Builder = Builder
        self.module.OnnxParser = Parser


def test_build_tensorrt_engine_builder_calls(
    exports: dict[str, tuple[PPO, Path]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    agent, source = exports["dict"]
    fake = FakeTensorRT()
    monkeypatch.setitem(sys.modules, "tensorrt", fake.module)
    onnx_path = tmp_path / "policy.onnx"
    shutil.copy(source, onnx_path)
    engine = build_tensorrt_engine(onnx_path, max_batch=64, workspace_mb=512)
    assert engine == tmp_path / "policy.engine" and engine.read_bytes() == b"ENGINE"
    assert fake.calls["network_flags"] == 0 and fake.calls["profiles"] == 1
    assert fake.calls["shapes"] == {
        "pos": ((1, 2), (32, 2), (64, 2)),
        "vel": ((1, 4), (32, 4), (64, 4)),
    }
    assert fake.calls["pool"] == ("WORKSPACE", 512 * 2**20)
    assert fake.calls["flags"] == [] and fake.calls["cleared"] == ["TF32"]  # exact fp32
    strings = json.loads(sidecar_path(engine).read_text())
    assert strings["rlkit.tensorrt.max_batch"] == "64"
    _, expected = cpu_acting_path(agent)
    assert ExportMetadata.from_strings(strings, "sidecar").input_names == expected.input_names

    fake16 = FakeTensorRT()
    monkeypatch.setitem(sys.modules, "tensorrt", fake16.module)
    half = build_tensorrt_engine(onnx_path, fp16=True, max_batch=1, engine_path=tmp_path / "h.plan")
    assert half == tmp_path / "h.plan" and sidecar_path(half).is_file()
    assert fake16.calls["flags"] == ["FP16"] and fake16.calls["cleared"] == []
    assert fake16.calls["shapes"]["pos"] == ((1, 2), (1, 2), (1, 2))
    del fake16.module.BuilderFlag.FP16  # TensorRT 11: strongly typed networks only
    with pytest.raises(ValueError, match="fp16=True"):
        build_tensorrt_engine(onnx_path, fp16=True)


def test_build_tensorrt_engine_reports_failures(
    exports: dict[str, tuple[PPO, Path]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    onnx_path = tmp_path / "policy.onnx"
    shutil.copy(exports["vector"][1], onnx_path)
    errors = ("In node 3 (parseGraph): UNSUPPORTED_NODE: Foo", "second error")
    monkeypatch.setitem(sys.modules, "tensorrt", FakeTensorRT(parse_errors=errors).module)
    with pytest.raises(RuntimeError, match="could not parse") as info:
        build_tensorrt_engine(onnx_path)
    assert all(e in str(info.value) for e in errors)
    monkeypatch.setitem(sys.modules, "tensorrt", FakeTensorRT(engine=None).module)
    with pytest.raises(RuntimeError, match="failed to build"):
        build_tensorrt_engine(onnx_path)
    assert not (tmp_path / "policy.engine").exists()
    with pytest.raises(ValueError, match="max_batch"):
        build_tensorrt_engine(onnx_path, max_batch=0)


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is available here")
def test_tensorrt_policy_without_cuda_says_so(
    exports: dict[str, tuple[PPO, Path]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "tensorrt", FakeTensorRT().module)
    onnx_path = tmp_path / "policy.onnx"
    shutil.copy(exports["vector"][1], onnx_path)
    engine = build_tensorrt_engine(onnx_path)
    sidecar_path(engine).unlink()
    with pytest.raises(FileNotFoundError, match="metadata"):
        TensorRTPolicy(engine)
    build_tensorrt_engine(onnx_path)
    with pytest.raises(RuntimeError, match="CUDA"):
        TensorRTPolicy(engine)


# --- real round trips (skipped without the hardware stacks) ---------------------------------


@pytest.mark.skipif(
    not (has_module("tensorrt") and torch.cuda.is_available()),
    reason="needs TensorRT >= 10 and a CUDA GPU (pip install rlkit[tensorrt])",
)
@pytest.mark.parametrize("env_id", ["CartPole-v1", "Pendulum-v1"])
def test_tensorrt_round_trip(env_id: str, tmp_path: Path) -> None:
    agent = tiny_ppo(env_id)
    onnx_path = to_onnx(agent, tmp_path / "policy.onnx").path
    engine = build_tensorrt_engine(onnx_path, max_batch=256)
    assert engine == tmp_path / "policy.engine" and sidecar_path(engine).is_file()
    policy = TensorRTPolicy(engine)
    assert policy.max_batch == 256
    acting, _ = cpu_acting_path(agent)
    report = check_parity(acting, policy.run, "tensorrt", batch_sizes=(1, 7, 256))
    assert report.ok and report.max_abs_diff <= 1e-5, str(report)
    obs = np.stack([agent.env.single_observation_space.sample() for _ in range(5)])
    np.testing.assert_allclose(policy.act(obs), OnnxPolicy(onnx_path).act(obs), atol=1e-5)
    with pytest.raises(ValueError, match="max_batch"):
        policy.run([np.zeros((257, *obs.shape[1:]), np.float32)])


@pytest.mark.skipif(
    not (shutil.which("atc") and has_module("ais_bench")),
    reason="needs an Ascend machine: CANN's atc on PATH and the ais_bench runtime",
)
@pytest.mark.parametrize(
    ("env_id", "precision_mode", "tolerance"),
    [
        ("CartPole-v1", "must_keep_origin_dtype", 1e-5),
        ("Pendulum-v1", "force_fp32", FP16_TOLERANCE),
    ],
)
def test_om_round_trip(env_id: str, precision_mode: str, tolerance: float, tmp_path: Path) -> None:
    soc_version = os.environ.get("RLKIT_ASCEND_SOC_VERSION", "Ascend310P3")
    agent = tiny_ppo(env_id)
    onnx_path = to_onnx(agent, tmp_path / "policy.onnx").path
    conversion = convert_to_om(
        onnx_path, soc_version=soc_version, max_batch=256, precision_mode=precision_mode
    )
    assert conversion.ran and conversion.om_path.is_file()
    policy = OmPolicy(conversion.om_path)
    acting, _ = cpu_acting_path(agent)
    report = check_parity(acting, policy.run, "om", batch_sizes=(1, 7, 256), tolerance=tolerance)
    assert report.ok, str(report)
    obs = np.stack([agent.env.single_observation_space.sample() for _ in range(5)])
    np.testing.assert_allclose(policy.act(obs), OnnxPolicy(onnx_path).act(obs), atol=tolerance)


# --- NPU device -----------------------------------------------------------------------------


@pytest.mark.skipif(has_module("torch_npu"), reason="torch_npu is installed here")
def test_npu_device_without_torch_npu_names_it() -> None:
    with pytest.raises(RuntimeError, match="torch_npu"):
        resolve_device("npu")
    with pytest.raises(RuntimeError, match="torch_npu"):
        resolve_device("npu:1")


@pytest.mark.skipif(
    torch.cuda.is_available() or has_module("torch_npu") or torch.backends.mps.is_available(),
    reason="an accelerator is available here",
)
def test_auto_device_is_cpu_without_accelerators() -> None:
    assert resolve_device("auto") == torch.device("cpu")


def _accelerators() -> list[str]:
    found = []
    if torch.cuda.is_available():
        found.append("cuda")
    if has_module("torch_npu") and npu_available():
        found.append("npu")
    return found


@pytest.mark.parametrize("device", ["cuda", "npu"])
def test_ppo_trains_and_exports_on_an_accelerator(device: str, tmp_path: Path) -> None:
    """Training runs on the accelerator (torch_npu for Ascend) and the export still matches."""
    if device not in _accelerators():
        pytest.skip(f"no {device} device here ({'torch_npu' if device == 'npu' else 'CUDA'})")
    env = make_vec_env("CartPole-v1", num_envs=2, seed=0)
    agent = PPO(env, seed=0, device=device, num_steps=16, batch_size=32, num_epochs=2)
    agent.train(256, progress_bar=False)
    assert agent.device.type == device
    assert all(p.device.type == device for p in agent.policy.parameters())
    result = to_onnx(agent, tmp_path / "p.onnx")
    assert result.parity is not None and result.parity.ok, str(result.parity)
