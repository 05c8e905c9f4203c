"""A fake Compute Engine API for tests: validated against Google's own discovery document.

There is no maintained Compute Engine emulator, so `server.running_fake_compute()` serves
the calls the machines layer (`deploy/cloud/gcp*.py`) and the tests' setup make, and
refuses, with the API's own 400s, every request the Compute v1 discovery document that
google-api-python-client ships does not allow (`validation.py`). Responses are built from
the same document's schemas (`discovery.Document.build`).
"""
