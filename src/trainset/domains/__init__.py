"""Domain simulators that generate training sets from real models (macro worlds, ...)."""
