"""Renderings of the CLI's results: text, JSON, SARIF and JUnit behind one interface.

:mod:`~audit.report.formats.interface` defines documents and formats;
:mod:`~audit.report.formats.choice` the ``--format`` choices and their
``to_format()``; the other modules one document kind each. Nothing here prints.
"""
