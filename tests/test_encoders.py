"""Encoders: Identity, MLP, NatureCNN, DictEncoder and default_encoder."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from gymnasium import spaces
from torch import nn

from rlkit.encoders import ENCODERS, MLP, DictEncoder, Identity, NatureCNN, default_encoder, mlp

VEC = spaces.Box(-1.0, 1.0, (2, 3), np.float32)
IMG = spaces.Box(0, 255, (3, 36, 36), np.uint8)  # smallest frame NatureCNN accepts


def uint8_frames(shape, batch=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (batch, *shape), generator=g, dtype=torch.uint8)


# --------------------------------------------------------------------------- Identity / MLP


def test_identity_flattens_and_casts():
    enc = Identity(VEC)
    assert enc.feature_dim == 6
    x = torch.arange(12, dtype=torch.float64).reshape(2, 2, 3)
    out = enc(x)
    assert out.shape == (2, 6) and out.dtype == torch.float32
    torch.testing.assert_close(out, x.reshape(2, 6).float())
    assert not any(True for _ in enc.parameters())


def test_identity_scales_uint8():
    space = spaces.Box(0, 255, (4,), np.uint8)
    enc = Identity(space)
    x = torch.tensor([[0, 51, 255, 102]], dtype=torch.uint8)
    torch.testing.assert_close(enc(x), x.float() / 255.0)


def test_identity_feature_dim_must_match():
    assert Identity(VEC, feature_dim=6).feature_dim == 6
    with pytest.raises(ValueError, match="feature_dim=5"):
        Identity(VEC, feature_dim=5)
    with pytest.raises(TypeError, match="Identity encoder"):
        Identity(spaces.Discrete(3))


def test_mlp_shapes_layers_and_activation():
    enc = MLP(VEC, feature_dim=8, hidden_sizes=(16, 4), activation="relu")
    assert enc.feature_dim == 8
    linears = [m for m in enc.net if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(6, 16), (16, 4), (4, 8)]
    assert sum(isinstance(m, nn.ReLU) for m in enc.net) == 3
    out = enc(torch.randn(5, 2, 3))
    assert out.shape == (5, 8)
    assert (out >= 0).all()  # ends with the activation


def test_mlp_tanh_default_and_bounded():
    enc = MLP(VEC)
    assert enc.feature_dim == 64
    out = enc(torch.randn(3, 2, 3) * 10)
    assert out.shape == (3, 64)
    assert (out.abs() <= 1).all()


def test_mlp_errors():
    with pytest.raises(ValueError, match="MLP: activation must be one of 'tanh'"):
        MLP(VEC, activation="nope")
    with pytest.raises(TypeError, match="MLP encoder"):
        MLP(spaces.Discrete(4))


def test_mlp_helper_activate_last_false():
    net = mlp(3, [4, 2], "tanh", activate_last=False)
    assert isinstance(net[-1], nn.Linear)
    assert len(mlp(3, [])) == 0


# --------------------------------------------------------------------------- NatureCNN


@pytest.mark.parametrize("shape", [(4, 84, 84), (3, 64, 64)])
def test_nature_cnn_output_shape(shape):
    torch.manual_seed(0)
    space = spaces.Box(0, 255, shape, np.uint8)
    enc = NatureCNN(space, feature_dim=32)
    assert enc.feature_dim == 32
    out = enc(uint8_frames(shape))
    assert out.shape == (2, 32)
    assert out.dtype == torch.float32
    assert torch.isfinite(out).all()
    assert (out >= 0).all()  # ReLU head


def test_nature_cnn_default_feature_dim():
    assert NatureCNN(IMG).feature_dim == 512


def test_nature_cnn_scales_uint8_inside():
    torch.manual_seed(0)
    enc_u8 = NatureCNN(IMG, feature_dim=16)
    float_space = spaces.Box(0.0, 1.0, IMG.shape, np.float32)
    enc_f = NatureCNN(float_space, feature_dim=16)
    enc_f.load_state_dict(enc_u8.state_dict())
    x = uint8_frames(IMG.shape, batch=3)
    out_u8 = enc_u8(x)
    # the same frames as floats in [0, 1] through an unscaled (float-space) encoder
    torch.testing.assert_close(out_u8, enc_f(x.float() / 255.0))
    # and a float copy of the raw uint8 values through the uint8 encoder is also scaled
    torch.testing.assert_close(out_u8, enc_u8(x.float()))
    # the scaling really happens: unscaled input gives a different result
    assert not torch.allclose(out_u8, enc_f(x.float()))


@pytest.mark.parametrize("shape", [(84, 84, 4), (64, 64, 3)])
def test_nature_cnn_channel_last_error(shape):
    with pytest.raises(ValueError) as info:
        NatureCNN(spaces.Box(0, 255, shape, np.uint8))
    msg = str(info.value)
    assert "channel-last" in msg
    assert "ChannelFirst" in msg
    assert str(shape) in msg


def test_nature_cnn_other_space_errors():
    with pytest.raises(ValueError, match=r"\(C, H, W\)"):
        NatureCNN(spaces.Box(0, 255, (84, 84), np.uint8))
    with pytest.raises(TypeError, match="NatureCNN"):
        NatureCNN(spaces.Discrete(3))


# --------------------------------------------------------------------------- DictEncoder

DICT_SPACE = spaces.Dict(
    {
        "image": IMG,
        "vec": spaces.Box(-1.0, 1.0, (5,), np.float32),
    }
)


def dict_batch(batch=2):
    return {
        "image": uint8_frames(IMG.shape, batch),
        "vec": torch.randn(batch, 5, generator=torch.Generator().manual_seed(1)),
    }


def test_dict_encoder_defaults():
    torch.manual_seed(0)
    enc = DictEncoder(DICT_SPACE, cnn_feature_dim=12)
    assert enc.keys == ["image", "vec"]
    assert isinstance(enc.encoders["image"], NatureCNN)
    assert isinstance(enc.encoders["vec"], Identity)
    assert enc.feature_dim == 12 + 5
    obs = dict_batch()
    out = enc(obs)
    assert out.shape == (2, 17)
    # features are the sub-encoders' outputs concatenated in sorted key order
    torch.testing.assert_close(out[:, :12], enc.encoders["image"](obs["image"]))
    torch.testing.assert_close(out[:, 12:], obs["vec"])


def test_dict_encoder_custom_encoders_and_projection():
    torch.manual_seed(0)
    vec_enc = MLP(DICT_SPACE["vec"], feature_dim=7, hidden_sizes=())
    enc = DictEncoder(DICT_SPACE, feature_dim=9, encoders={"vec": vec_enc}, cnn_feature_dim=4)
    assert enc.encoders["vec"] is vec_enc
    assert enc.feature_dim == 9
    lin = enc.projection[0]
    assert isinstance(lin, nn.Linear) and lin.in_features == 4 + 7 and lin.out_features == 9
    out = enc(dict_batch(3))
    assert out.shape == (3, 9)
    assert (out >= 0).all()


def test_dict_encoder_unknown_key_error():
    with pytest.raises(ValueError) as info:
        DictEncoder(DICT_SPACE, encoders={"nope": Identity(spaces.Box(0, 1, (2,)))})
    msg = str(info.value)
    assert "nope" in msg and "image" in msg and "vec" in msg


def test_dict_encoder_mismatched_encoder_space_error():
    wrong = Identity(spaces.Box(-1.0, 1.0, (4,), np.float32))
    with pytest.raises(ValueError) as info:
        DictEncoder(DICT_SPACE, encoders={"vec": wrong})
    msg = str(info.value)
    assert "'vec'" in msg and "(4,)" in msg and "(5,)" in msg


def test_dict_encoder_requires_dict_input_and_space():
    enc = DictEncoder(spaces.Dict({"vec": spaces.Box(0, 1, (3,))}))
    assert enc.feature_dim == 3
    with pytest.raises(TypeError, match="dict of tensors"):
        enc(torch.zeros(2, 3))
    with pytest.raises(TypeError, match="DictEncoder"):
        DictEncoder(spaces.Box(0, 1, (3,)))


# --------------------------------------------------------------------------- default_encoder


def test_default_encoder_choices():
    assert type(default_encoder(spaces.Box(-1, 1, (4,)))) is Identity
    assert type(default_encoder(IMG)) is NatureCNN
    # a float 3-d box is not an image: flattened
    flat = default_encoder(spaces.Box(0.0, 1.0, (3, 36, 36), np.float32))
    assert type(flat) is Identity and flat.feature_dim == 3 * 36 * 36
    assert type(default_encoder(DICT_SPACE)) is DictEncoder
    with pytest.raises(TypeError, match="no default encoder"):
        default_encoder(spaces.Discrete(3))
    with pytest.raises(ValueError, match="channel-last"):
        default_encoder(spaces.Box(0, 255, (84, 84, 4), np.uint8))


def test_encoders_registered():
    assert ENCODERS.get("identity") is Identity
    assert ENCODERS.get("mlp") is MLP
    assert ENCODERS.get("nature_cnn") is NatureCNN
    assert ENCODERS.get("dict") is DictEncoder


# --------------------------------------------------------------------------- gradients


@pytest.mark.parametrize(
    ("make", "obs"),
    [
        (lambda: MLP(VEC, feature_dim=4, hidden_sizes=(8,)), lambda: torch.randn(3, 2, 3)),
        (lambda: NatureCNN(IMG, feature_dim=8), lambda: uint8_frames(IMG.shape)),
        (
            lambda: DictEncoder(DICT_SPACE, feature_dim=6, cnn_feature_dim=4),
            dict_batch,
        ),
    ],
    ids=["mlp", "cnn", "dict"],
)
def test_gradients_flow_to_every_parameter(make, obs):
    torch.manual_seed(0)
    enc = make()
    enc(obs()).pow(2).sum().backward()
    params = list(enc.named_parameters())
    assert params
    for name, p in params:
        assert p.grad is not None, name
        assert torch.isfinite(p.grad).all(), name
    assert any(p.grad.abs().sum() > 0 for _, p in params)
