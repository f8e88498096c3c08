"""The composition root: the ``piazza`` command and the ``piazza run`` supervisor.

The only package that knows every service; it starts them by name and wires nothing else.
"""
