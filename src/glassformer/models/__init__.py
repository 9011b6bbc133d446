"""Whole models built from `glassformer.nn`: gpt.py (decoder-only), config.py."""
