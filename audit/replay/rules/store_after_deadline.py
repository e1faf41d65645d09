"""Rule store-after-deadline: data was used from a transitional store on or after its deadline."""

from audit.replay.rules.base import FindingContext, Rule, RuleMetadata, what, who


def _explain(ctx: FindingContext) -> str:
    return f"{who(ctx)} {what(ctx)} after the store's deadline ({ctx.detail})"


RULE = Rule(
    metadata=RuleMetadata(
        id="store-after-deadline",
        title="Transitional store used after its deadline",
        severity="high",
        description=(
            "User data was used from a transitional store (pack.yaml) on or after the date by which it was to be "
            "deleted or phased out."
        ),
        remediation="Delete the data from the store and remove the access path; confirm with storage inventories.",
    ),
    explain=_explain,
)
