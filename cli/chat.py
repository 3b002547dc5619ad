"""``rlkit chat RUN_DIR``: a terminal conversation with a trained language-model agent."""

from __future__ import annotations

import argparse
from typing import Any, TextIO

from rlkit.config.rules import SEED, count

QUIT = ("quit", "exit")
RESET = "reset"


def add_parser(sub: Any) -> None:
    """Register the ``chat`` subcommand."""
    chat = sub.add_parser(
        "chat",
        help="talk to a trained language-model agent",
        description="A terminal conversation with the policy of a language-model checkpoint "
        f"or run directory: type a message; {RESET!r} clears the history, "
        f"{QUIT[0]!r} (or Ctrl-D) leaves.",
    )
    chat.add_argument("path", help="checkpoint or run directory of a language-model agent")
    chat.add_argument("--device", default="cpu")
    chat.add_argument("--max-new-tokens", type=int, default=64, dest="max_new_tokens", metavar="N")
    chat.add_argument(
        "--max-prompt-tokens", type=int, default=512, dest="max_prompt_tokens", metavar="N",
        help="the history keeps its last N tokens",
    )  # fmt: skip
    chat.add_argument(
        "--deterministic", action="store_true", help="greedy decoding instead of sampling"
    )
    chat.add_argument("--seed", type=int, help="seed the sampling")


def run(args: argparse.Namespace, stdin: TextIO, stdout: TextIO) -> int:
    """The loop: read a line, answer it, until ``quit`` or the end of input."""
    from rlkit.cli.main import check_options

    check_options(
        {"--max-new-tokens": args.max_new_tokens, "--max-prompt-tokens": args.max_prompt_tokens,
         "--seed": args.seed},
        {"--max-new-tokens": count(), "--max-prompt-tokens": count(), "--seed": SEED},
        "option",
    )  # fmt: skip
    import torch

    from rlkit.lm.chat import History, reply
    from rlkit.prototypes.language import load_lm_policy

    policy = load_lm_policy(args.path, device=args.device)
    if args.seed is not None:
        torch.manual_seed(args.seed)
    print(
        f"rlkit chat: type a message; {RESET!r} clears the history, {QUIT[0]!r} leaves.",
        file=stdout,
        flush=True,
    )
    history: History = []
    while True:
        print("you> ", end="", file=stdout, flush=True)
        line = stdin.readline()
        if not line:  # end of input
            print(file=stdout)
            return 0
        text = line.strip()
        if text.lower() in QUIT:
            return 0
        if text.lower() == RESET:
            history = []
            print("(history cleared)", file=stdout, flush=True)
            continue
        if not text:
            continue
        answer, history = reply(
            policy, text, history, args.max_new_tokens, args.deterministic,
            args.max_prompt_tokens,
        )  # fmt: skip
        print(f"bot> {answer}", file=stdout, flush=True)
