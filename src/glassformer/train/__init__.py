"""Training: corpus.py -> data.py (token memmap, batches) -> trainer.py (the loop), with
optim.py (AdamW, schedules), checkpoint.py, metrics.py, device.py, distributed.py, presets.py.
"""
