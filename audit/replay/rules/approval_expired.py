"""Rule approval-expired: The cited approval's validity window had ended before the access."""

from audit.replay.rules.base import FindingContext, Rule, RuleMetadata, what, who


def _explain(ctx: FindingContext) -> str:
    return f"{who(ctx)} {what(ctx)} under approval {ctx.approval_id}, {ctx.detail}"


RULE = Rule(
    metadata=RuleMetadata(
        id="approval-expired",
        title="Approval used after it expired",
        severity="high",
        description="The cited approval's validity window had ended before the access.",
        remediation=(
            "Enforce approval expiry at access time; renew approvals through the security team instead of reusing old ones."
        ),
    ),
    explain=_explain,
)
