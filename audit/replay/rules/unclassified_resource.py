"""Rule unclassified-resource: The data catalogue does not classify the resource, so nobody can show that the access kept the sensitive-category commitments."""

from audit.replay.rules.base import FindingContext, Rule, RuleMetadata, who


def _explain(ctx: FindingContext) -> str:
    res = ctx.event.resource
    return (
        f"{who(ctx)} {ctx.event.action} resource {res.id} ({res.store}, {res.region}) whose category "
        f"{res.category!r} is not classified by the policy pack; it is judged as sensitive"
    )


RULE = Rule(
    metadata=RuleMetadata(
        id="unclassified-resource",
        title="Access to an unclassified resource",
        severity="medium",
        description="The data catalogue does not classify the resource (or names a category the policy pack does not know), so nobody can show that the access kept the sensitive-category commitments; it is judged as sensitive data.",
        remediation=(
            "Add the resource to the data catalogue with its dataset, category, store and region, or correct its category to one the policy pack classifies."
        ),
    ),
    explain=_explain,
)
