"""What the pipeline records, where it finds it again: the registry of processed
extracts (snapshot instant, production-date chain), what each received extract's checks
said, the delivery ledger, and why an attempt failed in one line."""
