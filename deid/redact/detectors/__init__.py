"""The detectors of spoken personal information, one module per kind; `deid.redact.find` runs them."""
