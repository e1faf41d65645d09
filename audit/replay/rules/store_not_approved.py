"""Rule store-not-approved: the data came from a store outside the pack's approved storage."""

from audit.replay.rules.base import FindingContext, Rule, RuleMetadata, what, who


def _explain(ctx: FindingContext) -> str:
    return f"{who(ctx)} {what(ctx)}; store class {ctx.detail} is not approved storage"


RULE = Rule(
    metadata=RuleMetadata(
        id="store-not-approved",
        title="User data read from a store outside approved storage",
        severity="high",
        description="The data came from a store that none of the pack's approved store sets (pack.yaml) covers.",
        remediation="Migrate the store to approved storage or delete the user data it holds.",
    ),
    explain=_explain,
)
