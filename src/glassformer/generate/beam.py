"""Beam search: keep the `num_beams` most likely partial sequences instead of one.

Every step, each running beam proposes every token; a candidate's score is its beam's summed
log-probability plus log p(token). Of all num_beams x V candidates the best 2 x num_beams are
looked at (so that enough remain when some of them end):

    candidate ends (a stop id, or the last step) -> a finished hypothesis if it ranks in the
                                                    top num_beams, with the final score
                                                    sum_logprob / length ** length_penalty
    otherwise                                    -> the best num_beams become the next beams

(length = number of generated tokens, the stop id included.)

The search keeps the num_beams best finished hypotheses and returns them best first (the
n-best list). It ends at max_new_tokens, or earlier per `early_stopping`:

    True     as soon as num_beams hypotheses are finished
    False    when no running beam can still beat the worst finished one, estimated with the
             current length (Hugging Face's default heuristic)
    "never"  like False, but with length_penalty > 0 estimated at the longest possible length

length_penalty > 0 favours longer sequences, < 0 shorter ones; 0 compares raw sums. This is the
algorithm of Hugging Face's `generate(num_beams=...)`, and the tests check equal outputs.
"""

from collections.abc import Iterator
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from glassformer.generate.context import Context
from glassformer.generate.option_error import OptionError
from glassformer.generate.strategy import Strategy

_NEG = -1.0e9  # "impossible": what Hugging Face uses, so ties break the same way


@dataclass
class Hypothesis:
    ids: torch.Tensor  # (T,) prompt + generated ids (ending with the stop id if it stopped)
    score: float  # logprob / generated_length ** length_penalty: what ranks the hypotheses
    logprob: float  # sum of log p(token) over the generated tokens
    length: int  # number of generated tokens


@torch.no_grad()
def beam_search(ctx: Context, opts) -> list[Hypothesis]:
    """The `opts.num_return_sequences` best hypotheses after the prompt in `ctx` (1, T), best
    first. `ctx` ends holding the running beams."""
    n, lp, max_new = opts.num_beams, opts.length_penalty, opts.max_new_tokens
    device = ctx.ids.device
    stops = torch.tensor(opts.stop_ids, dtype=torch.long, device=device)
    keep = max(2, 1 + len(stops)) * n  # candidates looked at per step
    T0 = ctx.ids.size(1)
    logits = ctx.logits().expand(n, -1)  # (n, V): all beams start as the prompt
    ctx.reorder(torch.zeros(n, dtype=torch.long, device=device))
    running = torch.full((n,), _NEG, device=device)
    running[0] = 0.0  # only one beam is real at the start
    running_sum = torch.zeros(n, device=device)
    fill = int(stops[0]) if len(stops) else 0
    done_ids = torch.full((n, T0 + max_new), fill, dtype=torch.long, device=device)
    done_score = torch.full((n,), _NEG, device=device)
    done_sum = torch.zeros(n, device=device)
    done_len = torch.zeros(n, dtype=torch.long, device=device)
    is_done = torch.zeros(n, dtype=torch.bool, device=device)
    can_improve = True
    top_n = torch.arange(keep, device=device) < n
    for step in range(max_new):
        if step:
            logits = ctx.logits()
        logp = F.log_softmax(logits.float(), dim=-1)  # (n, V)
        V = logp.size(-1)
        total = (logp + running[:, None]).view(-1)  # (n * V,)
        top_scores, top_flat = torch.topk(total, keep)  # (keep,)
        beam, token = top_flat // V, top_flat % V
        top_sum = (logp.view(-1)[top_flat] + running_sum[beam]).float()  # without the -1e9s
        seqs = torch.cat((ctx.ids[beam], token[:, None]), dim=1)  # (keep, T0 + step + 1)
        ends = torch.isin(token, stops) | (step == max_new - 1)  # (keep,)

        # finished hypotheses: merge the new ones into the n best
        final = top_scores / (step + 1) ** lp
        full = bool(is_done.all()) and opts.early_stopping is True
        final = final + (_NEG if full else 0.0) + (0.0 if can_improve else _NEG)
        final = final + (~(ends & top_n)).float() * _NEG
        padded = torch.full((keep, T0 + max_new), fill, dtype=torch.long, device=device)
        padded[:, : seqs.size(1)] = seqs
        best = torch.topk(torch.cat((done_score, final)), n).indices
        done_ids = torch.cat((done_ids, padded))[best]
        done_score = torch.cat((done_score, final))[best]
        done_sum = torch.cat((done_sum, top_sum))[best]
        done_len = torch.cat((done_len, torch.full((keep,), step + 1, device=device)))[best]
        is_done = torch.cat((is_done, ends & top_n))[best]

        # running beams: the n best candidates that did not end
        alive = top_scores + ends.float() * _NEG
        pick = torch.topk(alive, n).indices
        running, running_sum = alive[pick], top_sum[pick]
        ctx.reorder(beam[pick])
        ctx.append(token[pick][:, None])

        # could a running beam still beat the worst finished hypothesis?
        best_len = max_new if opts.early_stopping == "never" and lp > 0 else step + 1
        worst = float(done_score.min()) if bool(is_done.all()) else _NEG
        can_improve = can_improve and float(running[0]) / best_len**lp > worst
        all_done = bool(is_done.all()) and opts.early_stopping is True
        if not can_improve or all_done or bool(ends.all()):
            break
    out = []
    for i in range(opts.num_return_sequences):
        length = int(done_len[i])
        out.append(
            Hypothesis(done_ids[i, : T0 + length], float(done_score[i]), float(done_sum[i]), length)
        )
    return out


class Beam(Strategy):
    help = "beam search: the --num-beams most likely sequences by summed log-probability"
    n_best = True

    def check(self, opts) -> None:
        if opts.num_return_sequences > opts.num_beams:
            raise OptionError(
                "num_return_sequences",
                f"({opts.num_return_sequences}) cannot exceed num_beams ({opts.num_beams}): "
                "beam search keeps only num_beams finished sequences",
            )

    def tokens(self, ctx: Context, opts, generator=None) -> Iterator[torch.Tensor]:
        """The best sequence's new ids, all at once at the end (only then is it known)."""
        T0 = ctx.ids.size(1)
        best = beam_search(ctx, opts)[0]
        yield from (t.view(1, 1) for t in best.ids[T0:])

    def continuations(self, ctx: Context, opts, generator=None) -> list[torch.Tensor]:
        T0 = ctx.ids.size(1)
        return [h.ids[T0:] for h in beam_search(ctx, opts)]
