"""Decoding: processors.py (temperature, top-k, top-p) and sampling.py (the loop)."""
