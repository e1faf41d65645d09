"""Rule transfer-without-legal-basis: data went to a recipient outside $home without a recorded transfer basis."""

from audit.replay.rules.base import FindingContext, Rule, RuleMetadata


def _explain(ctx: FindingContext) -> str:
    res = ctx.event.resource
    return (
        f"{ctx.related_actor} got {res.category} data from {res.dataset} ({ctx.event.action} by {ctx.event.actor.id}) "
        f"outside {ctx.home} without a transfer basis the pack accepts ({ctx.detail})"
    )


RULE = Rule(
    metadata=RuleMetadata(
        id="transfer-without-legal-basis",
        title="Transfer outside $home without a legal basis",
        severity="critical",
        description=(
            "User data was handed to a recipient outside $home (or in an unknown country) without a recorded "
            "transfer basis that the pack accepts for that recipient and category."
        ),
        remediation=(
            "Stop the transfer until a basis is in place (adequacy decision, contractual clauses, binding corporate "
            "rules or a documented derogation) and record its reference with every transfer."
        ),
    ),
    explain=_explain,
)
