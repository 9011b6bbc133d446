"""Load on `glassformer serve`: N concurrent streaming clients against one at a time.

Starts `glassformer serve --model MODEL` in its own process on a free port, then for each
client count (default 1, 4, 16) sends the same list of streaming /v1/completions requests
(prompts cut from Python's own documentation, sampling with a seed per request) with that many
clients at once, each client sending its next request when its last one ends. Per level:

    tok/s          completion tokens / wall time (the aggregate rate), median of the rounds
    TTFT p50/p99   time from sending a request to its first text
    tok ms p50/p99 per request, (last text - first text) / (tokens - 1): the pace of a stream
    failed         requests without a 200, a [DONE] or the tokens they asked for
    server/client cpu   CPU seconds the server process and this client spent on the level

The levels run interleaved (1, 4, 16, 16, 4, 1, ...) for --rounds rounds, so that a change in
the machine's load touches every level alike.

The last line is the ratio of the largest client count's tok/s to one client's (the
continuous batching pays when it is well above 1). Clients are plain httpx streams parsed by
hand, so the measuring side costs little CPU next to the server.

    .venv/bin/python benchmarks/serve_load.py --model runs/default
    .venv/bin/python benchmarks/serve_load.py --model smollm2 --max-tokens 16 --requests 200 \\
        --sequential-requests 32
"""

import argparse
import asyncio
import json
import os
import random
import re
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass

import httpx


@dataclass
class Result:
    ok: bool
    tokens: int = 0
    ttft: float = 0.0  # seconds to the first text
    per_token: float = 0.0  # seconds between tokens after the first


def prompts(n: int, seed: int = 0) -> list[str]:
    """n prompts of 8-24 characters cut from Python's documentation (any model's alphabet)."""
    from pydoc_data.topics import topics

    words = " ".join(" ".join(topics.values()).split())
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        start = rng.randrange(len(words) - 32)
        out.append(words[start : start + rng.randint(8, 24)])
    return out


def start_server(args) -> tuple[subprocess.Popen, str]:
    cmd = [
        sys.executable, "-m", "glassformer", "serve", "--model", args.model, "--port", "0",
        "--max-batch", str(max(args.clients)), "--max-tokens-cap", str(max(args.max_tokens, 16)),
    ]  # fmt: skip
    if args.threads:
        cmd += ["--threads", str(args.threads)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    for line in proc.stderr:
        found = re.search(r"at (http://\S+?)/ \(explorer\)", line)
        if found:
            break
        print(line, end="", file=sys.stderr)
    else:
        raise SystemExit(f"the server did not start (exit status {proc.wait()})")
    threading.Thread(target=lambda: [None for _ in proc.stderr], daemon=True).start()  # drain
    return proc, found.group(1)


async def one(client: httpx.AsyncClient, url: str, body: dict) -> Result:
    sent = time.perf_counter()
    first = last = None
    tokens, done = 0, False
    try:
        async with client.stream("POST", url + "/v1/completions", json=body) as r:
            if r.status_code != 200:
                return Result(False)
            async for line in r.aiter_lines():
                if not line.startswith("data: "):
                    continue
                data = line[6:]
                if data == "[DONE]":
                    done = True
                    continue
                chunk = json.loads(data)
                if "error" in chunk:
                    return Result(False)
                if chunk.get("usage"):
                    tokens = chunk["usage"]["completion_tokens"]
                elif chunk["choices"] and chunk["choices"][0]["text"]:
                    last = time.perf_counter()
                    first = first or last
    except httpx.HTTPError:
        return Result(False)
    if not done or first is None or tokens == 0:
        return Result(False)
    return Result(True, tokens, first - sent, (last - first) / max(1, tokens - 1))


async def level(url: str, clients: int, bodies: list[dict]) -> tuple[list[Result], float]:
    queue = list(reversed(bodies))
    results: list[Result] = []
    limits = httpx.Limits(max_connections=clients + 2)
    async with httpx.AsyncClient(timeout=600, limits=limits) as client:

        async def worker():
            while queue:
                results.append(await one(client, url, queue.pop()))

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(clients)))
        return results, time.perf_counter() - start


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of process `pid` so far (Linux /proc)."""
    fields = open(f"/proc/{pid}/stat").read().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def pct(values: list[float], q: int) -> float:
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="what `glassformer serve --model` takes")
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 4, 16])
    parser.add_argument("--requests", type=int, default=201, help="requests per client count")
    parser.add_argument(
        "--sequential-requests",
        type=int,
        default=None,
        help="requests for the one-client level (default: --requests)",
    )
    parser.add_argument(
        "--rounds", type=int, default=3, help="the levels run interleaved, this many times"
    )
    parser.add_argument("--max-tokens", type=int, default=32, help="tokens per request")
    parser.add_argument("--temperature", type=float, default=0.8)
    parser.add_argument("--threads", type=int, default=None, help="the server's --threads")
    args = parser.parse_args()

    proc, url = start_server(args)
    try:
        texts = prompts(args.requests)

        def bodies(n: int, offset: int) -> list[dict]:
            return [
                {
                    "prompt": texts[i % len(texts)],
                    "max_tokens": args.max_tokens,
                    "temperature": args.temperature,
                    "seed": i,
                    "stream": True,
                    "stream_options": {"include_usage": True},
                }
                for i in range(offset, offset + n)
            ]

        asyncio.run(level(url, 2, bodies(4, 0)))  # warm up
        print(
            f"model {args.model}, {args.max_tokens} tokens per request, server {url}, "
            f"--threads {args.threads or 'default'}, {args.rounds} interleaved rounds"
        )
        results = {c: [] for c in args.clients}
        rates = {c: [] for c in args.clients}
        cpu = {c: [0.0, 0.0] for c in args.clients}
        for r in range(args.rounds):
            for c in args.clients if r % 2 == 0 else reversed(args.clients):
                total = args.sequential_requests if c == 1 and args.sequential_requests else None
                n = (total or args.requests) // args.rounds
                server_cpu, client_cpu = cpu_seconds(proc.pid), time.process_time()
                got, wall = asyncio.run(level(url, c, bodies(n, r * n)))
                cpu[c][0] += cpu_seconds(proc.pid) - server_cpu
                cpu[c][1] += time.process_time() - client_cpu
                results[c] += got
                rates[c].append(sum(x.tokens for x in got if x.ok) / wall)
        print(
            f"{'clients':>7} {'requests':>8} {'failed':>6} {'tokens':>7} {'tok/s':>8} "
            f"{'TTFT p50':>9} {'TTFT p99':>9} {'tok ms p50':>10} {'tok ms p99':>10} "
            f"{'server cpu':>10} {'client cpu':>10}"
        )
        for c in args.clients:
            ok = [x for x in results[c] if x.ok]
            ttft = [x.ttft for x in ok]
            pace = [x.per_token for x in ok]
            print(
                f"{c:>7} {len(results[c]):>8} {len(results[c]) - len(ok):>6} "
                f"{sum(x.tokens for x in ok):>7} {statistics.median(rates[c]):>8.1f} "
                f"{pct(ttft, 50) * 1e3:>7.0f}ms {pct(ttft, 99) * 1e3:>7.0f}ms "
                f"{pct(pace, 50) * 1e3:>10.1f} {pct(pace, 99) * 1e3:>10.1f} "
                f"{cpu[c][0]:>9.1f}s {cpu[c][1]:>9.1f}s"
            )
        low, high = min(args.clients), max(args.clients)
        ratio = statistics.median(rates[high]) / statistics.median(rates[low])
        print(f"ratio: {high} clients {ratio:.2f}x the tok/s of {low} (medians of the rounds)")
    finally:
        proc.terminate()
        proc.wait(30)


if __name__ == "__main__":
    main()
