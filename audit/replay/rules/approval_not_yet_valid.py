"""Rule approval-not-yet-valid: The access happened before the cited approval's validity window began."""

from audit.replay.rules.base import FindingContext, Rule, RuleMetadata, what, who


def _explain(ctx: FindingContext) -> str:
    return f"{who(ctx)} {what(ctx)} under approval {ctx.approval_id}, {ctx.detail}"


RULE = Rule(
    metadata=RuleMetadata(
        id="approval-not-yet-valid",
        title="Approval used before it became valid",
        severity="high",
        description="The access happened before the cited approval's validity window began.",
        remediation=("Check approval start times at access time; investigate back-dated or pre-emptive approvals."),
    ),
    explain=_explain,
)
