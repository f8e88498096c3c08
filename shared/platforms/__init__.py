"""Platform API clients, shared by a platform's connector and the reply service."""
