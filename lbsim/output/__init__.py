"""What lbsim writes for a person: the results folder (tables, report, manifest) and its plots."""
