"""What a run writes and listens to: the run directory contract (rundir), the rank-0 console
table (progress), phase timers (timing) and clean stop requests (stop)."""
