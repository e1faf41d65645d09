"""Rule store-outside-oci-us: The data came from a store that is not Oracle Cloud Infrastructure in a US region."""

from audit.replay.rules.base import FindingContext, Rule, RuleMetadata, what, who


def _explain(ctx: FindingContext) -> str:
    return f"{who(ctx)} {what(ctx)}; store class {ctx.detail} is outside OCI US"


RULE = Rule(
    metadata=RuleMetadata(
        id="store-outside-oci-us",
        title="US user data read from a store outside OCI US",
        severity="high",
        commitment="C3",
        description="The data came from a store that is not Oracle Cloud Infrastructure in a US region.",
        remediation=("Migrate the store to OCI US or delete the US user data it holds."),
    ),
    explain=_explain,
)
