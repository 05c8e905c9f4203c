"""The hub's usage pages: spend, running clusters and notebook servers, per user and for admins."""
