"""Rule singapore-backup-after-deadline: US user data was read from a Singapore backup after the date by which those backups were to be deleted."""

from audit.replay.rules.base import FindingContext, Rule, RuleMetadata, what, who


def _explain(ctx: FindingContext) -> str:
    return f"{who(ctx)} {what(ctx)} after the Singapore backup deletion deadline ({ctx.detail})"


RULE = Rule(
    metadata=RuleMetadata(
        id="singapore-backup-after-deadline",
        title="Singapore backup used after its deletion deadline",
        severity="high",
        commitment="C4",
        description="US user data was read from a Singapore backup after the date by which those backups were to be deleted.",
        remediation=(
            "Delete the Singapore backup copies and remove the access path; confirm deletion with storage inventories."
        ),
    ),
    explain=_explain,
)
