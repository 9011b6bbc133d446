"""Contrastive search (Su et al. 2022): likely tokens that do not repeat what was said.

Greedy decoding of a small model falls into loops. Contrastive search looks at the top_k most
likely next tokens and, for each candidate v, runs the model one step to get its hidden state
h_v (the last layer, after the final norm). A candidate that would make the model's state look
like an earlier one is penalised:

    score(v) = (1 - alpha) * p(v | context)  -  alpha * max_j cos(h_v, h_j)

where h_j are the hidden states of every token so far (prompt included). alpha = 0 is greedy;
alpha = penalty_alpha (0.6 is the paper's choice) trades likelihood for novelty. The top_k
candidates run as one batch of k rows that share the cached prefix.
"""

from collections.abc import Iterator

import torch
import torch.nn.functional as F

from glassformer.generate.context import Context
from glassformer.generate.option_error import OptionError
from glassformer.generate.processors import repetition_penalty
from glassformer.generate.strategy import Strategy


def degeneration_penalty(candidates: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
    """max_j cos(candidates[i], context[j]) for candidates (k, C), context (T, C) -> (k,)."""
    sims = F.normalize(candidates, dim=-1) @ F.normalize(context, dim=-1).T  # (k, T)
    return sims.max(dim=-1).values


@torch.no_grad()
def contrastive_search(ctx: Context, opts) -> Iterator[torch.Tensor]:
    """Yield the new ids (1, 1) one step at a time after the prompt in a fresh `ctx` (1, T)."""
    k, alpha = opts.top_k, opts.penalty_alpha
    device = ctx.ids.device
    ctx.keep_hidden = True
    logits = ctx.logits()  # (1, V)
    history = ctx.hidden[0]  # (T, C): hidden state of every token so far
    stops = set(opts.stop_ids)
    for _ in range(opts.max_new_tokens):
        logits = repetition_penalty(logits.float(), ctx.ids, opts.repetition_penalty)
        probs = torch.softmax(logits, dim=-1)[0]  # (V,)
        top_p, top_ids = torch.topk(probs, min(k, probs.numel()))  # (k,)
        ctx.reorder(torch.zeros(len(top_ids), dtype=torch.long, device=device))
        ctx.append(top_ids[:, None])  # each row tries one candidate
        cand_logits = ctx.logits()  # (k, V)
        cand_hidden = ctx.hidden[:, -1]  # (k, C)
        score = (1 - alpha) * top_p - alpha * degeneration_penalty(cand_hidden, history)
        best = int(score.argmax())
        ctx.reorder(torch.tensor([best], device=device))
        history = torch.cat((history, cand_hidden[best : best + 1]))
        logits = cand_logits[best : best + 1]
        token = top_ids[best : best + 1, None]  # (1, 1)
        yield token
        if int(token) in stops:
            return


class Contrastive(Strategy):
    help = "contrastive search: likely tokens unlike what was said (--top-k, --penalty-alpha)"

    def check(self, opts) -> None:
        if opts.top_k is None:
            opts.top_k = 4  # the candidate count of the contrastive search paper
        if opts.top_k < 1:
            raise OptionError(
                "top_k", "must be >= 1 for contrastive search (its candidates), got 0"
            )

    def tokens(self, ctx: Context, opts, generator=None) -> Iterator[torch.Tensor]:
        return contrastive_search(ctx, opts)
