"""What runs on the hub VM itself (started by its systemd units)."""
