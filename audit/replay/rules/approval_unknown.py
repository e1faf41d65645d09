"""Rule approval-unknown: The event cites an approval id that does not exist in the approvals source."""

from audit.replay.rules.base import FindingContext, Rule, RuleMetadata, what, who


def _explain(ctx: FindingContext) -> str:
    return f"{who(ctx)} {what(ctx)} citing approval {ctx.approval_id}, which does not exist"


RULE = Rule(
    metadata=RuleMetadata(
        id="approval-unknown",
        title="Approval id not found",
        severity="high",
        description="The event cites an approval id that does not exist in the approvals source.",
        remediation=(
            "Reject accesses citing unknown approvals at the gateway; reconcile the approval system with the access logs."
        ),
    ),
    explain=_explain,
)
