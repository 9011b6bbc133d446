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

The search runs in the engine (engine.py) one step at a time, its num_beams rows decoded in
the same forward as every other sequence's; `Beam.step` is the body of the loop, and the state
between steps (the running beams' scores, the finished hypotheses) is a `BeamState`.
`beam_search(ctx, opts)` (search.py) runs one search to its end over the prompt in a Context.
"""

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from glassformer.generate.option_error import OptionError
from glassformer.generate.strategy import Step, Strategy

_NEG = -1.0e9  # "impossible": what Hugging Face uses, so ties break the same way


@dataclass
class Hypothesis:
    ids: torch.Tensor  # (T,) prompt + generated ids (ending with the stop id if it stopped)
    score: float  # logprob / generated_length ** length_penalty: what ranks the hypotheses
    logprob: float  # sum of log p(token) over the generated tokens
    length: int  # number of generated tokens


class BeamState:
    """The search between two steps: the running beams and the n best finished ones."""

    def __init__(self, opts, prompt_len: int, device: torch.device):
        n = opts.num_beams
        self.stops = torch.tensor(opts.stop_ids, dtype=torch.long, device=device)
        self.keep = max(2, 1 + len(self.stops)) * n  # candidates looked at per step
        self.T0, self.step = prompt_len, 0
        self.fill = int(self.stops[0]) if len(self.stops) else 0
        self.running = torch.full((n,), _NEG, device=device)
        self.running[0] = 0.0  # only one beam is real at the start
        self.running_sum = torch.zeros(n, device=device)
        width = prompt_len + opts.max_new_tokens
        self.done_ids = torch.full((n, width), self.fill, dtype=torch.long, device=device)
        self.done_score = torch.full((n,), _NEG, device=device)
        self.done_sum = torch.zeros(n, device=device)
        self.done_len = torch.zeros(n, dtype=torch.long, device=device)
        self.is_done = torch.zeros(n, dtype=torch.bool, device=device)
        self.can_improve = True
        self.top_n = torch.arange(self.keep, device=device) < n

    def hypotheses(self, count: int) -> list[Hypothesis]:
        """The `count` best finished hypotheses, best first."""
        out = []
        for i in range(count):
            length = int(self.done_len[i])
            ids = self.done_ids[i, : self.T0 + length]
            out.append(Hypothesis(ids, float(self.done_score[i]), float(self.done_sum[i]), length))
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

    def width(self, opts) -> int:
        return opts.num_beams

    @torch.no_grad()
    def step(self, seq, logits: torch.Tensor) -> Step:
        """One step of every beam: logits (1, V) after the prompt, then (n, V)."""
        opts = seq.opts
        n, lp, max_new = opts.num_beams, opts.length_penalty, opts.max_new_tokens
        device = logits.device
        if seq.state is None:
            seq.state = BeamState(opts, seq.ids.size(0), device)
        st: BeamState = seq.state
        step = st.step
        history = torch.stack([r.ids for r in seq.rows])  # (rows, T0 + step)
        if logits.size(0) == 1:  # all beams start as the prompt
            logits, history = logits.expand(n, -1), history.expand(n, -1)
        logp = F.log_softmax(logits.float(), dim=-1)  # (n, V)
        V = logp.size(-1)
        total = (logp + st.running[:, None]).view(-1)  # (n * V,)
        top_scores, top_flat = torch.topk(total, st.keep)  # (keep,)
        beam, token = top_flat // V, top_flat % V
        top_sum = (logp.view(-1)[top_flat] + st.running_sum[beam]).float()  # without the -1e9s
        seqs = torch.cat((history[beam], token[:, None]), dim=1)  # (keep, T0 + step + 1)
        ends = torch.isin(token, st.stops) | (step == max_new - 1)  # (keep,)

        # finished hypotheses: merge the new ones into the n best
        final = top_scores / (step + 1) ** lp
        full = bool(st.is_done.all()) and opts.early_stopping is True
        final = final + (_NEG if full else 0.0) + (0.0 if st.can_improve else _NEG)
        final = final + (~(ends & st.top_n)).float() * _NEG
        padded = torch.full((st.keep, st.T0 + max_new), st.fill, dtype=torch.long, device=device)
        padded[:, : seqs.size(1)] = seqs
        best = torch.topk(torch.cat((st.done_score, final)), n).indices
        st.done_ids = torch.cat((st.done_ids, padded))[best]
        st.done_score = torch.cat((st.done_score, final))[best]
        st.done_sum = torch.cat((st.done_sum, top_sum))[best]
        length = torch.full((st.keep,), step + 1, device=device)
        st.done_len = torch.cat((st.done_len, length))[best]
        st.is_done = torch.cat((st.is_done, ends & st.top_n))[best]

        # running beams: the n best candidates that did not end
        alive = top_scores + ends.float() * _NEG
        pick = torch.topk(alive, n).indices
        st.running, st.running_sum = alive[pick], top_sum[pick]

        # could a running beam still beat the worst finished hypothesis?
        best_len = max_new if opts.early_stopping == "never" and lp > 0 else step + 1
        worst = float(st.done_score.min()) if bool(st.is_done.all()) else _NEG
        st.can_improve = st.can_improve and float(st.running[0]) / best_len**lp > worst
        all_done = bool(st.is_done.all()) and opts.early_stopping is True
        st.step += 1
        if not st.can_improve or all_done or bool(ends.all()) or st.step == max_new:
            hyps = st.hypotheses(opts.num_return_sequences)
            replies = [h.ids[st.T0 :].tolist() for h in hyps]
            return Step(emit=replies[0], done=True, results=replies)
        rows = beam[pick] if len(seq.rows) > 1 else torch.zeros_like(pick)
        return Step(feed=token[pick][:, None], keep=rows.tolist())
