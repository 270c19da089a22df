"""HTTP plumbing shared by every component: app factory, auth dependencies, health, errors."""
