"""Benchmarks of runreview against its peers (see ``python -m benchmarks --help``)."""
