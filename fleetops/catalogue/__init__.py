"""What can be done, and to which WorkSpaces: the catalogue.

``actions`` is the single source of every action's name, parameters, flags, job-file fields,
eligibility and messages; ``targets`` the selectors (which WorkSpaces); ``options`` how a job
runs; ``jobfile`` the YAML job files; ``specs`` what a job will do, built from flags or a job
file; ``accounts`` the accounts and the role to assume in each. Pure data and decisions: no I/O
but reading the files it is given. Nothing is imported here: each module is imported where used.
"""
