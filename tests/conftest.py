"""Suite-wide settings: hypothesis without per-example deadlines (this machine is shared and noisy)."""

from hypothesis import settings

settings.register_profile("course", deadline=None, max_examples=60, print_blob=True)
settings.load_profile("course")
