"""KoALa-Bench inside the harnesses people already use: task packages for lmms-eval and
inspect_ai, and importers that turn their per-sample logs into a koala-bench run
(:func:`koala.integrations.run_writer.write_run`), so ``koala-bench score``, ``report`` and
``compare`` work on them."""
