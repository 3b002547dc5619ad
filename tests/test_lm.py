"""Language-model RL parts: the causal-LM policy, text envs, advantage estimators, the
prototype's update (micro-batches, AMP, LoRA), checkpoints and chat, on a toy model built here."""

from __future__ import annotations

import io
import json
import math
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from lm_helpers import toy_lm

from rlkit.agents import GRPO, LMPPO, RLOO
from rlkit.envs.text import PromptDataset, TextVecEnv, TokenEnv, format_dialogue
from rlkit.lm.hf import load_causal_lm
from rlkit.lm.toy import build_toy_tokenizer, toy_prompts
from rlkit.policies.causal_lm import CausalLMPolicy, completion_mask
from rlkit.prototypes.language import load_lm_policy
from rlkit.reward_models import ContainsReward, ReferenceKLPenalty
from rlkit.storages.completions import (
    group_advantages,
    last_token_reward,
    leave_one_out_advantages,
    masked_whiten,
    token_gae,
)

CAT = {"id": "contains", "words": ["cat"]}


@pytest.fixture(scope="module")
def path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return toy_lm(tmp_path_factory.mktemp("lm"))


def text_env(path: Path, **kwargs: Any) -> TextVecEnv:
    options = {"num_prompts": 4, "group_size": 2, "max_prompt_tokens": 8, "max_new_tokens": 6,
               "seed": 0, **kwargs}  # fmt: skip
    return TextVecEnv(toy_prompts(32), str(path), **options)


# ---------------------------------------------------------------- helpers, by hand
def test_completion_mask_stops_after_the_first_eos() -> None:
    ids = torch.tensor([[5, 3, 0, 3], [5, 6, 7, 8], [3, 3, 3, 3]])
    expected = torch.tensor([[1, 1, 0, 0], [1, 1, 1, 1], [1, 0, 0, 0]], dtype=torch.bool)
    assert torch.equal(completion_mask(ids, eos_token_id=3), expected)


def test_group_and_leave_one_out_advantages_by_hand() -> None:
    reward = torch.tensor([1.0, 0.0, 0.0, 1.0, 1.0, 1.0])
    adv = group_advantages(reward, 3, scale=False)
    assert torch.allclose(adv, torch.tensor([2 / 3, -1 / 3, -1 / 3, 0.0, 0.0, 0.0]))
    scaled = group_advantages(reward, 3)
    std = torch.tensor([1.0, 0.0, 0.0]).std()
    assert torch.allclose(scaled[:3], adv[:3] / (std + 1e-4))
    assert torch.equal(scaled[3:], torch.zeros(3))
    loo = leave_one_out_advantages(reward, 3)
    assert torch.allclose(loo, torch.tensor([1.0, -0.5, -0.5, 0.0, 0.0, 0.0]))
    with pytest.raises(ValueError, match="group_size must be >= 2"):
        leave_one_out_advantages(reward, 1)


def test_token_gae_by_hand() -> None:
    reward = torch.tensor([[0.0, 0.0, 1.0, 9.0]])
    value = torch.tensor([[0.5, 0.2, 0.4, 7.0]])
    mask = torch.tensor([[True, True, True, False]])
    gamma, lam = 0.9, 0.8
    adv, ret = token_gae(reward, value, mask, gamma, lam)
    d2 = 1.0 - 0.4  # the last token: nothing bootstrapped past it (the padding's value ignored)
    d1 = 0.0 + gamma * 0.4 - 0.2
    d0 = 0.0 + gamma * 0.2 - 0.5
    a2 = d2
    a1 = d1 + gamma * lam * a2
    a0 = d0 + gamma * lam * a1
    assert torch.allclose(adv, torch.tensor([[a0, a1, a2, 0.0]]))
    assert torch.allclose(ret, torch.tensor([[a0 + 0.5, a1 + 0.2, a2 + 0.4, 0.0]]))


def test_last_token_reward_and_whitening() -> None:
    mask = torch.tensor([[True, True, False], [True, True, True]])
    out = last_token_reward(torch.tensor([2.0, -1.0]), mask)
    assert torch.equal(out, torch.tensor([[0.0, 2.0, 0.0], [0.0, 0.0, -1.0]]))
    x = torch.tensor([[1.0, 3.0, 100.0], [5.0, 7.0, 9.0]])
    white = masked_whiten(x, mask)
    kept = white[mask]
    assert abs(float(kept.mean())) < 1e-6 and abs(float(kept.var(unbiased=False)) - 1) < 1e-4
    assert white[0, 2] == 0


# ---------------------------------------------------------------- the policy
def test_policy_log_probs_match_the_model_and_ignore_left_padding(path: Path) -> None:
    policy = CausalLMPolicy(model=str(path), temperature=0.7)
    tok = policy.tokenizer
    prompt = tok("the big cat", add_special_tokens=False)["input_ids"]
    completion = tok("sat on a dog", add_special_tokens=False)["input_ids"]
    full = torch.tensor([prompt + completion])
    with torch.no_grad():
        logits = policy.model(full).logits[0, len(prompt) - 1 : -1] / 0.7
    expected = torch.log_softmax(logits, -1).gather(-1, torch.tensor(completion)[:, None])[:, 0]
    pad = tok.pad_token_id
    prompt_ids = torch.tensor([[pad, pad, *prompt], [0, 0, 0, *prompt[-2:]]])[:, -5:]
    prompt_ids = torch.tensor([[pad, pad, *prompt], [pad, pad, pad, pad, prompt[-1]]])
    prompt_mask = (prompt_ids != pad).long()
    ids = torch.tensor([completion, completion])
    with torch.no_grad():
        ev = policy.evaluate_tokens(prompt_ids, prompt_mask, ids, torch.ones_like(ids).bool())
    assert torch.allclose(ev.log_prob[0], expected, atol=1e-5)  # left padding changes nothing
    assert not torch.allclose(ev.log_prob[1], expected, atol=1e-3)  # another prompt does
    assert ev.value is None and (ev.entropy > 0).all()


def test_generate_pads_after_eos_and_fills_the_width(path: Path) -> None:
    policy = CausalLMPolicy(model=str(path))
    env = text_env(path)
    obs, _ = env.reset()
    torch.manual_seed(0)
    ids = policy.generate(
        torch.as_tensor(obs["input_ids"]), torch.as_tensor(obs["attention_mask"]), 6
    )
    assert ids.shape == (8, 6)
    mask = completion_mask(ids, policy.eos_token_id)
    assert (ids[~mask] == policy.pad_token_id).all()
    greedy = [
        policy.generate(
            torch.as_tensor(obs["input_ids"]),
            torch.as_tensor(obs["attention_mask"]),
            6,
            deterministic=True,
        )
        for _ in range(2)
    ]
    assert torch.equal(greedy[0], greedy[1])


def test_value_heads(path: Path) -> None:
    shared = CausalLMPolicy(model=str(path), value_head="shared")
    separate = CausalLMPolicy(model=str(path), value_head="separate")
    assert shared.critic is None and separate.critic is not None
    critic_ids = {id(p) for p in separate.critic.parameters()}
    assert not critic_ids & {id(p) for p in separate.model.parameters()}
    ids = torch.tensor([[5, 6, 7]])
    out = separate.evaluate_tokens(ids, torch.ones_like(ids), ids, torch.ones_like(ids).bool())
    assert out.value is not None and out.value.shape == (1, 3)
    with pytest.raises(ValueError, match="value_head"):
        CausalLMPolicy(model=str(path), value_head="tiny")


def test_missing_models_are_one_line(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no such directory"):
        CausalLMPolicy(model=str(tmp_path / "missing"))
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ValueError, match=r"tokenizer '.*empty' could not be loaded"):
        CausalLMPolicy(model=str(empty))


def test_bad_policy_arguments(path: Path) -> None:
    for kwargs, word in (({"model": ""}, "model"), ({"temperature": 0}, "temperature"),
                         ({"top_p": 1.5}, "top_p"), ({"top_k": -1}, "top_k")):  # fmt: skip
        with pytest.raises(ValueError, match=word):
            CausalLMPolicy(**{"model": str(path), **kwargs})


def test_a_config_only_directory_builds_the_architecture(path: Path, tmp_path: Path) -> None:
    policy = CausalLMPolicy(model=str(path))
    policy.save_architecture(tmp_path / "arch")
    assert not (tmp_path / "arch" / "model.safetensors").exists()
    model = load_causal_lm(str(tmp_path / "arch"))
    assert type(model) is type(policy.model)
    assert sum(p.numel() for p in model.parameters()) == sum(
        p.numel() for p in policy.model.parameters()
    )


# ---------------------------------------------------------------- text envs
def test_prompt_dataset_files(tmp_path: Path) -> None:
    (tmp_path / "p.jsonl").write_text('{"prompt": "a", "reference": "x"}\n{"prompt": "b"}\n')
    (tmp_path / "p.csv").write_text("prompt,reference,intent\na,x,greet\n")
    (tmp_path / "p.txt").write_text("a\n\nb\n")
    (tmp_path / "p.json").write_text(
        json.dumps([{"messages": [{"role": "user", "content": "hi"}]}])
    )
    data = PromptDataset.load(tmp_path / "p.jsonl")
    assert len(data) == 2 and data.references(0) == ["x"] and data.references(1) == []
    csv = PromptDataset.load(tmp_path / "p.csv")
    assert csv.metadata(0) == {"intent": "greet"}
    assert len(PromptDataset.load(tmp_path / "p.txt")) == 2
    tok = build_toy_tokenizer()
    assert PromptDataset.load(tmp_path / "p.json").text(0, tok) == "user : hi assistant :"
    with pytest.raises(ValueError, match="neither 'prompt' nor 'messages'"):
        PromptDataset([{"text": "a"}])
    with pytest.raises(FileNotFoundError, match="no file"):
        PromptDataset.load(tmp_path / "missing.jsonl")
    (tmp_path / "p.xml").write_text("<a/>")
    with pytest.raises(ValueError, match=r"\.jsonl, \.json, \.csv or \.txt"):
        PromptDataset.load(tmp_path / "p.xml")


def test_prompt_dataset_from_a_saved_datasets_directory(tmp_path: Path) -> None:
    datasets = pytest.importorskip("datasets")
    datasets.Dataset.from_dict({"prompt": ["a b", "c"], "label": [1, 0]}).save_to_disk(
        str(tmp_path / "ds")
    )
    data = PromptDataset.load(tmp_path / "ds")
    assert len(data) == 2 and data.metadata(1) == {"label": 0}


def test_format_dialogue_plain_and_errors() -> None:
    tok = build_toy_tokenizer()
    turns = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]
    assert format_dialogue(turns, tok) == "user : hi assistant : hello assistant :"
    with pytest.raises(ValueError, match="message 0"):
        format_dialogue([{"text": "hi"}], tok)


def test_text_env_groups_padding_and_same_step_reset(path: Path) -> None:
    env = TextVecEnv(["the big cat sat on a dog", "a", "the owl"], str(path), num_prompts=3,
                     group_size=2, max_prompt_tokens=4, max_new_tokens=5, shuffle=False,
                     reward_model=ContainsReward(["cat"]))  # fmt: skip
    obs, info = env.reset()
    assert env.num_envs == 6 and obs["input_ids"].shape == (6, 4)
    assert info["prompt"][0] == info["prompt"][1] == "the big cat sat on a dog"
    tok = env.tokenizer
    kept = tok.decode(obs["input_ids"][0])  # the last 4 tokens of the first prompt
    assert kept.split() == ["sat", "on", "a", "dog"]
    assert list(obs["attention_mask"][2]) == [0, 0, 0, 1]
    cat = tok("cat", add_special_tokens=False)["input_ids"][0]
    dog = tok("dog", add_special_tokens=False)["input_ids"][0]
    actions = np.full((6, 5), tok.pad_token_id)
    actions[:, 0] = dog
    actions[1, 0] = cat
    _, reward, terminated, truncated, info = env.step(actions)
    assert reward.tolist() == [0, 1, 0, 0, 0, 0] and terminated.all() and not truncated.any()
    assert info["completion"][1] == "cat" and info["reward/contains"][1] == 1
    assert info["next_prompt"][0] == "the big cat sat on a dog"  # a new pass, unshuffled
    assert env.last_batch is not None and env.last_batch.completions[0] == "dog"
    with pytest.raises(ValueError, match=r"shape \(6, 5\)"):
        env.step(actions[:, :3])


def test_text_env_refuses_policy_rewards_and_bad_sizes(path: Path) -> None:
    with pytest.raises(ValueError, match="give it to the agent"):
        text_env(path, reward_model=ReferenceKLPenalty())
    with pytest.raises(ValueError, match="group_size must be a positive integer, got 0"):
        text_env(path, group_size=0)


def test_token_env_episode(path: Path) -> None:
    env = TokenEnv(["the big"], str(path), max_prompt_tokens=4, max_new_tokens=3,
                   reward_model=ContainsReward(["cat"]))  # fmt: skip
    tok = env.tokenizer
    cat = tok("cat", add_special_tokens=False)["input_ids"][0]
    obs, _ = env.reset(seed=0)
    assert obs["attention_mask"].sum() == 2
    obs, reward, terminated, truncated, _ = env.step(cat)
    assert reward == 0 and not terminated and not truncated and obs["attention_mask"].sum() == 3
    env.step(cat)
    _, reward, terminated, truncated, info = env.step(cat)
    assert truncated and not terminated and reward == 1.0 and info["completion"] == "cat cat cat"
    env.reset(seed=0)
    _, reward, terminated, truncated, _ = env.step(tok.eos_token_id)
    assert terminated and not truncated and reward == 0.0


# ---------------------------------------------------------------- the prototype
def test_agent_argument_errors(path: Path) -> None:
    with pytest.raises(ValueError, match="group_size must be >= 2"):
        GRPO(text_env(path, group_size=1), model=str(path))
    with pytest.raises(ValueError, match="exactly one of model="):
        GRPO(text_env(path), model=str(path), policy={"id": "causal_lm", "model": str(path)})
    with pytest.raises(ValueError, match="normalize_obs"):
        GRPO(text_env(path), model=str(path), normalize_obs=True)
    with pytest.raises(ValueError, match="value head"):
        LMPPO(text_env(path), policy=CausalLMPolicy(model=str(path)))


def _gradient(path: Path, **kwargs: Any) -> torch.Tensor:
    """The (clipped) gradient of the one step of a first iteration."""
    options = {"seed": 3, "max_grad_norm": None, **kwargs}
    agent = GRPO(text_env(path), model=str(path), reward_model=CAT, **options)
    agent.iteration()
    grad = agent.optimizer.flat.grad
    assert grad is not None
    return grad.clone()


def test_micro_batches_give_the_minibatch_gradient(path: Path) -> None:
    whole = _gradient(path)
    split = _gradient(path, grad_accum_steps=3)  # micro-batches of 3, 3 and 2 completions
    assert float(whole.abs().max()) > 1e-3
    assert torch.allclose(whole, split, rtol=1e-4, atol=1e-7)
    other = _gradient(path, seed=4)  # other completions: another gradient (the test can fail)
    assert not torch.allclose(whole, other, rtol=1e-4, atol=1e-7)


def test_first_update_starts_at_ratio_one(path: Path) -> None:
    agent = GRPO(text_env(path), model=str(path), reward_model=CAT, seed=0)
    assert agent.single_pass()  # one step: the training pass gives the sampling probabilities
    metrics = agent.iteration()
    assert metrics["train/approx_kl"] < 1e-8 and metrics["train/clip_fraction"] == 0
    assert metrics["loss/reference_kl"] == pytest.approx(
        0.0, abs=1e-6
    )  # the reference is the start
    assert agent.global_step == 8 and metrics["completion/length"] > 0
    two = GRPO(text_env(path), model=str(path), reward_model=CAT, seed=0, epochs=2)
    assert not two.single_pass()  # a sampling pass first, so the ratio starts at 1 again
    metrics = two.iteration()
    assert metrics["kl"] == pytest.approx(0.0, abs=1e-5)
    assert metrics["completion/entropy"] > 0


@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
def test_amp_and_half_precision_rollouts(path: Path, dtype: str) -> None:
    agent = RLOO(text_env(path), model=str(path), reward_model=CAT, seed=0, use_amp=True,
                 rollout_amp=True, amp_dtype=dtype, epochs=2, minibatch_size=4)  # fmt: skip
    assert (agent._scaler is not None) == (dtype == "float16")  # fp16 steps through a scaler
    before = {k: v.clone() for k, v in agent.policy.state_dict().items()}
    metrics = agent.iteration()
    assert all(math.isfinite(v) for v in metrics.values())
    assert any(not torch.equal(before[k], v) for k, v in agent.policy.state_dict().items())
    assert next(agent.policy.parameters()).dtype == torch.float32  # weights stay fp32


def test_lora_trains_only_the_adapters(path: Path) -> None:
    pytest.importorskip("peft")
    agent = GRPO(text_env(path), model=str(path), reward_model=CAT, seed=0, lr=1e-2,
                 lora={"r": 4, "target_modules": ["c_attn"]})  # fmt: skip
    assert agent.reference is None  # the reference is the base with the adapters off
    names = {n for n, p in agent.policy.named_parameters() if p.requires_grad}
    assert names and all("lora_" in n for n in names)
    frozen = {n: p.clone() for n, p in agent.policy.named_parameters() if not p.requires_grad}
    first = agent.iteration()
    agent.iteration()
    assert first["loss/reference_kl"] == pytest.approx(0.0, abs=1e-6)
    for name, value in agent.policy.named_parameters():
        if name in frozen:
            assert torch.equal(value, frozen[name]), name


def test_checkpoint_round_trip_and_chat(path: Path, tmp_path: Path) -> None:
    env = text_env(path)
    agent = LMPPO(env, model=str(path), reward_model=CAT, seed=0, lr=1e-3, target_kl=0.01,
                  kl_horizon=100)  # fmt: skip
    agent.train(16, progress_bar=False)
    assert agent.kl_penalty is not None and agent.kl_penalty.coef != 0.05  # it adapted
    saved = agent.save(tmp_path / "ckpt")
    assert (saved / "lm" / "config.json").exists() and (saved / "lm" / "tokenizer.json").exists()
    back = LMPPO.load(saved, env=env)
    for (k, v), (k2, v2) in zip(
        agent.policy.state_dict().items(), back.policy.state_dict().items(), strict=True
    ):
        assert k == k2 and torch.equal(v, v2), k
    assert back.kl_penalty is not None and back.kl_penalty.coef == agent.kl_penalty.coef
    assert back.reward_model is not None and back.reward_model.spec() == agent.reward_model.spec()
    assert back.global_step == agent.global_step
    with pytest.raises(Exception, match="pass env="):
        LMPPO.load(saved)
    policy = load_lm_policy(saved)
    history = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello ."}]
    answer, turns = agent.chat("what is it", history, deterministic=True)
    assert turns[:2] == history and turns[2] == {"role": "user", "content": "what is it"}
    assert turns[3] == {"role": "assistant", "content": answer}
    from rlkit.lm.chat import reply

    assert reply(policy, "what is it", history, 6, True, 8)[0] == answer


def test_chat_command(path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                      capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    from rlkit.cli.main import main

    agent = GRPO(text_env(path), model=str(path), reward_model=CAT, seed=0)
    saved = agent.save(tmp_path / "run" / "final")
    monkeypatch.setattr(sys, "stdin", io.StringIO("hello\nreset\nhi\nquit\nnever read\n"))
    assert main(["chat", str(saved), "--deterministic", "--max-new-tokens", "4"]) == 0
    out = capsys.readouterr().out
    assert out.count("bot> ") == 2 and "(history cleared)" in out
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))
    assert main(["chat", str(saved), "--max-new-tokens", "0"]) == 2
    assert "--max-new-tokens=0" in capsys.readouterr().err
    assert main(["chat", str(tmp_path)]) == 2  # not a checkpoint: one line, no traceback
    err = capsys.readouterr().err
    assert err.startswith("rlkit: error:") and "Traceback" not in err


def test_save_pretrained_writes_a_plain_hugging_face_model(path: Path, tmp_path: Path) -> None:
    pytest.importorskip("peft")
    agent = GRPO(text_env(path), model=str(path), reward_model=CAT, seed=0, lr=1e-2,
                 lora={"r": 4, "target_modules": ["c_attn"]})  # fmt: skip
    agent.iteration()
    out = agent.policy.save_pretrained(tmp_path / "hf")
    assert (out / "model.safetensors").exists() and not (out / "adapter_config.json").exists()
    plain = load_causal_lm(str(out))
    ids = torch.tensor([[5, 6, 7, 8]])
    with torch.no_grad():
        expected = agent.policy.model(ids).logits
        assert torch.allclose(plain(ids).logits, expected, atol=1e-5)  # adapters merged
    with pytest.raises(TypeError, match="save_pretrained"):
        agent.acting_path()


def test_dialogue_env_follows_the_script(path: Path) -> None:
    from rlkit.envs.text import DialogueVecEnv

    records = [
        {"prompt": "hello", "turns": ["what is it"], "references": ["hi .", ["yes .", "no ."]],
         "intent": "greet"},
        {"messages": [{"role": "user", "content": "hi"}]},
    ]  # fmt: skip
    yes_reward = ContainsReward(["yes"])
    env = DialogueVecEnv(records, str(path), num_prompts=1, group_size=2, max_prompt_tokens=16,
                         max_new_tokens=3, shuffle=False, reward_model=yes_reward)  # fmt: skip
    tok = env.tokenizer
    _, info = env.reset()
    assert info["prompt"] == ["user : hello assistant :"] * 2
    hi = tok("hi . <eos>", add_special_tokens=False)["input_ids"]
    yes = tok("yes . <eos>", add_special_tokens=False)["input_ids"]
    batch = env.batch(np.array([hi, hi]))
    assert batch.references == [["hi ."], ["hi ."]] and batch.metadata[0] == {
        "intent": "greet",
        "turn": 0,
    }
    _, _, terminated, _, info = env.step(np.array([hi, hi]))
    assert not terminated.any()
    assert info["next_prompt"][0] == "user : hello assistant : hi . user : what is it assistant :"
    assert env.batch(np.array([yes, hi])).references == [["yes .", "no ."]] * 2
    _, reward, terminated, _, info = env.step(np.array([yes, hi]))
    assert terminated.all() and reward.tolist() == [1.0, 0.0]  # the script ended: a new dialogue
    assert info["next_prompt"] == ["user : hi assistant :"] * 2
    agent = RLOO(env, model=str(path), reward_model=CAT, seed=0)  # trains on every turn
    for _ in range(3):
        assert math.isfinite(agent.iteration()["reward/total"])
    with pytest.raises(ValueError, match="'turns' must be a list"):
        DialogueVecEnv([{"prompt": "a", "turns": "b"}], str(path), num_prompts=1)


def test_text_env_ids_train_and_evaluate_from_the_command_line(
    path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from rlkit.cli.main import main
    from rlkit.envs import make_vec_env

    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text("".join(json.dumps({"prompt": p}) + "\n" for p in toy_prompts(16)))
    out = tmp_path / "run"
    args = ["train", "grpo", "--env", f"text:{prompts}", "--model", str(path), "--env-kwargs",
            "{group_size: 2, max_new_tokens: 4, max_prompt_tokens: 6}", "--reward-model",
            "{id: contains, words: [cat]}", "--num-envs", "2", "--total-steps", "8", "--seed",
            "0", "--out", str(out), "--no-progress", "--eval-episodes", "4"]  # fmt: skip
    assert main(args) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["eval"]
    assert result["episodes"] == 4 and "reward/contains" in result
    assert main(["eval", str(out), "--json", "--episodes", "4"]) == 0  # the env is rebuilt
    assert json.loads(capsys.readouterr().out)["episodes"] == 4
    with pytest.raises(ValueError, match="needs env_kwargs tokenizer"):
        make_vec_env(f"text:{prompts}")
    with pytest.raises(ValueError, match="got colour"):
        make_vec_env(f"text:{prompts}", env_kwargs={"tokenizer": str(path), "colour": 1})
    with pytest.raises(ValueError, match="do not apply to the text env"):
        make_vec_env(f"text:{prompts}", wrappers=["clip_reward"])


def test_evaluate_a_directly_built_env_and_refuse_too_long_prompts(path: Path) -> None:
    env = text_env(path)
    agent = GRPO(env, model=str(path), reward_model=CAT, seed=0)
    order = list(env._order)
    result = agent.evaluate(episodes=6)  # a fresh copy: the training env's order is untouched
    assert result["episodes"] == 6 and "reward/contains" in result and env._order == order
    policy = agent.policy
    with pytest.raises(ValueError, match="exceeds the model's 64 positions"):
        policy.generate(torch.ones(1, 60, dtype=torch.long), torch.ones(1, 60, dtype=torch.long), 8)
