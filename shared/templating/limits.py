"""Sandbox limits for Liquid templates (docs/api-behaviour.md, "Templates")."""

MAX_LOOP_ITERATIONS = 500
MAX_NESTING_DEPTH = 50
MAX_OUTPUT_CHARS = 262_144  # 256 KB of rendered text, counted in characters
MAX_TEMPLATE_CHARS = 65_536  # OutputTemplate size accepted when a step is saved
MAX_CONDITION_CHARS = 4_096

# Guards for work that produces no output: a filter can multiply a string or a list long before anything is
# written, so every value a filter takes or returns is capped, and each render has a wall-clock budget
# because the executor renders on its event loop.
MAX_VALUE_CHARS = (
    1_048_576  # a payload string is at most 1 MiB (the event body cap), so no real value is larger
)
MAX_VALUE_ITEMS = 100_000
MAX_NUMBER_BITS = 4_096
MAX_LOCALS_BYTES = 8 * 1_048_576  # assigned variables, measured by python-liquid with sys.getsizeof
RENDER_TIME_LIMIT_SECONDS = 2.0
