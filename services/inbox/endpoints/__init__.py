"""The inbox's HTTP routes: thin translation between HTTP and the service layer."""
