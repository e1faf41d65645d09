"""Residency scanner: where US user data is stored, where its copies go, which commitment that breaks.

Providers (:mod:`audit.residency.providers`: AWS, OCI, inventory files) list data
stores; :mod:`audit.residency.scanner` links stores to their replicas, backup and
snapshot copies and judges them with the rules in :mod:`audit.residency.rules`
(C3 storage outside OCI US, C4 Singapore after the deletion deadline, C6 own data
centres after phase-out, and unclassified stores as unknown). Nothing here prints;
the CLI (:mod:`audit.cli.residency_cmds`) renders results and sets exit codes.
"""
