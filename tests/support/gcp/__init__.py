"""Google Cloud services for tests, on this machine's loopback: Cloud Storage (the
gcp-storage-emulator package, a real emulator), Secret Manager and Cloud Logging (fakes
validated against their discovery documents by Compute's fake's validator). Compute
Engine's fake is tests/support/gce/."""

PROJECT_NUMBER = "123456789012"  # the number the fakes give the test project (Google's names carry it)
