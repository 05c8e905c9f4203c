"""The hub VM on a cloud: what `platform apply` publishes for it (wheelhouse, configuration)
and what runs on it (boot, systemd units, secrets, config sync). boto3 is imported here
and in deploy.cloud only."""
