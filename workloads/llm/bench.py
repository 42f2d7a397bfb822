"""Shared timing helpers of the LLM runners: prompts cut from held-out text and round-robin timed generations.

Settings that are compared run round-robin (warm-up round first, untimed), so drift on a shared machine hits all
of them alike; tables report medians over the timed rounds.
"""

from __future__ import annotations

from workloads.llm import charlm
from workloads.llm.budget import RunBudget
from workloads.llm.generate import Generation, generate
from workloads.llm.kvcache import make_cache
from workloads.llm.model import DecoderLM


def prompt_tokens(n: int, seed: int = 0) -> list[int]:
    """n tokens of held-out text (wrapped around when n exceeds it) as a prompt."""
    held = charlm.corpus()[1]
    s = (seed * 7919) % (len(held) - 1)
    return ((held[s:] + held) * (n // len(held) + 1))[:n]


def kv_label(window: int | None, sinks: int = 0) -> str:
    return "full" if window is None else f"sliding W={window}" + (f"+{sinks} sinks" if sinks else "")


def setting(window: int | None = None, sinks: int = 0, kind: str | None = None) -> dict:
    """Cache settings for `round_robin`: full when window is None, else sliding (kind overrides, e.g. 'none')."""
    return {
        "kind": kind or ("full" if window is None else "sliding"),
        "window": window,
        "sinks": sinks if window else 0,
    }


def round_robin(
    model: DecoderLM,
    prompt: list[int],
    new: int,
    settings: dict[str, dict],
    repeats: int,
    chunk: int | None = None,
    budget: RunBudget | None = None,
) -> dict[str, list[Generation]]:
    """One warm-up round, then `repeats` rounds over all settings; returns the timed generations per label.

    With a `budget`, a round starts only when it fits (expected: the longest round so far); the rounds that do not
    are recorded there as not done, so the lists may hold fewer than `repeats` generations (none: no time).
    """
    dev = str(next(model.parameters()).device)
    runs: dict[str, list[Generation]] = {k: [] for k in settings}
    for r in range(repeats + 1):
        row = f"{len(prompt)}-token input, " + ("warm-up round" if r == 0 else f"timed round {r}/{repeats}")
        if budget is not None and not budget.admit(row, budget.estimate(f"{len(prompt)}-token input")):
            continue
        for label, s in settings.items():
            cache = make_cache(s["kind"], model.cfg, len(prompt) + new, dev, window=s["window"], sinks=s["sinks"])
            g = generate(model, prompt, new, cache, chunk=chunk)
            if r:
                runs[label].append(g)
        if budget is not None:
            budget.done(row, ", ".join(settings), measured=r > 0)
    return runs
