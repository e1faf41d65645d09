"""Importers for real access logs: AWS CloudTrail, OCI Audit, GCP Access Transparency, OCSF.

Each source module converts its vendor's documented record shape into
:class:`~audit.models.AccessEvent`\\ s (:mod:`audit.importers.base` is the shared
interface and streaming reader), enriched from a people directory and a data
catalogue (:mod:`audit.importers.enrichment`). :mod:`audit.importers.run` seals
the result as a signed log with an import report; :mod:`audit.importers.cloudtrail_digest`
validates CloudTrail digest files offline. Nothing here prints.
"""
