"""Benchmarks: plain scripts that print ratios against a baseline measured in the same run.

Run everything with `python bench/run.py`; each part also runs alone as `python bench/<name>.py`.
"""
