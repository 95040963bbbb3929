"""Training: one validated config, a registry of losses and penalties, LR schedules, the trainer.

Every model trains through the same generic loop: the model maps a batch dict to
``{"pred", "target", "mask"?}``, and the objective built from the config's loss list scores it.
Names that are not registered are errors, never silently skipped (the old code skipped unknown
loss names with a warning and trained on whatever was left).
"""
