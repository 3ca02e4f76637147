"""The REST API: routes, schemas, auth and error mapping. Thin over the application."""
