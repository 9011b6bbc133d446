"""`glassformer data NAME`: download a known corpus into the cache and print its path."""

import argparse

from tqdm.auto import tqdm

from glassformer.datasets import DATASETS, fetch


def add_parser(sub) -> None:
    p = sub.add_parser(
        "data",
        help="download a known corpus (checksum-verified) and print its path",
        description="Download a corpus into the cache ($GLASSFORMER_CACHE or "
        "~/.cache/glassformer/data), verify its SHA-256, and print the path to pass to "
        "`glassformer train --data`. Known: "
        + "; ".join(f"{k}: {v.about}" for k, v in DATASETS.items()),
    )
    p.add_argument("name", choices=sorted(DATASETS), help="which corpus")
    p.add_argument("--url", help="download from this address instead (a mirror)")
    p.add_argument("--dir", metavar="DIR", help="store it here instead of the cache")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    ds = DATASETS[args.name]
    with tqdm(total=ds.size, unit="B", unit_scale=True, desc=args.name, disable=None) as bar:
        path = fetch(args.name, url=args.url, dest_dir=args.dir, progress=bar.update)
    print(path)
    return 0
