"""Names fixed by the VideoRFT / Video-R1 record schema (shared by datasets, rewards and eval)."""

PROBLEM_TYPES = ("multiple choice", "numerical", "OCR", "free-form", "regression")
"""The five answer types; these exact strings key the prompt templates and the reward scorers."""

DATA_TYPES = ("video", "image")
"""Media kinds a record can point to."""
