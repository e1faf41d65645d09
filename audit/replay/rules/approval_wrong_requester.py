"""Rule approval-wrong-requester: The approval was granted to a different person than the one who used it."""

from audit.replay.rules.base import FindingContext, Rule, RuleMetadata, what, who


def _explain(ctx: FindingContext) -> str:
    return f"{who(ctx)} {what(ctx)} under approval {ctx.approval_id}: {ctx.detail}"


RULE = Rule(
    metadata=RuleMetadata(
        id="approval-wrong-requester",
        title="Approval used by someone else",
        severity="high",
        description="The approval was granted to a different person than the one who used it.",
        remediation=("Bind approvals to the requester's identity and reject use by anyone else."),
    ),
    explain=_explain,
)
