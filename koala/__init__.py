"""koala: the library behind koala-bench (KoALa-Bench for Hugging Face datasets and evaluate)."""

__version__ = "0.1.0"
