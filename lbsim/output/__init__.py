"""What lbsim writes for a person: the results folder (tables, report, manifest), its plots,
and the atomic writes that keep an interrupted run from leaving half a file.
"""
