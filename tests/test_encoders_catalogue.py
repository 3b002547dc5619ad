"""Image-encoder catalogue: PathakCNN (ICM), ImpalaResNet (IMPALA/Procgen), DrQCNN (DrQ-v2).

Parameter counts are computed here from the papers' architectures (not from the modules), so
a wrong layer size, a missing block or an extra layer shows up as a count mismatch.
"""

from __future__ import annotations

import json
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium import spaces
from torch import nn

from rlkit.configurable import build_from_spec
from rlkit.encoders import ENCODERS
from rlkit.encoders.drq import DrQCNN
from rlkit.encoders.impala import ImpalaResNet
from rlkit.encoders.pathak import PathakCNN

SHAPES = [(4, 84, 84), (3, 64, 64), (1, 42, 42)]


def image_space(shape: tuple[int, ...], dtype: Any = np.uint8) -> spaces.Box:
    if dtype == np.uint8:
        return spaces.Box(0, 255, shape, np.uint8)
    return spaces.Box(0.0, 1.0, shape, np.float32)


def uint8_frames(shape, batch=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (batch, *shape), generator=g, dtype=torch.uint8)


def n_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


# --------------------------------------------------------------------------- paper formulas


def conv_params(c_in: int, c_out: int, k: int = 3) -> int:
    return c_out * c_in * k * k + c_out


def linear_params(n_in: int, n_out: int) -> int:
    return n_in * n_out + n_out


def ceil_half(n: int) -> int:  # TF "SAME" with stride 2: ceil(n / 2)
    return -(-n // 2)


def pathak_count(c: int, h: int, w: int, feature_dim: int | None) -> tuple[int, int]:
    """4 x conv(32, 3x3, stride 2, SAME); optional Linear. Returns (flat size, params)."""
    total = conv_params(c, 32) + 3 * conv_params(32, 32)
    for _ in range(4):
        h, w = ceil_half(h), ceil_half(w)
    flat = 32 * h * w
    if feature_dim is None:
        return flat, total
    return flat, total + linear_params(flat, feature_dim)


def impala_count(
    c: int, h: int, w: int, feature_dim: int | None, depths=(16, 32, 32)
) -> tuple[int, int]:
    """Per depth d: conv(d, 3x3, SAME) + maxpool(3, stride 2, SAME) + 2 residual blocks of two
    conv(d, 3x3); then Linear(256)."""
    total, c_in = 0, c
    for d in depths:
        total += conv_params(c_in, d) + 2 * 2 * conv_params(d, d)
        h, w = ceil_half(h), ceil_half(w)
        c_in = d
    flat = c_in * h * w
    if feature_dim is None:
        return flat, total
    return flat, total + linear_params(flat, feature_dim)


def drq_count(c: int, h: int, w: int, feature_dim: int | None) -> tuple[int, int]:
    """conv(32, 3x3, stride 2, VALID) + 3 x conv(32, 3x3, stride 1, VALID); optional
    Linear + LayerNorm (gain and bias per feature)."""
    total = conv_params(c, 32) + 3 * conv_params(32, 32)
    h, w = (h - 3) // 2 + 1, (w - 3) // 2 + 1
    h, w = h - 6, w - 6
    flat = 32 * h * w
    if feature_dim is None:
        return flat, total
    return flat, total + linear_params(flat, feature_dim) + 2 * feature_dim


ENCODER_CASES = {
    "pathak": (PathakCNN, pathak_count),
    "impala": (ImpalaResNet, impala_count),
    "drq": (DrQCNN, drq_count),
}


def test_paper_reference_sizes():
    # ICM: 42x42 frames -> 288 features (noreward-rl's "lenFeatures=288")
    assert PathakCNN(image_space((1, 42, 42))).feature_dim == 288
    # DrQ-v2: repr_dim = 32 * 35 * 35 for 84x84 frames (3 stacked RGB frames = 9 channels)
    assert DrQCNN(image_space((9, 84, 84))).feature_dim == 32 * 35 * 35
    # Procgen: 64x64x3 -> 32 x 8 x 8 conv features -> Linear(256); 622,144 parameters
    enc = ImpalaResNet(image_space((3, 64, 64)))
    assert enc.feature_dim == 256
    assert enc.head[0].in_features == 32 * 8 * 8
    assert n_params(enc) == 622_144


@pytest.mark.parametrize("name", sorted(ENCODER_CASES))
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("feature_dim", [None, 24])
def test_output_shape_and_parameter_count(name, shape, feature_dim):
    torch.manual_seed(0)
    cls, count = ENCODER_CASES[name]
    enc = cls(image_space(shape), feature_dim=feature_dim)
    flat, expected_params = count(*shape, feature_dim)
    assert enc.feature_dim == (flat if feature_dim is None else feature_dim)
    assert n_params(enc) == expected_params
    out = enc(uint8_frames(shape, batch=3))
    assert out.shape == (3, enc.feature_dim)
    assert out.dtype == torch.float32
    assert torch.isfinite(out).all()


def test_heads():
    torch.manual_seed(0)
    x = uint8_frames((4, 42, 42), batch=5)
    pathak = PathakCNN(image_space((4, 42, 42)), feature_dim=16)
    assert (pathak(x) >= 0).all()  # Linear + ReLU
    assert sum(isinstance(m, nn.ELU) for m in pathak.convs) == 4
    impala = ImpalaResNet(image_space((4, 42, 42)), feature_dim=16)
    assert (impala(x) >= 0).all()  # Linear + ReLU
    impala_flat = ImpalaResNet(image_space((4, 42, 42)), feature_dim=None)
    assert (impala_flat(x) >= 0).all()  # ReLU before flatten
    drq = DrQCNN(image_space((4, 42, 42)), feature_dim=16)
    out = drq(x)
    assert (out.abs() < 1).all()  # Tanh
    assert [type(m) for m in drq.trunk] == [nn.Linear, nn.LayerNorm, nn.Tanh]
    # LayerNorm before the tanh: atanh(out) is normalised per sample
    pre = torch.atanh(out.double())
    torch.testing.assert_close(pre.mean(-1), torch.zeros(5, dtype=torch.float64), atol=1e-4, rtol=0)


def test_impala_residual_structure():
    enc = ImpalaResNet(image_space((3, 64, 64)), channels=(8, 12))
    seqs = [m for m in enc.convs if isinstance(m, nn.Sequential)]
    assert len(seqs) == 2
    for seq, (c_in, c_out) in zip(seqs, [(3, 8), (8, 12)], strict=True):
        conv, pool, res0, res1 = seq
        assert (conv.in_channels, conv.out_channels, conv.kernel_size) == (c_in, c_out, (3, 3))
        assert (pool.kernel_size, pool.stride, pool.padding) == (3, 2, 1)
        for res in (res0, res1):
            # the skip: zero conv weights/biases make the block the identity
            for p in res.parameters():
                nn.init.zeros_(p)
            y = torch.randn(2, c_out, 5, 5)
            torch.testing.assert_close(res(y), y)
    assert enc.head[0].in_features == 12 * 16 * 16
    with pytest.raises(ValueError, match="channels"):
        ImpalaResNet(image_space((3, 64, 64)), channels=())


# --------------------------------------------------------------------------- scaling


@pytest.mark.parametrize("name", ["pathak", "impala"])
def test_uint8_scaled_to_unit_range(name):
    torch.manual_seed(0)
    cls, _ = ENCODER_CASES[name]
    shape = (3, 42, 42)
    enc_u8 = cls(image_space(shape), feature_dim=8)
    enc_f = cls(image_space(shape, np.float32), feature_dim=8)
    enc_f.load_state_dict(enc_u8.state_dict())
    x = uint8_frames(shape, batch=3)
    torch.testing.assert_close(enc_u8(x), enc_f(x.float() / 255.0))
    assert not torch.allclose(enc_u8(x), enc_f(x.float()))


def test_drq_uint8_scaling_centres_frames():
    torch.manual_seed(0)
    shape = (3, 42, 42)
    for feature_dim in (None, 8):
        enc = DrQCNN(image_space(shape), feature_dim=feature_dim)
        zeros = torch.zeros(2, *shape, dtype=torch.uint8)
        full = torch.full((2, *shape), 255, dtype=torch.uint8)
        # an all-zero frame is the -0.5 input, an all-255 frame the +0.5 input
        expected_zero = enc.trunk(enc.convnet(torch.full((2, *shape), -0.5)))
        expected_full = enc.trunk(enc.convnet(torch.full((2, *shape), 0.5)))
        torch.testing.assert_close(enc(zeros), expected_zero)
        torch.testing.assert_close(enc(full), expected_full)
        assert not torch.allclose(enc(zeros), enc.trunk(enc.convnet(torch.zeros(2, *shape))))
    # float spaces are used as given
    enc_u8 = DrQCNN(image_space(shape), feature_dim=8)
    enc_f = DrQCNN(image_space(shape, np.float32), feature_dim=8)
    enc_f.load_state_dict(enc_u8.state_dict())
    x = uint8_frames(shape)
    torch.testing.assert_close(enc_u8(x), enc_f(x.float() / 255.0 - 0.5))


def test_drq_init_matches_drqv2_weight_init():
    enc = DrQCNN(image_space((3, 42, 42)), feature_dim=8)
    convs = [m for m in enc.convnet if isinstance(m, nn.Conv2d)]
    for conv in convs:
        w = conv.weight.flatten(1)  # (32, fan_in), orthogonal scaled by sqrt(2)
        gram = w @ w.T if w.shape[0] <= w.shape[1] else w.T @ w  # the smaller side
        torch.testing.assert_close(gram, 2.0 * torch.eye(min(w.shape)), atol=1e-4, rtol=0)
        assert (conv.bias == 0).all()
    lin = enc.trunk[0]
    torch.testing.assert_close(lin.weight @ lin.weight.T, torch.eye(8), atol=1e-4, rtol=0)


# --------------------------------------------------------------------------- gradients


@pytest.mark.parametrize("name", sorted(ENCODER_CASES))
@pytest.mark.parametrize("feature_dim", [None, 16])
def test_gradients_flow_to_every_parameter(name, feature_dim):
    torch.manual_seed(0)
    cls, _ = ENCODER_CASES[name]
    shape = (2, 42, 42)
    enc = cls(image_space(shape), feature_dim=feature_dim)
    enc(uint8_frames(shape, batch=4)).pow(2).sum().backward()
    params = list(enc.named_parameters())
    assert params
    for pname, p in params:
        assert p.grad is not None, pname
        assert torch.isfinite(p.grad).all(), pname
        assert p.grad.abs().sum() > 0, pname


# --------------------------------------------------------------------------- registry / errors


@pytest.mark.parametrize(
    ("rid", "cls"),
    [("pathak_cnn", PathakCNN), ("impala_resnet", ImpalaResNet), ("drq_cnn", DrQCNN)],
)
def test_registry_ids_and_spec_round_trip(rid, cls):
    assert ENCODERS.get(rid) is cls
    assert cls.registry_id == rid
    space = image_space((2, 42, 42))
    built = ENCODERS.build({"id": rid, "feature_dim": 12}, observation_space=space)
    assert type(built) is cls and built.feature_dim == 12
    spec = json.loads(json.dumps(built.spec()))
    rebuilt = build_from_spec("encoder", spec)
    assert type(rebuilt) is cls and rebuilt.feature_dim == 12
    rebuilt.load_state_dict(built.state_dict())
    x = uint8_frames((2, 42, 42))
    torch.testing.assert_close(rebuilt(x), built(x))


@pytest.mark.parametrize("cls", [PathakCNN, ImpalaResNet, DrQCNN])
def test_non_image_space_errors(cls):
    name = cls.__name__
    with pytest.raises(TypeError, match=name):
        cls(spaces.Discrete(3))
    with pytest.raises(ValueError, match=r"\(C, H, W\)"):
        cls(spaces.Box(0, 255, (84, 84), np.uint8))
    with pytest.raises(ValueError, match="channel-last"):
        cls(spaces.Box(0, 255, (84, 84, 4), np.uint8))


def test_frame_size_limits():
    # padded stride-2 convs/pools accept any frame size (1x1 stays 1x1)
    assert PathakCNN(image_space((3, 1, 1))).feature_dim == 32
    assert ImpalaResNet(image_space((3, 1, 1)), feature_dim=None).feature_dim == 32
    # DrQ's unpadded convs need 15x15: (15 - 3) // 2 + 1 - 6 = 1
    assert DrQCNN(image_space((3, 15, 15))).feature_dim == 32
    with pytest.raises(ValueError, match=r"DrQCNN: frames of shape \(3, 14, 14\) are too small"):
        DrQCNN(image_space((3, 14, 14)))


# --------------------------------------------------------------------------- inside PPO


class StackedFrameEnv(gym.Env[np.ndarray, np.int64]):
    """uint8 (2, 42, 42) frames (a 2-frame grayscale stack), Discrete(3); reward for action 0."""

    def __init__(self) -> None:
        self.observation_space = spaces.Box(0, 255, (2, 42, 42), np.uint8)
        self.action_space = spaces.Discrete(3)
        self._t = 0

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        self._t = 0
        return self._frame(), {}

    def _frame(self) -> np.ndarray:
        return self.np_random.integers(0, 256, (2, 42, 42), dtype=np.uint8)

    def step(self, action: np.int64) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        self._t += 1
        return self._frame(), float(action == 0), False, self._t >= 10, {}


@pytest.mark.parametrize("rid", ["pathak_cnn", "impala_resnet", "drq_cnn"])
def test_trains_inside_ppo(rid):
    from rlkit.agents import PPO
    from rlkit.envs import make_vec_env

    env = make_vec_env(StackedFrameEnv, num_envs=2, seed=0)
    encoder = ENCODERS.build(
        {"id": rid, "feature_dim": 32}, observation_space=env.single_observation_space
    )
    before = {k: v.detach().clone() for k, v in encoder.state_dict().items()}
    agent = PPO(env, encoder=encoder, seed=0, num_steps=8, batch_size=8, num_epochs=1)
    assert agent.policy.encoder is encoder
    agent.train(32, progress_bar=False)
    assert agent.global_step >= 32
    after = encoder.state_dict()
    changed = [k for k in before if not torch.equal(before[k], after[k])]
    assert changed, "PPO updates did not reach the encoder"
    actions = agent.act(env.single_observation_space.sample())
    assert env.single_action_space.contains(int(np.asarray(actions).reshape(())))
    env.close()


def test_ppo_builds_encoder_from_id():
    from rlkit.agents import PPO
    from rlkit.envs import make_vec_env

    env = make_vec_env(StackedFrameEnv, num_envs=2, seed=0)
    agent = PPO(env, encoder="pathak_cnn", seed=0, num_steps=8, batch_size=16, num_epochs=1)
    assert type(agent.policy.encoder) is PathakCNN
    assert agent.policy.encoder.feature_dim == 288
    agent.train(16, progress_bar=False)
    env.close()
