"""Tests of trainset.train: config, losses, schedules."""
