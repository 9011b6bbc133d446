"""The parts of a transformer, one concept per file.

embedding.py (token + learned/sinusoidal positions), rotary.py, attention.py, mlp.py,
norm.py, block.py, hooks.py.
"""
