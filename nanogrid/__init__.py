"""NanoGrid Plus command line, HTTP client and local stack."""
