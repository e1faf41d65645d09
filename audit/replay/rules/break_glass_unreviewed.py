"""Rule break-glass-unreviewed: An emergency (break-glass) approval was used but never reviewed afterwards."""

from audit.replay.rules.base import FindingContext, Rule, RuleMetadata, what, who


def _explain(ctx: FindingContext) -> str:
    return f"{who(ctx)} {what(ctx)} under break-glass approval {ctx.approval_id}: {ctx.detail}"


RULE = Rule(
    metadata=RuleMetadata(
        id="break-glass-unreviewed",
        title="Break-glass access never reviewed",
        severity="medium",
        description="An emergency (break-glass) approval was used but never reviewed afterwards by the security team (a review by the requester or another team does not count).",
        remediation=("Review every break-glass use promptly and record the reviewer."),
    ),
    explain=_explain,
)
