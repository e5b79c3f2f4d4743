"""`make bench`: performance figures measured beside their baselines in the same run (bench/README.md)."""
