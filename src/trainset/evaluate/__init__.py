"""Evaluation: a trained run's predictions on a held-out split, metrics beside baselines, reports.

Modules: ``predict`` (load a checkpoint honestly, collect predictions), ``metrics`` (and
``threshold_metrics``, ``irf_metrics``, ``frame_metrics``, ``baselines``: pure numpy and
scikit-learn), ``tasks`` (metrics, baselines and figures per task type), ``figures`` (PNG plots),
``html`` (self-contained pages), ``load`` (a split in memory, for baselines) and ``stage`` (the
``evaluate_model`` and ``report_index`` rules).
"""
