"""Encoding with byte-level BPE: the readable reference (pure Python).

A BPE vocabulary is a table of *ranks*: every token is a byte string, and its rank (= its id)
says how early it was learned. Encoding a chunk works like tiktoken:

1. If the whole chunk is a token, that is the answer (one id).
2. Otherwise start from single bytes and repeatedly merge the adjacent pair whose
   concatenation has the lowest rank (the earliest learned token); among equal ranks the
   leftmost pair goes first. Stop when no adjacent pair forms a token.

With ranks `{b"a": 0, b"b": 1, b"c": 2, b"ab": 3, b"abc": 4, b"bc": 5}`::

    >>> bpe_merge(b"abcab", ranks)
    [b'abc', b'ab']      # "ab" (rank 3) first, twice, then "abc" (4); "bc" (5) never wins

Done naively (rescan all pairs after every merge) this is quadratic in the chunk length, and
pre-tokenization makes 1 MB of "aaaa…" a single chunk. So we keep the parts in a linked list
and the candidate pairs in a heap keyed by `(rank, start position)`: each merge costs
O(log n), and entries that a merge made obsolete are skipped when popped (lazy invalidation).

`ReferenceEncoder` adds the two things that make it fast enough to use: pre-tokenization and
a cache from chunk to ids, since real text repeats the same chunks over and over.
"""

import heapq

from glassformer.tokenizers.pretokenize import compile_pattern

_MISSING = float("inf")


def bpe_merge(piece: bytes, ranks: dict[bytes, int], max_rank: float = _MISSING) -> list[bytes]:
    """Split `piece` into tokens with tiktoken's BPE rule, using only ranks below `max_rank`."""
    n = len(piece)
    if n <= 1:
        return [piece] if n else []
    # Parts are named by their start offset; end[s] is where part s ends, nxt/prv link them.
    end = list(range(1, n + 1))
    nxt = list(range(1, n + 1))  # n means "no next part"
    prv = list(range(-1, n - 1))  # -1 means "no previous part"
    alive = [True] * n

    def rank_of(s: int) -> int | None:
        """Rank of the token formed by part s and the part after it (None if not a token)."""
        t = nxt[s]
        if t >= n:
            return None
        r = ranks.get(piece[s : end[t]])
        return r if r is not None and r < max_rank else None

    # A heap entry is the int rank * n + start: ordered by rank, then leftmost start.
    heap = [r * n + s for s in range(n - 1) if (r := rank_of(s)) is not None]
    heapq.heapify(heap)
    while heap:
        r, s = divmod(heapq.heappop(heap), n)
        if not alive[s] or rank_of(s) != r:
            continue  # this pair changed since it was queued
        t = nxt[s]  # merge part t into part s
        end[s] = end[t]
        alive[t] = False
        nxt[s] = nxt[t]
        if nxt[t] < n:
            prv[nxt[t]] = s
        for left in (prv[s], s):  # the two pairs that now involve the merged part
            if left >= 0 and (r := rank_of(left)) is not None:
                heapq.heappush(heap, r * n + left)
    parts = []
    s = 0
    while s < n:
        parts.append(piece[s : end[s]])
        s = nxt[s]
    return parts


class ReferenceEncoder:
    """Pre-tokenize with `pattern`, then BPE each chunk with `ranks`, caching chunk -> ids.

    >>> enc = ReferenceEncoder({bytes([i]): i for i in range(256)} | {b"ab": 256}, GPT2_PATTERN)
    >>> enc.encode("ab abc")
    [256, 32, 256, 99]
    """

    max_cache_entries = 200_000
    max_cached_chunk_len = 256

    def __init__(self, ranks: dict[bytes, int], pattern: str) -> None:
        self.ranks = ranks
        self.regex = compile_pattern(pattern)
        self.cache: dict[str, list[int]] = {}

    def encode_piece(self, piece: bytes) -> list[int]:
        """The ids of one chunk's bytes: the chunk's own id if it is a token, else BPE."""
        ranks = self.ranks
        rank = ranks.get(piece)
        if rank is not None:
            return [rank]
        return [ranks[part] for part in bpe_merge(piece, ranks)]

    def encode_chunk(self, chunk: str) -> list[int]:
        """The ids of one pre-tokenized chunk (lone surrogates are kept, as UTF-8-style bytes)."""
        return self.encode_piece(chunk.encode("utf-8", "surrogatepass"))

    def encode(self, text: str) -> list[int]:
        """The ids of `text`, with no special-token handling (see `BPETokenizer.encode`)."""
        cache = self.cache
        ids: list[int] = []
        for chunk in self.regex.findall(text):
            cached = cache.get(chunk)
            if cached is None:
                cached = self.encode_chunk(chunk)
                if len(chunk) <= self.max_cached_chunk_len:
                    if len(cache) >= self.max_cache_entries:
                        cache.clear()
                    cache[chunk] = cached
            ids.extend(cached)
        return ids

    def encode_bytes(self, data: bytes) -> list[int]:
        """The ids of arbitrary bytes; valid UTF-8 encodes exactly like the text it spells.

        Bytes that are not valid UTF-8 are kept as they are: decoding with `surrogateescape`
        turns each into a placeholder character (U+DC80 + byte) that the pre-tokenizer treats
        as a symbol, and encoding the chunk back with `surrogateescape` restores the byte.
        """
        text = data.decode("utf-8", "surrogateescape")
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            chunks = self.regex.findall(text)
            return [
                i for c in chunks for i in self.encode_piece(c.encode("utf-8", "surrogateescape"))
            ]
        return self.encode(text)
