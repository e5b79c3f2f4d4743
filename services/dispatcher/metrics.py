from prometheus_client import Counter, Gauge, Histogram

EVENTS_CONSUMED = Counter("wf_dispatcher_events_consumed_total", "Events taken from the events topic")
EVENTS_UNMATCHED = Counter("wf_dispatcher_events_unmatched_total", "Events that matched no enabled workflow")
EVENTS_DUPLICATE = Counter(
    "wf_dispatcher_runs_duplicate_total", "Runs not created again for a redelivered EventId"
)
RUNS_CREATED = Counter("wf_dispatcher_runs_created_total", "Runs created", ["outcome"])
DLQ_MESSAGES = Counter("wf_dispatcher_dlq_messages_total", "Events sent to the dead-letter topic", ["reason"])
RUNS_RELEASED = Counter(
    "wf_dispatcher_runs_released_total", "Deferred, retrying or unpublished runs released", ["kind"]
)
LEASES_EXPIRED = Counter("wf_dispatcher_leases_expired_total", "Running runs whose executor stopped renewing")
BATCH_SECONDS = Histogram(
    "wf_dispatcher_batch_seconds",
    "Time to turn one batch of events into runs",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
BATCH_SIZE = Histogram(
    "wf_dispatcher_batch_events", "Events per batch", buckets=(1, 10, 50, 100, 250, 500, 1000, 2000, 5000)
)
CONSUMER_LAG = Gauge("wf_dispatcher_consumer_lag", "Events waiting in the assigned partitions")
INDEX_WORKFLOWS = Gauge("wf_dispatcher_index_workflows", "Enabled workflows in the matching index")
PENDING_RUNS = Gauge("wf_pending_runs", "Runs waiting to be executed (Pending or Retrying)")
OLDEST_PENDING_SECONDS = Gauge(
    "wf_oldest_pending_run_seconds", "Age of the oldest due run that is still waiting"
)
INDEX_CATCH_UPS = Counter(
    "wf_dispatcher_index_catch_ups_total",
    "Batches that found the matching index behind the change log and caught it up before matching",
)
OUTCOMES_REPUBLISHED = Counter(
    "wf_dispatcher_outcomes_republished_total",
    "Run outcomes published by the scheduler because their first publish was not acknowledged",
)
