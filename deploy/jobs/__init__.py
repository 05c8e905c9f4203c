"""Batch jobs: declared jobs on a cron schedule, on-demand runs and SDK submissions.

- `slots`: the pure decision of which slots are due (a test clock goes in as `now`);
- `store`: runs and cursors in the usage database (one row per (job, slot), unique);
- `hosts`: where a run's driver runs (`DriverHost`); `LocalDriverHost` here, a VM through
  the machines layer on the cloud targets later;
- `scheduler`: one pass (`tick`) of starting, watching, retrying, charging and telling;
- `service`: the runtime component that ticks, `driver`: the process that runs a job.
"""
