"""Rule disclosure-without-legal-process: User data was disclosed to law enforcement or a government without a legal-process or exigent-circumstances reference."""

from audit.replay.rules.base import FindingContext, Rule, RuleMetadata, who


def _explain(ctx: FindingContext) -> str:
    return f"{who(ctx)} disclosed {ctx.event.resource.category} data from {ctx.event.resource.dataset} to {ctx.related_actor} without a legal process or exigent reference"


RULE = Rule(
    metadata=RuleMetadata(
        id="disclosure-without-legal-process",
        title="Government disclosure without legal process",
        severity="critical",
        description="User data was disclosed to law enforcement or a government without a legal-process or exigent-circumstances reference.",
        remediation=(
            "Route every government request through the law-enforcement response team and record the legal process reference."
        ),
    ),
    explain=_explain,
)
