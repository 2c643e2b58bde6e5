"""Stage 4: the shared trainer (`archc train`) and what reads its checkpoints.

run.py (data → check → folds) → trainer.py (the loop of one split) over data.py (digits, image folders),
cache.py + augment.py (the data set on the device, augmented there) or batches.py (DataLoader workers);
config.py, schedule.py, checkpoint.py, outputs.py, distributed.py; infer.py, cam.py, datatools.py (eval,
predict, cam, data split/resize).
"""
