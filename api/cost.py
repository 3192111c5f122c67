"""What a document would cost to answer, estimated before anything runs.

Every field a request selects is resolved once per object it is selected on, and GraphQL spends
most of an answer's time there (a page of 100 invoices with every field is about 10,000
resolved fields; reading them from PostgreSQL is a few milliseconds of it). So a document's
cost is the number of fields it could resolve: a list field multiplies its selection by its
`first` (as written; a variable counts as the largest page), or by LIST_ESTIMATE for the lists
inside an object (an invoice's lines, payments…: a clinic's invoice has a few of each; one with
many more costs proportionally more than estimated), or by the most ids a bulk call may name for
a list with one item per id (`one_per_id()`). Aliases and fragments count every time they
are used, so neither can multiply the work unseen. Introspection fields are not counted (their
answer is bounded by the schema, and introspection is off in production).
"""

from graphql import (
    FieldNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLList,
    GraphQLNonNull,
    InlineFragmentNode,
    IntValueNode,
    OperationDefinitionNode,
    SelectionSetNode,
    ValidationContext,
    ValidationRule,
    get_named_type,
)
from strawberry.schema.schema_converter import GraphQLCoreConverter

LIST_ESTIMATE = 3
ONE_PER_ID = "one item per id of a bulk call"
TOO_COSTLY = (
    "This request asks for too much at once (about {cost:,} fields to answer; at most {limit:,}): "
    "select fewer fields, use fewer aliases or a smaller `first`, and page through the rest."
)


def one_per_id() -> dict:
    """`metadata=` of a list field holding one item per id a bulk mutation names (its outcomes):
    counted as the most ids a call may name, not as a few."""
    return {ONE_PER_ID: True}


def _one_per_id(field) -> bool:
    definition = (field.extensions or {}).get(GraphQLCoreConverter.DEFINITION_BACKREF)
    return bool((getattr(definition, "metadata", None) or {}).get(ONE_PER_ID))


def query_cost_rule(*, limit: int, page_size: int, bulk_size: int) -> type[ValidationRule]:
    class QueryCost(ValidationRule):
        def __init__(self, context: ValidationContext):
            super().__init__(context)
            self.fragment_costs: dict[tuple[str, str], int] = {}
            self.visiting: set[str] = set()

        def enter_operation_definition(self, node: OperationDefinitionNode, *_args):
            root = self.context.schema.get_root_type(node.operation)
            cost = self.selection_cost(node.selection_set, root) if root else 0
            if cost > limit:
                self.report_error(GraphQLError(TOO_COSTLY.format(cost=cost, limit=limit), node))

        def multiplier(self, node: FieldNode, field) -> int:
            if "first" not in field.args:
                return bulk_size if _one_per_id(field) else LIST_ESTIMATE
            for argument in node.arguments or ():
                if argument.name.value == "first":
                    if isinstance(argument.value, IntValueNode):
                        return max(0, min(int(argument.value.value), page_size))
                    return page_size
            default = field.args["first"].default_value
            return default if isinstance(default, int) else page_size

        def selection_cost(self, selection_set: SelectionSetNode | None, parent) -> int:
            if selection_set is None or parent is None:
                return 0
            total = 0
            for selection in selection_set.selections:
                if isinstance(selection, FieldNode):
                    total += self.field_cost(selection, parent)
                elif isinstance(selection, InlineFragmentNode):
                    condition = selection.type_condition
                    fragment_type = (self.context.schema.get_type(condition.name.value)
                                     if condition else parent)
                    total += self.selection_cost(selection.selection_set, fragment_type)
                elif isinstance(selection, FragmentSpreadNode):
                    total += self.spread_cost(selection.name.value, parent)
                if total > limit:
                    return total  # enough to refuse: no need to count the rest
            return total

        def field_cost(self, node: FieldNode, parent) -> int:
            name = node.name.value
            fields = getattr(parent, "fields", None)
            if name.startswith("__") or not fields or name not in fields:
                return 1  # introspection, or an unknown field other rules report
            field = fields[name]
            field_type = field.type
            if isinstance(field_type, GraphQLNonNull):
                field_type = field_type.of_type
            times = self.multiplier(node, field) if isinstance(field_type, GraphQLList) else 1
            return 1 + times * self.selection_cost(node.selection_set,
                                                   get_named_type(field_type))

        def spread_cost(self, name: str, parent) -> int:
            key = (name, getattr(parent, "name", ""))
            if key in self.fragment_costs:
                return self.fragment_costs[key]
            fragment = self.context.get_fragment(name)
            if fragment is None or name in self.visiting:
                return 0  # unknown or cyclic: their own rules report them
            self.visiting.add(name)
            condition = self.context.schema.get_type(fragment.type_condition.name.value)
            cost = self.selection_cost(fragment.selection_set, condition or parent)
            self.visiting.discard(name)
            self.fragment_costs[key] = cost
            return cost

    return QueryCost
