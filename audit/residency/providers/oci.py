"""OCI stores via the ``oci`` SDK: Object Storage buckets, block and boot volume backups.

Reads the SDK configuration file (``~/.oci/config`` or ``--oci-config``, profile
``DEFAULT`` or ``--oci-profile``) and scans every subscribed region (or the
regions given) in the tenancy and all its compartments:

* buckets (``ListBuckets`` with tags) and their replication policies
  (``ListReplicationPolicies``: destination region and bucket);
* volume and boot volume backups; a cross-region copy names its source backup
  (``sourceVolumeBackupId`` / ``sourceBootVolumeBackupId``), which links it to the
  original. Terminated backups are skipped.

Each call is tried ``attempts`` times (the SDK's retry strategy: throttling, 5xx and
connection errors). ``endpoint`` replaces every service endpoint (``{region}`` is substituted): for a
proxy, or the local recorded-response server the tests use. Authentication,
permission and network failures are a :class:`ScanError` naming the region; a bad
configuration file is an :class:`~audit.errors.InputError`. Does not judge stores.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from audit.errors import InputError, ScanError
from audit.report.residency import ScanScope
from audit.residency.models import DataStore, ResidencySettings, StoreCopy
from audit.residency.places import classify

_GONE = {"TERMINATED", "TERMINATING", "DELETED", "DELETING"}
DEFAULT_CONFIG = "~/.oci/config"


def _tags(item: Any) -> dict[str, str]:
    """Freeform tags plus defined tags (by key, any namespace)."""
    tags: dict[str, str] = {}
    for namespace in (item.defined_tags or {}).values():
        tags.update({str(k): str(v) for k, v in namespace.items()})
    tags.update({str(k): str(v) for k, v in (item.freeform_tags or {}).items()})
    return tags


def bucket_resource(region: str, namespace: str, name: str) -> str:
    """Resource id of a bucket (bucket summaries carry no OCID): ``oci:objectstorage:REGION:NS/NAME``."""
    return f"oci:objectstorage:{region}:{namespace}/{name}"


@dataclass
class OciProvider:
    """Lists OCI stores in ``regions`` (every subscribed region when empty)."""

    regions: tuple[str, ...] = ()
    config_file: str = DEFAULT_CONFIG
    profile: str = "DEFAULT"
    endpoint: str | None = None
    attempts: int = 3
    _tenancy: str = field(default="unknown", init=False)
    _scanned: tuple[str, ...] = field(default=(), init=False)

    def scope(self) -> ScanScope:
        return ScanScope(provider="oci", account=self._tenancy, regions=self._scanned, source="oci api")

    def _load_config(self) -> dict[str, Any]:
        import oci

        try:
            config: dict[str, Any] = oci.config.from_file(str(Path(self.config_file).expanduser()), self.profile)
            oci.config.validate_config(config)
        except (oci.exceptions.ClientError, ValueError) as exc:
            raise InputError(f"OCI configuration: {type(exc).__name__}: {exc}", path=self.config_file) from None
        return config

    def _retry_strategy(self) -> Any:
        import oci

        if self.attempts <= 1:
            return oci.retry.NoneRetryStrategy()
        builder = oci.retry.RetryStrategyBuilder(max_attempts=self.attempts, total_elapsed_time_seconds=120)
        return builder.get_retry_strategy()

    def _client(self, cls: Any, config: dict[str, Any], region: str) -> Any:
        kwargs: dict[str, Any] = {"timeout": (10, 60), "retry_strategy": self._retry_strategy()}
        if self.endpoint is not None:
            kwargs["service_endpoint"] = self.endpoint.replace("{region}", region)
        try:
            return cls(dict(config, region=region), **kwargs)
        except Exception as exc:  # the SDK raises plain exceptions for unusable keys and regions
            raise InputError(f"OCI client for {region}: {type(exc).__name__}: {exc}", path=self.config_file) from None

    @staticmethod
    def _call(region: str, operation: str, call: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        import oci

        try:
            return call(*args, **kwargs)
        except oci.exceptions.ServiceError as exc:
            raise ScanError("oci", region, operation, f"HTTP {exc.status} {exc.code}: {exc.message}") from None
        except OSError as exc:  # the SDK's (vendored) requests errors: refused, reset, timeout, TLS
            raise ScanError("oci", region, operation, f"{type(exc).__name__}: {exc}") from None

    def _all(self, region: str, operation: str, method: Callable[..., Any], *args: Any, **kwargs: Any) -> list[Any]:
        """Every page of a list call, following ``opc-next-page`` (the SDK helper would add its own retries)."""
        items: list[Any] = []
        page: str | None = None
        while True:
            extra = {"page": page} if page is not None else {}
            response = self._call(region, operation, method, *args, **kwargs, **extra)
            items.extend(response.data)
            page = response.next_page
            if not page:
                return items

    def scan(self, settings: ResidencySettings) -> Iterator[DataStore]:
        import oci

        config = self._load_config()
        self._tenancy = str(config["tenancy"])
        home = str(config["region"])
        identity = self._client(oci.identity.IdentityClient, config, home)
        if self.regions:
            self._scanned = tuple(self.regions)
        else:
            subs = self._all(home, "ListRegionSubscriptions", identity.list_region_subscriptions, self._tenancy)
            self._scanned = tuple(sorted(s.region_name for s in subs if s.status == "READY"))
        compartments = [self._tenancy] + [
            c.id
            for c in self._all(
                home,
                "ListCompartments",
                identity.list_compartments,
                self._tenancy,
                compartment_id_in_subtree=True,
                access_level="ACCESSIBLE",
            )
            if c.lifecycle_state not in _GONE
        ]
        for region in self._scanned:
            yield from self._buckets(config, region, compartments, settings)
            yield from self._backups(config, region, compartments, settings)

    def _store(
        self,
        region: str,
        resource: str,
        name: str,
        kind: str,
        tags: dict[str, str],
        settings: ResidencySettings,
        **extra: Any,
    ) -> DataStore:
        return DataStore(
            provider="oci",
            account=self._tenancy,
            region=region,
            resource=resource,
            name=name,
            kind=kind,
            tags=tags,
            classification=classify(tags, settings),
            source=f"oci:{kind}",
            **extra,
        )

    def _buckets(
        self, config: dict[str, Any], region: str, compartments: list[str], settings: ResidencySettings
    ) -> Iterator[DataStore]:
        import oci

        client = self._client(oci.object_storage.ObjectStorageClient, config, region)
        namespace = str(self._call(region, "GetNamespace", client.get_namespace).data)
        for compartment in compartments:
            buckets = self._all(region, "ListBuckets", client.list_buckets, namespace, compartment, fields=["tags"])
            for bucket in buckets:
                policies = self._all(
                    region, "ListReplicationPolicies", client.list_replication_policies, namespace, bucket.name
                )
                copies = tuple(
                    StoreCopy(
                        kind="replication",
                        provider="oci",
                        region=p.destination_region_name,
                        target=bucket_resource(p.destination_region_name, namespace, p.destination_bucket_name),
                    )
                    for p in policies
                )
                yield self._store(
                    region,
                    bucket_resource(region, namespace, bucket.name),
                    bucket.name,
                    "object-storage-bucket",
                    _tags(bucket),
                    settings,
                    copies=copies,
                )

    def _backups(
        self, config: dict[str, Any], region: str, compartments: list[str], settings: ResidencySettings
    ) -> Iterator[DataStore]:
        import oci

        client = self._client(oci.core.BlockstorageClient, config, region)
        for compartment in compartments:
            for backup in self._all(region, "ListVolumeBackups", client.list_volume_backups, compartment):
                if backup.lifecycle_state not in _GONE:
                    yield self._store(
                        region,
                        backup.id,
                        backup.display_name,
                        "volume-backup",
                        _tags(backup),
                        settings,
                        copy_of=backup.source_volume_backup_id,
                    )
            for backup in self._all(region, "ListBootVolumeBackups", client.list_boot_volume_backups, compartment):
                if backup.lifecycle_state not in _GONE:
                    yield self._store(
                        region,
                        backup.id,
                        backup.display_name,
                        "boot-volume-backup",
                        _tags(backup),
                        settings,
                        copy_of=backup.source_boot_volume_backup_id,
                    )
