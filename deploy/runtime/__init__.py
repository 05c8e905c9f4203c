"""What the hub machine runs, whatever the target: components, their environment, state.

The local supervisor (deploy/local/) uses it on this machine; a hub VM will use the same
records from its service units. Imports nothing of deploy/ but errors, files and ports.
"""
