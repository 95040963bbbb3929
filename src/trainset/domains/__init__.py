"""The non-flu domains (sequence tasks, flight forecasts, macro worlds): demo generators from real
models, framing of long tables, and the registry (:mod:`.registry`) the stages dispatch through."""
