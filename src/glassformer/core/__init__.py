"""The bottom layer: what every other layer may use and which knows no model.

- `files.py`   atomic writes (temp file, fsync, rename)
- `device.py`  where to run (cuda → mps → cpu) and at what precision (bf16 only where fast)
- `fields.py`  dataclass config fields that carry their `--help` text and allowed values
- `paths.py`   the cache folder
- `weights.py` safetensors weights in and out, checked tensor by tensor
"""
