"""The lmms-eval task package of KoALa-Bench (``lmms-eval --include_path`` this folder)."""
