"""google-cloud-compute clients pointed at a fake, and waiting for their operations.

Never call `.result()` on an operation a client returns: the generated clients poll it
through an operations client of their own that ignores `client_options`, i.e. at
compute.googleapis.com. `wait(fake, operation)` asks the fake instead (zone, region or
global operations, as the operation says).
"""

from __future__ import annotations

from google.auth.credentials import AnonymousCredentials


def client(fake, kind: str):
    """`client(fake, "InstancesClient")`: a REST client of google.cloud.compute_v1 for the fake."""
    from google.cloud import compute_v1

    return getattr(compute_v1, kind)(credentials=AnonymousCredentials(), transport="rest",
                                     client_options=fake.client_options())


def wait(fake, operation) -> object:
    """The finished operation (the raw compute_v1.Operation); raises on an operation error."""
    raw = getattr(operation, "_extended_operation", operation)
    if raw.zone:
        done = client(fake, "ZoneOperationsClient").wait(project=fake.project, zone=raw.zone.rsplit("/", 1)[-1],
                                                         operation=raw.name)
    elif raw.region:
        done = client(fake, "RegionOperationsClient").wait(project=fake.project,
                                                           region=raw.region.rsplit("/", 1)[-1], operation=raw.name)
    else:
        done = client(fake, "GlobalOperationsClient").wait(project=fake.project, operation=raw.name)
    if done.error and done.error.errors:
        raise RuntimeError(f"operation {done.name} failed: {[(e.code, e.message) for e in done.error.errors]}")
    return done
