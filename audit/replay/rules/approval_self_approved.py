"""Rule approval-self-approved: The requester of the approval is also one of its approvers."""

from audit.replay.rules.base import FindingContext, Rule, RuleMetadata, what, who


def _explain(ctx: FindingContext) -> str:
    return f"{who(ctx)} {what(ctx)} under approval {ctx.approval_id}: {ctx.detail}"


RULE = Rule(
    metadata=RuleMetadata(
        id="approval-self-approved",
        title="Self-approved access",
        severity="high",
        description="The requester of the approval is also one of its approvers.",
        remediation=(
            "Forbid self-approval in the approval system (Teleport-style: requester can never review own request)."
        ),
    ),
    explain=_explain,
)
