"""Every intrinsic reward: layouts, values, novelty ordering, self-training, argument checks."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from gymnasium import spaces

from rlkit.rewards import (
    E3B,
    ICM,
    INTRINSIC_REWARDS,
    NGU,
    RE3,
    RIDE,
    RISE,
    RND,
    Combined,
    Disagreement,
    IntrinsicReward,
    PseudoCounts,
    TransitionBatch,
)

STATES = 20
VEC = spaces.Box(0.0, 1.0, (STATES,), np.float32)
IMG = spaces.Box(0, 255, (3, 42, 42), np.uint8)
ACT = spaces.Discrete(3)

#: small networks so the tests run fast.
SMALL: dict[str, dict[str, Any]] = {
    "rnd": {"latent_dim": 16, "hidden_dim": 32},
    "icm": {"feature_dim": 16, "hidden_dim": 32},
    "ride": {"feature_dim": 16, "hidden_dim": 32},
    "ngu": {"embedding_dim": 8, "hidden_dim": 32, "rnd_latent_dim": 16},
    "e3b": {"embedding_dim": 8, "hidden_dim": 32},
    "re3": {"latent_dim": 16, "hidden_dim": 32},
    "rise": {"latent_dim": 16, "hidden_dim": 32},
    "pseudo_counts": {"sketch_width": 1024},
    "disagreement": {"feature_dim": 16, "hidden_dim": 32, "num_blocks": 1},
    "combined": {
        "modules": [
            {"id": "rnd", "latent_dim": 8, "hidden_dim": 16},
            {"id": "e3b", "embedding_dim": 8, "hidden_dim": 16},
        ],
        "weights": [1.0, 0.5],
    },
}
ALL_IDS = sorted(SMALL)
#: modules with a trained part: the metric keys their update() returns, and those that must
#: fall on repeated data (RIDE's inverse term weighs 0.1 against 10 for the forward one, so its
#: total objective is what training lowers).
METRICS = {
    "rnd": ["rnd_loss"],
    "icm": ["icm_loss", "icm_forward_loss", "icm_inverse_loss"],
    "ride": ["ride_loss", "ride_forward_loss", "ride_inverse_loss"],
    "ngu": ["ngu_inverse_loss", "rnd_loss"],
    "e3b": ["e3b_inverse_loss"],
    "disagreement": ["disagreement_forward_loss"],
}
LOSSES = {**METRICS, "ride": ["ride_loss", "ride_forward_loss"]}


@pytest.fixture(autouse=True)
def _one_thread() -> Any:
    """Small networks run fastest (and steadiest on a busy machine) single-threaded."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def make(rid: str, space: spaces.Box = VEC, **kwargs: Any) -> IntrinsicReward:
    return INTRINSIC_REWARDS.build(
        {"id": rid, **SMALL[rid], **kwargs}, observation_space=space, action_space=ACT
    )


def chain_batch(states: torch.Tensor, actions: torch.Tensor | None = None) -> TransitionBatch:
    """Transitions ``s -> (s + a) % STATES`` as one-hot vectors; ``states`` is ``[T, N]`` or
    ``[B]``; ``actions`` default to 1 (a walk along the chain)."""
    if actions is None:
        actions = torch.ones_like(states)
    nxt = (states + actions) % STATES
    return TransitionBatch(
        obs=F.one_hot(states, STATES).float(),
        actions=actions,
        next_obs=F.one_hot(nxt, STATES).float(),
        dones=torch.zeros(states.shape),
    )


def random_batch(lead: tuple[int, ...], space: spaces.Box, seed: int) -> TransitionBatch:
    g = torch.Generator().manual_seed(seed)
    if space.dtype == np.uint8:
        obs = torch.randint(0, 256, (*lead, *space.shape), generator=g, dtype=torch.uint8)
        nxt = torch.randint(0, 256, (*lead, *space.shape), generator=g, dtype=torch.uint8)
    else:
        obs = torch.rand(*lead, *space.shape, generator=g)
        nxt = torch.rand(*lead, *space.shape, generator=g)
    actions = torch.randint(0, 3, lead, generator=g)
    return TransitionBatch(obs, actions, nxt, torch.zeros(lead))


# --------------------------------------------------------------------------- registry
def test_every_paper_is_registered() -> None:
    expected = {
        "icm": ICM,
        "rnd": RND,
        "ngu": NGU,
        "ride": RIDE,
        "re3": RE3,
        "e3b": E3B,
        "pseudo_counts": PseudoCounts,
        "disagreement": Disagreement,
        "rise": RISE,
        "combined": Combined,
    }
    for rid, cls in expected.items():
        assert INTRINSIC_REWARDS.get(rid) is cls
        assert issubclass(cls, IntrinsicReward)


# --------------------------------------------------------------------------- layouts and values
@pytest.mark.parametrize("rid", ALL_IDS)
@pytest.mark.parametrize("lead", [(6, 3), (10,)], ids=["rollout_TxN", "replay_B"])
def test_shape_finite_non_negative_vector(rid: str, lead: tuple[int, ...]) -> None:
    torch.manual_seed(0)
    module = make(rid)
    batch = random_batch(lead, VEC, seed=1)
    raw = module.compute(batch)
    assert raw.shape == lead
    assert raw.dtype == torch.float32
    assert torch.isfinite(raw).all()
    assert (raw >= 0).all(), "every paper's bonus is non-negative"
    assert raw.sum() > 0
    assert not raw.requires_grad
    reward = module.reward(random_batch(lead, VEC, seed=2), step=0)
    assert reward.shape == lead and torch.isfinite(reward).all()
    metrics = module.update(batch)
    assert all(np.isfinite(v) for v in metrics.values())


@pytest.mark.parametrize("rid", ALL_IDS)
def test_image_observations(rid: str) -> None:
    torch.manual_seed(0)
    module = make(rid, IMG)
    for lead in [(2, 2), (3,)]:
        batch = random_batch(lead, IMG, seed=0)
        raw = module.compute(batch)
        assert raw.shape == lead and torch.isfinite(raw).all() and (raw >= 0).all()
        module.update(batch)


@pytest.mark.parametrize("rid", [r for r in ALL_IDS if r != "combined"])  # parts have obs_norm
def test_obs_norm_and_no_obs_norm_both_work(rid: str) -> None:
    for obs_norm in (False, True):
        module = make(rid, obs_norm=obs_norm)
        assert module.init_args["obs_norm"] is obs_norm
        out = module.compute(random_batch((4, 2), VEC, seed=0))
        assert torch.isfinite(out).all()


# --------------------------------------------------------------------------- novelty
@pytest.mark.parametrize("rid", ["rnd", "icm", "disagreement"])
def test_learned_modules_score_novel_transitions_higher(rid: str) -> None:
    torch.manual_seed(0)
    module = make(rid, lr=3e-3, reward_norm="none")
    familiar_states = torch.arange(5).repeat(32).reshape(32, 5)
    familiar = chain_batch(familiar_states, torch.randint(0, 3, (32, 5)))
    for _ in range(100):
        module.compute(familiar)
        module.update(familiar)
    seen = module.compute(familiar).mean()
    novel = module.compute(chain_batch(torch.arange(10, 15).repeat(4, 1))).mean()
    assert novel > 5 * seen


@pytest.mark.parametrize("rid", ["ngu", "e3b", "ride"])
def test_episodic_modules_score_new_states_higher_than_revisits(rid: str) -> None:
    torch.manual_seed(0)
    module = make(rid, reward_norm="none")
    t = torch.arange(16)
    states = torch.stack([t % 2, t % STATES], dim=1)  # env 0 shuttles 0<->1, env 1 walks on
    actions = torch.stack([1 - 2 * (t % 2), torch.ones_like(t)], dim=1) % STATES
    bonus = module.compute(chain_batch(states, actions))
    late = bonus[8:]
    assert late[:, 1].mean() > 2 * late[:, 0].mean()
    # revisits decay: the shuttling env's bonus falls as its memory fills
    assert bonus[8:, 0].mean() < bonus[:3, 0].mean()


def test_pseudo_counts_decay_with_visits_and_reward_new_states() -> None:
    module = make("pseudo_counts")
    assert isinstance(module, PseudoCounts)
    familiar = chain_batch(torch.zeros(4, 2, dtype=torch.int64))  # next state 1, 8 times
    first = module.compute(familiar)
    torch.testing.assert_close(first, torch.full((4, 2), 8**-0.5))
    second = module.compute(familiar)
    torch.testing.assert_close(second, torch.full((4, 2), 16**-0.5))
    novel = module.compute(chain_batch(torch.tensor([7])))
    torch.testing.assert_close(novel, torch.ones(1))


@pytest.mark.parametrize("rid", ["re3", "rise"])
def test_batch_entropy_modules_score_rare_states_higher(rid: str) -> None:
    torch.manual_seed(0)
    module = make(rid, reward_norm="none")
    common = torch.arange(3).repeat(20)  # 60 rows over 3 states
    rare = torch.arange(5, 15)  # 10 rows, all different
    batch = chain_batch(torch.cat([common, rare]))
    bonus = module.compute(batch)
    assert bonus[:60].max() < 1e-3, "a state with >= k copies has a zero k-NN distance"
    assert (bonus[60:] > 0.1).all()


def test_rise_is_re3_with_a_power_transform() -> None:
    torch.manual_seed(0)
    re3 = RE3(VEC, ACT, k=2, latent_dim=16, hidden_dim=32, reward_norm="none")
    rise = RISE(VEC, ACT, k=2, latent_dim=16, hidden_dim=32, alpha=0.25, reward_norm="none")
    rise.encoder.load_state_dict(re3.encoder.state_dict())
    batch = random_batch((12,), VEC, seed=3)
    d = torch.expm1(re3.compute(batch))
    torch.testing.assert_close(rise.compute(batch), d.pow(0.75), rtol=1e-4, atol=1e-5)


def test_re3_average_uses_mean_of_first_k_neighbours() -> None:
    torch.manual_seed(0)
    module = RE3(VEC, ACT, k=3, average=True, latent_dim=16, hidden_dim=32, reward_norm="none")
    batch = random_batch((9,), VEC, seed=4)
    y = module.encoder(batch.next_obs)
    d = torch.cdist(y.double(), y.double())
    d.fill_diagonal_(float("inf"))
    expected = d.topk(3, dim=1, largest=False).values.mean(1)
    torch.testing.assert_close(module.compute(batch), torch.log1p(expected).float())


# --------------------------------------------------------------------------- self-training
@pytest.mark.parametrize("rid", sorted(LOSSES))
def test_update_lowers_its_own_loss_on_repeated_data(rid: str) -> None:
    torch.manual_seed(0)
    kwargs: dict[str, Any] = {"lr": 3e-3}
    if rid == "rnd":
        kwargs["update_proportion"] = 1.0
    module = make(rid, **kwargs)
    g = torch.Generator().manual_seed(0)
    states = torch.randint(0, 8, (16, 4), generator=g)
    batch = chain_batch(states, torch.randint(0, 3, (16, 4), generator=g))
    module.compute(batch)  # fold the batch into any running statistics first
    history = [module.update(batch) for _ in range(100)]
    assert set(history[0]) == set(METRICS[rid])
    for key in LOSSES[rid]:
        first = np.mean([h[key] for h in history[:3]])
        last = np.mean([h[key] for h in history[-3:]])
        assert last < 0.5 * first, f"{key}: {first:.4f} -> {last:.4f}"


@pytest.mark.parametrize("rid", ["re3", "rise", "pseudo_counts"])
def test_modules_without_a_loss_train_nothing(rid: str) -> None:
    module = make(rid)
    assert module.update(random_batch((4, 2), VEC, seed=0)) == {}
    assert module.optimizers() == {}
    assert all(not p.requires_grad for p in module.parameters())


def test_random_encoders_stay_fixed() -> None:
    torch.manual_seed(0)
    for module in (make("re3"), make("rise"), make("disagreement")):
        encoder = module.encoder  # type: ignore[attr-defined]
        before = [p.clone() for p in encoder.parameters()]
        batch = random_batch((8, 2), VEC, seed=0)
        module.compute(batch)
        module.update(batch)
        assert all(torch.equal(a, b) for a, b in zip(before, encoder.parameters(), strict=True))


# --------------------------------------------------------------------------- formulas
def test_icm_bonus_is_half_squared_forward_error() -> None:
    torch.manual_seed(0)
    module = ICM(VEC, ACT, feature_dim=8, hidden_dim=16, reward_norm="none")
    batch = random_batch((5,), VEC, seed=0)
    phi = module.encoder(batch.obs)
    phi_next = module.encoder(batch.next_obs)
    expected = 0.5 * (module.forward_model(phi, batch.actions) - phi_next).pow(2).sum(1)
    torch.testing.assert_close(module.compute(batch), expected.detach())


def test_disagreement_bonus_is_ensemble_variance() -> None:
    torch.manual_seed(0)
    module = Disagreement(VEC, ACT, obs_norm=False, feature_dim=8, hidden_dim=16)
    batch = random_batch((6,), VEC, seed=0)
    preds = module.predictions(batch.obs, batch.actions)
    assert preds.shape == (5, 6, 8)
    expected = preds.var(0, unbiased=False).mean(1)
    torch.testing.assert_close(module.compute(batch), expected.detach())


def test_multidiscrete_and_box_actions() -> None:
    torch.manual_seed(0)
    for action_space, actions in (
        (spaces.MultiDiscrete([3, 2]), torch.tensor([[[0, 1], [2, 0]]])),
        (spaces.Box(-1, 1, (2,), np.float32), torch.rand(1, 2, 2)),
        (spaces.MultiBinary(3), torch.tensor([[[0.0, 1.0, 1.0], [1.0, 0.0, 0.0]]])),
    ):
        for rid in ("icm", "ride", "ngu", "e3b", "disagreement"):
            module = INTRINSIC_REWARDS.build(
                {"id": rid, **SMALL[rid]}, observation_space=VEC, action_space=action_space
            )
            batch = TransitionBatch(
                torch.rand(1, 2, STATES), actions, torch.rand(1, 2, STATES), torch.zeros(1, 2)
            )
            assert module.compute(batch).shape == (1, 2)
            assert all(np.isfinite(v) for v in module.update(batch).values())


# --------------------------------------------------------------------------- errors
def test_clear_errors_for_bad_arguments() -> None:
    with pytest.raises(TypeError, match=r"NGU.*observation space"):
        NGU(spaces.Discrete(4), ACT)
    with pytest.raises(ValueError, match="beta"):
        ICM(VEC, ACT, beta=1.5)
    with pytest.raises(ValueError, match="alpha"):
        RISE(VEC, ACT, alpha=1.0)
    with pytest.raises(ValueError, match="ensemble_size"):
        Disagreement(VEC, ACT, ensemble_size=1)
    with pytest.raises(ValueError, match="ridge"):
        E3B(VEC, ACT, ridge=0.0)
    with pytest.raises(ValueError, match="max_multiplier"):
        NGU(VEC, ACT, max_multiplier=0.5)
    with pytest.raises(ValueError, match="reward_norm"):
        RE3(VEC, ACT, reward_norm="std")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="coef_decay"):
        RIDE(VEC, ACT, coef_decay=1.0)
    with pytest.raises(TypeError, match="action space"):
        ICM(VEC, spaces.Dict({"a": spaces.Discrete(2)}))
    module = make("icm")
    bad = TransitionBatch(
        torch.rand(2, 3, STATES), torch.zeros(2, 3), torch.rand(2, 3, STATES), torch.zeros(2, 3, 1)
    )
    with pytest.raises(ValueError, match=r"\[T, N\].*\[B\]"):
        module.compute(bad)
    wrong_action = chain_batch(torch.zeros(2, dtype=torch.int64), torch.tensor([0, 5]))
    with pytest.raises(ValueError, match="zero-based"):
        module.compute(wrong_action)


def test_weight_schedule_and_normalisation_apply_to_every_module() -> None:
    batch = random_batch((4, 3), VEC, seed=0)
    for rid in ("icm", "re3", "e3b", "pseudo_counts"):
        torch.manual_seed(0)
        a = make(rid, reward_norm="none", coef=0.5, coef_decay=0.1)
        torch.manual_seed(0)
        b = make(rid, reward_norm="none")
        torch.testing.assert_close(a.reward(batch, step=2), 0.5 * 0.9**2 * b.compute(batch))
    for rid in ("icm", "re3", "e3b"):
        r = make(rid, reward_norm="minmax").reward(batch, step=0)
        assert r.min() == pytest.approx(0.0, abs=1e-6) and r.max() == pytest.approx(1.0, abs=1e-5)
        rms = make(rid, reward_norm="rms")
        rms.reward(batch, step=0)
        assert rms.reward_stats.count.item() == pytest.approx(12, abs=1e-3)
