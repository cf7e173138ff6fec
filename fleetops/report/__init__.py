"""How a job is shown: ``text`` (tables on a console), ``documents`` (the ``--json`` documents
and item exports, without rich) and ``html`` (one self-contained HTML file with its timeline).
Nothing is imported here: ``--json`` never loads rich.
"""
