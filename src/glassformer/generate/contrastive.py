"""Contrastive search (Su et al. 2022): likely tokens that do not repeat what was said.

Greedy decoding of a small model falls into loops. Contrastive search looks at the top_k most
likely next tokens and, for each candidate v, runs the model one step to get its hidden state
h_v (the last layer, after the final norm). A candidate that would make the model's state look
like an earlier one is penalised:

    score(v) = (1 - alpha) * p(v | context)  -  alpha * max_j cos(h_v, h_j)

where h_j are the hidden states of every token so far (prompt included). alpha = 0 is greedy;
alpha = penalty_alpha (0.6 is the paper's choice) trades likelihood for novelty. The top_k
candidates run as k rows of the engine (engine.py) that share the cached prefix, in the same
forward as every other sequence's rows. A step of `Contrastive.step` scores the candidates of
the last step (their logits and hidden states are in), emits the best, and proposes its
top_k successors as the next candidates.
"""

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from glassformer.generate.option_error import OptionError
from glassformer.generate.processors import repetition_penalty
from glassformer.generate.strategy import Step, Strategy


def degeneration_penalty(candidates: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
    """max_j cos(candidates[i], context[j]) for candidates (k, C), context (T, C) -> (k,)."""
    sims = F.normalize(candidates, dim=-1) @ F.normalize(context, dim=-1).T  # (k, T)
    return sims.max(dim=-1).values


@dataclass
class Candidates:
    history: torch.Tensor  # (T, C): the hidden state of every token so far
    probs: torch.Tensor  # (k,) p(candidate | context)
    ids: torch.Tensor  # (k,) the candidates, one per row


class Contrastive(Strategy):
    help = "contrastive search: likely tokens unlike what was said (--top-k, --penalty-alpha)"
    needs_hidden = True

    def check(self, opts) -> None:
        if opts.top_k is None:
            opts.top_k = 4  # the candidate count of the contrastive search paper
        if opts.top_k < 1:
            raise OptionError(
                "top_k", "must be >= 1 for contrastive search (its candidates), got 0"
            )

    def width(self, opts) -> int:
        return opts.top_k

    @torch.no_grad()
    def step(self, seq, logits: torch.Tensor) -> Step:
        """logits (1, V) after the prompt, then (k, V) after each candidate."""
        cand: Candidates | None = seq.state
        emit, base = [], 0
        if cand is None:  # after the prompt: its hidden states are the history
            history = seq.rows[0].hidden  # (T, C)
        else:
            hidden = torch.stack([r.hidden[-1] for r in seq.rows])  # (k, C)
            alpha = seq.opts.penalty_alpha
            score = (1 - alpha) * cand.probs - alpha * degeneration_penalty(hidden, cand.history)
            base = int(score.argmax())
            history = torch.cat((cand.history, hidden[base : base + 1]))
            emit = [int(cand.ids[base])]
        ids = seq.rows[base].ids[None]  # (1, N): the history with the chosen token
        penalty = seq.opts.repetition_penalty
        penalised = repetition_penalty(logits[base : base + 1].float(), ids, penalty)  # (1, V)
        probs = torch.softmax(penalised, dim=-1)[0]  # (V,)
        top_p, top_ids = torch.topk(probs, min(seq.opts.top_k, probs.numel()))  # (k,)
        seq.state = Candidates(history, top_p, top_ids)
        return Step(feed=top_ids[:, None], keep=[base] * len(top_ids), emit=emit)
