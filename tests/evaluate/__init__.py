"""Tests of trainset.evaluate: metrics and baselines."""
