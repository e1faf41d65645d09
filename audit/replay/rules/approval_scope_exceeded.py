"""Rule approval-scope-exceeded: The access touched a dataset, category, action or resource the approval does not cover."""

from audit.replay.rules.base import FindingContext, Rule, RuleMetadata, what, who


def _explain(ctx: FindingContext) -> str:
    return f"{who(ctx)} {what(ctx)} under approval {ctx.approval_id}: {ctx.detail}"


RULE = Rule(
    metadata=RuleMetadata(
        id="approval-scope-exceeded",
        title="Access beyond the approval's scope",
        severity="high",
        description="The access touched a dataset, category, action or resource the approval does not cover.",
        remediation=("Scope approvals to datasets, categories and actions and enforce the scope at the data layer."),
    ),
    explain=_explain,
)
