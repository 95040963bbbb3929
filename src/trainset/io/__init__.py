"""File formats: one small adapter module per format, all writing atomically."""
