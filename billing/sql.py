"""A lookup that lets PostgreSQL use an index for "one of these values".

`field__any_of=Subquery(...)` is `field = ANY(ARRAY(SELECT ...))` on PostgreSQL: the subquery
runs once, before the scan, and its values become index conditions, so a clinic filter or a
patient search combines with other indexed conditions (a BitmapOr, an ordered index scan).
A plain `IN (SELECT ...)` is planned as a join instead, which an OR or an ORDER BY … LIMIT
cannot use. `field__any_of=[1, 2, …]` sends the values as one array parameter, which the
planner can estimate and hash, however many there are. Other databases get a plain `IN`."""

from django.db.models import Field, Lookup
from django.db.models.expressions import Subquery
from django.db.models.fields.related import ForeignObject
from django.db.models.lookups import In


class AnyOf(Lookup):
    lookup_name = "any_of"
    prepare_rhs = False

    def as_sql(self, compiler, connection):
        if not isinstance(self.rhs, Subquery):
            return compiler.compile(In(self.lhs, list(self.rhs)))
        lhs, lhs_params = self.process_lhs(compiler, connection)
        rhs, rhs_params = self.process_rhs(compiler, connection)
        return f"{lhs} IN {rhs}", (*lhs_params, *rhs_params)

    def as_postgresql(self, compiler, connection):
        lhs, lhs_params = self.process_lhs(compiler, connection)
        if not isinstance(self.rhs, Subquery):
            # typed like the column, or the planner can neither hash nor estimate it
            array_type = f"{self.lhs.output_field.db_type(connection)}[]"
            return f"{lhs} = ANY(%s::{array_type})", (*lhs_params, list(self.rhs))
        rhs, rhs_params = self.process_rhs(compiler, connection)
        return f"{lhs} = ANY(ARRAY{rhs})", (*lhs_params, *rhs_params)


Field.register_lookup(AnyOf)
ForeignObject.register_lookup(AnyOf)
