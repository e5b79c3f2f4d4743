"""`make bench`: performance figures measured beside their baselines in the same run (CONTRACT.md §6)."""
