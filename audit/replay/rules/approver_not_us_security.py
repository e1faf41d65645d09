"""Rule approver-not-us-security: An approver of the cited approval is not a member of the US-based security team, or is not in the US."""

from audit.replay.rules.base import FindingContext, Rule, RuleMetadata, what, who


def _explain(ctx: FindingContext) -> str:
    return f"{who(ctx)} {what(ctx)} under approval {ctx.approval_id}, {ctx.detail}"


RULE = Rule(
    metadata=RuleMetadata(
        id="approver-not-us-security",
        title="Approver outside the US security team",
        severity="high",
        commitment="C1",
        description="An approver of the cited approval is not a member of the US-based security team, or is not in the US.",
        remediation=("Restrict approver rights to the US-based security team and verify approver location."),
    ),
    explain=_explain,
)
