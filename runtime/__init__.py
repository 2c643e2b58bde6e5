"""Stage 4: the shared trainer (`archc train`) and what reads its checkpoints.

run.py (data → check → folds) → trainer.py (the loop of one split) over data.py (digits, image folders),
cache.py + augment.py (the data set on the device, augmented there) or batches.py (DataLoader workers);
config.py, schedule.py, checkpoint.py (+ ckpt_schema.py, what a checkpoint must hold; ckpt_format.py, how one is recognised), outputs.py,
distributed.py; infer.py, cam.py (+ cam_picture.py), datatools.py (eval, predict, cam, data split/resize).
files.py is the one way a folder tree is listed, images.py the one way an image file is decoded.
"""
