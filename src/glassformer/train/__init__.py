"""Training: corpus.py -> data.py (token memmap, batches) -> trainer.py (the loop), driven by
lm.py (the language-model run) or finetune.py (--init-from, LoRA), with config.py and
config_file.py (the run's settings), presets.py, optim.py (AdamW, schedules) and muon.py,
distributed.py and parallel.py (DDP, FSDP2, tensor parallel), metrics.py and loggers.py (the
records), mfu.py (model FLOPs utilisation).
"""
