"""Registry and Configurable: ids, errors, captured init args and JSON spec round trips."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from gymnasium import spaces

from rlkit.augmentations import AUGMENTATIONS, RandomShift
from rlkit.configurable import (
    Configurable,
    NotSerializableError,
    build_from_spec,
    from_json,
    to_json,
)
from rlkit.encoders import MLP, DictEncoder, Identity, NatureCNN
from rlkit.policies import ActorCritic
from rlkit.registry import REGISTRIES, Registry, UnknownIdError
from rlkit.spaces import spaces_equal
from rlkit.storages import STORAGES, RolloutStorage

# --------------------------------------------------------------------------- helpers


class Widget(Configurable):
    kind = "test_widget"

    def __init__(self, size: int = 3, name: str = "w") -> None:
        self.size = size
        self.name = name


class OtherBase(Configurable):
    kind = "test_other"


@pytest.fixture
def registry():
    """A fresh registry under a test-only kind, removed from REGISTRIES afterwards."""
    reg = Registry("test_widget", Widget)
    yield reg
    REGISTRIES.pop("test_widget", None)


def json_round_trip(spec):
    # allow_nan=False: infinities must have been encoded as strings, not bare Infinity
    return json.loads(json.dumps(spec, allow_nan=False))


# --------------------------------------------------------------------------- Registry


def test_registry_adds_itself_to_global_table(registry):
    assert REGISTRIES["test_widget"] is registry
    assert registry.kind == "test_widget"
    assert registry.base is Widget


def test_register_get_and_registry_id(registry):
    @registry.register("small")
    class Small(Widget):
        pass

    assert registry.get("small") is Small
    assert Small.registry_id == "small"
    assert "small" in registry
    assert "big" not in registry
    assert registry.id_of(Small) == "small"
    assert registry.id_of(Widget) is None


def test_subclass_of_registered_class_does_not_inherit_id(registry):
    @registry.register("small")
    class Small(Widget):
        pass

    class Smaller(Small):
        pass

    assert Small.registry_id == "small"
    assert Smaller.registry_id is None
    assert Smaller().spec()["id"] is None


def test_iteration_and_items_are_sorted(registry):
    for name in ("zeta", "alpha", "mid"):
        registry.register(name)(type(f"W_{name}", (Widget,), {}))
    assert list(registry) == ["alpha", "mid", "zeta"]
    assert [k for k, _ in registry.items()] == ["alpha", "mid", "zeta"]
    assert "alpha" in repr(registry) and "test_widget" in repr(registry)


def test_build_from_string_and_dict(registry):
    @registry.register("w")
    class W(Widget):
        pass

    a = registry.build("w")
    assert isinstance(a, W) and a.size == 3 and a.name == "w"
    b = registry.build({"id": "w", "size": 7})
    assert b.size == 7 and b.name == "w"
    # defaults fill missing kwargs, explicit spec keys win over defaults
    c = registry.build({"id": "w", "size": 5}, size=1, name="dflt")
    assert c.size == 5 and c.name == "dflt"


def test_build_without_id_raises(registry):
    with pytest.raises(ValueError, match="needs an 'id' key"):
        registry.build({"size": 3})


def test_unknown_id_error_lists_known_ids(registry):
    registry.register("beta")(type("B", (Widget,), {}))
    registry.register("alpha")(type("A", (Widget,), {}))
    with pytest.raises(UnknownIdError) as info:
        registry.get("gamma")
    msg = str(info.value)
    assert "'gamma'" in msg
    assert "alpha, beta" in msg
    assert "test_widget" in msg
    # it is a KeyError, but its str is not wrapped in extra quotes
    assert isinstance(info.value, KeyError)
    assert not msg.startswith('"')
    with pytest.raises(UnknownIdError, match="gamma"):
        registry.build("gamma")


def test_unknown_id_in_empty_registry(registry):
    with pytest.raises(UnknownIdError, match=r"\(none\)"):
        registry.get("anything")


def test_duplicate_id_raises(registry):
    @registry.register("dup")
    class First(Widget):
        pass

    class Second(Widget):
        pass

    with pytest.raises(ValueError, match="already registered") as info:
        registry.register("dup")(Second)
    assert "First" in str(info.value)
    assert registry.get("dup") is First
    # re-registering the same class under the same id is harmless
    assert registry.register("dup")(First) is First
    assert registry.get("dup") is First


def test_register_requires_subclass_of_base(registry):
    class NotAWidget(OtherBase):
        pass

    with pytest.raises(TypeError, match="must subclass Widget"):
        registry.register("bad")(NotAWidget)
    with pytest.raises(TypeError, match="must subclass"):
        registry.register("fn")(lambda: None)  # type: ignore[arg-type]
    assert "bad" not in registry
    assert "fn" not in registry


def test_real_registries_present():
    for kind in ("encoder", "policy", "distribution", "storage", "augmentation"):
        assert kind in REGISTRIES
    assert REGISTRIES["storage"] is STORAGES
    assert REGISTRIES["augmentation"] is AUGMENTATIONS
    assert STORAGES.get("rollout") is RolloutStorage
    assert AUGMENTATIONS.get("random_shift") is RandomShift
    assert REGISTRIES["encoder"].get("mlp") is MLP
    assert REGISTRIES["encoder"].get("nature_cnn") is NatureCNN
    assert REGISTRIES["policy"].get("actor_critic") is ActorCritic


# --------------------------------------------------------------------------- Configurable


class Captures(Configurable):
    kind = "test_widget"

    def __init__(self, a: int, b: float = 2.5, *args: int, c: str = "x", **extra: int) -> None:
        self.a = a


class CapturesChild(Captures):
    def __init__(self, z: int = 9) -> None:
        super().__init__(a=100, b=0.0, c="child")
        self.z = z


def test_init_args_capture_defaults_and_kwargs():
    obj = Captures(1, c="y", k=4)
    assert obj.init_args == {"a": 1, "b": 2.5, "c": "y", "k": 4}
    # init_args returns a copy
    obj.init_args["a"] = 99
    assert obj.init_args["a"] == 1


def test_init_args_are_those_of_outermost_init():
    child = CapturesChild(z=3)
    assert child.init_args == {"z": 3}
    assert child.a == 100 and child.z == 3


def test_spec_and_build_round_trip(registry):
    @registry.register("w2")
    class W2(Widget):
        pass

    obj = W2(size=11, name="eleven")
    spec = obj.spec()
    assert spec == {"id": "w2", "size": 11, "name": "eleven"}
    rebuilt = build_from_spec("test_widget", json_round_trip(spec))
    assert type(rebuilt) is W2
    assert rebuilt.size == 11 and rebuilt.name == "eleven"
    assert rebuilt.init_args == obj.init_args
    # overrides replace stored kwargs
    over = build_from_spec("test_widget", spec, size=1)
    assert over.size == 1 and over.name == "eleven"


def test_unregistered_class_cannot_be_rebuilt(registry):
    class Loose(Widget):
        pass

    spec = Loose(size=2).spec()
    assert spec["id"] is None
    assert spec["class"].endswith("Loose")
    with pytest.raises(ValueError, match="not registered"):
        build_from_spec("test_widget", spec)


def test_build_from_spec_unknown_kind():
    with pytest.raises(ValueError, match="unknown primitive kind 'no_such_kind'"):
        build_from_spec("no_such_kind", {"id": "x"})


def test_not_serializable_argument(registry):
    @registry.register("holder")
    class Holder(Widget):
        def __init__(self, payload: object = None) -> None:
            super().__init__()
            self.payload = payload

    assert Holder(payload=[1, 2]).spec()["payload"] == [1, 2]
    with pytest.raises(NotSerializableError) as info:
        Holder(payload=object()).spec()
    msg = str(info.value)
    assert "payload" in msg and "Holder" in msg and "object" in msg
    assert isinstance(info.value, TypeError)
    with pytest.raises(NotSerializableError):
        Holder(payload={"k": [object()]}).spec()


def test_to_json_from_json_primitives():
    assert to_json(None) is None
    assert to_json(True) is True
    assert to_json((1, 2.5, "a")) == [1, 2.5, "a"]
    v = to_json(np.float32(1.5))
    assert v == 1.5 and type(v) is float
    assert to_json(np.int64(7)) == 7 and type(to_json(np.int64(7))) is int
    assert to_json(torch.tensor(3)) == 3
    encoded = to_json({"a": 1, "b": [1, 2]})
    assert encoded == {"__dict__": {"a": 1, "b": [1, 2]}}
    assert from_json(encoded) == {"a": 1, "b": [1, 2]}
    # untagged dicts decode key by key
    assert from_json({"x": [1, {"y": 2}]}) == {"x": [1, {"y": 2}]}


@pytest.mark.parametrize(
    "space",
    [
        spaces.Box(-1.0, 1.0, (3,), np.float32),
        spaces.Box(-np.inf, np.inf, (2, 2), np.float32),
        spaces.Box(0, 255, (3, 8, 8), np.uint8),
        spaces.Discrete(5, start=2),
        spaces.MultiDiscrete([2, 3]),
        spaces.Dict({"a": spaces.Box(0, 1, (2,)), "b": spaces.Discrete(3)}),
    ],
)
def test_to_json_spaces(space):
    encoded = json_round_trip(to_json(space))
    assert "__space__" in encoded
    decoded = from_json(encoded)
    assert spaces_equal(decoded, space)


def test_actor_critic_with_mlp_encoder_round_trip():
    torch.manual_seed(0)
    obs_space = spaces.Box(-np.inf, np.inf, (5,), np.float32)
    act_space = spaces.Discrete(4, start=1)
    enc = MLP(obs_space, feature_dim=16, hidden_sizes=(8,), activation="relu")
    policy = ActorCritic(obs_space, act_space, encoder=enc, hidden_sizes=(12,), share_trunk=True)

    spec = policy.spec()
    assert spec["id"] == "actor_critic"
    assert spec["encoder"]["__primitive__"] == "encoder"
    assert spec["encoder"]["id"] == "mlp"
    assert spec["encoder"]["hidden_sizes"] == [8]
    assert spec["observation_space"]["__space__"]["type"] == "Box"

    rebuilt = build_from_spec("policy", json_round_trip(spec))
    assert type(rebuilt) is ActorCritic
    assert type(rebuilt.encoder) is MLP
    assert rebuilt.encoder.feature_dim == 16
    assert rebuilt.share_trunk is True
    assert spaces_equal(rebuilt.observation_space, obs_space)
    assert spaces_equal(rebuilt.action_space, act_space)
    assert rebuilt.distribution.start == 1
    # same architecture: the weights load and produce identical outputs
    rebuilt.load_state_dict(policy.state_dict())
    x = torch.randn(3, 5)
    out_a, out_b = policy(x), rebuilt(x)
    torch.testing.assert_close(out_a.value, out_b.value)
    torch.testing.assert_close(out_a.dist.logits, out_b.dist.logits)
    # a rebuilt object specs to the same JSON
    assert json_round_trip(rebuilt.spec()) == json_round_trip(spec)


def test_dict_encoder_with_nested_encoders_round_trip():
    space = spaces.Dict(
        {
            "image": spaces.Box(0, 255, (3, 36, 36), np.uint8),
            "vec": spaces.Box(-1.0, 1.0, (4,), np.float32),
        }
    )
    enc = DictEncoder(
        space,
        feature_dim=10,
        encoders={"vec": MLP(space["vec"], feature_dim=6, hidden_sizes=())},
        cnn_feature_dim=8,
    )
    spec = json_round_trip(enc.spec())
    rebuilt = build_from_spec("encoder", spec)
    assert type(rebuilt) is DictEncoder
    assert type(rebuilt.encoders["vec"]) is MLP
    assert type(rebuilt.encoders["image"]) is NatureCNN
    assert rebuilt.feature_dim == 10
    assert rebuilt.encoders["vec"].feature_dim == 6
    assert rebuilt.encoders["image"].feature_dim == 8
    assert sum(p.numel() for p in rebuilt.parameters()) == sum(p.numel() for p in enc.parameters())


def test_policy_spec_with_default_encoder_is_plain_none():
    space = spaces.Box(-1.0, 1.0, (3,), np.float32)
    policy = ActorCritic(space, spaces.MultiBinary(2))
    spec = json_round_trip(policy.spec())
    assert spec["encoder"] is None and spec["distribution"] is None
    rebuilt = build_from_spec("policy", spec)
    assert type(rebuilt.encoder) is Identity
    assert rebuilt.distribution.num_params == 2
