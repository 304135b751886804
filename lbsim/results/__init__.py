"""What a run produced and the names of its figures: per-request records, the tally, the
latency histogram, the metrics of the result tables, the request log and expectations.
"""
