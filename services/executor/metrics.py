from prometheus_client import Counter, Gauge, Histogram

RUNS = Counter("wf_executor_runs_total", "Runs settled by status", ["status"])
RUNS_SKIPPED = Counter(
    "wf_executor_runs_not_claimed_total", "Run messages whose run was already taken, finished or cancelled"
)
STEPS = Counter("wf_executor_steps_total", "Step attempts by action type and status", ["action", "status"])
ACTION_SECONDS = Histogram(
    "wf_executor_action_seconds",
    "Action latency",
    ["action"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120),
)
RETRIES = Counter("wf_executor_retries_total", "Runs scheduled for another attempt")
IN_FLIGHT = Gauge("wf_executor_runs_in_flight", "Runs being executed by this process")
CONSUMER_LAG = Gauge("wf_executor_consumer_lag", "Run messages waiting in the assigned partitions")
