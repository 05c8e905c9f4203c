"""GCP building blocks: one cdktf construct per concern, composed by `stack.build`.

Constructs take small plain values (`spec.GcpSpec`), never the platform model, so that
`modules` imports nothing of ours but `modules.tf` and `modules.naming`.
"""
