"""What a run writes and listens to: the run directory contract (rundir), what hpc_fed may
replace or remove (owned), the rank-0 console table (progress), phase timers (timing), clean
stop requests (stop) and what each rank logs (logs)."""
