"""A lookup that lets PostgreSQL use an index for "one of the values a subquery returns".

`field__any_of=Subquery(...)` is `field = ANY(ARRAY(SELECT ...))` on PostgreSQL: the subquery
runs once, before the scan, and its values become index conditions, so a clinic filter or a
patient search combines with other indexed conditions (a BitmapOr, an ordered index scan).
A plain `IN (SELECT ...)` is planned as a join instead, which an OR or an ORDER BY … LIMIT
cannot use. Other databases get the plain `IN (SELECT ...)`."""

from django.db.models import Field, Lookup
from django.db.models.fields.related import ForeignObject


class AnyOf(Lookup):
    lookup_name = "any_of"

    def as_sql(self, compiler, connection):
        lhs, lhs_params = self.process_lhs(compiler, connection)
        rhs, rhs_params = self.process_rhs(compiler, connection)
        return f"{lhs} IN {rhs}", (*lhs_params, *rhs_params)

    def as_postgresql(self, compiler, connection):
        lhs, lhs_params = self.process_lhs(compiler, connection)
        rhs, rhs_params = self.process_rhs(compiler, connection)
        return f"{lhs} = ANY(ARRAY{rhs})", (*lhs_params, *rhs_params)


Field.register_lookup(AnyOf)
ForeignObject.register_lookup(AnyOf)
