"""Rule approval-revoked: The cited approval had been revoked before the access."""

from audit.replay.rules.base import FindingContext, Rule, RuleMetadata, what, who


def _explain(ctx: FindingContext) -> str:
    return f"{who(ctx)} {what(ctx)} under approval {ctx.approval_id}, {ctx.detail}"


RULE = Rule(
    metadata=RuleMetadata(
        id="approval-revoked",
        title="Approval used after revocation",
        severity="high",
        description="The cited approval had been revoked before the access.",
        remediation=(
            "Propagate revocations to every access path immediately; review what was accessed after revocation."
        ),
    ),
    explain=_explain,
)
