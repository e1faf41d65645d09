"""Residency scanner: where the pack's home user data is stored, where its copies go, which commitment that breaks.

Providers (:mod:`audit.residency.providers`: AWS, OCI, inventory files) list data
stores; :mod:`audit.residency.scanner` links stores to their replicas, backup and
snapshot copies and judges them with the rules in :mod:`audit.residency.rules`
(home user data on a provider no approved store uses or away from home, copies away
from home, transitional stores past their deadlines, and unclassified stores as
unknown), reported in the policy pack's words (``rules.yaml``). Nothing here prints;
the CLI (:mod:`audit.cli.residency_cmds`) renders results and sets exit codes.
"""
