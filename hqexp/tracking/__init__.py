"""MLflow record: runs, parent/child sweeps, artifacts and plots."""
