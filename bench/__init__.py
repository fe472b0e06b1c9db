"""Benchmarks of NanoGrid Plus; bench/run.py is the entry point."""
