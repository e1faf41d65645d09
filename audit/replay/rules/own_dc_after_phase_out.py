"""Rule own-dc-after-phase-out: US users' private data was read from the company's own data centre after the phase-out date."""

from audit.replay.rules.base import FindingContext, Rule, RuleMetadata, what, who


def _explain(ctx: FindingContext) -> str:
    return f"{who(ctx)} {what(ctx)} after the own data centre phase-out ({ctx.detail})"


RULE = Rule(
    metadata=RuleMetadata(
        id="own-dc-after-phase-out",
        title="Own data centre used after phase-out",
        severity="high",
        commitment="C6",
        description="US users' private data was read from the company's own data centre after the phase-out date.",
        remediation=("Delete US private data from own data centres and route all access to OCI US."),
    ),
    explain=_explain,
)
