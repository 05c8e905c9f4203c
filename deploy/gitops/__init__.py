"""GitOps: what CI runs around platform.yaml (pull-request comment, workflows, summaries)."""
