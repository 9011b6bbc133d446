"""The bottom layer: what every other layer may use and which knows no model.

- `files.py`         atomic writes (temp file, fsync, rename, fsync the folder), stale temps
- `checked_paths.py` output and input paths checked before any work (no device, FIFO, input)
- `lock.py`          one run per folder: an advisory fcntl lock
- `device.py`        where to run (cuda → mps → cpu) and at what precision (bf16 only where fast)
- `fields.py`        dataclass config fields with `--help` text, allowed values, type and range
- `paths.py`         the cache folder
- `weights.py`       safetensors weights in and out, checked tensor by tensor
- `metrics.py`       a run's metrics.jsonl read back (the trainer writes it; views read it)
"""
