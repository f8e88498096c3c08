"""The analytics API's routers."""
